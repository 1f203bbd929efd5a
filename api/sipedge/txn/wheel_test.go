package txn

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a timed that notes each expiry: its generation and the clock
// the test had moved the wheel to.
type recorder struct {
	mu    sync.Mutex
	now   time.Duration // set by the test before each advance
	fired []firing
	// rearm, when set, runs on each expiry (a transaction re-arming).
	rearm func(gen uint32)
}

type firing struct {
	gen uint32
	at  time.Duration
}

func (r *recorder) expire(gen uint32) {
	r.mu.Lock()
	r.fired = append(r.fired, firing{gen, r.now})
	f := r.rearm
	r.mu.Unlock()
	if f != nil {
		f(gen)
	}
}

func (r *recorder) firings() []firing {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.fired)
}

// step moves the wheel from its last position to upto in steps of by,
// noting the clock in r for each advance.
func step(w *wheel, r *recorder, from, upto, by time.Duration) {
	for at := from; at <= upto; at += by {
		r.mu.Lock()
		r.now = at
		r.mu.Unlock()
		w.advance(w.start.Add(at))
	}
}

// TestWheelFiresAtOrAfterDue: a timer fires at the first tick at or after
// its due time (never before), and one longer than the wheel's span is
// clamped to the span.
func TestWheelFiresAtOrAfterDue(t *testing.T) {
	// The wheel has run tick 0 when a case arms at 0, so its span reaches
	// wheelSlots-1 ticks past tick 1.
	span := wheelSlots * wheelTick
	for _, tc := range []struct {
		name   string
		armAt  time.Duration // the clock when armed
		d      time.Duration
		wantAt time.Duration
	}{
		{"zero fires on the next tick", 0, 0, wheelTick},
		{"negative fires on the next tick", 0, -time.Second, wheelTick},
		{"1ns rounds up to a tick", 0, time.Nanosecond, wheelTick},
		{"one tick", 0, wheelTick, wheelTick},
		{"a tick and a half rounds up", 0, wheelTick + wheelTick/2, 2 * wheelTick},
		{"armed between ticks", 3 * time.Millisecond, wheelTick, 2 * wheelTick},
		{"armed between ticks, due on a tick", 5 * time.Millisecond, 15 * time.Millisecond, 2 * wheelTick},
		{"T1", 0, T1, T1},
		{"T2 armed late", 7 * time.Second, T2, 11 * time.Second},
		{"64·T1 fits the span", 0, linger, linger},
		{"64·T1 armed late", 90 * time.Second, linger, 90*time.Second + linger},
		{"beyond the span is clamped", 0, 100 * time.Second, span},
		{"exactly the span", 0, span, span},
		{"a tick beyond the span is clamped", 0, span + wheelTick, span},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWheel(epoch)
			r := &recorder{}
			// Bring the wheel to the arming time as the ticker would have.
			step(w, r, 0, tc.armAt, time.Millisecond)
			w.after(epoch.Add(tc.armAt), tc.d, r, 7)
			// Millisecond steps: a timer due between ticks shows when it
			// fires to the millisecond.
			step(w, r, tc.armAt, tc.wantAt+2*time.Second, time.Millisecond)
			got := r.firings()
			if len(got) != 1 {
				t.Fatalf("fired %d times (%v), want once", len(got), got)
			}
			if got[0].at != tc.wantAt || got[0].gen != 7 {
				t.Errorf("fired at %v with gen %d, want at %v with gen 7", got[0].at, got[0].gen, tc.wantAt)
			}
			if tc.d > 0 && tc.d <= span && got[0].at < tc.armAt+tc.d {
				t.Errorf("fired at %v, before its due %v", got[0].at, tc.armAt+tc.d)
			}
		})
	}
}

// TestWheelStaleGenerations: the wheel cancels nothing; each entry fires
// with the generation it was armed with, and the transaction ignores the
// stale ones.
func TestWheelStaleGenerations(t *testing.T) {
	w := newWheel(epoch)
	r := &recorder{}
	w.after(epoch, T1, r, 1)
	w.after(epoch, 2*T1, r, 2) // re-armed: the first entry is stale now
	w.after(epoch, T1, r, 3)   // same slot as gen 1
	step(w, r, 0, 3*T1, wheelTick)
	want := []firing{{1, T1}, {3, T1}, {2, 2 * T1}}
	if got := r.firings(); !slices.Equal(got, want) {
		t.Errorf("fired %v, want %v (in arming order within a slot)", got, want)
	}
}

// TestWheelRearmFromExpire: an expiring timer re-arms (as a transaction
// does) without deadlock, and a catch-up advance fires it once per tick.
func TestWheelRearmFromExpire(t *testing.T) {
	w := newWheel(epoch)
	r := &recorder{}
	r.rearm = func(gen uint32) {
		if gen < 100 {
			w.after(epoch.Add(time.Duration(gen)*wheelTick), wheelTick, r, gen+1)
		}
	}
	w.after(epoch, wheelTick, r, 1)
	// One advance a second late: the ticker fell behind.
	r.now = time.Second
	w.advance(epoch.Add(time.Second))
	got := r.firings()
	if len(got) != 100 {
		t.Fatalf("fired %d times, want 100", len(got))
	}
	for i, f := range got {
		if f.gen != uint32(i+1) {
			t.Fatalf("firing %d has gen %d, want %d", i, f.gen, i+1)
		}
	}
	// Re-armed with a due already past, a timer goes to the next tick
	// rather than to a slot already run.
	r2 := &recorder{}
	w.after(epoch, T1, r2, 1) // due 1 s ago
	step(w, r2, time.Second, time.Second, wheelTick)
	if len(r2.firings()) != 0 {
		t.Fatalf("a past due fired in an advance that ran no new tick")
	}
	step(w, r2, time.Second+wheelTick, time.Second+wheelTick, wheelTick)
	if got := r2.firings(); len(got) != 1 {
		t.Fatalf("a past due: fired %v, want once on the next tick", got)
	}
}

// TestWheelWraps: after the wheel has gone round many times, a timer still
// fires on its own tick and not on an earlier round's slot.
func TestWheelWraps(t *testing.T) {
	w := newWheel(epoch)
	r := &recorder{}
	base := 3 * wheelSlots * wheelTick // three turns
	step(w, r, 0, base+3*wheelTick, wheelTick)
	armAt := base + 3*wheelTick
	w.after(epoch.Add(armAt), T1, r, 1)
	w.after(epoch.Add(armAt), linger, r, 2)
	step(w, r, armAt, armAt+linger+time.Second, wheelTick)
	want := []firing{{1, armAt + T1}, {2, armAt + linger}}
	if got := r.firings(); !slices.Equal(got, want) {
		t.Errorf("fired %v, want %v", got, want)
	}
}

// TestWheelRun: with the real clock the wheel's goroutine fires timers on
// its own, and stops when told.
func TestWheelRun(t *testing.T) {
	w := newWheel(time.Now())
	fired := make(chan uint32, 1)
	w.after(time.Now(), 2*wheelTick, timedFunc(func(gen uint32) { fired <- gen }), 9)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { w.run(stop); close(done) }()
	select {
	case gen := <-fired:
		if gen != 9 {
			t.Errorf("fired with gen %d, want 9", gen)
		}
	case <-time.After(expectWait):
		t.Fatal("the real-clock wheel did not fire in 1 s")
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(expectWait):
		t.Fatal("run did not return after stop")
	}
}

type timedFunc func(gen uint32)

func (f timedFunc) expire(gen uint32) { f(gen) }
