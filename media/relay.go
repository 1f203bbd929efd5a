package media

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/cluster/metrics"
)

const maxPacket = 2048 // larger datagrams are truncated and fail as malformed or SRTP auth

// srtpTagRoom is what SRTP adds to a packet (AES_CM_128_HMAC_SHA1_80 adds
// 10 bytes), so a packet can be encrypted in place in its buffer.
const srtpTagRoom = 16

// Reasons a packet is not forwarded, as RTPDropped labels.
const (
	dropUnexpected = iota // after latching, from another source
	dropAuth              // SRTP authentication or replay check failed
	dropMalformed         // not RTP version 2, or a header longer than the packet
	dropNoCodec           // the destination did not negotiate the packet's codec
	nDrops
)

var dropNames = [nDrops]string{"unexpected_source", "srtp_auth", "malformed", "no_codec"}

// counters are one leg's numbers. Each is written by one goroutine at a
// time (the leg's reader, or whoever holds outMu) and read by Stats and the
// once-a-second flush to the node's metrics, so the packet path never
// touches a counter shared between calls.
type counters struct {
	pktsIn, bytesIn, lost atomic.Uint64 // reader
	drops                 [nDrops]atomic.Uint64
	jitterBits            atomic.Uint64 // float64 ms, reader
	lastRx                atomic.Int64  // unix nano of the last valid packet, reader
	pktsOut, bytesOut     atomic.Uint64 // under outMu
	relayed               atomic.Uint64 // under outMu: forwarded, not tone

	flushMu                     sync.Mutex
	flushedRelayed, flushedLost uint64
	flushedDrops                [nDrops]uint64
}

// rxState is the reader goroutine's receive state and statistics (its
// buffer, in which SRTP is decrypted in place, is its socket pair's).
type rxState struct {
	hdr         rtp.Header // reused by DecryptRTP
	ssrc        uint32
	started     bool
	maxSeq      uint16
	timed       bool // lastArrival/lastTS hold a previous packet of this stream
	lastArrival float64
	lastTS      uint32
	jitter      float64 // RFC 3550 A.8, in timestamp units
	dtmfTS      uint32
	dtmfSeen    bool
}

// outState is the stream a leg sends: one SSRC, and a sequence and
// timestamp line that stays continuous whichever source it carries.
type outState struct {
	tx         *srtp.Context
	hdr        rtp.Header // reused by EncryptRTP
	src        *Leg       // the source now carried; toneSource, promptSource, mixSource for generated audio
	srcSSRC    uint32
	seqOff     uint16
	tsOff      uint32
	seq        uint16 // last sent
	ts         uint32
	sentAt     int64       // unix nano, 0 before the first packet
	toneStart  uint64      // the service clock's frame when this leg's tone began
	play       *promptPlay // the prompt carried, when src is promptSource
	clockFrame uint64      // the service clock's frame of the last prompt frame sent
	mixTick    uint64      // the mix clock's tick of the last mixed frame sent

	// The packet sent, encrypted in place; made with the first one, as many
	// legs never send (forks that are cancelled, calls refused).
	buf *[maxPacket + srtpTagRoom]byte
}

// packet is the send buffer cut to n bytes. Under outMu.
func (o *outState) packet(n int) []byte {
	if o.buf == nil {
		o.buf = new([maxPacket + srtpTagRoom]byte)
	}
	return o.buf[:n]
}

// toneSource marks the hold tone as what a leg hears.
var toneSource = new(Leg)

// read is the leg's packet loop.
func (l *Leg) read() {
	defer close(l.done)
	now := l.w.s.cfg.Now
	for {
		n, from, err := l.sock.rtp.ReadFromUDPAddrPort(l.sock.buf[:])
		if err != nil {
			if l.stopping.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.w.s.log.Debug("RTP read", "call", l.w.callID, "leg", l.id, "err", err)
			continue
		}
		l.handle(l.sock.buf[:n], from, now().UnixNano())
	}
}

// handle checks, latches, counts and forwards one datagram. It runs on the
// leg's reader goroutine only and allocates nothing.
func (l *Leg) handle(pkt []byte, from netip.AddrPort, now int64) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		l.drops[dropMalformed].Add(1)
		return
	}
	if pt := pkt[1] & 0x7f; pt >= 64 && pt <= 95 {
		return // RTCP multiplexed on the RTP port (RFC 5761): not relayed
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	p := l.dest.Load()
	if p.latched && from != p.addr {
		l.drops[dropUnexpected].Add(1)
		return
	}
	r := &l.rx
	if ctx := l.rxCtx.Load(); ctx != nil {
		out, err := ctx.DecryptRTP(pkt, pkt, &r.hdr)
		if err != nil {
			l.drops[dropAuth].Add(1)
			return
		}
		pkt = out
	}
	hl, ok := headerLen(pkt)
	if !ok {
		l.drops[dropMalformed].Add(1)
		return
	}
	if !p.latched && l.dest.CompareAndSwap(p, &peer{addr: from, latched: true, recv: p.recv}) {
		l.w.emit(Event{LegID: l.id, Kind: EventLatched})
	}
	l.pktsIn.Add(1)
	l.bytesIn.Add(uint64(len(pkt)))
	l.lastRx.Store(now)

	pt := pkt[1] & 0x7f
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	t := l.table.Load()
	key, rate := t.codec(pt)
	if !r.started || ssrc != r.ssrc {
		r.started, r.ssrc, r.maxSeq, r.timed = true, ssrc, seq, false
	} else if d := seq - r.maxSeq; d != 0 && d < 0x8000 {
		if d > 1 {
			l.lost.Add(uint64(d - 1))
		}
		r.maxSeq = seq
	}
	if rate > 0 && int16(pt) != t.dtmf {
		l.interarrival(rate, ts, now)
	}
	if int16(pt) == t.dtmf && len(pkt) >= hl+4 && pkt[hl+1]&0x80 != 0 && (!r.dtmfSeen || ts != r.dtmfTS) {
		// The end packet is sent three times with the event's timestamp.
		r.dtmfSeen, r.dtmfTS = true, ts
		if d := dtmfDigit(pkt[hl]); d != 0 {
			if rc := l.rec.Load(); rc != nil && d == '#' {
				rc.end("dtmf")
			}
			l.w.emit(Event{LegID: l.id, Kind: EventDTMF, Digit: d})
		}
	}
	for _, d := range *l.listeners.Load() {
		if !d.forward(l, pkt, hl, key, now) {
			l.drops[dropNoCodec].Add(1)
		}
	}
	if c := l.cap.Load(); c != nil {
		c.capturePacket(pkt, hl, key)
	}
	if rc := l.rec.Load(); rc != nil {
		rc.packet(pkt, hl, key, now)
	}
}

// interarrival updates the RFC 3550 jitter estimate. Reader only.
func (l *Leg) interarrival(rate uint32, ts uint32, now int64) {
	r := &l.rx
	arrival := float64(now) * float64(rate) / 1e9
	if r.timed {
		d := math.Abs(arrival - r.lastArrival - float64(int32(ts-r.lastTS)))
		r.jitter += (d - r.jitter) / 16
		l.jitterBits.Store(math.Float64bits(r.jitter * 1000 / float64(rate)))
	}
	r.lastArrival, r.lastTS, r.timed = arrival, ts, true
}

// headerLen is the RTP header's length with CSRCs and extension.
func headerLen(pkt []byte) (int, bool) {
	n := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 {
		if len(pkt) < n+4 {
			return 0, false
		}
		n += 4 + 4*int(binary.BigEndian.Uint16(pkt[n+2:]))
	}
	return n, n <= len(pkt)
}

func dtmfDigit(ev byte) byte {
	switch {
	case ev <= 9:
		return '0' + ev
	case ev == 10:
		return '*'
	case ev == 11:
		return '#'
	case ev <= 15:
		return 'A' + ev - 12
	}
	return 0
}

// forward sends src's packet to this leg with this leg's payload type and
// SSRC, on a sequence/timestamp line that continues across source changes.
// G.711 in the law this leg did not agree is converted to the one it did
// (legs that negotiated apart, a supervisor's and a caller's, may differ).
// It is false when this leg has no payload type for the codec.
func (l *Leg) forward(src *Leg, pkt []byte, hl int, key string, now int64) bool {
	t := l.table.Load()
	pt, rate, ok := t.lookup(key)
	var conv *[256]byte
	switch {
	case ok:
	case key == "pcmu/8000" && t.pcma >= 0:
		pt, rate, ok, conv = uint8(t.pcma), 8000, true, &ulawToALaw
	case key == "pcma/8000" && t.pcmu >= 0:
		pt, rate, ok, conv = uint8(t.pcmu), 8000, true, &alawToULaw
	}
	if key == "" || !ok {
		return false
	}
	p := l.dest.Load()
	if !p.recv || !p.addr.IsValid() {
		return true // on hold or not yet reachable: nothing to send, nothing wrong
	}
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	l.outMu.Lock()
	defer l.outMu.Unlock()
	o := &l.out
	marker := pkt[1] & 0x80
	if o.src != src || o.srcSSRC != ssrc {
		o.src, o.srcSSRC = src, ssrc
		o.seqOff = o.seq + 1 - seq
		o.tsOff = o.ts + o.advance(now, rate) - ts
		marker = 0x80 // a new talk spurt: the receiver resyncs its jitter buffer
	}
	out := o.packet(len(pkt))
	copy(out, pkt)
	if conv != nil {
		for i, end := hl, payloadEnd(pkt, hl); i < end; i++ {
			out[i] = conv[out[i]]
		}
	}
	nseq, nts := seq+o.seqOff, ts+o.tsOff
	out[1] = marker | pt
	binary.BigEndian.PutUint16(out[2:], nseq)
	binary.BigEndian.PutUint32(out[4:], nts)
	binary.BigEndian.PutUint32(out[8:], l.ssrc)
	if int16(nseq-o.seq) > 0 { // a late packet does not move the line back
		o.seq, o.ts = nseq, nts
	}
	o.sentAt = now
	if l.send(out, p.addr) {
		l.relayed.Add(1)
	}
	return true
}

// advance is how far the timestamp moves at a source change: the time since
// the last packet sent, at least one 20 ms frame. Under outMu.
func (o *outState) advance(now int64, rate uint32) uint32 {
	frame := rate / 50
	if o.sentAt == 0 {
		return frame
	}
	el := min(max(now-o.sentAt, 0), int64(time.Hour))
	return max(uint32(el*int64(rate)/int64(time.Second)), frame)
}

// sendTone sends one 20 ms frame of the hold tone in PCMU, else PCMA.
// Called by the service's clock.
func (l *Leg) sendTone(frame uint64, now int64) {
	t := l.table.Load()
	var pt int16
	var law *[toneFrames][160]byte
	switch {
	case t.pcmu >= 0:
		pt, law = t.pcmu, &toneULaw
	case t.pcma >= 0:
		pt, law = t.pcma, &toneALaw
	default:
		return
	}
	p := l.dest.Load()
	if !p.recv || !p.addr.IsValid() {
		return
	}
	l.outMu.Lock()
	defer l.outMu.Unlock()
	o := &l.out
	spurt := o.src != toneSource
	if spurt {
		o.src, o.srcSSRC, o.toneStart = toneSource, 0, frame
	}
	i := (frame - o.toneStart) % toneFrames // each held party hears the pattern from its start
	l.sendFrame(byte(pt), law[i][:], spurt, now, p.addr)
}

// send encrypts when the leg is SRTP and writes. Under outMu. A sender that
// still holds an ended leg (a forwarder, the tone or mix clock a moment
// late) sends nothing: the leg's socket may carry another call by now.
func (l *Leg) send(out []byte, to netip.AddrPort) bool {
	if l.outClosed {
		return false
	}
	if tx := l.out.tx; tx != nil {
		enc, err := tx.EncryptRTP(out, out, &l.out.hdr)
		if err != nil {
			return false
		}
		out = enc
	}
	n, err := l.sock.rtp.WriteToUDPAddrPort(out, to)
	if err != nil {
		return false
	}
	l.pktsOut.Add(1)
	l.bytesOut.Add(uint64(n))
	return true
}

// LegStats are one leg's counters.
type LegStats struct {
	ID                                       string
	PacketsIn, PacketsOut, BytesIn, BytesOut uint64
	Lost                                     uint64  // sequence gaps in what the remote sent
	Dropped                                  uint64  // received but not forwarded, every reason
	JitterMs                                 float64 // RFC 3550 interarrival jitter of what the remote sent
	Latched                                  netip.AddrPort
}

func (l *Leg) stats() LegStats {
	s := LegStats{ID: l.id, PacketsIn: l.pktsIn.Load(), PacketsOut: l.pktsOut.Load(), BytesIn: l.bytesIn.Load(),
		BytesOut: l.bytesOut.Load(), Lost: l.lost.Load(), JitterMs: math.Float64frombits(l.jitterBits.Load())}
	for i := range l.drops {
		s.Dropped += l.drops[i].Load()
	}
	if p := l.dest.Load(); p.latched {
		s.Latched = p.addr
	}
	return s
}

// flushMetrics adds what changed since the last flush to the node's
// counters: a few adds per leg per second instead of one per packet.
func (l *Leg) flushMetrics() {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	add := func(c interface{ Add(float64) }, now uint64, last *uint64) {
		if now > *last {
			c.Add(float64(now - *last))
			*last = now
		}
	}
	add(metrics.RTPRelayed, l.relayed.Load(), &l.flushedRelayed)
	add(metrics.RTPLost, l.lost.Load(), &l.flushedLost)
	for i := range l.drops {
		add(dropCounters[i], l.drops[i].Load(), &l.flushedDrops[i])
	}
}

var dropCounters = func() (cs [nDrops]interface{ Add(float64) }) {
	for i, n := range dropNames {
		cs[i] = metrics.RTPDropped.WithLabelValues(n)
	}
	return cs
}()

// close stops the reader, returns the ports to the pool and flushes the
// counters. The reader is woken by a deadline in the past, not by closing
// its socket, which the next leg on this port pair reuses.
func (l *Leg) close() {
	l.closeOnce.Do(func() {
		l.w.s.setClock(l, false, nil)
		l.stopping.Store(true)
		sock := l.sock
		if err := sock.rtp.SetReadDeadline(time.Unix(1, 0)); err != nil {
			sock.close() // the reader returns on net.ErrClosed; the port is bound afresh
			sock = sockets{port: sock.port}
		}
		<-l.done
		if rc := l.rec.Load(); rc != nil {
			// A leg ending (hang-up, the worker closing) completes its recording.
			rc.end("closed")
			<-rc.finished
		}
		l.outMu.Lock()
		l.outClosed = true
		l.outMu.Unlock()
		l.flushMetrics()
		l.w.s.release(sock)
	})
}
