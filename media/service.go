// Package media is the node's RTP/SRTP relay: one worker per call, a UDP
// socket per leg, packets forwarded between legs by the legs' own reader
// goroutines. No packet passes through an actor mailbox; call grains steer a
// worker with Route (Bridge, Mix, Chime) and the offer/answer methods of its
// legs. Legs in a mix or hearing a chime are served by the worker's mix
// clock instead (mix.go), which runs only while there is something to mix;
// legs on hold or hearing a prompt by the service's one 20 ms clock
// (prompt.go).
//
// RTCP is not relayed in this version: each leg's odd port (RTP port + 1) is
// bound so no one else takes it and peers' RTCP gets no ICMP errors, but it
// is never read; RTCP multiplexed onto the RTP port is dropped.
package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/cluster/metrics"
)

// Errors a caller maps to SIP answers.
var (
	ErrNoCodec      = errors.New("media: no usable audio codec")
	ErrSRTPRequired = errors.New("media: SRTP required but not offered")
	ErrNoCrypto     = errors.New("media: no supported SRTP crypto (" + suite + ")")
	ErrNoPorts      = errors.New("media: no free RTP ports")
	ErrClosed       = errors.New("media: worker closed")
)

// Config of the relay.
type Config struct {
	IP               netip.Addr // written into SDP and bound by every leg socket
	PortMin, PortMax int        // RTP on even ports, the odd one above reserved for RTCP
	RTPTimeout       time.Duration
	// CheckEvery is how often RTP timeouts are judged and per-leg counters
	// flushed to the node's metrics (default 1 s).
	CheckEvery time.Duration
	// Now is the clock timeouts and jitter are measured with (default time.Now).
	Now func() time.Time
}

// EventKind says what a worker reports.
type EventKind int

const (
	// EventRTPTimeout: no packet on any leg for Config.RTPTimeout. Reported
	// once per silence; it is armed again when packets flow again.
	EventRTPTimeout EventKind = iota + 1
	// EventDTMF: an RFC 4733 event ended (reported once per event).
	EventDTMF
	// EventLatched: a leg's first valid packet fixed where its media goes.
	EventLatched
	// EventPromptDone: a leg's MessagePrompt or VoicemailPrompt has played
	// (reported once).
	EventPromptDone
)

func (k EventKind) String() string {
	switch k {
	case EventRTPTimeout:
		return "rtp_timeout"
	case EventDTMF:
		return "dtmf"
	case EventLatched:
		return "latched"
	case EventPromptDone:
		return "prompt_done"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a worker's report to its call grain.
type Event struct {
	CallID, LegID string // LegID is empty for EventRTPTimeout
	Kind          EventKind
	Digit         byte // EventDTMF: '0'-'9', '*', '#', 'A'-'D'
}

// Service owns the port pool, the workers and the shared 20 ms clock that
// plays the hold tone and the prompts.
type Service struct {
	cfg  Config
	ip   string // cfg.IP, as written into SDP
	log  *slog.Logger
	stop chan struct{}
	done sync.WaitGroup

	mu         sync.Mutex
	ports      portPool
	fdWarned   time.Time // last "out of file descriptors" warning
	workers    map[*Worker]struct{}
	closed     bool
	clocked    map[*Leg]*promptPlay      // legs the clock plays to: a prompt, or the hold tone (nil)
	clockedSet atomic.Pointer[[]clocked] // a copy of clocked the clock reads without the lock
	frame      atomic.Uint64             // the clock's ticks so far

	manualMix   bool        // tests: workers start no mix clock, the test ticks them
	manualClock atomic.Bool // tests: the service clock does not tick, the test calls clockTick
}

// clocked is a leg the service clock plays to.
type clocked struct {
	leg    *Leg
	prompt *promptPlay // nil: the hold tone
}

// NewService starts the relay's housekeeping (the tone and prompt clock,
// timeout checks).
func NewService(cfg Config, log *slog.Logger) (*Service, error) {
	if !cfg.IP.IsValid() || cfg.IP.IsUnspecified() {
		return nil, fmt.Errorf("media: IP %v cannot be written into SDP", cfg.IP)
	}
	if cfg.PortMin%2 == 1 {
		cfg.PortMin++
	}
	if cfg.PortMin <= 0 || cfg.PortMax > 65535 || cfg.PortMin+1 > cfg.PortMax {
		return nil, fmt.Errorf("media: port range %d-%d holds no even/odd pair", cfg.PortMin, cfg.PortMax)
	}
	if cfg.RTPTimeout <= 0 {
		cfg.RTPTimeout = 60 * time.Second
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, ip: cfg.IP.String(), log: log.With("component", "media"), stop: make(chan struct{}),
		workers: map[*Worker]struct{}{}, clocked: map[*Leg]*promptPlay{}}
	s.ports.init(cfg.PortMin, cfg.PortMax)
	s.clockedSet.Store(&[]clocked{})
	s.done.Add(2)
	go s.clock()
	go s.housekeeping()
	return s, nil
}

// Close stops every worker and the service's goroutines.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ws := make([]*Worker, 0, len(s.workers))
	for w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
	s.mu.Lock()
	s.ports.closeAll()
	s.mu.Unlock()
	close(s.stop)
	s.done.Wait()
	return nil
}

// Workers is how many calls the relay anchors.
func (s *Service) Workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.workers)
}

// NewWorker creates the media worker of a call. onEvent is called from the
// worker's goroutines: it must not block long nor call back into the worker.
func (s *Service) NewWorker(callID string, onEvent func(Event)) *Worker {
	w := newWorker(s, callID, onEvent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		w.closed = true
		return w
	}
	s.workers[w] = struct{}{}
	metrics.MediaWorkers.Inc()
	return w
}

func (s *Service) forget(w *Worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.workers[w]; ok {
		delete(s.workers, w)
		metrics.MediaWorkers.Dec()
	}
}

// bind takes a port pair for a new leg.
func (s *Service) bind() (sockets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.take()
}

// release returns a pair to the pool, bound, or closes it once the service
// is closed.
func (s *Service) release(p sockets) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		p.close()
		return
	}
	s.ports.rest(p, s.cfg.Now())
}

// setClock makes the clock play to the leg, or not: the prompt p, or the
// hold tone when p is nil.
func (s *Service) setClock(l *Leg, on bool, p *promptPlay) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, had := s.clocked[l]; had == on && cur == p {
		return
	}
	if on {
		s.clocked[l] = p
	} else {
		delete(s.clocked, l)
	}
	set := make([]clocked, 0, len(s.clocked))
	for l, p := range s.clocked {
		set = append(set, clocked{l, p})
	}
	s.clockedSet.Store(&set)
}

// clock sends one 20 ms frame to every leg on hold or hearing a prompt each
// tick: one goroutine and one timer for the whole node, however many calls
// are held or wait in a queue.
func (s *Service) clock() {
	defer s.done.Done()
	t := time.NewTicker(toneFrameDur)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if !s.manualClock.Load() {
			s.clockTick(s.cfg.Now().UnixNano())
		}
	}
}

// clockShard is how many legs one goroutine serves in a tick. A send costs
// a few microseconds, so a node with thousands of callers waiting or held
// spreads a tick over its cores to end it well within the 20 ms.
const clockShard = 256

// clockTick is one tick of the service clock.
func (s *Service) clockTick(now int64) {
	frame := s.frame.Add(1) - 1
	set := *s.clockedSet.Load()
	if len(set) <= clockShard {
		s.play(set, frame, now)
		return
	}
	var wg sync.WaitGroup
	for part := range slices.Chunk(set, clockShard) {
		wg.Go(func() { s.play(part, frame, now) })
	}
	wg.Wait()
}

// play sends the tick's frame to each leg of set.
func (s *Service) play(set []clocked, frame uint64, now int64) {
	for _, c := range set {
		if c.prompt == nil {
			c.leg.sendTone(frame, now)
			continue
		}
		if c.leg.playPrompt(c.prompt, frame, now) {
			// Not on the clock: whoever handles events may block a while,
			// and the clock serves every waiting caller on the node.
			go c.leg.w.emit(Event{LegID: c.leg.id, Kind: EventPromptDone})
		}
	}
}

// housekeeping judges RTP timeouts and flushes per-leg counters to metrics.
func (s *Service) housekeeping() {
	defer s.done.Done()
	t := time.NewTicker(s.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.Check()
	}
}

// Check runs one round of RTP timeout judgement and metric flushing now;
// the service does it every Config.CheckEvery on its own (tests with an
// injected clock call it after moving the clock).
func (s *Service) Check() {
	now := s.cfg.Now()
	s.mu.Lock()
	ws := make([]*Worker, 0, len(s.workers))
	for w := range s.workers {
		ws = append(ws, w)
	}
	s.ports.expire(now.Add(-restAtMost))
	s.mu.Unlock()
	for _, w := range ws {
		w.housekeep(now)
	}
}
