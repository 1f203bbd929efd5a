package txn

import (
	"sync"
	"time"
)

// wheel runs every timer of the layer (retransmissions and timeouts of all
// transactions) from one goroutine: a slot per tick, so arming a timer is an
// append and no timer is ever cancelled. A transaction tells a stale entry
// from its live one by the generation it armed it with.
type wheel struct {
	mu    sync.Mutex
	start time.Time
	tick  time.Duration
	next  int64 // the first tick not yet run
	slots [][]entry
}

type entry struct {
	t   timed
	gen uint32
}

// timed is what a wheel entry fires.
type timed interface{ expire(gen uint32) }

// wheelSlots × wheelTick is the longest timer (64·T1 = 32 s fits).
const (
	wheelTick  = 10 * time.Millisecond
	wheelSlots = 4096
)

func newWheel(start time.Time) *wheel {
	return &wheel{start: start, tick: wheelTick, slots: make([][]entry, wheelSlots)}
}

// after arms t to expire with gen d after now (rounded up to a tick, at most
// the wheel's span).
func (w *wheel) after(now time.Time, d time.Duration, t timed, gen uint32) {
	due := int64((now.Sub(w.start) + d + w.tick - 1) / w.tick)
	w.mu.Lock()
	due = min(max(due, w.next), w.next+wheelSlots-1)
	s := &w.slots[due%wheelSlots]
	*s = append(*s, entry{t, gen})
	w.mu.Unlock()
}

// advance fires every timer due by now, outside the wheel's lock (an
// expiring transaction re-arms).
func (w *wheel) advance(now time.Time) {
	upto := int64(now.Sub(w.start) / w.tick)
	for {
		w.mu.Lock()
		if w.next > upto {
			w.mu.Unlock()
			return
		}
		i := w.next % wheelSlots
		due := w.slots[i]
		w.slots[i] = nil
		w.next++
		w.mu.Unlock()
		for _, e := range due {
			e.t.expire(e.gen)
		}
		if cap(due) > 0 {
			clear(due)
			w.mu.Lock()
			if w.slots[i] == nil {
				w.slots[i] = due[:0]
			}
			w.mu.Unlock()
		}
	}
}

// run advances the wheel with the real clock until stop closes.
func (w *wheel) run(stop <-chan struct{}) {
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.advance(now)
		}
	}
}
