// Package media is the node's RTP/SRTP relay: one worker per call, a UDP
// socket per leg, packets forwarded between legs by the legs' own reader
// goroutines. No packet passes through an actor mailbox; call grains steer a
// worker with Route and the offer/answer methods. RTCP is not relayed in this
// version: the odd port next to each RTP port is left unbound.
package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api/metrics"
)

// Errors a caller maps to SIP answers.
var (
	ErrNoCodec      = errors.New("media: no usable audio codec")
	ErrSRTPRequired = errors.New("media: SRTP required but not offered")
	ErrNoPorts      = errors.New("media: no free RTP ports")
)

// Config of the relay.
type Config struct {
	IP               netip.Addr
	PortMin, PortMax int
	RTPTimeout       time.Duration    // no packet on any leg this long: EventRTPTimeout
	Now              func() time.Time // the clock the timeout is judged by (tests inject one)
	CheckEvery       time.Duration    // how often timeouts and metrics are looked at (default 1 s)
}

// EventKind says what a worker reports.
type EventKind int

const (
	EventRTPTimeout EventKind = iota
	EventDTMF
	EventLatched
)

// Event is a worker's report to its call grain.
type Event struct {
	CallID, LegID string
	Kind          EventKind
	Digit         byte
}

// Service owns the port pool, the workers and the shared 20 ms tone clock.
type Service struct {
	cfg  Config
	log  *slog.Logger
	stop chan struct{}
	done sync.WaitGroup

	mu      sync.Mutex
	ports   []int // free even ports, a queue: taken from the front, returned at the back
	head    int
	workers map[*Worker]struct{}
	tone    map[*Leg]struct{} // legs that hear the hold tone
}

// NewService starts the relay's housekeeping (tone clock, timeout checks).
func NewService(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.PortMin%2 == 1 {
		cfg.PortMin++
	}
	if cfg.PortMax-cfg.PortMin < 2 {
		return nil, fmt.Errorf("media: port range %d-%d too small", cfg.PortMin, cfg.PortMax)
	}
	if cfg.RTPTimeout <= 0 {
		cfg.RTPTimeout = 60 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = time.Second
	}
	s := &Service{cfg: cfg, log: log, stop: make(chan struct{}), workers: map[*Worker]struct{}{}, tone: map[*Leg]struct{}{}}
	for p := cfg.PortMin; p+1 <= cfg.PortMax; p += 2 {
		s.ports = append(s.ports, p)
	}
	s.done.Add(2)
	go s.toneClock()
	go s.housekeeping()
	return s, nil
}

// Close stops every worker and the service's goroutines.
func (s *Service) Close() error {
	s.mu.Lock()
	ws := make([]*Worker, 0, len(s.workers))
	for w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
	return nil
}

// Workers is how many calls the relay anchors.
func (s *Service) Workers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.workers)
}

// NewWorker creates the media worker of a call.
func (s *Service) NewWorker(callID string, onEvent func(Event)) *Worker {
	w := &Worker{s: s, callID: callID, onEvent: onEvent, legs: map[string]*Leg{}}
	w.lastRx.Store(s.cfg.Now().UnixNano())
	s.mu.Lock()
	s.workers[w] = struct{}{}
	s.mu.Unlock()
	metrics.MediaWorkers.Inc()
	return w
}

// bind takes a free even port and binds it.
func (s *Service) bind() (*net.UDPConn, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.head < len(s.ports) {
		p := s.ports[s.head]
		s.head++
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: s.cfg.IP.AsSlice(), Port: p})
		if err != nil {
			continue // taken by someone else: skip it for good
		}
		_ = c.SetReadBuffer(1 << 20)
		_ = c.SetWriteBuffer(1 << 20)
		return c, p, nil
	}
	return nil, 0, ErrNoPorts
}

func (s *Service) release(port int) {
	s.mu.Lock()
	// Reused last: a late packet of the old call should not reach a new one.
	if s.head > len(s.ports)/2 {
		s.ports = append(s.ports[:0], s.ports[s.head:]...)
		s.head = 0
	}
	s.ports = append(s.ports, port)
	s.mu.Unlock()
}

func (s *Service) setTone(l *Leg, on bool) {
	s.mu.Lock()
	if on {
		s.tone[l] = struct{}{}
	} else {
		delete(s.tone, l)
	}
	s.mu.Unlock()
}

// toneClock sends one 20 ms tone frame to every leg on hold each tick.
func (s *Service) toneClock() {
	defer s.done.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var frame int
	var dsts []*Leg
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		dsts = dsts[:0]
		for l := range s.tone {
			dsts = append(dsts, l)
		}
		s.mu.Unlock()
		for _, l := range dsts {
			l.sendTone(frame)
		}
		frame = (frame + 1) % toneFrames
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

// Check runs one round of timeout judgement and metric flushing (the
// housekeeping loop calls it; tests call it after moving their clock).
func (s *Service) Check() {
	now := s.cfg.Now()
	s.mu.Lock()
	ws := make([]*Worker, 0, len(s.workers))
	for w := range s.workers {
		ws = append(ws, w)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.flushMetrics()
		w.checkTimeout(now)
	}
}
