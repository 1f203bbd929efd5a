package media

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// recordLeg adds leg "a" for phone p offering pts, answered with them.
func recordLeg(t testing.TB, w *Worker, p *phone, pts string) *Leg {
	t.Helper()
	l, err := w.AddLeg("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.AcceptOffer(p.sdp(pts, "sendrecv"), false); err != nil {
		t.Fatal(err)
	}
	p.heard(l.Answer(l.Codecs()))
	return l
}

// sendTone sends n 20 ms packets of a 440 Hz tone in payload type pt (0
// PCMU, 8 PCMA), continuing the phone's tone from sample pos.
func sendTone(p *phone, to int, n int, pt uint8, pos *int) {
	for range n {
		b := make([]byte, frameSamples)
		for i := range b {
			s := int16(8000 * math.Sin(2*math.Pi*440*float64(*pos)/8000))
			if pt == 8 {
				b[i] = alaw(s)
			} else {
				b[i] = ulaw(s)
			}
			*pos++
		}
		p.sendPacket(to, pt, false, b)
		p.ts += frameSamples
	}
}

// recording starts a recording and returns where its result arrives.
func recording(w *Worker, path string, max time.Duration) chan RecordResult {
	ch := make(chan RecordResult, 1)
	w.Record("a", path, max, func(r RecordResult) { ch <- r })
	return ch
}

func result(t *testing.T, ch chan RecordResult) RecordResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("recording never ended")
		return RecordResult{}
	}
}

// 2 s of 440 Hz with 200 ms lost in the middle: the file is 2 s long (the
// loss is silence where it was), 440 Hz throughout the audio, whatever the
// law and with SRTP.
func TestRecordTone(t *testing.T) {
	for _, c := range []struct {
		name string
		base int
		pt   uint8
		srtp bool
	}{{"pcmu", 39400, 0, false}, {"pcma", 39420, 8, false}, {"srtp-pcmu", 39440, 0, true}} {
		t.Run(c.name, func(t *testing.T) {
			s := testService(t, c.base, Config{})
			w := s.NewWorker("c", nil)
			defer w.Close()
			p := newPhone(t, c.srtp)
			pts := "0 101"
			if c.pt == 8 {
				pts = "8 101"
			}
			l := recordLeg(t, w, p, pts)
			path := filepath.Join(t.TempDir(), "m.wav")
			ch := recording(w, path, time.Minute)
			pos := 0
			sendTone(p, l.LocalPort(), 50, c.pt, &pos)
			p.seq += 10 // ten packets lost
			p.ts += 10 * frameSamples
			pos += 10 * frameSamples
			sendTone(p, l.LocalPort(), 40, c.pt, &pos)
			eventually(t, "90 packets in", func() bool { return w.Stats()[0].PacketsIn == 90 })
			w.StopRecord("a")
			r := result(t, ch)
			if r.Reason != "hangup" || !r.Kept || r.Err != nil || r.Seconds != 2 || r.Path != path {
				t.Fatalf("result %+v", r)
			}
			samples := readWAVFile(t, path)
			if len(samples) != 2*wavRate {
				t.Fatalf("%d samples, want %d", len(samples), 2*wavRate)
			}
			for _, k := range []int{0, 25, 60, 99} { // frames with audio
				f := samples[k*frameSamples : (k+1)*frameSamples]
				tone, o1, o2 := level(f, 440), level(f, 880), level(f, 1000)
				if tone < 6000 || o1 > tone/20 || o2 > tone/20 {
					t.Fatalf("frame %d: 440 Hz %.0f, 880 Hz %.0f, 1000 Hz %.0f", k, tone, o1, o2)
				}
			}
			for i, v := range samples[50*frameSamples : 60*frameSamples] {
				if v != 0 {
					t.Fatalf("sample %d of the gap is %d, want silence", i, v)
				}
			}
			noPart(t, path)
		})
	}
}

// Each way a recording ends, and what is left on disk.
func TestRecordEnds(t *testing.T) {
	for _, c := range []struct {
		name    string
		base    int
		packets int
		max     time.Duration
		end     func(t *testing.T, w *Worker, p *phone, l *Leg)
		reason  string
		seconds float64
	}{
		{"hash", 39460, 60, time.Minute, func(t *testing.T, w *Worker, p *phone, l *Leg) {
			for range 3 { // the end packet, three times, as phones send it
				p.sendPacket(l.LocalPort(), 101, false, []byte{11, 0x80, 0, 160})
			}
		}, "dtmf", 1.2},
		{"other digit does not end", 39480, 60, time.Minute, func(t *testing.T, w *Worker, p *phone, l *Leg) {
			p.sendPacket(l.LocalPort(), 101, false, []byte{5, 0x80, 0, 160})
			eventually(t, "the digit", func() bool { return legReceived(w, 61) })
			w.StopRecord("a")
		}, "hangup", 1.2},
		{"short", 39500, 25, time.Minute, func(t *testing.T, w *Worker, p *phone, l *Leg) { w.StopRecord("a") }, "short", 0.5},
		{"max by audio", 39520, 75, time.Second, nil, "max", 1},
		{"max by time", 39540, 55, 1200 * time.Millisecond, nil, "max", 1.1},
		{"worker closed", 39560, 60, time.Minute, func(t *testing.T, w *Worker, p *phone, l *Leg) { w.Close() }, "closed", 1.2},
		{"leg removed", 39580, 60, time.Minute, func(t *testing.T, w *Worker, p *phone, l *Leg) { w.RemoveLeg("a") }, "closed", 1.2},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testService(t, c.base, Config{})
			w := s.NewWorker("c", nil)
			defer w.Close()
			p := newPhone(t, false)
			l := recordLeg(t, w, p, "0 101")
			path := filepath.Join(t.TempDir(), "m.wav")
			ch := recording(w, path, c.max)
			pos := 0
			sendTone(p, l.LocalPort(), c.packets, 0, &pos)
			if c.end != nil {
				eventually(t, "packets in", func() bool { return legReceived(w, uint64(c.packets)) })
				c.end(t, w, p, l)
			}
			r := result(t, ch)
			kept := c.seconds >= 1
			if r.Reason != c.reason || r.Kept != kept || r.Err != nil || r.Seconds != c.seconds {
				t.Fatalf("result %+v, want %s after %v s", r, c.reason, c.seconds)
			}
			if _, err := os.Stat(path); (err == nil) != kept {
				t.Fatalf("file kept %v, want %v", err == nil, kept)
			}
			if kept {
				if n := len(readWAVFile(t, path)); n != int(c.seconds*wavRate) {
					t.Fatalf("%d samples, want %v s", n, c.seconds)
				}
			}
			noPart(t, path)
			if l := w.Leg("a"); l != nil && l.rec.Load() != nil {
				t.Fatal("the leg still records")
			}
		})
	}
}

// legReceived is whether leg a has received n packets.
func legReceived(w *Worker, n uint64) bool {
	st := w.Stats()
	return len(st) == 1 && st[0].PacketsIn >= n
}

// A file that cannot be written, a missing leg, a second recording: Reason
// error at once, nothing left behind, and the first recording unharmed.
func TestRecordErrors(t *testing.T) {
	s := testService(t, 39600, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	p := newPhone(t, false)
	recordLeg(t, w, p, "0 101")
	dir := t.TempDir()
	blocked := filepath.Join(dir, "blocked.wav")
	if err := os.Mkdir(blocked+".part", 0o755); err != nil { // the .part cannot be a file
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full.wav")
	if err := os.Symlink("/dev/full", full+".part"); err != nil { // writes fail as on a full disk
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, leg, path string
		max             time.Duration
		want            error
	}{
		{"missing dir", "a", filepath.Join(dir, "nope", "m.wav"), time.Minute, os.ErrNotExist},
		{"part is a dir", "a", blocked, time.Minute, nil},
		{"missing leg", "b", filepath.Join(dir, "b.wav"), time.Minute, ErrNoLeg},
		{"no maximum", "a", filepath.Join(dir, "zero.wav"), 0, nil},
		{"over an hour", "a", filepath.Join(dir, "long.wav"), time.Hour + time.Second, nil},
	} {
		ch := make(chan RecordResult, 1)
		w.Record(c.leg, c.path, c.max, func(r RecordResult) { ch <- r })
		r := result(t, ch)
		if r.Reason != "error" || r.Kept || r.Err == nil || (c.want != nil && !errors.Is(r.Err, c.want)) {
			t.Fatalf("%s: %+v", c.name, r)
		}
		if _, err := os.Stat(c.path); err == nil {
			t.Fatalf("%s: file left", c.name)
		}
		if _, err := os.Lstat(c.path + ".part"); c.path != blocked && err == nil {
			t.Fatalf("%s: .part left", c.name)
		}
	}
	// A full disk fails the first write: the recording ends then, its .part removed.
	ch := recording(w, full, time.Minute)
	pos := 0
	sendTone(p, w.Leg("a").LocalPort(), 150, 0, &pos)
	r := result(t, ch)
	if r.Reason != "error" || r.Kept || !errors.Is(r.Err, syscall.ENOSPC) {
		t.Fatalf("disk full: %+v", r)
	}
	if _, err := os.Lstat(full + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("disk full: .part left (%v)", err)
	}
	if st, err := os.Stat(blocked + ".part"); err != nil || !st.IsDir() {
		t.Fatal("a failed recording removed what was in its way")
	}
	path := filepath.Join(dir, "m.wav")
	first := recording(w, path, time.Minute)
	second := recording(w, filepath.Join(dir, "m2.wav"), time.Minute)
	if r := result(t, second); r.Reason != "error" || !errors.Is(r.Err, ErrRecording) {
		t.Fatalf("second recording: %+v", r)
	}
	w.StopRecord("a")
	if r := result(t, first); r.Reason != "short" || r.Err != nil {
		t.Fatalf("first recording: %+v", r)
	}
	noPart(t, path)
	w.Close()
	if r := result(t, recording(w, path, time.Minute)); r.Reason != "closed" || !errors.Is(r.Err, ErrClosed) {
		t.Fatalf("after close: %+v", r)
	}
}

func readWAVFile(t *testing.T, path string) []int16 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, rate, err := ReadWAV(f)
	if err != nil || rate != wavRate {
		t.Fatalf("%s: rate %d, %v", path, rate, err)
	}
	return s
}

func noPart(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s.part remains (%v)", path, err)
	}
}

// BenchmarkRecord: one op is one recorded second, 50 PCMU packets through
// the leg's packet path (decode, gap check, buffer) with the writer's
// flushes, and every 60 s a recording completed (header, sync, rename) and
// another started.
func BenchmarkRecord(b *testing.B) {
	s := testService(b, 39620, Config{})
	w := s.NewWorker("c", nil)
	defer w.Close()
	p := newPhone(b, false)
	l := recordLeg(b, w, p, "0 101")
	from := netip.AddrPortFrom(testIP, uint16(p.port()))
	pkt := benchPacket(p.ssrc)
	dir := b.TempDir()
	var ch chan RecordResult
	next := func() {
		if ch != nil {
			w.StopRecord("a")
			if r := <-ch; !r.Kept {
				b.Fatalf("recording %+v", r)
			}
		}
		ch = recording(w, filepath.Join(dir, "m.wav"), time.Hour)
	}
	var seq uint16
	var ts uint32
	now := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%60 == 0 {
			next()
		}
		for range 50 {
			seq++
			ts += frameSamples
			now += int64(20 * time.Millisecond)
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], ts)
			l.handle(pkt, from, now)
		}
	}
	w.StopRecord("a")
	if r := <-ch; r.Err != nil {
		b.Fatal(r.Err)
	}
}

// The recorder's timeline from packets' timestamps and arrival times: loss
// is filled with silence, a late packet is dropped, a clock jump or a new
// SSRC is not filled, and the maximum truncates and ends it.
func TestRecorderTimeline(t *testing.T) {
	type pkt struct {
		ts   uint32
		ssrc uint32
		ms   int64 // arrival
		key  string
	}
	frame := func(ts uint32, ms int64) pkt { return pkt{ts, 1, ms, "pcmu/8000"} }
	for _, c := range []struct {
		name    string
		max     int
		pkts    []pkt
		samples int
		silence int // samples that are exactly 0
		ended   string
	}{
		{"contiguous", 8000, []pkt{frame(0, 0), frame(160, 20), frame(320, 40)}, 480, 0, ""},
		{"two lost", 8000, []pkt{frame(0, 0), frame(480, 60)}, 640, 320, ""},
		{"late and repeated dropped", 8000, []pkt{frame(0, 0), frame(320, 40), frame(160, 45), frame(320, 46)}, 480, 160, ""},
		{"clock jump", 8000, []pkt{frame(0, 0), frame(1_000_000, 20), frame(1_000_160, 40)}, 480, 0, ""},
		{"long pause is real time", 80000, []pkt{frame(0, 0), frame(160+5*8000, 5020)}, 320 + 5*8000, 5 * 8000, ""},
		{"new ssrc", 8000, []pkt{frame(0, 0), {5000, 2, 20, "pcmu/8000"}}, 320, 0, ""},
		{"not audio", 8000, []pkt{frame(0, 0), {160, 1, 20, "telephone-event/8000"}, {320, 1, 40, "cn/8000"}, frame(480, 60)}, 640, 320, ""},
		{"max", 400, []pkt{frame(0, 0), frame(160, 20), frame(320, 40), frame(480, 60)}, 400, 0, "max"},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := &recorder{max: c.max, stop: make(chan string, 1)}
			b := benchPacket(0)
			for i := range b[12:] {
				b[12+i] = ulaw(1000) // never decodes to 0
			}
			for _, p := range c.pkts {
				binary.BigEndian.PutUint32(b[4:], p.ts)
				binary.BigEndian.PutUint32(b[8:], p.ssrc)
				rc.packet(b, 12, p.key, p.ms*int64(time.Millisecond))
			}
			got := rc.take(nil, true)
			zeros := 0
			for _, v := range got {
				if v == 0 {
					zeros++
				}
			}
			if len(got) != c.samples || rc.total != c.samples || zeros != c.silence {
				t.Fatalf("%d samples (total %d), %d silent; want %d, %d", len(got), rc.total, zeros, c.samples, c.silence)
			}
			ended := ""
			select {
			case ended = <-rc.stop:
			default:
			}
			if ended != c.ended {
				t.Fatalf("ended %q, want %q", ended, c.ended)
			}
		})
	}
}
