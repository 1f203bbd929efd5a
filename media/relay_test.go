package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func newService(t *testing.T, base int) *Service {
	t.Helper()
	s, err := NewService(Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: base, PortMax: base + 20}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// endpoint is a fake phone: a socket that counts RTP and remembers payloads.
type endpoint struct {
	conn *net.UDPConn
	got  atomic.Int64
	pt   atomic.Int32
	ssrc atomic.Uint32
}

func newEndpoint(t *testing.T) *endpoint {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	e := &endpoint{conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if p.Unmarshal(buf[:n]) == nil {
				e.got.Add(1)
				e.pt.Store(int32(p.PayloadType))
				e.ssrc.Store(p.SSRC)
			}
		}
	}()
	return e
}

func (e *endpoint) sdp(pts string) []byte {
	port := e.conn.LocalAddr().(*net.UDPAddr).Port
	return []byte(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:96 telephone-event/8000\r\n", port, pts))
}

func (e *endpoint) send(t *testing.T, to int, n int, pt uint8) {
	t.Helper()
	for i := 0; i < n; i++ {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 7}, Payload: make([]byte, 160)}
		b, _ := p.Marshal()
		if _, err := e.conn.WriteToUDP(b, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: to}); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// A caller offers, a callee answers, the worker bridges them: packets flow
// both ways with each leg's own SSRC; a third source is dropped after
// latching; on hold the held party hears the tone.
func TestBridgeLatchAndHold(t *testing.T) {
	s := newService(t, 35000)
	w := s.NewWorker("c1", nil)
	defer w.Close()
	a, b, stranger := newEndpoint(t), newEndpoint(t), newEndpoint(t)
	la, err := w.AddLeg("a")
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := w.AddLeg("b")
	if err := la.AcceptOffer(a.sdp("0 8 101"), false); err != nil {
		t.Fatal(err)
	}
	lb.Offer(la.Codecs(), false)
	if err := lb.AcceptAnswer(b.sdp("0 96")); err != nil {
		t.Fatal(err)
	}
	la.Answer(lb.Codecs())
	w.Bridge("a", "b")

	a.send(t, la.LocalPort(), 20, 0)
	b.send(t, lb.LocalPort(), 20, 0)
	waitFor(t, "both ways", func() bool { return a.got.Load() == 20 && b.got.Load() == 20 })
	if b.ssrc.Load() == 7 || a.ssrc.Load() == 7 {
		t.Fatal("SSRC must be rewritten per leg")
	}
	// telephone-event 101 on a's leg is 96 on b's.
	a.send(t, la.LocalPort(), 1, 101)
	waitFor(t, "DTMF mapped", func() bool { return b.got.Load() == 21 })
	if b.pt.Load() != 96 {
		t.Fatalf("telephone-event PT: want 96, got %d", b.pt.Load())
	}
	stranger.send(t, la.LocalPort(), 5, 0)
	time.Sleep(100 * time.Millisecond)
	if b.got.Load() != 21 {
		t.Fatal("packets from an unexpected source after latching must be dropped")
	}
	w.Route("b", ToneSource())
	w.Route("a", Silence())
	before := b.got.Load()
	waitFor(t, "hold tone", func() bool { return b.got.Load() > before+10 })
	if b.pt.Load() != 0 {
		t.Fatalf("tone must be PCMU, got PT %d", b.pt.Load())
	}
}

func TestOfferRefusals(t *testing.T) {
	s := newService(t, 35100)
	w := s.NewWorker("c2", nil)
	defer w.Close()
	l, _ := w.AddLeg("a")
	e := newEndpoint(t)
	if err := l.AcceptOffer(e.sdp("101"), false); err == nil {
		t.Fatal("telephone-event alone is not a usable codec")
	}
	if err := l.AcceptOffer(e.sdp("0"), true); !errors.Is(err, ErrSRTPRequired) {
		t.Fatalf("plain offer with SRTP required: %v", err)
	}
}

func TestPortsExhaustAndReturn(t *testing.T) {
	s := newService(t, 35200) // 35200..35220: 10 even ports
	w := s.NewWorker("c3", nil)
	var n int
	for ; n < 20; n++ {
		if _, err := w.AddLeg(fmt.Sprint(n)); err != nil {
			if !errors.Is(err, ErrNoPorts) {
				t.Fatal(err)
			}
			break
		}
	}
	if n == 0 || n > 10 {
		t.Fatalf("allocated %d legs from 10 ports", n)
	}
	w.Close()
	w2 := s.NewWorker("c4", nil)
	defer w2.Close()
	if _, err := w2.AddLeg("x"); err != nil {
		t.Fatalf("ports not returned: %v", err)
	}
}

func TestRTPTimeout(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	s, _ := NewService(Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 35300, PortMax: 35310, RTPTimeout: 30 * time.Second,
		Now: func() time.Time { return time.Unix(0, now.Load()) }, CheckEvery: time.Hour}, slog.New(slog.DiscardHandler))
	defer s.Close()
	var fired atomic.Int32
	w := s.NewWorker("c5", func(e Event) {
		if e.Kind == EventRTPTimeout {
			fired.Add(1)
		}
	})
	defer w.Close()
	now.Add(int64(29 * time.Second))
	s.Check()
	if fired.Load() != 0 {
		t.Fatal("fired before the timeout")
	}
	now.Add(int64(time.Second))
	s.Check()
	s.Check()
	if fired.Load() != 1 {
		t.Fatalf("want one timeout event, got %d", fired.Load())
	}
}

// A pair goes back to the pool bound: what its old peer sends while it rests
// must not reach or latch the next call on it; closing the service unbinds
// every pair at rest. (Loopback queues a datagram before sendto returns, so
// no sleep is needed for the packets to be waiting.)
func TestReusedPairDropsLatePackets(t *testing.T) {
	s, err := NewService(Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 35400, PortMax: 35401}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	old, next := newEndpoint(t), newEndpoint(t)

	w1 := s.NewWorker("c1", nil)
	l1, err := w1.AddLeg("a")
	if err != nil {
		t.Fatal(err)
	}
	port := l1.LocalPort()
	if err := l1.AcceptOffer(old.sdp("0"), false); err != nil {
		t.Fatal(err)
	}
	old.send(t, port, 3, 0)
	waitFor(t, "the first call's packets", func() bool { return w1.Stats()[0].PacketsIn == 3 })
	w1.Close()

	old.send(t, port, 5, 0) // lands on the resting pair

	w2 := s.NewWorker("c2", nil)
	l2, err := w2.AddLeg("a")
	if err != nil {
		t.Fatal(err)
	}
	if l2.LocalPort() != port {
		t.Fatalf("one pair in the range, but the next leg got port %d, not %d", l2.LocalPort(), port)
	}
	if err := l2.AcceptOffer(next.sdp("0"), false); err != nil {
		t.Fatal(err)
	}
	next.send(t, port, 4, 0)
	waitFor(t, "the second call's packets", func() bool { return w2.Stats()[0].PacketsIn >= 4 })
	st := w2.Stats()[0]
	if st.PacketsIn != 4 || st.Latched.Port() != uint16(next.conn.LocalAddr().(*net.UDPAddr).Port) {
		t.Fatalf("second call: %d packets in, latched to %v; want 4 from the new peer", st.PacketsIn, st.Latched)
	}
	w2.Close()

	s.Close()
	for _, p := range []int{port, port + 1} {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: p})
		if err != nil {
			t.Fatalf("port %d still bound after the service closed: %v", p, err)
		}
		c.Close()
	}
}
