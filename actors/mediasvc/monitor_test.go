package mediasvc

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/media"
	"github.com/switchboard/switchboard/media/sdp"
	pb "github.com/switchboard/switchboard/proto"
)

// talker is a phone on 127.0.0.1 that says one tone without a pause (a
// 20 ms packet per tick of its own clock, in its own G.711 law, SRTP when
// it has a key) and keeps every packet it hears.
type talker struct {
	t    *testing.T
	hz   float64
	pt   uint8 // 0 PCMU, 8 PCMA
	conn *net.UDPConn
	key  []byte // SDES key||salt, nil for plain RTP

	quit, done chan struct{} // talk's
	stopOnce   sync.Once

	mu     sync.Mutex
	relay  netip.AddrPort // the relay leg's RTP address, from its SDP
	tx, rx *srtp.Context
	seq    uint16
	heard  []rtp.Packet
	undecr int
}

const amp = 5000 // each talker's level, about -16 dBFS like the relay's tones

func newTalker(t *testing.T, hz float64, pt uint8, useSRTP bool) *talker {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &talker{t: t, hz: hz, pt: pt, conn: c}
	if useSRTP {
		p.key = make([]byte, 30)
		_, _ = rand.Read(p.key)
		if p.tx, err = srtp.CreateContext(p.key[:16], p.key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go p.receive(done)
	return p
}

func (p *talker) receive(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 2048)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		pkt := buf[:n]
		if p.key != nil {
			if p.rx == nil {
				p.undecr++
				p.mu.Unlock()
				continue
			}
			if pkt, err = p.rx.DecryptRTP(nil, pkt, nil); err != nil {
				p.undecr++
				p.mu.Unlock()
				continue
			}
		}
		var r rtp.Packet
		if r.Unmarshal(pkt) == nil {
			r.Payload = slices.Clone(r.Payload)
			p.heard = append(p.heard, r)
		}
		p.mu.Unlock()
	}
}

// sdp is the talker's offer or answer: its law and telephone-event.
func (p *talker) sdp() []byte {
	proto, crypto := "RTP/AVP", ""
	if p.key != nil {
		proto = "RTP/SAVP"
		crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(p.key) + "\r\n"
	}
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d %s %d 101\r\na=rtpmap:101 telephone-event/8000\r\n%sa=sendrecv\r\n",
		p.conn.LocalAddr().(*net.UDPAddr).Port, proto, p.pt, crypto)
}

// got takes the relay's SDP for this talker: where to send, and the key
// the relay encrypts with.
func (p *talker) got(b []byte) {
	p.t.Helper()
	s, err := sdp.Parse(b)
	if err != nil {
		p.t.Fatal(err)
	}
	m := s.Audio()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.relay = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(m.Port))
	if p.key == nil {
		return
	}
	if len(m.Crypto) != 1 {
		p.t.Fatalf("SRTP talker got %s with %d keys", m.Proto, len(m.Crypto))
	}
	k := m.Crypto[0].Key
	if p.rx, err = srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
		p.t.Fatal(err)
	}
}

// talk sends the tone every 20 ms until stop or the end of the test.
func (p *talker) talk() {
	p.quit, p.done = make(chan struct{}), make(chan struct{})
	p.t.Cleanup(p.stop)
	go func() {
		defer close(p.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 160)
		for n := 0; ; n += 160 {
			select {
			case <-p.quit:
				return
			case <-tick.C:
			}
			for i := range payload {
				s := int16(amp * math.Sin(2*math.Pi*p.hz*float64(n+i)/8000))
				if p.pt == 8 {
					payload[i] = media.EncodeALaw(s)
				} else {
					payload[i] = media.EncodeULaw(s)
				}
			}
			p.send(p.pt, uint32(n), payload)
		}
	}()
}

// stop ends talk and waits for it.
func (p *talker) stop() {
	p.stopOnce.Do(func() { close(p.quit) })
	<-p.done
}

// dtmf sends the end of an RFC 4733 event, as a phone does three times.
func (p *talker) dtmf(ts uint32) {
	for range 3 {
		p.send(101, ts, []byte{5, 0x80, 0, 160})
	}
}

func (p *talker) send(pt uint8, ts uint32, payload []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: p.seq, Timestamp: ts, SSRC: 7}, Payload: payload}).Marshal()
	if err == nil && p.tx != nil {
		b, err = p.tx.EncryptRTP(nil, b, nil)
	}
	if err != nil {
		p.t.Error(err)
		return
	}
	_, _ = p.conn.WriteToUDPAddrPort(b, p.relay)
}

func (p *talker) packets() []rtp.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.heard)
}

// frames is what the talker heard from packet from on, decoded: audio
// only, in the law its payload type says.
func (p *talker) frames(from int) [][]int16 {
	var out [][]int16
	for _, r := range p.packets()[from:] {
		if r.PayloadType != 0 && r.PayloadType != 8 {
			continue
		}
		f := make([]int16, len(r.Payload))
		for i, b := range r.Payload {
			if r.PayloadType == 8 {
				f[i] = media.DecodeALaw(b)
			} else {
				f[i] = media.DecodeULaw(b)
			}
		}
		out = append(out, f)
	}
	return out
}

// level is the amplitude of a frame's hz component (Goertzel over a Hann
// window): a sine of amplitude A at hz reads about A; silence and tones
// 200 Hz or more away read near 0.
func level(x []int16, hz float64) float64 {
	coeff := 2 * math.Cos(2*math.Pi*hz/8000)
	var s1, s2, wsum float64
	for i, v := range x {
		win := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(x)))
		wsum += win
		s1, s2 = float64(v)*win+coeff*s1-s2, s1
	}
	return 2 * math.Sqrt(s1*s1+s2*s2-coeff*s1*s2) / wsum
}

// The parties' tones and the tones' frequencies (the README's patterns).
var (
	partyHz = map[string]float64{"c": 440, "g": 880, "s": 1200}
	toneHz  = map[string]float64{"entry": 1400, "notice": 1800}
)

// modeOps are the ops the call grain sends for each mode (c the caller's
// side, g the monitored party, s the supervisor): a MIX per leg with the
// legs its route hears; the takeover's two legs that hear only each other
// are a BRIDGE, and g's leg ends.
var modeOps = map[string][]*pb.MediaOp{
	"listen": {
		{Kind: pb.MediaOp_MIX, Leg: "c", Legs: []string{"g"}},
		{Kind: pb.MediaOp_MIX, Leg: "g", Legs: []string{"c"}},
		{Kind: pb.MediaOp_MIX, Leg: "s", Legs: []string{"c", "g"}}},
	"whisper": {
		{Kind: pb.MediaOp_MIX, Leg: "c", Legs: []string{"g"}},
		{Kind: pb.MediaOp_MIX, Leg: "g", Legs: []string{"c", "s"}},
		{Kind: pb.MediaOp_MIX, Leg: "s", Legs: []string{"c", "g"}}},
	"barge": {
		{Kind: pb.MediaOp_MIX, Leg: "c", Legs: []string{"g", "s"}},
		{Kind: pb.MediaOp_MIX, Leg: "g", Legs: []string{"c", "s"}},
		{Kind: pb.MediaOp_MIX, Leg: "s", Legs: []string{"c", "g"}}},
	"takeover": {
		{Kind: pb.MediaOp_BRIDGE, Leg: "c", Peer: "s"},
		{Kind: pb.MediaOp_REMOVE_LEG, Leg: "g"}},
}

// hears is who hears whom in each mode (INTERFACE §5); nobody hears
// anyone else, nor themselves.
var hears = map[string]map[string][]string{
	"listen":   {"c": {"g"}, "g": {"c"}, "s": {"c", "g"}},
	"whisper":  {"c": {"g"}, "g": {"c", "s"}, "s": {"c", "g"}},
	"barge":    {"c": {"g", "s"}, "g": {"c", "s"}, "s": {"c", "g"}},
	"takeover": {"c": {"s"}, "s": {"c"}},
}

// The who-hears-whom matrix of monitoring through the media actor, on real
// sockets and the real 20 ms mix clock: the caller c (PCMA) says 440 Hz,
// the agent g (PCMA) 880 Hz and the supervisor s (PCMU, SRTP, joined by
// *1-style offer) 1200 Hz; at every receiver a Goertzel filter finds the
// tones of the parties the mode says it hears and none of the others' or
// its own. Each sequence is one call: monitoring starts with g's notice
// tone, each barge plays the entry tone to c and g alone, every switch
// between two modes is taken, and the takeover leaves c and s forwarding to
// each other (s's DTMF reaches c, which no mix carries).
func TestMonitoringMatrix(t *testing.T) {
	m, err := media.NewService(media.Config{IP: netip.MustParseAddr("127.0.0.1"), PortMin: 38840, PortMax: 38879}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := New(m, func() *cluster.Cluster { return nil }, "call", slog.New(slog.DiscardHandler))
	for i, seq := range [][]string{
		{"listen", "whisper", "barge", "takeover"},
		{"barge", "listen", "barge", "whisper", "listen", "takeover"},
		{"whisper", "takeover"},
	} {
		t.Run(strings.Join(seq, ","), func(t *testing.T) { monitoredCall(t, s, fmt.Sprintf("call-%d", i), seq) })
	}
}

func monitoredCall(t *testing.T, s *Service, callID string, modes []string) {
	do := func(ops ...*pb.MediaOp) *pb.MediaResponse {
		t.Helper()
		r := s.Handle(&pb.MediaRequest{CallId: callID, Ops: ops})
		for i, res := range r.Results {
			if res.Code != 0 {
				t.Fatalf("op %d (%v): %d %s", i, ops[i].Kind, res.Code, res.Error)
			}
		}
		return r
	}
	ps := map[string]*talker{"c": newTalker(t, partyHz["c"], 8, false), "g": newTalker(t, partyHz["g"], 8, false), "s": newTalker(t, partyHz["s"], 0, true)}
	defer do(&pb.MediaOp{Kind: pb.MediaOp_RELEASE})

	// The call as the grain sets it up: c's offer, g offered c's codecs,
	// g's answer, c answered, the bridge.
	r := do(&pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: "c", Sdp: ps["c"].sdp()}, &pb.MediaOp{Kind: pb.MediaOp_OFFER, Leg: "g", Peer: "c"})
	ps["g"].got(r.Results[1].Sdp)
	r = do(&pb.MediaOp{Kind: pb.MediaOp_ACCEPT_ANSWER, Leg: "g", Sdp: ps["g"].sdp()}, &pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: "c", Peer: "g"},
		&pb.MediaOp{Kind: pb.MediaOp_BRIDGE, Leg: "c", Peer: "g"})
	ps["c"].got(r.Results[1].Sdp)
	// The supervisor's phone dials *1: its SRTP offer of PCMU alone is
	// answered against the call's codecs (PCMA), so s keeps PCMU.
	r = do(&pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: "s", Sdp: ps["s"].sdp(), Srtp: true}, &pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: "s", Peer: "c"})
	ps["s"].got(r.Results[1].Sdp)
	for _, p := range ps {
		p.talk()
	}
	check(t, "bridge", ps, mark(ps), map[string][]string{"c": {"g"}, "g": {"c"}}, "", nil)

	for i, mode := range modes {
		ops := modeOps[mode]
		tone, to := "", []string(nil)
		switch {
		case i == 0:
			tone, to = "notice", []string{"g"}
		case mode == "barge":
			tone, to = "entry", []string{"c", "g"}
		}
		if tone != "" {
			ops = append(slices.Clone(ops), &pb.MediaOp{Kind: pb.MediaOp_CHIME, Tone: tone, Legs: to})
		}
		since := mark(ps)
		do(ops...)
		if mode == "takeover" {
			ps["g"].stop()
			delete(ps, "g")
		}
		check(t, mode, ps, since, hears[mode], tone, to)
	}

	// After the takeover c and s are a bridge again: s's DTMF reaches c.
	n := len(ps["c"].packets())
	ps["s"].dtmf(1)
	eventually(t, "s's DTMF at c", func() bool {
		return slices.ContainsFunc(ps["c"].packets()[n:], func(r rtp.Packet) bool { return r.PayloadType == 101 })
	})
	for id, p := range ps {
		p.mu.Lock()
		undecr := p.undecr
		p.mu.Unlock()
		if undecr != 0 {
			t.Fatalf("%s: %d packets did not decrypt", id, undecr)
		}
		stream(t, id, p.packets())
	}
}

// mark is how many packets each talker has heard so far.
func mark(ps map[string]*talker) map[string]int {
	n := map[string]int{}
	for id, p := range ps {
		n[id] = len(p.packets())
	}
	return n
}

// check waits until the last 10 frames of each talker that hears someone
// say the mode is in effect: every party it hears present (in 6 of the 10
// frames or more at half that party's level: a party's packet may miss a
// tick of the mix clock) and every other party, itself included, absent
// (under a tenth of its level in all 10). A talker that hears nobody hears
// no party at all from the switch on. A tone played with the switch is
// found in 5 frames or more at the legs it was played to, and nowhere else.
func check(t *testing.T, mode string, ps map[string]*talker, since map[string]int, want map[string][]string, tone string, to []string) {
	t.Helper()
	const window = 10
	var why string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		why = ""
		for id, p := range ps {
			fs := p.frames(since[id])
			if len(want[id]) > 0 {
				if len(fs) < window+15 {
					why = fmt.Sprintf("%s heard %d frames since the switch", id, len(fs))
					break
				}
				fs = fs[len(fs)-window:]
			}
			for src, hz := range partyHz {
				heard := slices.Contains(want[id], src)
				n := 0
				for _, f := range fs {
					if l := level(f, hz); heard && l >= amp/2 || !heard && l >= amp/10 {
						n++
					}
				}
				switch {
				case heard && n < 6:
					why = fmt.Sprintf("%s hears %s in %d of its last %d frames", id, src, n, window)
				case !heard && n > 0:
					why = fmt.Sprintf("%s hears %s in %d of %d frames", id, src, n, len(fs))
				}
			}
			if why != "" {
				break
			}
		}
		if why == "" || time.Now().After(deadline) {
			break
		}
	}
	if why != "" {
		t.Fatalf("%s: %s", mode, why)
	}
	for _, name := range []string{"entry", "notice"} {
		for id, p := range ps {
			played := name == tone && slices.Contains(to, id)
			n := 0
			for _, f := range p.frames(since[id]) {
				if l := level(f, toneHz[name]); played && l >= amp/2 || !played && l >= amp/10 {
					n++
				}
			}
			switch {
			case played && n < 5:
				t.Fatalf("%s: %s heard the %s tone in %d frames", mode, id, name, n)
			case !played && n > 0:
				t.Fatalf("%s: %s heard the %s tone (%d frames)", mode, id, name, n)
			}
		}
	}
}

// stream checks that a talker heard one stream across every switch: one
// SSRC, and sequence numbers one apart.
func stream(t *testing.T, id string, ps []rtp.Packet) {
	t.Helper()
	for i := 1; i < len(ps); i++ {
		if ps[i].SSRC != ps[0].SSRC || ps[i].SequenceNumber != ps[i-1].SequenceNumber+1 {
			t.Fatalf("%s packet %d: SSRC %x seq %d after SSRC %x seq %d", id, i, ps[i].SSRC, ps[i].SequenceNumber, ps[i-1].SSRC, ps[i-1].SequenceNumber)
		}
	}
}
