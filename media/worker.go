package media

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Worker is the media of one call on this node: its legs and who hears whom.
type Worker struct {
	s       *Service
	callID  string
	onEvent func(Event)
	created int64 // unix nano, by Config.Now: the RTP timeout counts from here

	timeoutMu  sync.Mutex
	timedOutAt int64 // the last activity an EventRTPTimeout was reported for

	mu     sync.Mutex
	legs   map[string]*Leg
	routes map[string]Source // dst leg -> what it hears; kept while either leg is away
	closed bool
}

func newWorker(s *Service, callID string, onEvent func(Event)) *Worker {
	return &Worker{s: s, callID: callID, onEvent: onEvent, created: s.cfg.Now().UnixNano(),
		legs: map[string]*Leg{}, routes: map[string]Source{}}
}

type sourceKind uint8

const (
	srcSilence sourceKind = iota
	srcLeg
	srcTone
)

// Source is what a leg hears: another leg, the hold tone, or nothing.
type Source struct {
	kind sourceKind
	leg  string
}

// LegSource: the destination hears this leg.
func LegSource(id string) Source { return Source{kind: srcLeg, leg: id} }

// ToneSource: the destination hears the hold tone.
func ToneSource() Source { return Source{kind: srcTone} }

// Silence: the destination hears nothing.
func Silence() Source { return Source{} }

// AddLeg allocates a port pair and starts the leg's reader. Adding an
// existing id returns that leg.
func (w *Worker) AddLeg(id string) (*Leg, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if l := w.legs[id]; l != nil {
		return l, nil
	}
	conn, rtcp, port, err := w.s.bind()
	if err != nil {
		return nil, err
	}
	l, err := newLeg(w, id, conn, rtcp, port)
	if err != nil {
		conn.Close()
		rtcp.Close()
		w.s.release(port)
		return nil, err
	}
	w.legs[id] = l
	go l.read()
	// Routes set before this leg existed take effect now.
	for dst, src := range w.routes {
		if dst == id || (src.kind == srcLeg && src.leg == id) {
			w.apply(dst)
		}
	}
	return l, nil
}

// Leg returns a leg by id, or nil.
func (w *Worker) Leg(id string) *Leg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.legs[id]
}

// RemoveLeg stops a leg, frees its ports, and silences whoever heard it.
// Like Close, it waits for the leg's reader: not to be called from onEvent.
func (w *Worker) RemoveLeg(id string) {
	w.mu.Lock()
	l := w.legs[id]
	delete(w.legs, id)
	delete(w.routes, id)
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
	if w.closed {
		return
	}
	w.routes[dst] = src
	w.apply(dst)
}

// Bridge connects two legs both ways.
func (w *Worker) Bridge(a, b string) {
	w.Route(a, LegSource(b))
	w.Route(b, LegSource(a))
}

// apply makes the packet path match routes[dst]. Under mu.
func (w *Worker) apply(dst string) {
	d := w.legs[dst]
	if d == nil {
		return
	}
	src := w.routes[dst]
	for _, o := range w.legs {
		o.unhear(d)
	}
	w.s.setTone(d, src.kind == srcTone)
	if s := w.legs[src.leg]; src.kind == srcLeg && s != nil && s != d {
		s.hear(d)
	}
}

// Stats reports every leg's counters, ordered by leg id.
func (w *Worker) Stats() []LegStats {
	w.mu.Lock()
	out := make([]LegStats, 0, len(w.legs))
	for _, l := range w.legs {
		out = append(out, l.stats())
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b LegStats) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Close stops every leg, frees its ports and forgets the worker; it is safe
// to call twice. It waits for the legs' readers, so it must not be called
// from onEvent.
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
	w.s.forget(w)
}

func (w *Worker) emit(e Event) {
	if w.onEvent != nil {
		e.CallID = w.callID
		w.onEvent(e)
	}
}

// housekeep flushes the legs' counters to metrics and reports an RTP
// timeout when no leg has received anything for Config.RTPTimeout.
func (w *Worker) housekeep(now time.Time) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	legs := make([]*Leg, 0, len(w.legs))
	for _, l := range w.legs {
		legs = append(legs, l)
	}
	w.mu.Unlock()
	last := w.created
	for _, l := range legs {
		l.flushMetrics()
		last = max(last, l.lastRx.Load())
	}
	w.timeoutMu.Lock()
	fire := now.UnixNano()-last >= int64(w.s.cfg.RTPTimeout) && w.timedOutAt != last
	if fire {
		w.timedOutAt = last
	}
	w.timeoutMu.Unlock()
	if fire {
		w.s.log.Info("RTP timeout", "call", w.callID, "silent_for", now.Sub(time.Unix(0, last)).Round(time.Second))
		w.emit(Event{Kind: EventRTPTimeout})
	}
}
