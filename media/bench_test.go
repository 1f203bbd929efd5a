package media

import (
	"encoding/binary"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// benchCall is a bridged call whose callee leg points at a socket nobody
// reads (the kernel drops what overflows), for timing the per-packet path.
func benchCall(b *testing.B, base int, aSRTP, bSRTP bool) (*Leg, *phone) {
	s := testService(b, base, Config{})
	w := s.NewWorker("bench", nil)
	a := newPhone(b, aSRTP)
	sink := &phone{t: b, conn: listen(b)}
	if bSRTP {
		sink.key = make([]byte, 30)
	}
	la, _ := call(b, w, a, sink, "0 101")
	return la, a
}

func listen(b *testing.B) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func benchPacket(ssrc uint32) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: ssrc}, Payload: make([]byte, 160)}).Marshal()
	return b
}

// BenchmarkHandle times one received packet: checks, latch, stats, PT map,
// SSRC/seq/ts rewrite, optional SRTP, and the sendto to the other leg.
func BenchmarkHandle(b *testing.B) {
	for _, c := range []struct {
		name         string
		base         int
		aSRTP, bSRTP bool
		held         bool // the callee is on hold: everything but the sendto
	}{{"plain", 37000, false, false, false}, {"srtp-to-plain", 37020, true, false, false}, {"plain-to-srtp", 37040, false, true, false},
		{"srtp-to-srtp", 37060, true, true, false}, {"plain-nosend", 37080, false, false, true}, {"srtp-decrypt-nosend", 37120, true, true, true}} {
		b.Run(c.name, func(b *testing.B) {
			la, a := benchCall(b, c.base, c.aSRTP, c.bSRTP)
			if c.held {
				lb := la.w.Leg("b")
				lb.dest.Store(&peer{addr: lb.dest.Load().addr})
			}
			from := netip.AddrPortFrom(testIP, uint16(a.port()))
			plain := benchPacket(a.ssrc)
			// Encrypting is the phone's work: done ahead, outside the timer.
			const batch = 1024
			pkts := make([][]byte, batch)
			for i := range pkts {
				pkts[i] = make([]byte, 0, 256)
			}
			var seq uint16
			fill := func() {
				for i := range pkts {
					seq++
					binary.BigEndian.PutUint16(plain[2:], seq)
					binary.BigEndian.PutUint32(plain[4:], uint32(seq)*160)
					if a.tx != nil {
						pkts[i], _ = a.tx.EncryptRTP(pkts[i][:0], plain, nil)
					} else {
						pkts[i] = append(pkts[i][:0], plain...)
					}
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(plain)))
			b.ResetTimer()
			for i := range b.N {
				if i%batch == 0 {
					b.StopTimer()
					fill()
					b.StartTimer()
				}
				la.handle(pkts[i%batch], from, time.Now().UnixNano())
			}
			b.StopTimer()
			if st := la.stats(); st.Dropped != 0 || st.PacketsIn != uint64(b.N) {
				b.Fatalf("in %d dropped %d of %d", st.PacketsIn, st.Dropped, b.N)
			}
		})
	}
}

// BenchmarkRelayUDP is a packet's round trip through real sockets: phone A
// sends to its leg, the relay forwards, phone B's socket receives.
func BenchmarkRelayUDP(b *testing.B) {
	s := testService(b, 37140, Config{})
	w := s.NewWorker("bench", nil)
	la, _ := w.AddLeg("a")
	lb, _ := w.AddLeg("b")
	a, rcv := listen(b), listen(b)
	pa := &phone{conn: a}
	pb := &phone{conn: rcv}
	if err := la.AcceptOffer(pa.sdp("0", "sendrecv"), false); err != nil {
		b.Fatal(err)
	}
	lb.Offer(la.Codecs(), false)
	if err := lb.AcceptAnswer(pb.sdp("0", "sendrecv")); err != nil {
		b.Fatal(err)
	}
	la.Answer(lb.Codecs())
	w.Bridge("a", "b")
	pkt := benchPacket(1)
	to := netip.AddrPortFrom(testIP, uint16(la.LocalPort()))
	buf := make([]byte, 2048)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		if _, err := a.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		_ = rcv.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := rcv.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatalf("packet %d: %v", i, err)
		}
	}
}

func TestG711(t *testing.T) {
	if ulaw(0) != 0xff || alaw(0) != 0xd5 {
		t.Fatalf("silence: %x %x", ulaw(0), alaw(0))
	}
	for x := -32768; x <= 32767; x += 7 {
		s := int16(x)
		for name, err := range map[string]float64{"ulaw": float64(unulaw(ulaw(s)) - int(s)), "alaw": float64(unalaw(alaw(s)) - int(s))} {
			if math.Abs(err) > math.Max(16, math.Abs(float64(s))/12) {
				t.Fatalf("%s(%d) decodes %v away", name, s, err)
			}
		}
	}
}

// unulaw and unalaw are the G.711 decoders (ITU-T reference), for the test.
func unulaw(u byte) int {
	u = ^u
	t := (int(u&0x0f)<<3 + 0x84) << ((u & 0x70) >> 4)
	if u&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

func unalaw(a byte) int {
	a ^= 0x55
	t := int(a&0x0f) << 4
	switch seg := (a & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if a&0x80 != 0 {
		return t
	}
	return -t
}

// The bodies of the load test's SIPp caller and callee (bench/sipp).
const (
	benchCallerSDP = "v=0\r\no=carrier 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
	benchCalleeSDP = "v=0\r\no=phone 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 40002 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
)

// BenchmarkCallMedia is one call's media set up and torn down the way the
// call grain does it: a worker, two legs (a port pair bound each), the
// caller's offer taken, the callee offered and its answer taken, the caller
// answered, the legs bridged, and the worker closed.
func BenchmarkCallMedia(b *testing.B) {
	s, err := NewService(Config{IP: testIP, PortMin: 39000, PortMax: 39399}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	offer, answer := []byte(benchCallerSDP), []byte(benchCalleeSDP)
	b.ReportAllocs()
	for b.Loop() {
		w := s.NewWorker("bench", nil)
		la, err := w.AddLeg("a")
		if err != nil {
			b.Fatal(err)
		}
		lb, err := w.AddLeg("b")
		if err != nil {
			b.Fatal(err)
		}
		if err := la.AcceptOffer(offer, false); err != nil {
			b.Fatal(err)
		}
		lb.Offer(la.Codecs(), false)
		if err := lb.AcceptAnswer(answer); err != nil {
			b.Fatal(err)
		}
		la.Answer(lb.Codecs())
		w.Bridge("a", "b")
		w.Close()
	}
}
