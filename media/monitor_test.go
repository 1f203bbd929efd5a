package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

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

// The tone patterns as the README documents them, frame by frame: each
// 20 ms frame holds its tone at about -16 dBFS (5000) and none of the
// other patterns' or the hold tone's frequencies, or is silent.
func TestTonePatterns(t *testing.T) {
	const mixed = -1 // a frame where the pattern changes tone mid-frame
	rep := func(hz float64, n int) []float64 { return slices.Repeat([]float64{hz}, n) }
	all := []float64{425, 660, 880, 1400, 1800}
	for _, c := range []struct {
		name   string
		tone   Tone
		frames []float64 // hz per frame, 0 silent
	}{
		// 880 Hz for 150 ms, then 660 Hz for 150 ms.
		{"join", JoinChime, slices.Concat(rep(880, 7), []float64{mixed}, rep(660, 7))},
		// 1400 Hz for 100 ms, 100 ms of silence, 1400 Hz for 100 ms.
		{"entry", EntryTone, slices.Concat(rep(1400, 5), rep(0, 5), rep(1400, 5))},
		// Three 60 ms beeps at 1800 Hz, 60 ms apart.
		{"notice", NoticeTone, slices.Concat(rep(1800, 3), rep(0, 3), rep(1800, 3), rep(0, 3), rep(1800, 3))},
	} {
		t.Run(c.name, func(t *testing.T) {
			frames := chimeLin[c.tone]
			if len(frames) != len(c.frames) {
				t.Fatalf("%d frames, want %d", len(frames), len(c.frames))
			}
			for i, hz := range c.frames {
				f := frames[i][:]
				switch hz {
				case mixed:
				case 0:
					if slices.ContainsFunc(f, func(v int16) bool { return v != 0 }) {
						t.Fatalf("frame %d is not silent", i)
					}
				default:
					if l := level(f, hz); l < 2500 || l > 5100 {
						t.Fatalf("frame %d: %v Hz at %.0f, want about 5000", i, hz, l)
					}
					for _, o := range all {
						if l := level(f, o); o != hz && l > 100 {
							t.Fatalf("frame %d: %v Hz at %.0f beside its %v Hz", i, o, l, hz)
						}
					}
				}
			}
		})
	}
}

// The routes of monitoring, as the call grain sends them (a MIX per leg,
// a BRIDGE for two): a leg that hears one other leg is forwarded to (its
// DTMF events too), only legs that hear two are mixed, and the mixer has
// nothing left to do after the takeover, whose bridge between legs that
// agreed different G.711 laws converts each packet.
func TestMonitoringRoutes(t *testing.T) {
	s := testService(t, 38520, Config{})
	s.manualMix = true
	w := s.NewWorker("c", nil)
	defer w.Close()
	pc, pg, ps := newPhone(t, false), newPhone(t, false), newPhone(t, true)
	ls := mixLegs(t, w, []string{"c", "g", "s"}, []*phone{pc, pg, ps}, []string{"0 101", "0 101", "8 101"})
	leg := map[string]*Leg{"c": ls[0], "g": ls[1], "s": ls[2]}
	phones := map[string]*phone{"c": pc, "g": pg, "s": ps}
	pt := map[string]uint8{"c": 0, "g": 0, "s": 8} // s agreed PCMA alone
	w.Bridge("c", "g")

	listen := func() {
		w.Mix("c", []string{"g"})
		w.Mix("g", []string{"c"})
		w.Mix("s", []string{"c", "g"})
	}
	for _, step := range []struct {
		name    string
		ops     func()
		forward map[string]string // listener: the leg it hears by forwarding
		mixed   []string          // legs the mixer serves
	}{
		{"bridge", func() {}, map[string]string{"c": "g", "g": "c"}, nil},
		{"listen", listen, map[string]string{"c": "g", "g": "c"}, []string{"s"}},
		{"whisper", func() { w.Mix("g", []string{"c", "s"}) }, map[string]string{"c": "g"}, []string{"g", "s"}},
		{"barge", func() { w.Mix("c", []string{"g", "s"}) }, nil, []string{"c", "g", "s"}},
		{"barge to listen", listen, map[string]string{"c": "g", "g": "c"}, []string{"s"}},
		{"listen to barge", func() {
			w.Mix("c", []string{"g", "s"})
			w.Mix("g", []string{"c", "s"})
		}, nil, []string{"c", "g", "s"}},
		{"takeover", func() {
			w.Bridge("c", "s")
			w.RemoveLeg("g")
		}, map[string]string{"c": "s", "s": "c"}, nil},
	} {
		step.ops()
		var mixed []string
		if p := w.mixer.plan.Load(); p != nil {
			for _, d := range p.dsts {
				mixed = append(mixed, d.leg.id)
			}
		}
		slices.Sort(mixed)
		if !slices.Equal(mixed, step.mixed) {
			t.Fatalf("%s: the mixer serves %v, want %v", step.name, mixed, step.mixed)
		}
		for id, l := range leg {
			if w.Leg(id) == nil {
				continue
			}
			var from []string
			for src, sl := range leg {
				if slices.Contains(*sl.listeners.Load(), l) {
					from = append(from, src)
				}
			}
			if want := step.forward[id]; !slices.Equal(from, []string{want}) && !(want == "" && len(from) == 0) {
				t.Fatalf("%s: %s hears %v by forwarding, want %q", step.name, id, from, want)
			}
		}

		// What is forwarded arrives as sent, DTMF events included, in the
		// other law when the listener agreed that one.
		for dst, src := range step.forward {
			pd, psrc := phones[dst], phones[src]
			n := pd.count()
			audio := make([]byte, 160)
			for i := range audio {
				audio[i] = byte(i)
			}
			psrc.sendPacket(leg[src].LocalPort(), pt[src], false, audio)
			psrc.sendPacket(leg[src].LocalPort(), 101, true, []byte{4, 0x80, 0, 160})
			eventually(t, step.name+": forwarded to "+dst, func() bool { return pd.count() == n+2 })
			want := slices.Clone(audio)
			switch {
			case pt[src] == 0 && pt[dst] == 8:
				for i, b := range audio {
					want[i] = alaw(ulawLin[b])
				}
			case pt[src] == 8 && pt[dst] == 0:
				for i, b := range audio {
					want[i] = ulaw(alawLin[b])
				}
			}
			got := pd.packets()[n:]
			if got[0].PayloadType != pt[dst] || !bytes.Equal(got[0].Payload, want) || got[1].PayloadType != 101 || !bytes.Equal(got[1].Payload, []byte{4, 0x80, 0, 160}) {
				t.Fatalf("%s: %s heard PT %d %x then PT %d", step.name, dst, got[0].PayloadType, got[0].Payload[:4], got[1].PayloadType)
			}
		}
	}
}

// monitoredCall is a call's legs in one of the shapes monitoring gives it,
// set up with the ops the grain sends, for driving frame by frame: the
// phones are sockets nobody reads (the kernel drops what overflows) and no
// mix clock runs. Each leg gets a packet from its phone per frame.
type monitoredCall struct {
	w    *Worker
	legs []*Leg
	from []netip.AddrPort
	pkts [][]byte
	now  int64
}

func newMonitoredCall(b testing.TB, base int, shape string) *monitoredCall {
	s := testService(b, base, Config{CheckEvery: time.Hour})
	s.manualMix = true
	w := s.NewWorker("bench", nil)
	b.Cleanup(w.Close)
	ids := []string{"c", "g", "s"}
	if shape == "bridge" {
		ids = ids[:2]
	}
	m := &monitoredCall{w: w, now: time.Now().UnixNano()}
	var phones []*phone
	var pts []string
	for i := range ids {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		p := &phone{t: b, conn: c}
		phones, pts = append(phones, p), append(pts, "0 101")
		m.from = append(m.from, netip.AddrPortFrom(testIP, uint16(p.port())))
		pkt := benchPacket(uint32(i + 1))
		for j := range pkt[12:] {
			pkt[12+j] = ulaw(int16(3000 * math.Sin(float64(j*(i+1))/3)))
		}
		m.pkts = append(m.pkts, pkt)
	}
	m.legs = mixLegs(b, w, ids, phones, pts)
	switch shape {
	case "bridge":
		w.Bridge("c", "g")
	case "listen":
		w.Mix("c", []string{"g"})
		w.Mix("g", []string{"c"})
		w.Mix("s", []string{"c", "g"})
	case "whisper":
		w.Mix("c", []string{"g"})
		w.Mix("g", []string{"c", "s"})
		w.Mix("s", []string{"c", "g"})
	case "barge":
		conference(w, ids...)
	}
	m.frame(0) // the first tick makes the mixer's scratch
	return m
}

// frame is one 20 ms frame of the call: a packet from every phone handled
// by its leg (forwarded, captured), then the mix clock's tick.
func (m *monitoredCall) frame(i int) {
	for j, l := range m.legs {
		binary.BigEndian.PutUint16(m.pkts[j][2:], uint16(i))
		binary.BigEndian.PutUint32(m.pkts[j][4:], uint32(i)*160)
		l.handle(m.pkts[j], m.from[j], m.now)
	}
	m.w.mixOnce(m.now)
	m.now += int64(20 * time.Millisecond)
}

// A frame of a monitored call allocates nothing, in any mode, and every
// leg is sent what it hears.
func TestMonitoredFrameAllocatesNothing(t *testing.T) {
	for i, shape := range []string{"bridge", "listen", "whisper", "barge"} {
		m := newMonitoredCall(t, 38720+20*i, shape)
		n := 1
		if a := testing.AllocsPerRun(200, func() { m.frame(n); n++ }); a != 0 {
			t.Fatalf("%s: %v allocations a frame", shape, a)
		}
		for _, l := range m.legs {
			if out := l.pktsOut.Load(); out < 200 {
				t.Fatalf("%s: leg %s was sent %d packets in 200 frames", shape, l.id, out)
			}
		}
	}
}

// BenchmarkMonitoredCall is the media worker's CPU for one 20 ms frame of
// a call (every leg's packet handled, decoded into its mix buffer when it
// is a source, forwarded or mixed, encoded and sent): a plain relayed call
// (bridge) against a monitored one (three legs, each with the MIX the
// grain sends for the mode). cpu-us/call-s is the process's CPU time (user
// and system, so the sends count and other processes on a busy machine do
// not) for one second of the call.
func BenchmarkMonitoredCall(b *testing.B) {
	for i, shape := range []string{"bridge", "listen", "whisper", "barge"} {
		b.Run(shape, func(b *testing.B) {
			m := newMonitoredCall(b, 38720+20*i, shape)
			b.ReportAllocs()
			n := 1
			cpu := cpuTime(b)
			for b.Loop() {
				m.frame(n)
				n++
			}
			b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(n-1)*50/1e3, "cpu-us/call-s")
		})
	}
}

// cpuTime is the CPU the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
