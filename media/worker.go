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

	mu      sync.Mutex
	legs    map[string]*Leg
	routes  map[string]Source // dst leg -> what it hears; kept while either leg is away
	chiming map[string]bool   // legs with a chime asked for or playing
	closed  bool
	mixer   mixer // the mixer clock's state; see mix.go
}

func newWorker(s *Service, callID string, onEvent func(Event)) *Worker {
	return &Worker{s: s, callID: callID, onEvent: onEvent, created: s.cfg.Now().UnixNano(),
		legs: map[string]*Leg{}, routes: map[string]Source{}, chiming: map[string]bool{}}
}

type sourceKind uint8

const (
	srcSilence sourceKind = iota
	srcLeg
	srcTone
	srcMix
	srcPrompt
)

// Source is what a leg hears: another leg, the hold tone, a mix of legs, a
// prompt, or nothing.
type Source struct {
	kind   sourceKind
	leg    string
	legs   []string    // srcMix
	prompt *promptPlay // srcPrompt
}

// LegSource: the destination hears this leg.
func LegSource(id string) Source { return Source{kind: srcLeg, leg: id} }

// ToneSource: the destination hears the hold tone.
func ToneSource() Source { return Source{kind: srcTone} }

// Silence: the destination hears nothing.
func Silence() Source { return Source{} }

// MixSource: the destination hears the sum of these legs, decoded from
// G.711, mixed with saturation and re-encoded to its own codec every 20 ms
// (see Worker.Mix). Duplicates are ignored; no legs is Silence.
func MixSource(legs ...string) Source {
	var ids []string
	for _, id := range legs {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return Silence()
	}
	return Source{kind: srcMix, legs: ids}
}

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
	sock, err := w.s.bind()
	if err != nil {
		return nil, err
	}
	l, err := newLeg(w, id, sock)
	if err != nil {
		w.s.release(sock)
		return nil, err
	}
	w.legs[id] = l
	go l.read()
	// Routes set before this leg existed take effect now.
	w.replan()
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
	delete(w.chiming, id)
	if l != nil {
		l.listeners.Store(noListeners)
		w.replan()
	}
	w.mu.Unlock()
	if l != nil {
		l.close()
	}
}

// Route sets what dst hears, replacing what it heard before (a bridge, the
// tone, a mix, a prompt). A route to or from a leg that does not exist yet
// is kept and takes effect when the leg is added.
func (w *Worker) Route(dst string, src Source) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if src.kind == srcPrompt {
		// Each route plays the prompt from its start, even one Source
		// routed to several legs.
		src.prompt = &promptPlay{program: src.prompt.program}
	}
	w.routes[dst] = src
	w.replan()
}

// Bridge connects two legs both ways.
func (w *Worker) Bridge(a, b string) {
	w.Route(a, LegSource(b))
	w.Route(b, LegSource(a))
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
	mixDone := w.stopMixer()
	w.mu.Unlock()
	if mixDone != nil {
		<-mixDone
	}
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
