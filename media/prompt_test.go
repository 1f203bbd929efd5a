package media

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// noteHz is a pattern's frequency per 20 ms frame (its notes are whole
// frames), 0 for silence.
func noteHz(notes []Note) []int {
	var out []int
	for _, n := range notes {
		out = append(out, slices.Repeat([]int{n.Hz}, n.Ms/20)...)
	}
	return out
}

// allHz is every frequency of the hold tone, the chimes and the prompts.
var allHz = []int{425, 523, 587, 660, 784, 880, 988, 1000, 1175, 1400, 1800}

// checkFrame: a decoded frame holds hz at about -16 dBFS and none of the
// other tones' frequencies 200 Hz or more away, or is silent when hz is 0.
func checkFrame(t *testing.T, what string, f []int16, hz int) {
	t.Helper()
	if hz == 0 {
		if slices.ContainsFunc(f, func(v int16) bool { return v > 8 || v < -8 }) { // G.711 codes no exact zero
			t.Fatalf("%s is not silent", what)
		}
		return
	}
	if l := level(f, float64(hz)); l < 2500 || l > 5200 {
		t.Fatalf("%s: %d Hz at %.0f, want about 5000", what, hz, l)
	}
	for _, o := range allHz {
		if abs(o-hz) >= 200 {
			if l := level(f, float64(o)); l > 100 {
				t.Fatalf("%s: %d Hz at %.0f beside its %d Hz", what, o, l, hz)
			}
		}
	}
}

func decodeFrame(f *[frameSamples]byte, aLaw bool) []int16 {
	table := &ulawLin
	if aLaw {
		table = &alawLin
	}
	out := make([]int16, frameSamples)
	decodeG711(out, f[:], table)
	return out
}

// The prompts' sounds as the README documents them, decoded from both
// encoded laws frame by frame.
func TestPromptPatterns(t *testing.T) {
	want := []PromptSound{
		// A rising G major arpeggio: 784, 988 and 1175 Hz, 2.5 s.
		{"greeting", []Note{{784, 600}, {0, 100}, {988, 600}, {0, 100}, {1175, 1100}}, false},
		// C D G D C D C: 440 ms notes 60 ms apart, the last 940 ms, 4 s looped.
		{"music", []Note{{523, 440}, {0, 60}, {587, 440}, {0, 60}, {784, 440}, {0, 60},
			{587, 440}, {0, 60}, {523, 440}, {0, 60}, {587, 440}, {0, 60}, {523, 940}, {0, 60}}, true},
		// 200 ms of silence, then 1000 Hz for 500 ms.
		{"beep", []Note{{0, 200}, {1000, 500}}, false},
	}
	got := Prompts()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Prompts() = %v\nwant %v", got, want)
	}
	got[0].Notes[0].Hz = 1 // a copy: the greeting stays as documented
	for i, s := range []*sound{greetingSound, musicSound, beepSound} {
		hz := noteHz(want[i].Notes)
		if len(s.u) != len(hz) || len(s.a) != len(hz) {
			t.Fatalf("%s: %d and %d frames, want %d", want[i].Name, len(s.u), len(s.a), len(hz))
		}
		for j, h := range hz {
			for _, aLaw := range []bool{false, true} {
				checkFrame(t, fmt.Sprintf("%s frame %d (A-law %v)", want[i].Name, j, aLaw), decodeFrame(s.frame(uint64(j), aLaw), aLaw), h)
			}
		}
	}
	if len(greetingSound.u) != 125 || len(musicSound.u) != 200 || len(beepSound.u) != 35 {
		t.Fatalf("greeting %d frames, music %d, beep %d: want 2.5 s, 4 s and 0.7 s", len(greetingSound.u), len(musicSound.u), len(beepSound.u))
	}
}

func TestUnknownPrompt(t *testing.T) {
	for _, name := range []Prompt{"", "fanfare", "Queue"} {
		if _, err := PromptSource(name); !errors.Is(err, ErrUnknownPrompt) {
			t.Fatalf("PromptSource(%q): %v", name, err)
		}
	}
}

// promptedLeg is leg id answering phone p's offer of pts, SRTP when p has a key.
func promptedLeg(t testing.TB, w *Worker, id string, p *phone, pts string) *Leg {
	t.Helper()
	l, err := w.AddLeg(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AcceptOffer(p.sdp(pts, "sendrecv"), p.key != nil); err != nil {
		t.Fatal(err)
	}
	p.heard(l.Answer(l.Codecs()))
	return l
}

func route(t testing.TB, w *Worker, leg string, p Prompt) {
	t.Helper()
	src, err := PromptSource(p)
	if err != nil {
		t.Fatal(err)
	}
	w.Route(leg, src)
}

// checkStream: the packets are one stream: one SSRC and payload type, each
// sequence number one on, each timestamp 160 on, the marker on the first only.
func checkStream(t *testing.T, ps []rtp.Packet, pt uint8) {
	t.Helper()
	for i, p := range ps {
		if p.SSRC != ps[0].SSRC || p.PayloadType != pt || p.Marker != (i == 0) {
			t.Fatalf("packet %d: SSRC %x PT %d marker %v", i, p.SSRC, p.PayloadType, p.Marker)
		}
		if i > 0 && (p.SequenceNumber != ps[i-1].SequenceNumber+1 || p.Timestamp != ps[i-1].Timestamp+160) {
			t.Fatalf("packet %d: seq %d ts %d after %d %d", i, p.SequenceNumber, p.Timestamp, ps[i-1].SequenceNumber, ps[i-1].Timestamp)
		}
	}
}

// Each prompt driven tick by tick on the service clock to a real leg, in
// each G.711 law, plain and SRTP: what the phone decodes is the greeting
// frame by frame and then the music from its start (looped), or the
// greeting and then nothing with one prompt_done at the greeting's end, on
// one continuous stream.
func TestPromptTickByTick(t *testing.T) {
	greeting, music, beep := noteHz(greetingNotes), noteHz(musicNotes), noteHz(beepNotes)
	const ticks = 125 + 200 + 30 // the greeting, the music once and its start again
	for i, c := range []struct {
		prompt Prompt
		pts    string // what the phone offers; the leg sends the first G.711
		srtp   bool
		want   []int // Hz per frame heard
	}{
		{QueuePrompt, "0 8 101", false, slices.Concat(greeting, music, music[:30])},
		{QueuePrompt, "8 0 101", true, slices.Concat(greeting, music, music[:30])},
		{MessagePrompt, "0 101", true, greeting},
		{MessagePrompt, "8 101", false, greeting},
		{MusicPrompt, "8 101", false, slices.Concat(music, music[:155])},
		{VoicemailPrompt, "0 101", true, slices.Concat(greeting, beep)},
	} {
		t.Run(fmt.Sprintf("%s/%s/srtp=%v", c.prompt, c.pts[:1], c.srtp), func(t *testing.T) {
			s := testService(t, 36600+20*i, Config{})
			s.manualClock.Store(true)
			var ev events
			w := s.NewWorker("c", ev.add)
			defer w.Close()
			p := newPhone(t, c.srtp)
			promptedLeg(t, w, "a", p, c.pts)
			route(t, w, "a", c.prompt)
			now := time.Now().UnixNano()
			for n := range ticks {
				s.clockTick(now)
				now += int64(toneFrameDur)
				if n%20 == 19 { // no more than the phone's socket buffer holds
					eventually(t, "frames", func() bool { return p.count() >= min(n+1, len(c.want)) })
				}
				if n == len(greeting)-1 && len(ev.of(EventPromptDone)) != 0 {
					t.Fatal("prompt_done before the greeting has played")
				}
			}
			time.Sleep(20 * time.Millisecond) // anything more is on its way
			ps := p.packets()
			if len(ps) != len(c.want) || undecrypted(p) != 0 {
				t.Fatalf("%d frames (%d undecryptable), want %d", len(ps), undecrypted(p), len(c.want))
			}
			pt := uint8(0)
			if c.pts[0] == '8' {
				pt = 8
			}
			checkStream(t, ps, pt)
			for j, hz := range c.want {
				checkFrame(t, fmt.Sprintf("frame %d", j), decodePayload(ps[j]), hz)
			}
			wantDone := 0
			if c.prompt == MessagePrompt || c.prompt == VoicemailPrompt {
				wantDone = 1
			}
			eventually(t, "events", func() bool { return len(ev.of(EventPromptDone)) >= wantDone })
			time.Sleep(20 * time.Millisecond)
			if done := ev.of(EventPromptDone); len(done) != wantDone || wantDone == 1 && (done[0].LegID != "a" || done[0].CallID != "c") {
				t.Fatalf("prompt_done events %+v, want %d", done, wantDone)
			}
		})
	}
}

// A caller waiting in a queue on the real 20 ms clock: the greeting from its
// first frame, then a member answers and the bridge replaces the prompt on
// the same stream (one SSRC, sequence numbers one on, the timestamp moved by
// the time that passed where the source changed), and the clock sends it
// nothing more.
func TestPromptThenBridgeIsOneStream(t *testing.T) {
	s := testService(t, 36720, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	caller, member := newPhone(t, true), newPhone(t, false)
	lc := promptedLeg(t, w, "caller", caller, "0 101")
	route(t, w, "caller", QueuePrompt)
	eventually(t, "greeting", func() bool { return caller.count() >= 30 })

	lm := promptedLeg(t, w, "member", member, "0 101")
	w.Bridge("caller", "member")
	time.Sleep(30 * time.Millisecond) // a prompt frame may still be on its way
	n := caller.count()
	member.send(lm.LocalPort(), 10, 0)
	eventually(t, "the member", func() bool { return caller.count() == n+10 })
	time.Sleep(60 * time.Millisecond)
	if caller.count() != n+10 {
		t.Fatalf("%d packets after the member's 10: the prompt goes on", caller.count()-n-10)
	}
	if lc.stats().PacketsOut != uint64(n+10) {
		t.Fatalf("sent %d, heard %d", lc.stats().PacketsOut, n+10)
	}

	ps := caller.packets()
	for i, p := range ps {
		if i < n && !bytes.Equal(p.Payload, greetingSound.u[i][:]) {
			t.Fatalf("packet %d is not greeting frame %d", i, i)
		}
		if i >= n && !bytes.Equal(p.Payload, make([]byte, 160)) {
			t.Fatalf("packet %d is not the member's", i)
		}
		if p.SSRC != ps[0].SSRC || p.PayloadType != 0 {
			t.Fatalf("packet %d: SSRC %x PT %d", i, p.SSRC, p.PayloadType)
		}
		if i == 0 {
			continue
		}
		prev := ps[i-1]
		step := p.Timestamp - prev.Timestamp
		if p.SequenceNumber != prev.SequenceNumber+1 || p.Marker != (i == n) ||
			i != n && step != 160 || i == n && (step < 160 || step >= 160*10) {
			t.Fatalf("packet %d: seq %d after %d, timestamp step %d, marker %v", i, p.SequenceNumber, prev.SequenceNumber, step, p.Marker)
		}
	}
}

// A remote that puts the call on hold while it hears music gets nothing
// meanwhile; back off hold it hears the music where it has got to, as a new
// talk spurt whose timestamp moved by the time that passed.
func TestPromptAcrossRemoteHold(t *testing.T) {
	s := testService(t, 36760, Config{})
	s.manualClock.Store(true)
	w := s.NewWorker("c", nil)
	defer w.Close()
	p := newPhone(t, false)
	l := promptedLeg(t, w, "a", p, "0 101")
	route(t, w, "a", MusicPrompt)
	now := time.Now().UnixNano()
	tick := func(n int) {
		for range n {
			s.clockTick(now)
			now += int64(toneFrameDur)
		}
	}
	reoffer := func(dir string) {
		if err := l.AcceptOffer(p.sdp("0 101", dir), false); err != nil {
			t.Fatal(err)
		}
		l.Answer(l.Codecs())
	}
	tick(5)
	reoffer("sendonly")
	tick(10)
	reoffer("sendrecv")
	tick(5)
	eventually(t, "frames", func() bool { return p.count() >= 10 })
	time.Sleep(20 * time.Millisecond)
	ps := p.packets()
	if len(ps) != 10 {
		t.Fatalf("%d frames, want 5 before the hold and 5 after", len(ps))
	}
	checkStream(t, ps[:5], 0)
	checkStream(t, ps[5:], 0)
	if ps[5].SequenceNumber != ps[4].SequenceNumber+1 || ps[5].Timestamp-ps[4].Timestamp != 11*160 {
		t.Fatalf("across the hold: seq %d after %d, timestamp step %d, want 1760", ps[5].SequenceNumber, ps[4].SequenceNumber, ps[5].Timestamp-ps[4].Timestamp)
	}
	for i, pk := range ps {
		f := i
		if i >= 5 {
			f += 10
		}
		if !bytes.Equal(pk.Payload, musicSound.u[f][:]) {
			t.Fatalf("packet %d is not music frame %d", i, f)
		}
	}
}

// A message to a leg nothing can be sent to still ends on time: a remote
// on hold, or one that agreed no G.711, hears nothing and prompt_done comes
// once, after the greeting's 2.5 s.
func TestMessageEndsWhenNothingIsSent(t *testing.T) {
	for i, c := range []struct{ name, pts, dir string }{
		{"on hold", "0 101", "sendonly"},
		{"no G.711", "9 101", "sendrecv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testService(t, 36780+20*i, Config{})
			s.manualClock.Store(true)
			var ev events
			w := s.NewWorker("c", ev.add)
			defer w.Close()
			p := newPhone(t, false)
			l, err := w.AddLeg("a")
			if err != nil {
				t.Fatal(err)
			}
			if err := l.AcceptOffer(p.sdp(c.pts, c.dir), false); err != nil {
				t.Fatal(err)
			}
			l.Answer(l.Codecs())
			route(t, w, "a", MessagePrompt)
			now := time.Now().UnixNano()
			for n := range 200 {
				if n == len(greetingSound.u) {
					time.Sleep(20 * time.Millisecond)
					if len(ev.of(EventPromptDone)) != 0 {
						t.Fatal("prompt_done before the greeting's time")
					}
				}
				s.clockTick(now)
				now += int64(toneFrameDur)
			}
			eventually(t, "prompt_done", func() bool { return len(ev.of(EventPromptDone)) > 0 })
			time.Sleep(20 * time.Millisecond)
			if n := len(ev.of(EventPromptDone)); n != 1 || p.count() != 0 || l.stats().PacketsOut != 0 {
				t.Fatalf("%d prompt_done, %d packets heard, %d sent", n, p.count(), l.stats().PacketsOut)
			}
		})
	}
}

// One Source routed to two legs plays to each from its own start.
func TestOneSourceTwoLegs(t *testing.T) {
	s := testService(t, 36820, Config{})
	s.manualClock.Store(true)
	w := s.NewWorker("c", nil)
	defer w.Close()
	pa, pb := newPhone(t, false), newPhone(t, false)
	promptedLeg(t, w, "a", pa, "0 101")
	promptedLeg(t, w, "b", pb, "0 101")
	src, err := PromptSource(QueuePrompt)
	if err != nil {
		t.Fatal(err)
	}
	w.Route("a", src)
	now := time.Now().UnixNano()
	for i := range 10 {
		if i == 5 {
			w.Route("b", src)
		}
		s.clockTick(now)
		now += int64(toneFrameDur)
	}
	eventually(t, "frames", func() bool { return pa.count() == 10 && pb.count() == 5 })
	for i, p := range pb.packets() {
		if !bytes.Equal(p.Payload, greetingSound.u[i][:]) {
			t.Fatalf("b's packet %d is not greeting frame %d", i, i)
		}
	}
}

// A chime on a leg hearing a prompt plays on its own; the prompt keeps time
// meanwhile and is heard again where it has got to. Routing the prompt again
// starts it over.
func TestChimeOverPromptAndRestart(t *testing.T) {
	s := testService(t, 36740, Config{})
	s.manualClock.Store(true)
	s.manualMix = true
	w := s.NewWorker("c", nil)
	defer w.Close()
	p := newPhone(t, false)
	promptedLeg(t, w, "a", p, "0 101")
	route(t, w, "a", QueuePrompt)
	now := time.Now().UnixNano()
	tick := func(n int, mix bool) {
		for range n {
			s.clockTick(now)
			if mix {
				w.mixOnce(now)
			}
			now += int64(toneFrameDur)
		}
	}
	tick(10, false)
	if err := w.Chime(JoinChime, "a"); err != nil {
		t.Fatal(err)
	}
	tick(chimeFrames, true) // the chime, alone
	tick(10, false)         // back on the prompt
	route(t, w, "a", QueuePrompt)
	tick(5, false)
	eventually(t, "frames", func() bool { return p.count() == 10+chimeFrames+10+5 })
	ps := p.packets()
	for i, p := range ps {
		var want []byte
		switch {
		case i < 10:
			want = greetingSound.u[i][:]
		case i < 10+chimeFrames:
			continue
		case i < 10+chimeFrames+10:
			want = greetingSound.u[i][:] // where the greeting has got to
		default:
			want = greetingSound.u[i-10-chimeFrames-10][:] // from its start
		}
		if !bytes.Equal(p.Payload, want) {
			t.Fatalf("packet %d: not the greeting frame it should be", i)
		}
		if restart := i == 0 || i == 10 || i == 10+chimeFrames || i == 10+chimeFrames+10; p.Marker != restart {
			t.Fatalf("packet %d: marker %v", i, p.Marker)
		}
	}
}

// A tick with more callers than one goroutine serves sends every caller
// exactly one frame.
func TestPromptTickServesEveryCaller(t *testing.T) {
	const callers = clockShard + 10
	// 34000-34599: a range no other package's tests take (go test runs
	// packages in parallel).
	s, err := NewService(Config{IP: testIP, PortMin: 34000, PortMax: 34000 + 2*callers + 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.manualClock.Store(true)
	sink := newPhone(t, false)
	var legs []*Leg
	for i := range callers {
		w := s.NewWorker(fmt.Sprint("call-", i), nil)
		legs = append(legs, promptedLeg(t, w, "caller", sink, "0 101"))
		route(t, w, "caller", QueuePrompt)
	}
	now := time.Now().UnixNano()
	for range 3 {
		s.clockTick(now)
		now += int64(toneFrameDur)
	}
	for i, l := range legs {
		if n := l.stats().PacketsOut; n != 3 {
			t.Fatalf("caller %d sent %d frames in 3 ticks", i, n)
		}
	}
}

// BenchmarkPrompt times one tick of the service clock with a queue of
// callers hearing the queue prompt (one call each), every one sent a frame:
// per caller, a frame copied into its stream, SRTP when it is, and a send.
// ns/op is the tick's wall time (spread over the cores), cpu-ns/caller the
// process's CPU per caller and tick.
func BenchmarkPrompt(b *testing.B) {
	for _, c := range []struct {
		name    string
		base    int
		callers int
		srtp    bool
	}{{"1000-callers", 41000, 1000, false}, {"1000-callers-srtp", 44000, 1000, true}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := NewService(Config{IP: testIP, PortMin: c.base, PortMax: c.base + 2*c.callers + 1}, slog.New(slog.DiscardHandler))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			s.manualClock.Store(true)
			sink := &phone{t: b, conn: listen(b)} // nobody reads: the kernel drops what overflows
			if c.srtp {
				sink.key = make([]byte, 30)
			}
			for i := range c.callers {
				w := s.NewWorker(fmt.Sprint("call-", i), nil)
				promptedLeg(b, w, "caller", sink, "0 101")
				route(b, w, "caller", QueuePrompt)
			}
			now := time.Now().UnixNano()
			s.clockTick(now) // each leg's first frame makes its send buffer
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				s.clockTick(now)
				now += int64(toneFrameDur)
			}
			b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(b.N)/float64(c.callers), "cpu-ns/caller")
		})
	}
}
