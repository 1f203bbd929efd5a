package media

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/media/sdp"
)

// phone is a fake endpoint on 127.0.0.1: it sends RTP (or SRTP with its own
// key) and keeps what it receives, decrypted with the key from the relay's SDP.
type phone struct {
	t    testing.TB
	conn *net.UDPConn
	key  []byte // our SDES key, nil for plain RTP
	ssrc uint32
	seq  uint16
	ts   uint32

	mu      sync.Mutex
	tx, rx  *srtp.Context
	got     []rtp.Packet
	undecr  int // packets that failed to decrypt
	sources map[netip.AddrPort]int
}

func newPhone(t testing.TB, useSRTP bool) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, conn: c, ssrc: 0x1234, seq: 1000, ts: 50000, sources: map[netip.AddrPort]int{}}
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

func (p *phone) receive(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 2048)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
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
			p.got = append(p.got, r)
			p.sources[from]++
		}
		p.mu.Unlock()
	}
}

func (p *phone) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// sdp is this phone's offer or answer: PCMU, PCMA, telephone-event 101.
func (p *phone) sdp(pts, direction string) []byte {
	proto, crypto := "RTP/AVP", ""
	if p.key != nil {
		proto = "RTP/SAVP"
		crypto = "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + base64.StdEncoding.EncodeToString(p.key) + "\r\n"
	}
	return fmt.Appendf(nil, "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d %s %s\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:96 telephone-event/8000\r\n%sa=%s\r\n",
		p.port(), proto, pts, crypto, direction)
}

// heard takes the relay's SDP for this phone: the key it will encrypt with.
func (p *phone) heard(b []byte) {
	p.t.Helper()
	s, err := sdp.Parse(b)
	if err != nil {
		p.t.Fatal(err)
	}
	m := s.Audio()
	if p.key == nil {
		if m.Proto != "RTP/AVP" || len(m.Crypto) != 0 {
			p.t.Fatalf("plain phone got %s with %d keys", m.Proto, len(m.Crypto))
		}
		return
	}
	if m.Proto != "RTP/SAVP" || len(m.Crypto) != 1 || len(m.Crypto[0].Key) != 30 {
		p.t.Fatalf("SRTP phone got %s %+v", m.Proto, m.Crypto)
	}
	k := m.Crypto[0].Key
	rx, err := srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.rx = rx
	p.mu.Unlock()
}

// send sends n 20 ms packets of payload type pt to a relay port.
func (p *phone) send(to int, n int, pt uint8) {
	p.t.Helper()
	for range n {
		p.sendPacket(to, pt, false, make([]byte, 160))
		p.ts += 160
	}
}

func (p *phone) sendPacket(to int, pt uint8, marker bool, payload []byte) {
	p.t.Helper()
	p.seq++
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: p.ssrc}, Payload: payload}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	if p.tx != nil {
		if b, err = p.tx.EncryptRTP(nil, b, nil); err != nil {
			p.t.Fatal(err)
		}
	}
	if _, err := p.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(to))); err != nil {
		p.t.Fatal(err)
	}
}

func (p *phone) packets() []rtp.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func (p *phone) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
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

// events collects a worker's reports.
type events struct {
	mu sync.Mutex
	es []Event
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	e.es = append(e.es, ev)
	e.mu.Unlock()
}

func (e *events) of(k EventKind) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.es {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

func testService(t testing.TB, base int, cfg Config) *Service {
	t.Helper()
	cfg.IP = netip.MustParseAddr("127.0.0.1")
	cfg.PortMin, cfg.PortMax = base, base+19
	s, err := NewService(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// call sets up caller a and callee b the way the call grain does: a offers,
// b is offered a's codecs and answers, a gets the answer, then the bridge.
func call(t testing.TB, w *Worker, a, b *phone, bPTs string) (la, lb *Leg) {
	t.Helper()
	var err error
	if la, err = w.AddLeg("a"); err != nil {
		t.Fatal(err)
	}
	if lb, err = w.AddLeg("b"); err != nil {
		t.Fatal(err)
	}
	if err := la.AcceptOffer(a.sdp("0 8 101", "sendrecv"), false); err != nil {
		t.Fatal(err)
	}
	b.heard(lb.Offer(la.Codecs(), b.key != nil))
	if err := lb.AcceptAnswer(b.sdp(bPTs, "sendrecv")); err != nil {
		t.Fatal(err)
	}
	a.heard(la.Answer(lb.Codecs()))
	w.Bridge("a", "b")
	return la, lb
}

var testIP = netip.MustParseAddr("127.0.0.1")
