package media

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/media/sdp"
)

func TestBridgeCountsBothWays(t *testing.T) {
	s := testService(t, 36000, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a, b := newPhone(t, false), newPhone(t, false)
	la, lb := call(t, w, a, b, "0 96")
	a.send(la.LocalPort(), 50, 0)
	b.send(lb.LocalPort(), 40, 0)
	eventually(t, "50 and 40 packets", func() bool { return b.count() == 50 && a.count() == 40 })
	st := w.Stats()
	if len(st) != 2 || st[0].ID != "a" || st[0].PacketsIn != 50 || st[0].PacketsOut != 40 ||
		st[1].PacketsIn != 40 || st[1].PacketsOut != 50 || st[0].BytesIn != 50*172 {
		t.Fatalf("stats %+v", st)
	}
	if st[0].Latched.Port() != uint16(a.port()) || st[1].Latched.Port() != uint16(b.port()) {
		t.Fatalf("latched %v %v", st[0].Latched, st[1].Latched)
	}
	// A gap of 3 in what a sends is counted as lost on leg a.
	a.seq += 3
	a.send(la.LocalPort(), 1, 0)
	eventually(t, "loss counted", func() bool { return w.Stats()[0].Lost == 3 })
}

func TestLatchingDropsOthersAndResetsOnNewAddress(t *testing.T) {
	s := testService(t, 36020, Config{})
	var ev events
	w := s.NewWorker("c", ev.add)
	defer w.Close()
	a, b, stranger := newPhone(t, false), newPhone(t, false), newPhone(t, false)
	la, _ := call(t, w, a, b, "0")
	a.send(la.LocalPort(), 5, 0)
	eventually(t, "relayed", func() bool { return b.count() == 5 })
	stranger.send(la.LocalPort(), 5, 0)
	eventually(t, "stranger dropped", func() bool { return w.Stats()[0].Dropped == 5 })
	if b.count() != 5 || len(ev.of(EventLatched)) != 1 {
		t.Fatalf("b got %d, latched events %v", b.count(), ev.of(EventLatched))
	}
	// a moves (re-INVITE with the stranger's address): the latch is undone.
	if err := la.AcceptOffer(stranger.sdp("0", "sendrecv"), false); err != nil {
		t.Fatal(err)
	}
	stranger.send(la.LocalPort(), 3, 0)
	eventually(t, "new source relayed", func() bool { return b.count() == 8 })
	if got := w.Stats()[0].Latched.Port(); got != uint16(stranger.port()) {
		t.Fatalf("latched to %d, want %d", got, stranger.port())
	}
	a.send(la.LocalPort(), 2, 0) // the old address is now the stranger
	eventually(t, "old source dropped", func() bool { return w.Stats()[0].Dropped == 7 })
}

func TestSRTPLegToPlainLeg(t *testing.T) {
	s := testService(t, 36040, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a, b := newPhone(t, true), newPhone(t, false) // a speaks SRTP, b plain RTP
	la, lb := call(t, w, a, b, "0 101")
	// A forged packet from elsewhere fails auth, is counted, and does not latch.
	forger := newPhone(t, true)
	forger.send(la.LocalPort(), 3, 0)
	eventually(t, "forgeries dropped", func() bool { return w.Stats()[0].Dropped == 3 })
	if w.Stats()[0].Latched.IsValid() {
		t.Fatal("a packet that failed SRTP auth latched")
	}
	a.send(la.LocalPort(), 30, 0)
	b.send(lb.LocalPort(), 30, 0)
	eventually(t, "both ways", func() bool { return b.count() == 30 && a.count() == 30 })
	if a.undecr != 0 {
		t.Fatalf("%d packets to the SRTP phone did not decrypt", a.undecr)
	}
	if w.Stats()[0].Latched.Port() != uint16(a.port()) {
		t.Fatal("SRTP leg latched to the wrong source")
	}
}

func TestSRTPBothLegsOwnKeys(t *testing.T) {
	s := testService(t, 36060, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a, b := newPhone(t, true), newPhone(t, true)
	la, lb := call(t, w, a, b, "0")
	a.send(la.LocalPort(), 10, 0)
	b.send(lb.LocalPort(), 10, 0)
	eventually(t, "both ways", func() bool { return b.count() == 10 && a.count() == 10 })
	// The relay's keys are its own, one per leg.
	ka, kb := answerKey(t, la.Answer(lb.Codecs())), answerKey(t, lb.Offer(la.Codecs(), true))
	if bytes.Equal(ka, kb) || bytes.Equal(ka, a.key) || bytes.Equal(kb, b.key) {
		t.Fatal("keys shared between legs or echoed back")
	}
}

func answerKey(t *testing.T, b []byte) []byte {
	s, err := sdp.Parse(b)
	if err != nil || len(s.Audio().Crypto) != 1 {
		t.Fatalf("no key in %s (%v)", b, err)
	}
	return s.Audio().Crypto[0].Key
}

// The held party hears PCMU tone on the same SSRC and sequence line as the
// bridged audio before and after.
func TestHoldToneThenResumeIsOneStream(t *testing.T) {
	s := testService(t, 36080, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a, b := newPhone(t, false), newPhone(t, false)
	la, _ := call(t, w, a, b, "0 101")
	a.send(la.LocalPort(), 10, 0)
	eventually(t, "bridged", func() bool { return b.count() == 10 })
	w.Route("b", ToneSource())
	eventually(t, "tone", func() bool { return b.count() >= 25 })
	w.Bridge("a", "b")
	time.Sleep(30 * time.Millisecond) // a tone frame may still be on its way
	n := b.count()
	a.send(la.LocalPort(), 10, 0)
	eventually(t, "resumed", func() bool { return b.count() == n+10 })

	ps := b.packets()
	tone := 0
	for i, p := range ps {
		if p.SSRC != ps[0].SSRC {
			t.Fatalf("packet %d: SSRC %x, want %x", i, p.SSRC, ps[0].SSRC)
		}
		if p.PayloadType != 0 {
			t.Fatalf("packet %d: PT %d, want PCMU", i, p.PayloadType)
		}
		if bytes.Equal(p.Payload, toneULaw[tone][:]) {
			tone++ // the pattern from its first frame
		}
		if i == 0 {
			continue
		}
		prev := ps[i-1]
		if p.SequenceNumber != prev.SequenceNumber+1 {
			t.Fatalf("packet %d: seq %d after %d", i, p.SequenceNumber, prev.SequenceNumber)
		}
		step := p.Timestamp - prev.Timestamp
		switched := p.Marker
		if step != 160 && !(switched && step >= 160 && step < 160*10) {
			t.Fatalf("packet %d: timestamp step %d (marker %v)", i, step, p.Marker)
		}
	}
	if tone < 10 {
		t.Fatalf("%d tone frames in order, want at least 10", tone)
	}
}

func TestToneIsPCMAWhenThatIsAllTheLegHas(t *testing.T) {
	s := testService(t, 36100, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a := newPhone(t, false)
	la, _ := w.AddLeg("a")
	if err := la.AcceptOffer(a.sdp("8", "sendrecv"), false); err != nil {
		t.Fatal(err)
	}
	la.Answer(la.Codecs())
	w.Route("a", ToneSource())
	eventually(t, "tone", func() bool { return a.count() >= 3 })
	if p := a.packets()[1]; p.PayloadType != 8 || !bytes.Equal(p.Payload, toneALaw[1][:]) || p.Marker {
		t.Fatalf("PT %d payload %x", p.PayloadType, p.Payload[:8])
	}
}

func TestTelephoneEventMappedAndReportedOnce(t *testing.T) {
	s := testService(t, 36120, Config{})
	var ev events
	w := s.NewWorker("c", ev.add)
	defer w.Close()
	a, b := newPhone(t, false), newPhone(t, false)
	la, _ := call(t, w, a, b, "0 96") // a: telephone-event 101, b: 96
	for _, digit := range []byte{5, 11} {
		for i := range 6 { // three updates, then the end packet three times
			end := byte(0)
			if i >= 3 {
				end = 0x80
			}
			a.sendPacket(la.LocalPort(), 101, i == 0, []byte{digit, end | 10, 0, byte(160 * (i + 1))})
		}
		a.ts += 1000
	}
	eventually(t, "12 packets", func() bool { return b.count() == 12 })
	for _, p := range b.packets() {
		if p.PayloadType != 96 {
			t.Fatalf("telephone-event sent to b as PT %d, want 96", p.PayloadType)
		}
	}
	eventually(t, "two digits", func() bool { return len(ev.of(EventDTMF)) == 2 })
	time.Sleep(20 * time.Millisecond)
	got := ev.of(EventDTMF)
	if len(got) != 2 || got[0].Digit != '5' || got[1].Digit != '#' || got[0].LegID != "a" || got[0].CallID != "c" {
		t.Fatalf("DTMF events %+v", got)
	}
}

func TestCodecNotNegotiatedIsDropped(t *testing.T) {
	s := testService(t, 36140, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a, b := newPhone(t, false), newPhone(t, false)
	la, _ := call(t, w, a, b, "0") // b has no PCMA
	a.send(la.LocalPort(), 3, 8)
	eventually(t, "dropped", func() bool { return w.Stats()[0].Dropped == 3 })
	if b.count() != 0 {
		t.Fatal("PCMA relayed to a PCMU-only leg")
	}
}

func TestRTPTimeoutWithInjectedClock(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(5000, 0).UnixNano())
	s := testService(t, 36160, Config{RTPTimeout: 10 * time.Second, CheckEvery: time.Hour,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	var ev events
	w := s.NewWorker("c", ev.add)
	defer w.Close()
	a, b := newPhone(t, false), newPhone(t, false)
	la, _ := call(t, w, a, b, "0")
	now.Add(int64(9 * time.Second))
	a.send(la.LocalPort(), 1, 0) // activity at 9 s
	eventually(t, "packet", func() bool { return b.count() == 1 })
	now.Add(int64(9 * time.Second))
	s.Check()
	if n := len(ev.of(EventRTPTimeout)); n != 0 {
		t.Fatalf("%d timeouts 9 s after a packet", n)
	}
	now.Add(int64(time.Second))
	s.Check()
	s.Check()
	if n := len(ev.of(EventRTPTimeout)); n != 1 {
		t.Fatalf("%d timeouts, want 1", n)
	}
	// Media comes back and stops again: one more report.
	a.send(la.LocalPort(), 1, 0)
	eventually(t, "packet", func() bool { return b.count() == 2 })
	now.Add(int64(10 * time.Second))
	s.Check()
	if es := ev.of(EventRTPTimeout); len(es) != 2 || es[1].CallID != "c" {
		t.Fatalf("timeouts %+v", es)
	}
}

func TestOfferAnswerShape(t *testing.T) {
	s := testService(t, 36180, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	l, _ := w.AddLeg("a")
	key := "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
	offer := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=video 5000 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n" +
		"m=audio 4000 RTP/SAVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n" +
		"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:" + key + key + "\r\n" +
		"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + key + "\r\na=sendonly\r\n"
	if err := l.AcceptOffer([]byte(offer), true); err != nil {
		t.Fatal(err)
	}
	if l.RemoteDirection() != "sendonly" {
		t.Fatalf("direction %q", l.RemoteDirection())
	}
	// The other leg agreed on PCMU and telephone-event 96.
	ans := l.Answer([]sdp.Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 96, Name: "telephone-event", Rate: 8000}})
	s1, err := sdp.Parse(ans)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Media) != 2 || s1.Media[0].Port != 0 || s1.Media[0].Type != "video" {
		t.Fatalf("video must be rejected in place:\n%s", ans)
	}
	m := s1.Media[1]
	if m.Port != l.LocalPort() || s1.ConnIP != "127.0.0.1" || m.Proto != "RTP/SAVP" || m.Direction != "recvonly" {
		t.Fatalf("answer:\n%s", ans)
	}
	if len(m.Formats) != 2 || m.Formats[0].PT != 0 || m.Formats[1].PT != 101 {
		t.Fatalf("answer must keep the offer's PTs for PCMU and telephone-event: %+v", m.Formats)
	}
	if len(m.Crypto) != 1 || m.Crypto[0].Tag != 2 || m.Crypto[0].Suite != suite || strings.Contains(string(ans), key) {
		t.Fatalf("answer crypto %+v", m.Crypto)
	}
	// Same answer again: same o= version; a change bumps it.
	s2, _ := sdp.Parse(l.Answer([]sdp.Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 96, Name: "telephone-event", Rate: 8000}}))
	s3, _ := sdp.Parse(l.Answer([]sdp.Format{{PT: 8, Name: "PCMA", Rate: 8000}}))
	if s2.Origin != s1.Origin || s3.Origin.SessVersion != s1.Origin.SessVersion+1 || s3.Origin.SessID != s1.Origin.SessID {
		t.Fatalf("o= versions %v %v %v", s1.Origin, s2.Origin, s3.Origin)
	}

	// Our offer adds telephone-event when the codecs lack it.
	o, _ := sdp.Parse(l.Offer([]sdp.Format{{PT: 0, Name: "PCMU", Rate: 8000}, {PT: 101, Name: "opus", Rate: 48000}}, false))
	if f := o.Audio().Formats; len(f) != 3 || !f[2].IsDTMF() || f[2].PT != 102 || o.Audio().Proto != "RTP/AVP" {
		t.Fatalf("offer formats %+v", f)
	}
}

func TestOfferAndAnswerRefusals(t *testing.T) {
	s := testService(t, 36200, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	l, _ := w.AddLeg("a")
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	crypto80 := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
	for _, c := range []struct {
		name, body string
		require    bool
		want       error
	}{
		{"dtmf and CN only", "m=audio 4000 RTP/AVP 101 13\r\na=rtpmap:101 telephone-event/8000\r\n", false, ErrNoCodec},
		{"dynamic PT without rtpmap", "m=audio 4000 RTP/AVP 97\r\n", false, ErrNoCodec},
		{"audio rejected", "m=audio 0 RTP/AVP 0\r\n", false, ErrNoCodec},
		{"video only", "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", false, ErrNoCodec},
		{"plain but SRTP required", "m=audio 4000 RTP/AVP 0\r\n", true, ErrSRTPRequired},
		{"wrong suite, required", "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n", true, ErrSRTPRequired},
		{"wrong suite", "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n", false, ErrNoCrypto},
		{"DTLS-SRTP", "m=audio 4000 UDP/TLS/RTP/SAVPF 0\r\n", false, ErrNoCrypto},
		{"not SDP", "", false, sdp.ErrSyntax},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := c.body
			if body != "" {
				body = head + body
			}
			if err := l.AcceptOffer([]byte(body), c.require); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
	if err := l.AcceptOffer([]byte(head+"m=audio 4000 RTP/SAVP 0\r\n"+crypto80), true); err != nil {
		t.Fatalf("good SRTP offer: %v", err)
	}

	// Answers to our offers.
	l.Offer([]sdp.Format{{PT: 0, Name: "PCMU", Rate: 8000}}, true)
	if err := l.AcceptAnswer([]byte(head + "m=audio 4000 RTP/AVP 0\r\n")); !errors.Is(err, ErrNoCrypto) {
		t.Fatalf("plain answer to SRTP offer: %v", err)
	}
	if err := l.AcceptAnswer([]byte(head + "m=audio 0 RTP/SAVP 0\r\n")); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("rejected stream: %v", err)
	}
	if err := l.AcceptAnswer([]byte(head + "m=audio 4000 RTP/SAVP 0\r\n" + crypto80)); err != nil {
		t.Fatalf("good answer: %v", err)
	}
}

// An RFC 2543 hold (c=0.0.0.0) reads as sendonly and nothing is sent to it.
func TestLegacyHold(t *testing.T) {
	s := testService(t, 36220, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	l, _ := w.AddLeg("a")
	if err := l.AcceptOffer([]byte("v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"), false); err != nil {
		t.Fatal(err)
	}
	if l.RemoteDirection() != "sendonly" || !strings.Contains(string(l.Answer(l.Codecs())), "a=recvonly") {
		t.Fatalf("direction %q", l.RemoteDirection())
	}
	if p := l.dest.Load(); p.recv || p.addr.IsValid() {
		t.Fatalf("would send to %+v", p)
	}
}

func TestPortsFIFOAndRTCPReserved(t *testing.T) {
	s := testService(t, 36240, Config{}) // 36240..36259: 10 pairs
	w := s.NewWorker("c", nil)
	l0, err := w.AddLeg("0")
	if err != nil {
		t.Fatal(err)
	}
	if l0.LocalPort()%2 != 0 {
		t.Fatal("RTP port must be even")
	}
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: testIP.AsSlice(), Port: l0.LocalPort() + 1}); err == nil {
		c.Close()
		t.Fatal("the RTCP port must be bound")
	}
	first := l0.LocalPort()
	w.RemoveLeg("0")
	l1, _ := w.AddLeg("1")
	if l1.LocalPort() == first {
		t.Fatal("a freed port must be reused last")
	}
	w.Close()
	w.Close() // idempotent
	if s.Workers() != 0 {
		t.Fatalf("%d workers after close", s.Workers())
	}
	if _, err := w.AddLeg("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddLeg on a closed worker: %v", err)
	}
}

func TestServiceConfig(t *testing.T) {
	for _, c := range []Config{{}, {IP: testIP, PortMin: 5000, PortMax: 5000}, {IP: testIP, PortMin: 5001, PortMax: 5002}} {
		if _, err := NewService(c, nil); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	s, err := NewService(Config{IP: testIP, PortMin: 36270, PortMax: 36271}, nil)
	if err != nil {
		t.Fatalf("one pair: %v", err)
	}
	s.Close()
}
