package media

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The mixer: a leg in a mix of two or more legs (Worker.Mix), or with a
// chime playing (Worker.Chime), no longer gets packets forwarded. Instead
// each leg it hears copies the G.711 audio it receives, decoded to linear,
// into a small buffer (its reader does this, on its own goroutine), and the
// worker's mix clock takes one 20 ms frame from every such source per tick,
// sums what each destination hears with saturation, adds the chime,
// re-encodes to the destination's codec and sends it on the destination's
// own stream.
//
// The clock is one goroutine per worker that runs only while some leg of
// the worker is mixed or chimed; calls that are plain two-party bridges keep
// the zero-copy forwarding path and no timer. Packets never pass through a
// channel or a mailbox, and a tick allocates nothing.

// capLen is how much audio a source buffers between ticks: three frames
// absorb arrival jitter against the clock (and 30 ms packets); more is
// dropped oldest first, so the delay it adds stays under 60 ms.
const capLen = 3 * frameSamples

// capture is a leg's audio as a mix source: written by the leg's reader,
// taken by its worker's mix clock.
type capture struct {
	mu   sync.Mutex
	ring [capLen]int16
	r, n int // read position and samples held, under mu

	// The mix clock's own: this tick's frame, and whether it has audio.
	frame [frameSamples]int16
	has   bool
}

// put appends a packet's G.711 payload, decoded. Reader goroutine.
func (c *capture) put(payload []byte, table *[256]int16) {
	if len(payload) > capLen {
		payload = payload[len(payload)-capLen:]
	}
	c.mu.Lock()
	if over := c.n + len(payload) - capLen; over > 0 {
		c.r = (c.r + over) % capLen
		c.n -= over
	}
	w := (c.r + c.n) % capLen
	k := min(len(payload), capLen-w)
	decodeG711(c.ring[w:w+k], payload[:k], table)
	decodeG711(c.ring[:len(payload)-k], payload[k:], table)
	c.n += len(payload)
	c.mu.Unlock()
}

// pull takes the next frame: what arrived since the last tick, up to 20 ms;
// a short frame is padded with silence and no audio at all leaves has false.
// Mix clock.
func (c *capture) pull() {
	c.mu.Lock()
	k := min(c.n, frameSamples)
	first := min(k, capLen-c.r)
	copy(c.frame[:first], c.ring[c.r:c.r+first])
	copy(c.frame[first:k], c.ring[:k-first])
	c.r = (c.r + k) % capLen
	c.n -= k
	c.mu.Unlock()
	clear(c.frame[k:])
	c.has = k > 0
}

// setCapture makes the leg a mix source or not; a new source starts empty.
// Under the worker's mu.
func (l *Leg) setCapture(on bool) {
	switch c := l.cap.Load(); {
	case on && c == nil:
		l.cap.Store(new(capture))
	case !on && c != nil:
		l.cap.Store(nil)
	}
}

// capturePacket keeps a received packet's audio for the mixer when it is
// PCMU or PCMA; telephone-events, comfort noise and other codecs are not
// mixed. Reader goroutine, only while the leg is a mix source.
func (c *capture) capturePacket(pkt []byte, hl int, key string) {
	var table *[256]int16
	switch key {
	case "pcmu/8000":
		table = &ulawLin
	case "pcma/8000":
		table = &alawLin
	default:
		return
	}
	c.put(pkt[hl:payloadEnd(pkt, hl)], table)
}

// payloadEnd is where a packet's payload ends: before its RFC 3550 padding.
func payloadEnd(pkt []byte, hl int) int {
	end := len(pkt)
	if pkt[0]&0x20 != 0 && end > hl {
		if pad := int(pkt[end-1]); pad <= end-hl {
			end -= pad
		}
	}
	return end
}

// mixOut is the mix clock's own state for what one leg hears.
type mixOut struct {
	chime   [][frameSamples]int16 // frames of the chime still to play
	tonePos int                   // the hold tone's frame, when a held leg hears a chime
}

// mixSource marks the mixer as what a leg hears (in outState.src).
var mixSource = new(Leg)

// Tone is a short pattern played once on top of what a leg hears
// (Worker.Chime). Each is generated, distinct from the others and from the
// hold tone (425 Hz), 300 ms long, and listed in the README.
type Tone uint8

const (
	// JoinChime: someone joined or left the call.
	JoinChime Tone = iota
	// EntryTone: a supervisor barged in.
	EntryTone
	// NoticeTone: a supervisor started monitoring the call.
	NoticeTone
	nTones
)

var tonePatterns = [nTones][]Note{
	JoinChime:  {{880, 150}, {660, 150}},
	EntryTone:  {{1400, 100}, {0, 100}, {1400, 100}},
	NoticeTone: {{1800, 60}, {0, 60}, {1800, 60}, {0, 60}, {1800, 60}},
}

// chimeLin is every pattern in 20 ms frames of linear samples.
var chimeLin = func() (c [nTones][][frameSamples]int16) {
	for t, segs := range tonePatterns {
		c[t] = makePattern(segs)
	}
	return
}()

// makePattern renders segments at about -16 dBFS, each tone with 10 ms
// raised-cosine fades so that it starts and stops without a click.
func makePattern(segs []Note) [][frameSamples]int16 {
	const ramp, amp = 80, 5000.0
	n := 0
	for _, s := range segs {
		n += s.Ms * 8
	}
	out := make([][frameSamples]int16, (n+frameSamples-1)/frameSamples)
	i := 0
	for _, s := range segs {
		k := s.Ms * 8
		for j := range k {
			if s.Hz > 0 {
				env := 1.0
				if edge := min(j, k-1-j); edge < ramp {
					env = 0.5 - 0.5*math.Cos(math.Pi*float64(edge+1)/ramp)
				}
				out[i/frameSamples][i%frameSamples] = int16(amp * env * math.Sin(2*math.Pi*float64(s.Hz)*float64(j)/8000))
			}
			i++
		}
	}
	return out
}

// mixPlan is who hears what through the mixer; replaced whole by replan.
type mixPlan struct {
	srcs []*capture // every leg captured, pulled once per tick
	dsts []mixDst
}

type mixDst struct {
	leg   *Leg
	srcs  []*capture
	tone  bool // the leg is on hold and hears a chime: the tone is mixed in
	chime bool // a chime is asked for or playing on this leg
}

// mixer is a worker's mix clock.
type mixer struct {
	plan atomic.Pointer[mixPlan] // nil: nothing to mix, the clock stops

	// Under the worker's mu.
	running bool
	stop    chan struct{} // closed by Worker.Close
	done    chan struct{} // closed when the running clock has returned

	// The clock goroutine's own.
	n     uint64 // ticks
	buf   *mixBuf
	ended []*Leg // legs whose chime ended this tick
}

// mixBuf is the mix clock's scratch, made on its first tick: most workers
// never mix.
type mixBuf struct {
	acc [frameSamples]int32
	pcm [frameSamples]int16
}

// Mix makes dst hear the sum of the legs srcs, replacing a bridge, the tone,
// silence or an earlier mix on dst (and replaced by a later Route or Bridge
// on it). Each source is decoded from PCMU or PCMA, the sum is saturated to
// 16 bits and re-encoded every 20 ms to dst's first agreed G.711 codec on
// dst's own SSRC, sequence and timestamp line, SRTP-protected when dst is
// SRTP. dst never hears itself; a source that sends nothing in a tick adds
// silence, and a tick where no source sent anything sends nothing. No
// sources is Silence, and a mix of one leg is forwarded like a bridge's
// half (see replan). Legs not added yet join the mix when they are.
//
// Mixes are one-way, so a conference of A, B and C is three calls (A hears
// B and C, B hears A and C, C hears A and B), and listen-in or whisper are
// the same with fewer sources.
func (w *Worker) Mix(dst string, srcs []string) {
	w.Route(dst, MixSource(srcs...))
}

// Chime plays a tone pattern once into what each of the legs hears, on top
// of its bridge, mix or hold tone, or on its own when it hears nothing or a
// prompt (the prompt keeps time meanwhile and is heard again after it).
// Legs that do not exist or have no G.711 codec are skipped. A forwarded
// leg goes through the mixer while the tone plays and back to forwarding
// afterwards; a chime asked for while one plays starts over with the new
// tone.
func (w *Worker) Chime(tone Tone, legs ...string) error {
	if tone >= nTones {
		return fmt.Errorf("media: chime: unknown tone %d", tone)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	changed := false
	for _, id := range legs {
		l := w.legs[id]
		if l == nil {
			continue
		}
		if t := l.table.Load(); t.g711 < 0 {
			continue
		}
		l.chimeReq.Store(uint32(tone) + 1)
		w.chiming[id] = true
		changed = true
	}
	if changed {
		w.replan()
	}
	return nil
}

// replan makes the packet path match the routes and chimes: who forwards
// to whom, who the service clock plays the hold tone or a prompt to, which
// legs are captured, and the mix plan; it starts the mix clock when
// something is to be mixed (the clock stops itself when nothing is). A leg
// that hears one other leg, by a bridge or a mix of one, gets its packets
// forwarded as they come: the same audio as a mix of one, without the
// clock's delay, with the other's DTMF events, and at a fraction of the
// cost (a listened-to call's two sides keep hearing each other so). Under mu.
func (w *Worker) replan() {
	listen := map[*Leg][]*Leg{}
	captured := map[*Leg]bool{}
	var srcs []*capture
	var dsts []mixDst
	for id, d := range w.legs {
		r := w.routes[id]
		heard := w.heard(r, d)
		if !w.chiming[id] && (r.kind != srcMix || len(heard) <= 1) {
			w.s.setClock(d, r.kind == srcTone || r.kind == srcPrompt, r.prompt)
			if len(heard) == 1 {
				listen[heard[0]] = append(listen[heard[0]], d)
			}
			continue
		}
		w.s.setClock(d, false, nil)
		md := mixDst{leg: d, chime: w.chiming[id], tone: r.kind == srcTone}
		for _, s := range heard {
			if !captured[s] {
				captured[s] = true
				s.setCapture(true)
				srcs = append(srcs, s.cap.Load())
			}
			md.srcs = append(md.srcs, s.cap.Load())
		}
		dsts = append(dsts, md)
	}
	for _, l := range w.legs {
		l.setListeners(listen[l])
		if !captured[l] {
			l.setCapture(false)
		}
	}
	if len(dsts) == 0 {
		w.mixer.plan.Store(nil)
		return
	}
	w.mixer.plan.Store(&mixPlan{srcs: srcs, dsts: dsts})
	w.startMixer()
}

// heard is the legs present that d hears by route r, never d itself. Under mu.
func (w *Worker) heard(r Source, d *Leg) []*Leg {
	ids := r.legs
	if r.kind == srcLeg {
		ids = []string{r.leg}
	}
	var out []*Leg
	for _, id := range ids {
		if s := w.legs[id]; s != nil && s != d {
			out = append(out, s)
		}
	}
	return out
}

// setListeners replaces the legs that hear this one by forwarding, when
// they changed. Under the worker's mu.
func (l *Leg) setListeners(want []*Leg) {
	cur := *l.listeners.Load()
	if len(cur) == len(want) && !slices.ContainsFunc(want, func(d *Leg) bool { return !slices.Contains(cur, d) }) {
		return
	}
	n := append([]*Leg{}, want...)
	l.listeners.Store(&n)
}

// startMixer starts the mix clock unless it runs. Under mu.
func (w *Worker) startMixer() {
	m := &w.mixer
	if m.running || w.closed || w.s.manualMix {
		return
	}
	if m.stop == nil {
		m.stop = make(chan struct{})
	}
	m.running = true
	m.done = make(chan struct{})
	go w.mixLoop(m.stop, m.done)
}

// stopMixer tells the mix clock to stop for good and returns what to wait
// on (nil when it never ran). Under mu, from Close.
func (w *Worker) stopMixer() chan struct{} {
	m := &w.mixer
	if m.stop != nil {
		close(m.stop)
	}
	return m.done
}

// mixLoop is the mix clock: one tick every 20 ms while there is a plan.
func (w *Worker) mixLoop(stop <-chan struct{}, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(toneFrameDur)
	defer t.Stop()
	w.mixer.n += 2 // no stream continues across a stop of the clock
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !w.mixOnce(w.s.cfg.Now().UnixNano()) {
			w.mu.Lock()
			if w.mixer.plan.Load() == nil || w.closed {
				w.mixer.running = false
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
		}
	}
}

// mixOnce runs one tick of the mix clock; false when there is nothing to
// mix. Only the clock goroutine (or a test that drives the clock) calls it.
func (w *Worker) mixOnce(now int64) bool {
	m := &w.mixer
	p := m.plan.Load()
	if p == nil {
		return false
	}
	m.tick(p, now)
	if len(m.ended) > 0 {
		w.chimesEnded(m.ended)
		clear(m.ended)
		m.ended = m.ended[:0]
	}
	return true
}

// tick pulls a frame from every source, then builds and sends what each
// destination hears. It allocates nothing (but for the first tick and the
// first chime ending).
func (m *mixer) tick(p *mixPlan, now int64) {
	m.n++
	if m.buf == nil {
		m.buf = new(mixBuf)
	}
	acc, pcm := &m.buf.acc, &m.buf.pcm
	for _, c := range p.srcs {
		c.pull()
	}
	for i := range p.dsts {
		md := &p.dsts[i]
		d := md.leg
		clear(acc[:])
		heard := false
		for _, c := range md.srcs {
			if c.has {
				mixAdd(acc, &c.frame)
				heard = true
			}
		}
		mo := &d.mixo
		if md.chime {
			if t := d.chimeReq.Swap(0); t != 0 {
				mo.chime = chimeLin[t-1]
			}
			if len(mo.chime) > 0 {
				mixAdd(acc, &mo.chime[0])
				mo.chime = mo.chime[1:]
				heard = true
				if len(mo.chime) == 0 {
					m.ended = append(m.ended, d)
				}
			}
			if md.tone {
				for j, b := range &toneULaw[mo.tonePos] {
					acc[j] += int32(ulawLin[b])
				}
				mo.tonePos = (mo.tonePos + 1) % toneFrames
				heard = true
			}
		}
		if !heard {
			continue
		}
		saturate(pcm, acc)
		d.sendMix(pcm, m.n, now)
	}
}

// chimesEnded takes legs whose chime has played back to what their routes
// say (a bridged leg to forwarding) unless another chime was asked for.
func (w *Worker) chimesEnded(legs []*Leg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	changed := false
	for _, l := range legs {
		if w.legs[l.id] == l && w.chiming[l.id] && l.chimeReq.Load() == 0 {
			delete(w.chiming, l.id)
			changed = true
		}
	}
	if changed {
		w.replan()
	}
}

// sendMix encodes one mixed frame to the leg's G.711 codec and sends it on
// the leg's stream: consecutive ticks are consecutive frames; after a gap or
// another source the marker is set and the timestamp moves by the time
// elapsed. Mix clock.
func (l *Leg) sendMix(pcm *[frameSamples]int16, tick uint64, now int64) {
	t := l.table.Load()
	if t.g711 < 0 {
		return
	}
	p := l.dest.Load()
	if !p.recv || !p.addr.IsValid() {
		return
	}
	l.outMu.Lock()
	defer l.outMu.Unlock()
	o := &l.out
	marker, adv := byte(0), uint32(toneStep)
	if o.src != mixSource || tick != o.mixTick+1 {
		o.src, o.srcSSRC = mixSource, 0
		marker, adv = 0x80, o.advance(now, 8000)
	}
	o.mixTick = tick
	o.seq++
	o.ts += adv
	o.sentAt = now
	out := o.packet(12 + frameSamples)
	out[0] = 0x80
	out[1] = marker | byte(t.g711)
	binary.BigEndian.PutUint16(out[2:], o.seq)
	binary.BigEndian.PutUint32(out[4:], o.ts)
	binary.BigEndian.PutUint32(out[8:], l.ssrc)
	if t.g711A {
		encodeALaw(out[12:], pcm)
	} else {
		encodeULaw(out[12:], pcm)
	}
	l.send(out, p.addr)
}
