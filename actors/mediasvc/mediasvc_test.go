package mediasvc

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/pion/rtp"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/media/sdp"
	pb "github.com/switchboard/switchboard/proto"
)

// phone is a plain-RTP endpoint on 127.0.0.1 that keeps what it receives.
type phone struct {
	t    *testing.T
	conn *net.UDPConn
	seq  uint16
	port int // the relay leg's port it sends to

	mu  sync.Mutex
	got []rtp.Packet
}

func newPhone(t *testing.T) *phone {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, conn: c}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var r rtp.Packet
			if r.Unmarshal(buf[:n]) == nil {
				r.Payload = slices.Clone(r.Payload)
				p.mu.Lock()
				p.got = append(p.got, r)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

func (p *phone) sdp() []byte {
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", p.conn.LocalAddr().(*net.UDPAddr).Port)
}

func (p *phone) send(payload []byte) {
	p.seq++
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: p.seq, Timestamp: uint32(p.seq) * 160, SSRC: 99}, Payload: payload}).Marshal()
	if _, err := p.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.port))); err != nil {
		p.t.Fatal(err)
	}
}

func (p *phone) packets() []rtp.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func unulaw(u byte) int { return int(media.DecodeULaw(u)) }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func ok(t *testing.T, s *Service, ops ...*pb.MediaOp) *pb.MediaResponse {
	t.Helper()
	r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: ops})
	if len(r.Results) != len(ops) {
		t.Fatalf("%d results for %d ops: %+v", len(r.Results), len(ops), r.Results)
	}
	for i, res := range r.Results {
		if res.Code != 0 {
			t.Fatalf("op %d (%v): %d %s", i, ops[i].Kind, res.Code, res.Error)
		}
	}
	return r
}

// MIX and CHIME from the proto reach the relay: a three-way conference where
// a hears b and c, then a chime on a leg that hears nothing.
func TestMixAndChime(t *testing.T) {
	m, err := media.NewService(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 38800, PortMax: 38819}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := New(m, func() *cluster.Cluster { return nil }, "call", slog.New(slog.DiscardHandler))

	if r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: []*pb.MediaOp{{Kind: pb.MediaOp_MIX, Leg: "a", Legs: []string{"b"}}}}); r.Results[0].Code != 481 {
		t.Fatalf("MIX without a worker: %+v", r.Results[0])
	}
	phones := map[string]*phone{"a": newPhone(t), "b": newPhone(t), "c": newPhone(t)}
	for _, id := range []string{"a", "b", "c"} {
		p := phones[id]
		r := ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: id, Sdp: p.sdp()}, &pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: id})
		ans, err := sdp.Parse(r.Results[1].Sdp)
		if err != nil {
			t.Fatal(err)
		}
		p.port = ans.Audio().Port
	}
	r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: []*pb.MediaOp{{Kind: pb.MediaOp_MIX, Legs: []string{"b"}}, {Kind: pb.MediaOp_SILENCE, Leg: "a"}}})
	if len(r.Results) != 1 || r.Results[0].Code != 500 {
		t.Fatalf("MIX without a leg must fail and stop the request: %+v", r.Results)
	}
	ok(t, s,
		&pb.MediaOp{Kind: pb.MediaOp_MIX, Leg: "a", Legs: []string{"b", "c"}},
		&pb.MediaOp{Kind: pb.MediaOp_MIX, Leg: "b", Legs: []string{"a", "c"}},
		&pb.MediaOp{Kind: pb.MediaOp_MIX, Leg: "c", Legs: []string{"a", "b"}})

	b, c := make([]byte, 160), make([]byte, 160)
	for i := range b {
		b[i], c[i] = media.EncodeULaw(2000), media.EncodeULaw(-500)
	}
	want := unulaw(b[0]) + unulaw(c[0])
	tick := time.NewTicker(20 * time.Millisecond)
	for range 20 {
		<-tick.C
		phones["b"].send(b)
		phones["c"].send(c)
	}
	tick.Stop()
	eventually(t, "a hears the mix", func() bool {
		n := 0
		for _, p := range phones["a"].packets() {
			if p.PayloadType == 0 && len(p.Payload) == 160 && abs(unulaw(p.Payload[0])-want) <= want/16 {
				n++
			}
		}
		return n >= 10
	})

	// c back to nothing, then a chime on it: about 300 ms, then nothing.
	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_SILENCE, Leg: "c"}, &pb.MediaOp{Kind: pb.MediaOp_BRIDGE, Leg: "a", Peer: "b"})
	time.Sleep(60 * time.Millisecond)
	before := len(phones["c"].packets())
	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_CHIME, Legs: []string{"c", "gone"}})
	eventually(t, "chime", func() bool { return len(phones["c"].packets()) >= before+15 })
	time.Sleep(100 * time.Millisecond)
	if n := len(phones["c"].packets()) - before; n != 15 {
		t.Fatalf("chime of %d frames, want 15", n)
	}
	if r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: []*pb.MediaOp{{Kind: pb.MediaOp_CHIME, Tone: "fanfare", Legs: []string{"c"}}}}); r.Results[0].Code != 500 || !strings.Contains(r.Results[0].Error, `"fanfare"`) {
		t.Fatalf("CHIME of an unknown tone: %+v", r.Results[0])
	}
	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_RELEASE})
	if r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: []*pb.MediaOp{{Kind: pb.MediaOp_CHIME, Legs: []string{"c"}}}}); r.Results[0].Code != 481 {
		t.Fatalf("CHIME after RELEASE: %+v", r.Results[0])
	}
}

// An OFFER with no peer (the first leg of a click-to-call) carries the
// relay's own codecs: PCMU, PCMA and telephone-event; one naming a peer
// that does not exist is refused.
func TestOfferWithoutPeer(t *testing.T) {
	m, err := media.NewService(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 38820, PortMax: 38829}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := New(m, func() *cluster.Cluster { return nil }, "call", slog.New(slog.DiscardHandler))
	r := ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_OFFER, Leg: "a"})
	offer, err := sdp.Parse(r.Results[0].Sdp)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range offer.Audio().Formats {
		names = append(names, f.Name)
	}
	if fmt.Sprint(names) != "[PCMU PCMA telephone-event]" {
		t.Fatalf("offer without a peer carries %v", names)
	}
	if r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: []*pb.MediaOp{{Kind: pb.MediaOp_OFFER, Leg: "b", Peer: "nobody"}}}); r.Results[0].Code != 500 {
		t.Fatalf("offer with an unknown peer: %+v", r.Results[0])
	}
	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_RELEASE})
}

// PROMPT from the proto reaches the relay: the leg hears the greeting's
// first note (784 Hz) from the service clock; an unknown name or no leg fails
// the op and stops the request; a BRIDGE replaces the prompt.
func TestPrompt(t *testing.T) {
	m, err := media.NewService(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 38880, PortMax: 38899}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := New(m, func() *cluster.Cluster { return nil }, "call", slog.New(slog.DiscardHandler))
	phones := map[string]*phone{"a": newPhone(t), "b": newPhone(t)}
	for id, p := range phones {
		r := ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: id, Sdp: p.sdp()}, &pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: id})
		ans, err := sdp.Parse(r.Results[1].Sdp)
		if err != nil {
			t.Fatal(err)
		}
		p.port = ans.Audio().Port
	}
	for _, bad := range []*pb.MediaOp{{Kind: pb.MediaOp_PROMPT, Leg: "a", Tone: "fanfare"}, {Kind: pb.MediaOp_PROMPT, Tone: "queue"}} {
		r := s.Handle(&pb.MediaRequest{CallId: "call-1", Ops: []*pb.MediaOp{bad, {Kind: pb.MediaOp_SILENCE, Leg: "a"}}})
		if len(r.Results) != 1 || r.Results[0].Code != 500 || bad.Tone == "fanfare" && !strings.Contains(r.Results[0].Error, `"fanfare"`) {
			t.Fatalf("PROMPT %q to leg %q must fail and stop the request: %+v", bad.Tone, bad.Leg, r.Results)
		}
	}

	a := phones["a"]
	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_PROMPT, Leg: "a", Tone: "queue"})
	eventually(t, "the greeting", func() bool { return len(a.packets()) >= 10 })
	for i, p := range a.packets()[1:10] { // the first frame fades in
		f := make([]int16, len(p.Payload))
		for j, b := range p.Payload {
			f[j] = media.DecodeULaw(b)
		}
		if l := level(f, 784); l < 2500 {
			t.Fatalf("frame %d: 784 Hz at %.0f", i+1, l)
		}
	}

	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_BRIDGE, Leg: "a", Peer: "b"})
	time.Sleep(40 * time.Millisecond) // a prompt frame may still be on its way
	n := len(a.packets())
	time.Sleep(100 * time.Millisecond)
	if extra := len(a.packets()) - n; extra != 0 {
		t.Fatalf("%d prompt frames after the bridge", extra)
	}
	phones["b"].send(make([]byte, 160))
	eventually(t, "b through the bridge", func() bool { return len(a.packets()) == n+1 })
	ok(t, s, &pb.MediaOp{Kind: pb.MediaOp_RELEASE})
}

// The worker events the call grain is told of, by the proto's names.
func TestEventMessage(t *testing.T) {
	for _, c := range []struct {
		ev   media.Event
		want *pb.MediaEvent
	}{
		{media.Event{CallID: "c", LegID: "a", Kind: media.EventPromptDone}, &pb.MediaEvent{CallId: "c", LegId: "a", Kind: "prompt_done"}},
		{media.Event{CallID: "c", LegID: "a", Kind: media.EventDTMF, Digit: '#'}, &pb.MediaEvent{CallId: "c", LegId: "a", Kind: "dtmf", Digit: "#"}},
		{media.Event{CallID: "c", Kind: media.EventRTPTimeout}, &pb.MediaEvent{CallId: "c", Kind: "rtp_timeout"}},
		{media.Event{CallID: "c", LegID: "a", Kind: media.EventLatched}, nil},
	} {
		got := eventMessage(c.ev)
		if !proto.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.ev.Kind, got, c.want)
		}
	}
}
