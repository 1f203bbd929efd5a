package rtpgen

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Leg is one party of a call through a relay that may mix: it sends from
// its side's socket to Relay, the relay's port facing it, and hears what
// the relay sends it from there.
type Leg struct {
	Side  int
	Relay netip.AddrPort
}

// Mesh drives legs on any number of sides, e.g. a caller, an agent and a
// supervisor per call. A relay that mixes sends each listener one frame of
// its own per 20 ms tick, carrying none of the senders' payload, so a
// receiver credits frames to the leg they came from (by source address)
// and counts them against the 50 frames per second a listener must hear,
// not against what was sent.
type Mesh struct {
	sides []*Side
	legs  []meshLeg
	out   []batch                  // the sender's, per side
	bySrc []map[netip.AddrPort]int // per side: a relay port to its leg

	mu       sync.Mutex // guards what the receivers write
	from, to time.Time  // the window frames are counted in (arrival times)
	stray    []int64    // per side: packets from no leg's relay port
	stopped  chan struct{}
}

// meshLeg: the sender owns dst..ssrc, the receiver (under Mesh.mu) the rest.
type meshLeg struct {
	Leg
	dst  *net.UDPAddr
	seq  uint16
	ts   uint32
	ssrc uint32
	rx   rxStats
}

// rxStats is what a leg heard in the window.
type rxStats struct {
	frames    int64   // packets
	untouched int64   // of them, carrying a sender's payload as it was sent
	jitter    float64 // RFC 3550 interarrival jitter on the relay's timestamps, in samples
	transit   uint32  // the last packet's arrival minus its timestamp, in samples
	seen      bool
}

// frameAt credits a packet arriving at sinceStart (from the run's start)
// with the relay's RTP timestamp ts: RFC 3550's jitter, computed from the
// relay's own timestamps since a mixed frame carries no send time.
func (s *rxStats) frameAt(sinceStart time.Duration, ts uint32, untouched bool) {
	s.frames++
	if untouched {
		s.untouched++
	}
	transit := uint32(sinceStart/(time.Second/8000)) - ts
	if s.seen {
		d := float64(int32(transit - s.transit))
		if d < 0 {
			d = -d
		}
		s.jitter += (d - s.jitter) / 16
	}
	s.transit, s.seen = transit, true
}

// NewMesh prepares legs across sides; a leg's Side indexes sides.
func NewMesh(sides []*Side, legs []Leg) *Mesh {
	m := &Mesh{sides: sides, legs: make([]meshLeg, len(legs)), out: make([]batch, len(sides)),
		bySrc: make([]map[netip.AddrPort]int, len(sides)), stray: make([]int64, len(sides))}
	for i, s := range sides {
		m.out[i].side = s
		m.bySrc[i] = map[netip.AddrPort]int{}
	}
	for i, l := range legs {
		m.legs[i] = meshLeg{Leg: l, dst: net.UDPAddrFromAddrPort(l.Relay), ssrc: uint32(i)}
		m.bySrc[l.Side][unmapped(l.Relay)] = i
	}
	return m
}

// SideResult is what the legs of one side heard.
type SideResult struct {
	Legs int
	Sent int64
	// Expected is 50 frames per second per leg over the window; Received
	// what arrived in it. LossPct is the shortfall (negative when the
	// window's edges caught a frame more than a tick's worth).
	Expected, Received int64
	LossPct            float64
	// Untouched frames carried a sender's payload as it was sent: a relay
	// forwards what a listener hears from one other leg, and a mix is
	// untouched only in a tick where one voice alone had a frame.
	Untouched int64
	JitterMs  float64 // mean over legs
	JitterMax float64 // worst leg, ms
	Stray     int64   // packets from no leg's relay port
}

// MeshResult is a run: each side's result, in the order of the sides.
type MeshResult struct {
	Window    time.Duration
	Sides     []SideResult
	SendCalls int64
}

// Run sends 20 ms frames on every leg for d, then waits drain for late
// packets. Frames are counted as they arrive from warm after the start
// until 100 ms before the senders stop, in a window that is a whole number
// of frames long: a stream of one frame per 20 ms puts exactly that many
// frames in it, whatever its phase, so the count needs no edge correction.
func (m *Mesh) Run(ctx context.Context, d, warm, drain time.Duration, progress func(sent, received int64)) (MeshResult, error) {
	w := (d - warm - 100*time.Millisecond).Truncate(frame)
	if w <= 0 {
		return MeshResult{}, errors.New("rtpgen: the run is too short for its warm-up")
	}
	start := time.Now()
	m.from, m.to = start.Add(warm), start.Add(warm+w)
	m.stopped = make(chan struct{})
	var wg sync.WaitGroup
	recvErr := make([]error, len(m.sides))
	for side := range m.sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recvErr[side] = m.receive(side, start)
		}()
	}
	sendErr := m.send(ctx, d, progress)
	time.Sleep(drain)
	close(m.stopped)
	for _, s := range m.sides {
		_ = s.conn.SetReadDeadline(time.Now()) // unblock the receivers
	}
	wg.Wait()
	if err := errors.Join(append(recvErr, sendErr)...); err != nil {
		return MeshResult{}, err
	}
	return m.result(w), nil
}

func (m *Mesh) send(ctx context.Context, d time.Duration, progress func(sent, received int64)) error {
	bufs := newFrames(len(m.legs))
	return pace(ctx, d, func(now time.Time) error {
		for i := range m.legs {
			l := &m.legs[i]
			l.seq++
			l.ts += payloadLen
			stamp(&bufs[i], l.seq, l.ts, l.ssrc, i, now)
			if err := m.out[l.Side].add(bufs[i][:], l.dst); err != nil {
				return err
			}
		}
		var err error
		for i := range m.out {
			err = errors.Join(err, m.out[i].flush())
		}
		return err
	}, func() {
		if progress != nil {
			progress(m.sent(), m.received())
		}
	})
}

func (m *Mesh) sent() int64 {
	var n int64
	for i := range m.out {
		n += m.out[i].sent
	}
	return n
}

func (m *Mesh) received() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for i := range m.legs {
		n += m.legs[i].rx.frames
	}
	return n
}

// receive reads side's socket until Run stops it, crediting each RTP
// packet that arrives in the window to the leg whose relay port sent it.
func (m *Mesh) receive(side int, start time.Time) error {
	ms := readBuffers()
	for {
		n, err := m.sides[side].pc.ReadBatch(ms, 0)
		if err != nil {
			select {
			case <-m.stopped:
				return nil
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return err
		}
		now := time.Now()
		if now.Before(m.from) || !now.Before(m.to) {
			continue
		}
		m.mu.Lock()
		for _, msg := range ms[:n] {
			b := msg.Buffers[0][:msg.N]
			ua, ok := msg.Addr.(*net.UDPAddr)
			i, known := m.bySrc[side][unmapped(addrPort(ua, ok))]
			if !known || len(b) < 12 || b[0]>>6 != 2 {
				m.stray[side]++
				continue
			}
			_, fwd := ours(b)
			m.legs[i].rx.frameAt(now.Sub(start), binary.BigEndian.Uint32(b[4:]), fwd)
		}
		m.mu.Unlock()
	}
}

func addrPort(ua *net.UDPAddr, ok bool) netip.AddrPort {
	if !ok || ua == nil {
		return netip.AddrPort{}
	}
	return ua.AddrPort()
}

// unmapped is a as IPv4 when it is an IPv4-mapped IPv6 address, as
// recvmmsg reports a source on a dual-stack socket.
func unmapped(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func (m *Mesh) result(w time.Duration) MeshResult {
	r := MeshResult{Window: w, Sides: make([]SideResult, len(m.sides))}
	for i := range m.out {
		r.Sides[i].Sent = m.out[i].sent
		r.SendCalls += m.out[i].calls
	}
	perLeg := int64(w / frame)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.legs {
		l := &m.legs[i]
		s := &r.Sides[l.Side]
		s.Legs++
		s.Expected += perLeg
		s.Received += l.rx.frames
		s.Untouched += l.rx.untouched
		j := l.rx.jitter / 8 // samples to ms
		s.JitterMs += j
		s.JitterMax = max(s.JitterMax, j)
	}
	for i := range r.Sides {
		s := &r.Sides[i]
		s.Stray = m.stray[i]
		if s.Legs > 0 {
			s.JitterMs /= float64(s.Legs)
		}
		if s.Expected > 0 {
			s.LossPct = 100 * float64(s.Expected-s.Received) / float64(s.Expected)
		}
	}
	return r
}
