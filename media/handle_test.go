package media

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"time"
)

// Packets fed straight to a leg's handle with a chosen arrival time.
func TestJitterReplayAndRTCPMux(t *testing.T) {
	s := testService(t, 36300, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	a, b := newPhone(t, true), newPhone(t, false)
	la, _ := call(t, w, a, b, "0")
	from := netip.AddrPortFrom(testIP, uint16(a.port()))
	pkt := benchPacket(a.ssrc)
	enc := func(seq uint16) []byte {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		out, err := a.tx.EncryptRTP(nil, pkt, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t0 := time.Unix(100, 0).UnixNano()
	// Every packet 20 ms apart except that odd ones arrive 4 ms late.
	for i := range 200 {
		late := int64(0)
		if i%2 == 1 {
			late = int64(4 * time.Millisecond)
		}
		la.handle(enc(uint16(i)), from, t0+int64(i)*int64(20*time.Millisecond)+late)
	}
	st := la.stats()
	if st.PacketsIn != 200 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
	// |D| is 4 ms every packet, so the RFC 3550 estimate converges to 4 ms.
	if math.Abs(st.JitterMs-4) > 0.1 {
		t.Fatalf("jitter %.3f ms, want about 4", st.JitterMs)
	}
	replay := enc(150)
	la.handle(replay, from, t0)
	if st := la.stats(); st.Dropped != 1 || st.PacketsIn != 200 {
		t.Fatalf("a replayed SRTP packet must be dropped: %+v", st)
	}
	rtcp := []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	la.handle(rtcp, from, t0)
	la.handle([]byte{0x40, 0, 0}, from, t0)
	if st := la.stats(); st.Dropped != 2 || st.PacketsIn != 200 {
		t.Fatalf("RTCP is ignored, garbage dropped: %+v", st)
	}
}

func TestHeaderLen(t *testing.T) {
	for _, c := range []struct {
		pkt  []byte
		n    int
		good bool
	}{
		{make([]byte, 12), 12, true},
		{append([]byte{0x82}, make([]byte, 19)...), 20, true},               // two CSRCs
		{append([]byte{0x90}, make([]byte, 11+4)...), 16, true},             // empty extension
		{append(append([]byte{0x90}, make([]byte, 13)...), 0, 2), 0, false}, // extension longer than the packet
		{append(append([]byte{0x90}, make([]byte, 13)...), 0, 1, 1, 2, 3, 4), 20, true},
	} {
		n, ok := headerLen(c.pkt)
		if ok != c.good || (ok && n != c.n) {
			t.Errorf("% x: %d %v, want %d %v", c.pkt, n, ok, c.n, c.good)
		}
	}
}
