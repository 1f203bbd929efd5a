package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api/metrics"
)

// Worker is the media of one call: its legs and who hears whom.
type Worker struct {
	s        *Service
	callID   string
	onEvent  func(Event)
	lastRx   atomic.Int64 // unix nano of the last packet on any leg
	timedOut atomic.Bool

	mu     sync.Mutex
	legs   map[string]*Leg
	closed bool
}

// Source is what a leg hears: another leg, the hold tone, or nothing.
type Source struct {
	leg  string
	tone bool
}

// LegSource: dst hears this leg.
func LegSource(id string) Source { return Source{leg: id} }

// ToneSource: dst hears the hold tone.
func ToneSource() Source { return Source{tone: true} }

// Silence: dst hears nothing.
func Silence() Source { return Source{} }

// AddLeg allocates a port and starts the leg's reader.
func (w *Worker) AddLeg(id string) (*Leg, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrNoPorts
	}
	if l := w.legs[id]; l != nil {
		return l, nil
	}
	conn, port, err := w.s.bind()
	if err != nil {
		return nil, err
	}
	l := newLeg(w, id, conn, port)
	w.legs[id] = l
	go l.read()
	return l, nil
}

// Leg returns a leg by id, or nil.
func (w *Worker) Leg(id string) *Leg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.legs[id]
}

// RemoveLeg stops a leg, frees its port, and silences whoever heard it.
func (w *Worker) RemoveLeg(id string) {
	w.mu.Lock()
	l := w.legs[id]
	delete(w.legs, id)
	if l != nil {
		for _, o := range w.legs {
			o.unhear(l)
		}
	}
	w.mu.Unlock()
	if l != nil {
		l.close()
	}
}

// Route sets what dst hears.
func (w *Worker) Route(dst string, src Source) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.legs[dst]
	if d == nil {
		return
	}
	for _, o := range w.legs {
		o.unhear(d)
	}
	w.s.setTone(d, src.tone)
	if s := w.legs[src.leg]; s != nil && s != d {
		s.hear(d)
	}
}

// Bridge connects two legs both ways.
func (w *Worker) Bridge(a, b string) {
	w.Route(a, LegSource(b))
	w.Route(b, LegSource(a))
}

// Stats reports every leg's counters.
func (w *Worker) Stats() []LegStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]LegStats, 0, len(w.legs))
	for _, l := range w.legs {
		out = append(out, l.stats())
	}
	return out
}

// Close stops every leg and forgets the worker; it is safe to call twice.
func (w *Worker) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	legs := w.legs
	w.legs = map[string]*Leg{}
	w.mu.Unlock()
	for _, l := range legs {
		l.close()
	}
	w.s.mu.Lock()
	delete(w.s.workers, w)
	w.s.mu.Unlock()
	metrics.MediaWorkers.Dec()
}

func (w *Worker) emit(e Event) {
	if w.onEvent != nil {
		e.CallID = w.callID
		w.onEvent(e)
	}
}

func (w *Worker) checkTimeout(now time.Time) {
	if w.timedOut.Load() {
		return
	}
	if now.Sub(time.Unix(0, w.lastRx.Load())) >= w.s.cfg.RTPTimeout && w.timedOut.CompareAndSwap(false, true) {
		w.emit(Event{Kind: EventRTPTimeout})
	}
}

func (w *Worker) flushMetrics() {
	w.mu.Lock()
	legs := make([]*Leg, 0, len(w.legs))
	for _, l := range w.legs {
		legs = append(legs, l)
	}
	w.mu.Unlock()
	for _, l := range legs {
		l.flushMetrics()
	}
}
