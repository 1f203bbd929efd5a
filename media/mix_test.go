package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestG711Tables(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		if int(ulawLin[b]) != unulaw(b) || int(alawLin[b]) != unalaw(b) {
			t.Fatalf("code %#x: %d %d, reference %d %d", b, ulawLin[b], alawLin[b], unulaw(b), unalaw(b))
		}
		// Every code survives decode and encode (mu-law's negative zero
		// becomes positive zero).
		if got := ulaw(ulawLin[b]); got != b && !(b == 0x7f && got == 0xff) {
			t.Fatalf("mu-law %#x round trips to %#x", b, got)
		}
		if got := alaw(alawLin[b]); got != b {
			t.Fatalf("A-law %#x round trips to %#x", b, got)
		}
	}
	// Every sample survives encode and decode within the law's quantisation
	// error (about 1/16 of the level for both laws, a few units near zero,
	// and the clipping at the ends of the range).
	for x := -32768; x <= 32767; x++ {
		s := int16(x)
		eu := math.Abs(float64(int(ulawLin[ulaw(s)]) - x))
		ea := math.Abs(float64(int(alawLin[alaw(s)]) - x))
		if eu > math.Max(4, math.Abs(float64(x))/15)+float64(max(0, abs(x)-32124)) {
			t.Fatalf("mu-law %d decodes %v away", x, eu)
		}
		if ea > math.Max(8, math.Abs(float64(x))/15)+float64(max(0, abs(x)-32256)) {
			t.Fatalf("A-law %d decodes %v away", x, ea)
		}
	}
	var frame [frameSamples]int16
	var enc [frameSamples]byte
	dec := make([]int16, frameSamples)
	for i := range frame {
		frame[i] = int16(8000 * math.Sin(float64(i)/5))
	}
	encodeULaw(enc[:], &frame)
	decodeG711(dec, enc[:], &ulawLin)
	for i := range frame {
		if d := abs(int(dec[i]) - int(frame[i])); d > 256 {
			t.Fatalf("sample %d: %d became %d", i, frame[i], dec[i])
		}
	}
	encodeALaw(enc[:], &frame)
	decodeG711(dec, enc[:], &alawLin)
	for i := range frame {
		if d := abs(int(dec[i]) - int(frame[i])); d > 256 {
			t.Fatalf("sample %d: %d became %d", i, frame[i], dec[i])
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestSaturatingMix(t *testing.T) {
	for _, c := range []struct {
		in   []int16
		want int16
	}{
		{nil, 0},
		{[]int16{1000, -3000}, -2000},
		{[]int16{1000, 3000, -7000}, -3000},
		{[]int16{30000, 30000}, 32767},
		{[]int16{-30000, -30000}, -32768},
		{[]int16{32767, 32767, 32767, -32768}, 32767},
		{[]int16{30000, 30000, -30000}, 30000}, // no clipping before the end
		{[]int16{-32768, -1}, -32768},
	} {
		var acc [frameSamples]int32
		for _, v := range c.in {
			var f [frameSamples]int16
			for i := range f {
				f[i] = v
			}
			mixAdd(&acc, &f)
		}
		var out [frameSamples]int16
		saturate(&out, &acc)
		for i, v := range out {
			if v != c.want {
				t.Fatalf("%v: sample %d is %d, want %d", c.in, i, v, c.want)
			}
		}
	}
}

// chimeFrames is the join chime's length in frames.
var chimeFrames = len(chimeLin[JoinChime])

func constant(n int, code byte) []byte { return bytes.Repeat([]byte{code}, n) }

// The per-source buffer: a tick takes up to a frame; overflow drops the
// oldest audio; a short frame is padded with silence; nothing is no frame.
func TestCaptureBuffer(t *testing.T) {
	var c capture
	c.pull()
	if c.has {
		t.Fatal("empty buffer gave a frame")
	}
	lin := func(v int16) []byte { return constant(frameSamples, ulaw(v)) }
	level := func(v int16) int16 { return ulawLin[ulaw(v)] }
	for i := range 5 { // two frames too many: the first two are dropped
		c.put(lin(int16(1000*(i+1))), &ulawLin)
	}
	for _, want := range []int16{3000, 4000, 5000} {
		c.pull()
		if !c.has || c.frame[0] != level(want) || c.frame[frameSamples-1] != level(want) {
			t.Fatalf("frame %d..%d, want %d", c.frame[0], c.frame[frameSamples-1], level(want))
		}
	}
	c.pull()
	if c.has {
		t.Fatal("drained buffer gave a frame")
	}
	c.put(constant(100, ulaw(-500)), &ulawLin) // wraps around the ring
	c.put(constant(100, ulaw(700)), &ulawLin)
	c.pull()
	if !c.has || c.frame[0] != level(-500) || c.frame[99] != level(-500) || c.frame[100] != level(700) || c.frame[159] != level(700) {
		t.Fatalf("frame %v", c.frame)
	}
	c.pull()
	if !c.has || c.frame[39] != level(700) || c.frame[40] != 0 || c.frame[159] != 0 {
		t.Fatalf("short frame %v", c.frame)
	}
}

// mixLegs adds one leg per phone, each answering its own offer with pts.
func mixLegs(t testing.TB, w *Worker, ids []string, phones []*phone, pts []string) []*Leg {
	t.Helper()
	ls := make([]*Leg, len(ids))
	for i, id := range ids {
		l, err := w.AddLeg(id)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.AcceptOffer(phones[i].sdp(pts[i], "sendrecv"), false); err != nil {
			t.Fatal(err)
		}
		phones[i].heard(l.Answer(l.Codecs()))
		ls[i] = l
	}
	return ls
}

// conference makes each leg hear all the others.
func conference(w *Worker, ids ...string) {
	for _, id := range ids {
		w.Mix(id, slices.DeleteFunc(slices.Clone(ids), func(o string) bool { return o == id }))
	}
}

func buffered(l *Leg) int {
	c := l.cap.Load()
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func undecrypted(p *phone) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.undecr
}

func mixRunning(w *Worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mixer.running
}

// decodePayload is a received G.711 packet as linear samples.
func decodePayload(p rtp.Packet) []int16 {
	table := &ulawLin
	if p.PayloadType == 8 {
		table = &alawLin
	}
	out := make([]int16, len(p.Payload))
	decodeG711(out, p.Payload, table)
	return out
}

// The mixer driven tick by tick: exact sums, per-leg codecs, silence for a
// source that sent nothing, no DTMF in the mix, no self in a mix, and back
// to forwarding when the routes say so.
func TestMixTickByTick(t *testing.T) {
	s := testService(t, 38400, Config{})
	s.manualMix = true
	w := s.NewWorker("c", nil)
	defer w.Close()
	pa, pb, pc := newPhone(t, false), newPhone(t, false), newPhone(t, false)
	ls := mixLegs(t, w, []string{"a", "b", "c"}, []*phone{pa, pb, pc}, []string{"0 8 101", "0 101", "8 101"})
	la, lb, lc := ls[0], ls[1], ls[2]
	conference(w, "a", "b", "c")
	now := time.Now().UnixNano()

	// a 1000 (PCMU), b 3000 (PCMU), c -7000 (PCMA).
	qa, qb, qc := int(ulawLin[ulaw(1000)]), int(ulawLin[ulaw(3000)]), int(alawLin[alaw(-7000)])
	pa.sendPacket(la.LocalPort(), 0, false, constant(160, ulaw(1000)))
	pb.sendPacket(lb.LocalPort(), 0, false, constant(160, ulaw(3000)))
	pc.sendPacket(lc.LocalPort(), 8, false, constant(160, alaw(-7000)))
	eventually(t, "three frames captured", func() bool { return buffered(la) == 160 && buffered(lb) == 160 && buffered(lc) == 160 })
	if !w.mixOnce(now) {
		t.Fatal("no mix plan")
	}
	eventually(t, "one mixed frame each", func() bool { return pa.count() == 1 && pb.count() == 1 && pc.count() == 1 })
	for _, c := range []struct {
		p    *phone
		pt   uint8
		want []byte
	}{
		{pa, 0, constant(160, ulaw(int16(qb+qc)))},
		{pb, 0, constant(160, ulaw(int16(qa+qc)))},
		{pc, 8, constant(160, alaw(int16(qa+qb)))},
	} {
		p := c.p.packets()[0]
		if p.PayloadType != c.pt || !bytes.Equal(p.Payload, c.want) || !p.Marker {
			t.Fatalf("PT %d marker %v payload %x, want PT %d %x", p.PayloadType, p.Marker, p.Payload[:4], c.pt, c.want[:4])
		}
	}

	// Only b speaks (and sends a digit, which is not mixed): a and c hear b
	// alone, b hears nothing, so nothing is sent to it.
	pb.sendPacket(lb.LocalPort(), 101, true, []byte{5, 10, 0, 160})
	pb.sendPacket(lb.LocalPort(), 0, false, constant(160, ulaw(3000)))
	eventually(t, "b's frame", func() bool { return buffered(lb) == 160 })
	w.mixOnce(now + int64(20*time.Millisecond))
	eventually(t, "second frames", func() bool { return pa.count() == 2 && pc.count() == 2 })
	if p := pa.packets()[1]; !bytes.Equal(p.Payload, constant(160, ulaw(int16(qb)))) || p.Marker ||
		p.SequenceNumber != pa.packets()[0].SequenceNumber+1 || p.Timestamp != pa.packets()[0].Timestamp+160 {
		t.Fatalf("a heard %x seq %d ts %d marker %v", p.Payload[:4], p.SequenceNumber, p.Timestamp, p.Marker)
	}
	if p := pc.packets()[1]; !bytes.Equal(p.Payload, constant(160, alaw(int16(qb)))) {
		t.Fatalf("c heard %x", p.Payload[:4])
	}
	time.Sleep(20 * time.Millisecond)
	if pb.count() != 1 {
		t.Fatal("b heard something when nobody else spoke")
	}

	// A leg listed in its own mix does not hear itself.
	w.Mix("a", []string{"a", "b", "b"})
	pa.sendPacket(la.LocalPort(), 0, false, constant(160, ulaw(1000)))
	pb.sendPacket(lb.LocalPort(), 0, false, constant(160, ulaw(3000)))
	eventually(t, "frames", func() bool { return buffered(la) == 160 && buffered(lb) == 160 })
	w.mixOnce(now + int64(40*time.Millisecond))
	eventually(t, "third frame", func() bool { return pa.count() == 3 })
	if p := pa.packets()[2]; !bytes.Equal(p.Payload, constant(160, ulaw(int16(qb)))) {
		t.Fatalf("a heard %x, want b alone", p.Payload[:4])
	}

	// Back to a two-party bridge and c on silence: nothing is mixed or
	// captured any more, and a's packets reach b unchanged.
	w.Bridge("a", "b")
	w.Route("c", Silence())
	if w.mixer.plan.Load() != nil || la.cap.Load() != nil || lb.cap.Load() != nil || lc.cap.Load() != nil {
		t.Fatal("still mixing after the bridge")
	}
	if !slices.Equal(*la.listeners.Load(), []*Leg{lb}) || !slices.Equal(*lb.listeners.Load(), []*Leg{la}) || len(*lc.listeners.Load()) != 0 {
		t.Fatal("listeners not restored")
	}
	if w.mixOnce(now) {
		t.Fatal("a tick with nothing to mix")
	}
	raw := make([]byte, 160)
	for i := range raw {
		raw[i] = byte(i)
	}
	time.Sleep(20 * time.Millisecond)
	nb := pb.count()
	pa.sendPacket(la.LocalPort(), 0, false, raw)
	eventually(t, "forwarded", func() bool { return pb.count() == nb+1 })
	if p := pb.packets()[nb]; !bytes.Equal(p.Payload, raw) || p.SSRC != pb.packets()[0].SSRC {
		t.Fatal("the bridge must forward packets unchanged on the same stream")
	}
}

// Each chime, tick by tick: its 15 frames on a leg that hears nothing, then
// the plan is gone; over a bridge it is mixed with what the leg hears and
// the leg goes back to forwarding after it.
func TestChimeTickByTick(t *testing.T) {
	for _, c := range []struct {
		name string
		tone Tone
		base int
	}{{"join", JoinChime, 38420}, {"entry", EntryTone, 38480}, {"notice", NoticeTone, 38500}} {
		t.Run(c.name, func(t *testing.T) { chimeTickByTick(t, c.tone, c.base) })
	}
}

func chimeTickByTick(t *testing.T, tone Tone, base int) {
	s := testService(t, base, Config{})
	s.manualMix = true
	w := s.NewWorker("c", nil)
	defer w.Close()
	pa, pb, pc := newPhone(t, false), newPhone(t, false), newPhone(t, false)
	ls := mixLegs(t, w, []string{"a", "b", "c"}, []*phone{pa, pb, pc}, []string{"0 101", "0 101", "0 101"})
	la, lb := ls[0], ls[1]
	w.Bridge("a", "b")
	if err := w.Chime(tone, "b", "c", "nobody"); err != nil {
		t.Fatal(err)
	}
	if la.cap.Load() == nil || len(*la.listeners.Load()) != 0 {
		t.Fatal("a chimed leg must hear its bridge through the mixer")
	}
	frames := chimeLin[tone]
	now := time.Now().UnixNano()
	qa := int(ulawLin[ulaw(2000)])
	for i := range frames {
		pa.sendPacket(la.LocalPort(), 0, false, constant(160, ulaw(2000)))
		eventually(t, "a's frame", func() bool { return buffered(la) == 160 })
		w.mixOnce(now + int64(i)*int64(20*time.Millisecond))
	}
	eventually(t, "the chime's frames at b and c", func() bool { return pb.count() == len(frames) && pc.count() == len(frames) })
	if w.mixer.plan.Load() != nil || la.cap.Load() != nil || !slices.Equal(*la.listeners.Load(), []*Leg{lb}) {
		t.Fatal("the chime did not end")
	}
	for i := range frames {
		b, c := pb.packets()[i], pc.packets()[i]
		for j := range frameSamples {
			if want := ulaw(int16(qa + int(frames[i][j]))); b.Payload[j] != want {
				t.Fatalf("b frame %d sample %d: %x, want %x", i, j, b.Payload[j], want)
			}
			if want := ulaw(frames[i][j]); c.Payload[j] != want {
				t.Fatalf("c frame %d sample %d: %x, want %x", i, j, c.Payload[j], want)
			}
		}
	}
	pa.sendPacket(la.LocalPort(), 0, false, constant(160, 0x42))
	eventually(t, "forwarded", func() bool { return pb.count() == len(frames)+1 })
	if p := pb.packets()[len(frames)]; !bytes.Equal(p.Payload, constant(160, 0x42)) || !p.Marker {
		t.Fatal("after the chime b must hear a's packets unchanged")
	}
	if w.Chime(tone, "a") != nil || w.mixer.plan.Load() == nil {
		t.Fatal("chime on a")
	}
	if err := w.Chime(nTones, "b"); err == nil || w.chiming["b"] {
		t.Fatalf("an unknown tone: %v", err)
	}
	w.Close()
	if err := w.Chime(tone, "a"); err != ErrClosed {
		t.Fatalf("chime on a closed worker: %v", err)
	}
}

// A conference on real sockets and the real 20 ms clock: three phones send
// constant levels (one of them SRTP, one PCMA only) and each hears the sum
// of the other two and nothing of itself; then a plain bridge again.
func TestConferenceOverUDP(t *testing.T) {
	s := testService(t, 38440, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	pa, pb, pc := newPhone(t, true), newPhone(t, false), newPhone(t, false)
	ls := mixLegs(t, w, []string{"a", "b", "c"}, []*phone{pa, pb, pc}, []string{"0 8 101", "0 101", "8 101"})
	la, lb, lc := ls[0], ls[1], ls[2]
	conference(w, "a", "b", "c")
	if !mixRunning(w) {
		t.Fatal("no mix clock")
	}

	levels := map[*phone]int16{pa: 1000, pb: 3000, pc: -7000}
	q := map[*phone]int{pa: int(ulawLin[ulaw(1000)]), pb: int(ulawLin[ulaw(3000)]), pc: int(alawLin[alaw(-7000)])}
	const frames = 50
	tick := time.NewTicker(20 * time.Millisecond)
	for range frames {
		<-tick.C
		pa.sendPacket(la.LocalPort(), 0, false, constant(160, ulaw(levels[pa])))
		pb.sendPacket(lb.LocalPort(), 0, false, constant(160, ulaw(levels[pb])))
		pc.sendPacket(lc.LocalPort(), 8, false, constant(160, alaw(levels[pc])))
		pa.ts += 160
		pb.ts += 160
		pc.ts += 160
	}
	tick.Stop()
	time.Sleep(100 * time.Millisecond)

	for _, c := range []struct {
		name         string
		p            *phone
		others       []*phone
		pt           uint8
		encode       func(int16) byte
		decodeExpect func(byte) int
	}{
		{"a", pa, []*phone{pb, pc}, 0, ulaw, func(b byte) int { return int(ulawLin[b]) }},
		{"b", pb, []*phone{pa, pc}, 0, ulaw, func(b byte) int { return int(ulawLin[b]) }},
		{"c", pc, []*phone{pa, pb}, 8, alaw, func(b byte) int { return int(alawLin[b]) }},
	} {
		full := c.encode(int16(q[c.others[0]] + q[c.others[1]]))
		// Either source alone is allowed at the edges (the first and last
		// ticks, or a packet late for its tick); anything with the phone's
		// own audio in it is not.
		partial := []byte{c.encode(int16(q[c.others[0]])), c.encode(int16(q[c.others[1]]))}
		ps := c.p.packets()
		if n := undecrypted(c.p); n != 0 {
			t.Fatalf("%s: %d packets did not decrypt", c.name, n)
		}
		nFull := 0
		for i, p := range ps {
			if p.PayloadType != c.pt || p.SSRC != ps[0].SSRC {
				t.Fatalf("%s packet %d: PT %d SSRC %x", c.name, i, p.PayloadType, p.SSRC)
			}
			if i > 0 && p.SequenceNumber != ps[i-1].SequenceNumber+1 {
				t.Fatalf("%s packet %d: seq %d after %d", c.name, i, p.SequenceNumber, ps[i-1].SequenceNumber)
			}
			if !bytes.Equal(p.Payload, constant(160, p.Payload[0])) {
				t.Fatalf("%s packet %d: not one level: %x", c.name, i, p.Payload)
			}
			got := decodePayload(p)[0]
			want := c.decodeExpect(full)
			switch {
			case p.Payload[0] == full:
				nFull++
			case slices.Contains(partial, p.Payload[0]):
			default:
				t.Fatalf("%s packet %d: level %d, want %d (the others' sum) or one of them alone", c.name, i, got, want)
			}
			// Within G.711 quantisation of the true sum.
			if p.Payload[0] == full {
				var sum int
				for _, o := range c.others {
					sum += int(levels[o])
				}
				if d := abs(int(got) - sum); d > 400 {
					t.Fatalf("%s: level %d is %d from the true sum %d", c.name, got, d, sum)
				}
			}
		}
		if len(ps) < frames*8/10 || len(ps) > frames+5 || nFull < frames*7/10 {
			t.Fatalf("%s: %d packets, %d with the full mix, of %d frames sent", c.name, len(ps), nFull, frames)
		}
	}

	// Back to a bridge between a and b, c hears nothing: the clock stops
	// and a's packets (SRTP) reach b unchanged on b's stream.
	w.Bridge("a", "b")
	w.Route("c", Silence())
	eventually(t, "mix clock stopped", func() bool { return !mixRunning(w) })
	time.Sleep(30 * time.Millisecond)
	nb, nc := pb.count(), pc.count()
	ssrc := pb.packets()[0].SSRC
	raw := make([]byte, 160)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	for range 10 {
		pa.sendPacket(la.LocalPort(), 0, false, raw)
		pa.ts += 160
	}
	eventually(t, "forwarded", func() bool { return pb.count() == nb+10 })
	for _, p := range pb.packets()[nb:] {
		if !bytes.Equal(p.Payload, raw) || p.SSRC != ssrc {
			t.Fatal("the bridge must forward a's packets unchanged on b's stream")
		}
	}
	if pc.count() != nc {
		t.Fatal("c hears nothing now")
	}
}

// A chime on a leg that hears nothing: about 300 ms of non-silent frames,
// 880 Hz then 660 Hz, then nothing.
func TestChimeAlone(t *testing.T) {
	s := testService(t, 38460, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	pa := newPhone(t, true)
	mixLegs(t, w, []string{"a"}, []*phone{pa}, []string{"0 101"})
	start := time.Now()
	if err := w.Chime(JoinChime, "a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "chime", func() bool { return pa.count() >= chimeFrames })
	took := time.Since(start)
	eventually(t, "mix clock stopped", func() bool { return !mixRunning(w) })
	time.Sleep(100 * time.Millisecond)
	ps := pa.packets()
	if len(ps) != chimeFrames || undecrypted(pa) != 0 {
		t.Fatalf("%d packets (%d undecryptable), want %d", len(ps), undecrypted(pa), chimeFrames)
	}
	if took < 250*time.Millisecond {
		t.Fatalf("15 frames in %v: not paced at 20 ms", took)
	}
	var pcm []int16
	for i, p := range ps {
		if i > 0 && (p.SequenceNumber != ps[i-1].SequenceNumber+1 || p.Timestamp != ps[i-1].Timestamp+160 || p.Marker) {
			t.Fatalf("packet %d: seq %d ts %d marker %v", i, p.SequenceNumber, p.Timestamp, p.Marker)
		}
		f := decodePayload(p)
		var peak int16
		for _, v := range f {
			peak = max(peak, v, -v)
		}
		if peak < 1000 {
			t.Fatalf("frame %d is (nearly) silent: peak %d", i, peak)
		}
		pcm = append(pcm, f...)
	}
	crossings := func(x []int16) int {
		n := 0
		for i := 1; i < len(x); i++ {
			if (x[i-1] < 0) != (x[i] < 0) {
				n++
			}
		}
		return n
	}
	// 100 ms of each tone: 880 Hz crosses zero 176 times, 660 Hz 132.
	hi, lo := crossings(pcm[160:960]), crossings(pcm[1360:2160])
	if abs(hi-176) > 4 || abs(lo-132) > 4 {
		t.Fatalf("zero crossings %d and %d, want 176 (880 Hz) and 132 (660 Hz)", hi, lo)
	}
}

// BenchmarkMixTick times one 20 ms frame of a conference: each leg's packet
// decoded into its buffer (the legs' readers' share), then the tick: every
// leg's frame taken, each leg's sum of the others saturated, encoded,
// SRTP-protected when the leg is SRTP, and sent.
func BenchmarkMixTick(b *testing.B) {
	for _, c := range []struct {
		name  string
		base  int
		legs  int
		srtp  bool
		held  bool // nothing sent: the mixing and encoding alone
		chime bool // a chime on top of every leg's mix
	}{
		{"3-party", 38600, 3, false, false, false},
		{"3-party-srtp", 38620, 3, true, false, false},
		{"3-party-nosend", 38640, 3, false, true, false},
		{"8-party", 38660, 8, false, false, false},
		{"3-party-chime", 38680, 3, false, false, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := testService(b, c.base, Config{})
			s.manualMix = true
			w := s.NewWorker("bench", nil)
			b.Cleanup(w.Close)
			var ids []string
			var phones []*phone
			var pts []string
			for i := range c.legs {
				p := &phone{t: b, conn: listen(b)} // nobody reads: the kernel drops what overflows
				if c.srtp {
					p.key = make([]byte, 30)
				}
				ids, phones, pts = append(ids, string(rune('a'+i))), append(phones, p), append(pts, "0 101")
			}
			ls := mixLegs(b, w, ids, phones, pts)
			conference(w, ids...)
			if c.chime {
				if err := w.Chime(JoinChime, ids...); err != nil {
					b.Fatal(err)
				}
			}
			if c.held {
				for _, l := range ls {
					l.dest.Store(&peer{addr: l.dest.Load().addr})
				}
			}
			pkt := benchPacket(1)
			for i := range pkt[12:] {
				pkt[12+i] = ulaw(int16(3000 * math.Sin(float64(i)/3)))
			}
			now := time.Now().UnixNano()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				for _, l := range ls {
					l.cap.Load().capturePacket(pkt, 12, "pcmu/8000")
				}
				if c.chime && i%chimeFrames == 0 {
					for _, l := range ls {
						l.chimeReq.Store(uint32(JoinChime) + 1)
					}
				}
				if c.chime {
					w.mixer.tick(w.mixer.plan.Load(), now) // the chime's end (a replan) is not timed
					w.mixer.ended = w.mixer.ended[:0]
				} else {
					w.mixOnce(now)
				}
				now += int64(20 * time.Millisecond)
			}
		})
	}
}

// BenchmarkCapture times what a mix source's reader adds per packet:
// handle with the G.711 payload decoded into the leg's buffer.
func BenchmarkCapture(b *testing.B) {
	s := testService(b, 38700, Config{})
	s.manualMix = true
	w := s.NewWorker("bench", nil)
	b.Cleanup(w.Close)
	pa, pb := &phone{t: b, conn: listen(b)}, &phone{t: b, conn: listen(b)}
	ls := mixLegs(b, w, []string{"a", "b"}, []*phone{pa, pb}, []string{"0 101", "0 101"})
	w.Mix("b", []string{"a"})
	from := netip.AddrPortFrom(testIP, uint16(pa.port()))
	pkt := benchPacket(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		ls[0].handle(pkt, from, time.Now().UnixNano())
	}
	b.StopTimer()
	if ls[0].cap.Load() == nil || buffered(ls[0]) != min(b.N*frameSamples, capLen) {
		b.Fatal("not captured")
	}
}
