package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Recording a leg (a voicemail message): the leg's reader decodes each
// PCMU or PCMA packet it receives (after SRTP) to linear samples in a small
// buffer, filling gaps in the RTP timestamps with silence so the length is
// real time; a goroutine of the recording's own writes the buffer out every
// 100 ms, so the packet path never waits on the disk. The file is written
// as path+".part" and renamed to path only once whole and at least
// minRecording long.

// minRecording is the shortest message kept.
const minRecording = time.Second

// recordFlush is how often the recorder writes what the reader decoded.
const recordFlush = 100 * time.Millisecond

var (
	// ErrRecording: Record was asked for a leg that is already recording.
	ErrRecording = errors.New("media: leg already recording")
	// ErrNoLeg: Record was asked for a leg the worker does not have.
	ErrNoLeg = errors.New("media: no such leg")
)

// RecordResult is how a recording ended. Reason is "hangup" (StopRecord),
// "dtmf" (the leg sent an RFC 4733 '#'), "max" (the maximum duration
// passed), "closed" (the leg or the worker ended), "short" (less than 1 s,
// not kept) or "error" (Err says what; nothing is left on disk).
type RecordResult struct {
	Path    string
	Seconds float64 // audio recorded, kept or not
	Kept    bool    // the file is at Path
	Reason  string
	Err     error
}

// recorder is one leg's recording.
type recorder struct {
	path string
	max  int // samples

	mu      sync.Mutex
	buf     []int16 // decoded, not yet written
	total   int     // samples taken, at most max
	started bool    // next, ssrc and lastAt hold the stream's position
	ssrc    uint32
	next    uint32 // the RTP timestamp expected next
	lastAt  int64  // unix nano the last audio arrived
	closed  bool   // the writer has taken the last samples

	stop     chan string   // the reason it ends; the first one sent wins
	finished chan struct{} // closed once the file is renamed or removed
}

// Record starts recording what leg receives to path (see RecordResult), for
// at most maxLen (up to an hour) of audio or of time, whichever passes
// first. The audio runs from the first packet after this call. done is
// called once, from another goroutine, when the file is complete or
// removed. A missing leg, a leg already recording, a maxLen out of range, a
// closed worker or a file that cannot be created ends it at once with
// Reason "error" (or "closed").
func (w *Worker) Record(leg string, path string, maxLen time.Duration, done func(RecordResult)) {
	fail := func(reason string, err error) {
		go done(RecordResult{Path: path, Reason: reason, Err: err})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		fail("closed", ErrClosed)
		return
	}
	if maxLen <= 0 || maxLen > maxWAVSamples*(time.Second/wavRate) {
		fail("error", fmt.Errorf("media: recording leg %q: maximum %v out of range", leg, maxLen))
		return
	}
	l := w.legs[leg]
	if l == nil {
		fail("error", fmt.Errorf("%w %q", ErrNoLeg, leg))
		return
	}
	rc := &recorder{path: path, max: int(maxLen / (time.Second / wavRate)), stop: make(chan string, 1), finished: make(chan struct{})}
	if !l.rec.CompareAndSwap(nil, rc) {
		fail("error", fmt.Errorf("%w: %q", ErrRecording, leg))
		return
	}
	f, err := os.OpenFile(path+".part", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		l.rec.Store(nil)
		fail("error", fmt.Errorf("media: recording leg %q: %w", leg, err))
		return
	}
	go rc.run(l, f, maxLen, done)
}

// StopRecord ends the leg's recording, if any, as a hang-up: what was
// recorded is kept if long enough.
func (w *Worker) StopRecord(leg string) {
	if l := w.Leg(leg); l != nil {
		if rc := l.rec.Load(); rc != nil {
			rc.end("hangup")
		}
	}
}

// end asks the recording to end; the first reason given is the one kept.
func (rc *recorder) end(reason string) {
	select {
	case rc.stop <- reason:
	default:
	}
}

// packet takes a received packet's audio, arrived at now, when it is PCMU
// or PCMA. Reader goroutine.
func (rc *recorder) packet(pkt []byte, hl int, key string, now int64) {
	var table *[256]int16
	switch key {
	case "pcmu/8000":
		table = &ulawLin
	case "pcma/8000":
		table = &alawLin
	default:
		return // telephone-events, comfort noise: the next audio's timestamp fills the gap
	}
	payload := pkt[hl:payloadEnd(pkt, hl)]
	ts := binary.BigEndian.Uint32(pkt[4:])
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.closed {
		return
	}
	if d := int32(ts - rc.next); rc.started && ssrc == rc.ssrc && d != 0 {
		// A gap longer than the time that passed (and some jitter) is the
		// sender's clock jumping, not audio missing: no silence for it.
		passed := (now-rc.lastAt)/int64(time.Second/wavRate) + wavRate/2
		switch {
		case d > 0 && int64(d) <= passed: // lost or unsent packets: silence for as long
			gap := min(int(d), rc.max-rc.total)
			rc.buf = append(rc.buf, make([]int16, gap)...)
			rc.total += gap
		case d < 0 && d > -wavRate:
			return // late or repeated: its place is already filled
		}
		// Otherwise the sender's clock jumped: carry on from here.
	}
	rc.started, rc.ssrc, rc.next, rc.lastAt = true, ssrc, ts+uint32(len(payload)), now
	n := min(len(payload), rc.max-rc.total)
	start := len(rc.buf)
	rc.buf = append(rc.buf, make([]int16, n)...)
	decodeG711(rc.buf[start:], payload[:n], table)
	rc.total += n
	if rc.total >= rc.max {
		rc.end("max")
	}
}

// take hands the writer what was decoded since the last call, giving the
// reader spare to fill next; last marks it the final take.
func (rc *recorder) take(spare []int16, last bool) []int16 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := rc.buf
	rc.buf = spare[:0]
	rc.closed = rc.closed || last
	return out
}

// run writes the recording until it ends, then completes the file and
// reports. Its own goroutine.
func (rc *recorder) run(l *Leg, f *os.File, maxLen time.Duration, done func(RecordResult)) {
	part := rc.path + ".part"
	timer := time.NewTimer(maxLen)
	defer timer.Stop()
	tick := time.NewTicker(recordFlush)
	defer tick.Stop()
	bw := bufio.NewWriterSize(f, 32<<10)
	// Room for the header, written again with the sizes at the end.
	err := WriteWAVHeader(bw, 0)
	var spare []int16
	var raw []byte
	write := func(last bool) error {
		s := rc.take(spare, last)
		raw = raw[:0]
		for _, v := range s {
			raw = binary.LittleEndian.AppendUint16(raw, uint16(v))
		}
		spare = s
		_, err := bw.Write(raw)
		return err
	}
	var reason string
loop:
	for err == nil {
		select {
		case reason = <-rc.stop:
			break loop
		case <-timer.C:
			reason = "max"
			break loop
		case <-tick.C:
			if err = write(false); err != nil {
				break loop
			}
		}
	}
	l.rec.CompareAndSwap(rc, nil)
	if err == nil {
		err = write(true)
	} else {
		rc.take(nil, true)
	}
	res := RecordResult{Path: rc.path, Seconds: float64(rc.total) / wavRate, Reason: reason}
	if err == nil {
		err = finishWAV(f, bw, rc.total)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("media: recording %s: %w", part, cerr)
	}
	switch {
	case err != nil:
		res.Reason, res.Err = "error", fmt.Errorf("media: recording %s: %w", part, err)
		l.w.s.log.Warn("recording failed", "call", l.w.callID, "leg", l.id, "err", err)
	case time.Duration(rc.total)*(time.Second/wavRate) < minRecording:
		res.Reason = "short"
	default:
		if err = os.Rename(part, rc.path); err != nil {
			res.Reason, res.Err = "error", fmt.Errorf("media: recording %s: %w", rc.path, err)
		} else {
			res.Kept = true
		}
	}
	if !res.Kept {
		if rerr := os.Remove(part); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			l.w.s.log.Warn("recording not removed", "path", part, "err", rerr)
		}
	}
	close(rc.finished)
	done(res)
}

// finishWAV flushes the samples and writes the header with their count,
// then syncs: a message reported kept is on disk.
func finishWAV(f *os.File, bw *bufio.Writer, samples int) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	var h bytes.Buffer
	if err := WriteWAVHeader(&h, samples); err != nil {
		return err
	}
	if _, err := f.WriteAt(h.Bytes(), 0); err != nil {
		return err
	}
	return f.Sync()
}
