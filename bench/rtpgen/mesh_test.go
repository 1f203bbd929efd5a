package rtpgen

import (
	"context"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"
)

// Jitter is RFC 3550's, on the relay's timestamps: none for frames exactly
// 20 ms apart (across the 32-bit wrap too), and for frames that alternate
// 2 ms early and late it converges to the 4 ms their transits differ by.
func TestFrameJitter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ts0    uint32
		offset func(k int) time.Duration
		wantMs float64
	}{
		{"even", 1000, func(int) time.Duration { return 0 }, 0},
		{"even across the wrap", math.MaxUint32 - 160*10, func(int) time.Duration { return 0 }, 0},
		{"alternating 2 ms", 0, func(k int) time.Duration { return time.Duration(k%2*4-2) * time.Millisecond }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s rxStats
			for k := range 500 {
				at := time.Second + time.Duration(k)*frame + tc.offset(k)
				s.frameAt(at, tc.ts0+uint32(k*160), k%2 == 0)
			}
			if s.frames != 500 || s.untouched != 250 {
				t.Fatalf("frames %d, untouched %d", s.frames, s.untouched)
			}
			if got := s.jitter / 8; math.Abs(got-tc.wantMs) > 0.01 {
				t.Fatalf("jitter %.3f ms, want %.3f", got, tc.wantMs)
			}
		})
	}
}

// echoRelay is a relay of one socket per leg that sends each packet back
// to where it came from: unless it is every dropEvery-th (0: none), and
// with the generator's marker wiped when mixed (a mixer's frame carries
// none of a sender's payload).
func echoRelay(t *testing.T, legs, dropEvery int, mixed bool) []netip.AddrPort {
	var addrs []netip.AddrPort
	for range legs {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		addrs = append(addrs, c.LocalAddr().(*net.UDPAddr).AddrPort())
		go func() {
			buf := make([]byte, 1500)
			for k := 1; ; k++ {
				n, from, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				if dropEvery > 0 && k%dropEvery == 0 {
					continue
				}
				if mixed {
					buf[12], buf[13] = 0, 0
				}
				_, _ = c.WriteToUDPAddrPort(buf[:n], from)
			}
		}()
	}
	return addrs
}

// Each side counts the frames its legs hear in the window against 50 per
// second per leg, whichever leg they come from, and tells untouched frames
// from mixed ones; what comes from no leg's relay port is stray.
func TestMeshCountsFramesPerSide(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dropEvery int
		mixed     bool
		wantLoss  float64
	}{
		{"forwarded", 0, false, 0},
		{"mixed", 0, true, 0},
		{"every tenth lost", 10, false, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const perSide = 2
			var sides []*Side
			for range 3 {
				s, err := Listen("127.0.0.1")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				sides = append(sides, s)
			}
			relay := echoRelay(t, 3*perSide, tc.dropEvery, tc.mixed)
			var legs []Leg
			for i, a := range relay {
				legs = append(legs, Leg{Side: i % 3, Relay: a})
			}
			stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer stranger.Close()
			go func() {
				for range 20 {
					_, _ = stranger.WriteToUDPAddrPort(make([]byte, 40), sides[1].Addr())
					time.Sleep(20 * time.Millisecond)
				}
			}()
			r, err := NewMesh(sides, legs).Run(context.Background(), time.Second, 200*time.Millisecond, 50*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Window != 700*time.Millisecond {
				t.Fatalf("window %v, want 700ms (1 s less the warm-up and 100 ms, in whole frames)", r.Window)
			}
			for i, s := range r.Sides {
				if s.Legs != perSide || s.Expected != perSide*35 || s.Sent < perSide*45 {
					t.Fatalf("side %d: %+v", i, s)
				}
				// A frame may fall either side of each edge of the window
				// when the receiver reads late.
				if want := float64(s.Expected) * (1 - tc.wantLoss/100); math.Abs(float64(s.Received)-want) > 2*perSide {
					t.Fatalf("side %d: loss %.1f%%, want about %.0f%% (%+v)", i, s.LossPct, tc.wantLoss, s)
				}
				if want := s.Received; tc.mixed && s.Untouched != 0 || !tc.mixed && s.Untouched != want {
					t.Fatalf("side %d: %d of %d frames untouched (mixed %v)", i, s.Untouched, s.Received, tc.mixed)
				}
				if wantStray := i == 1; (s.Stray > 0) != wantStray {
					t.Fatalf("side %d: %d stray packets", i, s.Stray)
				}
			}
		})
	}
}
