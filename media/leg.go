package media

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/api/metrics"
	"github.com/switchboard/switchboard/media/sdp"
)

const suite = "AES_CM_128_HMAC_SHA1_80"

// Leg is one SIP leg's media: a socket, what its remote agreed to, and the
// outbound state (SSRC, sequence, timestamp) of what it hears.
type Leg struct {
	w    *Worker
	id   string
	conn *net.UDPConn
	port int
	ssrc uint32

	// Negotiation, under mu.
	mu         sync.Mutex
	offer      *sdp.Media // the remote's last offer
	offerSAVP  bool
	offerTag   int
	sentOffer  []sdp.Format // what we offered the remote
	sentSAVP   bool
	codecs     []sdp.Format // what the remote agreed to (or offered)
	direction  string
	localKey   []byte // our SDES master key||salt, made once per leg
	remoteAddr netip.AddrPort

	// Read by the packet path.
	table     atomic.Pointer[codecTable]
	rx        atomic.Pointer[srtp.Context] // only the reader goroutine decrypts
	sendTo    atomic.Pointer[netip.AddrPort]
	latched   atomic.Bool
	listeners atomic.Pointer[[]*Leg] // legs that hear this one

	// Outbound, under outMu (the tone clock and other legs' readers write here).
	outMu   sync.Mutex
	tx      *srtp.Context
	curSrc  any // the source now heard: *Leg, toneSrc, or nil
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTs  uint32
	started bool
	obuf    [1500]byte
	ebuf    [1600]byte

	// Counters: written by one goroutine each, read by Stats and the flusher.
	pktsIn, pktsOut, bytesIn, bytesOut atomic.Uint64
	lost, unexpected, authFail, badPT  atomic.Uint64
	jitterBits                         atomic.Uint64 // float64 ms
	flushedOut, flushedLost            uint64        // by the flusher only
	flushedUnexp, flushedAuth          uint64
	closeOnce                          sync.Once
}

// toneSrc marks the hold tone as the source a leg hears.
type toneSrcT struct{}

var toneSrc = toneSrcT{}

// codecTable maps payload types to codecs and back for one leg.
type codecTable struct {
	byPT  [128]string // "pcmu/8000"; "" unknown
	byKey map[string]uint8
	dtmf  int16 // PT of telephone-event, -1 none
	pcmu  int16
	pcma  int16
}

func key(f sdp.Format) string { return strings.ToLower(f.Name) + "/" + fmt.Sprint(f.Rate) }

func newTable(fs []sdp.Format) *codecTable {
	t := &codecTable{byKey: map[string]uint8{}, dtmf: -1, pcmu: -1, pcma: -1}
	for _, f := range fs {
		if f.PT > 127 {
			continue
		}
		k := key(f)
		t.byPT[f.PT] = k
		if _, ok := t.byKey[k]; !ok {
			t.byKey[k] = f.PT
		}
		switch {
		case f.IsDTMF() && t.dtmf < 0:
			t.dtmf = int16(f.PT)
		case k == "pcmu/8000" && t.pcmu < 0:
			t.pcmu = int16(f.PT)
		case k == "pcma/8000" && t.pcma < 0:
			t.pcma = int16(f.PT)
		}
	}
	return t
}

// LegStats are one leg's counters.
type LegStats struct {
	ID                                       string
	PacketsIn, PacketsOut, BytesIn, BytesOut uint64
	Lost                                     uint64
	JitterMs                                 float64
	Latched                                  string
}

func newLeg(w *Worker, id string, conn *net.UDPConn, port int) *Leg {
	var b [4]byte
	_, _ = rand.Read(b[:])
	l := &Leg{w: w, id: id, conn: conn, port: port, ssrc: binary.BigEndian.Uint32(b[:])}
	l.table.Store(newTable(nil))
	empty := []*Leg{}
	l.listeners.Store(&empty)
	return l
}

// LocalPort is the leg's RTP port.
func (l *Leg) LocalPort() int { return l.port }

// Codecs is what the remote of this leg agreed to (or offered, before an answer).
func (l *Leg) Codecs() []sdp.Format {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sdp.Format(nil), l.codecs...)
}

// RemoteDirection is the direction the remote last asked for.
func (l *Leg) RemoteDirection() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.direction
}

// AcceptOffer takes the remote's offer (initial or re-INVITE).
func (l *Leg) AcceptOffer(offer []byte, requireSRTP bool) error {
	s, err := sdp.Parse(offer)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoCodec, err)
	}
	m := s.Audio()
	if m == nil || !hasAudio(m.Formats) {
		return ErrNoCodec
	}
	addr, _ := s.Addr(m)
	savp := m.Proto == "RTP/SAVP"
	var rx *srtp.Context
	tag := 0
	if savp {
		c := pickCrypto(m.Crypto)
		if c == nil {
			return fmt.Errorf("%w: no %s key", ErrNoCodec, suite)
		}
		if rx, err = context(c.Key); err != nil {
			return fmt.Errorf("%w: %v", ErrNoCodec, err)
		}
		tag = c.Tag
	} else if requireSRTP {
		return ErrSRTPRequired
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if savp && l.localKey == nil {
		l.localKey = newKey()
	}
	l.offer, l.offerSAVP, l.offerTag = m, savp, tag
	l.codecs = append([]sdp.Format(nil), m.Formats...)
	l.direction = m.Direction
	l.setRemote(addr)
	l.rx.Store(rx)
	l.table.Store(newTable(l.codecs))
	return nil
}

// Answer is our answer to the stored offer, keeping the offer's payload types
// for the codecs the other leg agreed on (and telephone-event when both have it).
func (l *Leg) Answer(codecs []sdp.Format) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var fs []sdp.Format
	if l.offer != nil {
		for _, f := range l.offer.Formats {
			for _, c := range codecs {
				if f.Same(c) {
					fs = append(fs, f)
					break
				}
			}
		}
	}
	if !hasAudio(fs) && l.offer != nil { // nothing in common: answer the offer's first audio codec
		for _, f := range l.offer.Formats {
			if f.IsAudio() {
				fs = append([]sdp.Format{f}, fs...)
				break
			}
		}
	}
	l.codecs = fs
	l.table.Store(newTable(fs))
	m := &sdp.Media{Type: "audio", Port: l.port, Proto: "RTP/AVP", Formats: fs, Direction: mirror(l.direction), Ptime: 20}
	if l.offerSAVP {
		m.Proto = "RTP/SAVP"
		m.Crypto = []sdp.Crypto{{Tag: l.offerTag, Suite: suite, Key: l.localKey}}
		l.setTx()
	}
	return l.session(m)
}

// Offer is our offer to this leg's remote with the given codecs.
func (l *Leg) Offer(codecs []sdp.Format, srtpOn bool) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	fs := append([]sdp.Format(nil), codecs...)
	l.sentOffer, l.sentSAVP = fs, srtpOn
	m := &sdp.Media{Type: "audio", Port: l.port, Proto: "RTP/AVP", Formats: fs, Direction: "sendrecv", Ptime: 20}
	if srtpOn {
		if l.localKey == nil {
			l.localKey = newKey()
		}
		m.Proto = "RTP/SAVP"
		m.Crypto = []sdp.Crypto{{Tag: 1, Suite: suite, Key: l.localKey}}
		l.setTx()
	}
	return l.session(m)
}

// AcceptAnswer takes the remote's answer to our Offer.
func (l *Leg) AcceptAnswer(answer []byte) error {
	s, err := sdp.Parse(answer)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoCodec, err)
	}
	m := s.Audio()
	if m == nil || !hasAudio(m.Formats) {
		return ErrNoCodec
	}
	addr, _ := s.Addr(m)
	l.mu.Lock()
	defer l.mu.Unlock()
	var rx *srtp.Context
	if l.sentSAVP {
		c := pickCrypto(m.Crypto)
		if m.Proto != "RTP/SAVP" || c == nil {
			return fmt.Errorf("%w: SRTP offered, answer has no key", ErrNoCodec)
		}
		if rx, err = context(c.Key); err != nil {
			return fmt.Errorf("%w: %v", ErrNoCodec, err)
		}
	}
	l.codecs = append([]sdp.Format(nil), m.Formats...)
	l.direction = m.Direction
	l.setRemote(addr)
	l.rx.Store(rx)
	l.table.Store(newTable(l.codecs))
	return nil
}

// setRemote points the leg at a new SDP address; a changed address undoes
// the latch (the phone moved or re-INVITEd with a new c=). Under mu.
func (l *Leg) setRemote(a netip.AddrPort) {
	if a == l.remoteAddr && l.sendTo.Load() != nil {
		return
	}
	l.remoteAddr = a
	l.latched.Store(false)
	if a.IsValid() {
		l.sendTo.Store(&a)
	}
}

// setTx makes our encrypt context from localKey. Under mu.
func (l *Leg) setTx() {
	tx, err := context(l.localKey)
	if err != nil {
		return
	}
	l.outMu.Lock()
	l.tx = tx
	l.outMu.Unlock()
}

func (l *Leg) session(m *sdp.Media) []byte {
	ip := l.w.s.cfg.IP.String()
	s := &sdp.Session{Origin: sdp.Origin{Username: "switchboard", SessID: uint64(l.ssrc), SessVersion: uint64(l.port), IP: ip}, Name: "switchboard", ConnIP: ip, Media: []*sdp.Media{m}}
	return s.Marshal()
}

func hasAudio(fs []sdp.Format) bool {
	for _, f := range fs {
		if f.IsAudio() {
			return true
		}
	}
	return false
}

func mirror(d string) string {
	switch d {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

func pickCrypto(cs []sdp.Crypto) *sdp.Crypto {
	for i := range cs {
		if cs[i].Suite == suite && len(cs[i].Key) == 30 {
			return &cs[i]
		}
	}
	return nil
}

func newKey() []byte {
	k := make([]byte, 30)
	_, _ = rand.Read(k)
	return k
}

func context(k []byte) (*srtp.Context, error) {
	return srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
}

// hear makes d a listener of l. Under the worker's mu.
func (l *Leg) hear(d *Leg) {
	old := *l.listeners.Load()
	n := append(append(make([]*Leg, 0, len(old)+1), old...), d)
	l.listeners.Store(&n)
}

// unhear removes d from l's listeners. Under the worker's mu.
func (l *Leg) unhear(d *Leg) {
	old := *l.listeners.Load()
	n := make([]*Leg, 0, len(old))
	for _, x := range old {
		if x != d {
			n = append(n, x)
		}
	}
	l.listeners.Store(&n)
}

// read is the leg's packet loop: receive, check, latch, count, forward.
func (l *Leg) read() {
	var buf [1500]byte
	var dec [1500]byte
	var seen bool
	var maxSeq uint16
	var transit int64
	var jitter float64
	var lastDTMF uint32
	dtmfSeen := false
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(buf[:])
		if err != nil {
			return // closed
		}
		pkt := buf[:n]
		if n < 12 || pkt[0]>>6 != 2 {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if l.latched.Load() {
			if to := l.sendTo.Load(); to == nil || *to != from {
				l.unexpected.Add(1)
				continue
			}
		}
		if rx := l.rx.Load(); rx != nil {
			out, err := rx.DecryptRTP(dec[:0], pkt, nil)
			if err != nil {
				l.authFail.Add(1)
				continue
			}
			pkt = out
		}
		if !l.latched.Load() {
			f := from
			l.sendTo.Store(&f)
			l.latched.Store(true)
			l.w.emit(Event{LegID: l.id, Kind: EventLatched})
		}
		l.pktsIn.Add(1)
		l.bytesIn.Add(uint64(len(pkt)))
		now := l.w.s.cfg.Now()
		l.w.lastRx.Store(now.UnixNano())

		seq := binary.BigEndian.Uint16(pkt[2:])
		ts := binary.BigEndian.Uint32(pkt[4:])
		if seen {
			if d := seq - maxSeq; d > 1 && d < 0x8000 {
				l.lost.Add(uint64(d - 1))
			}
			if int16(seq-maxSeq) > 0 {
				maxSeq = seq
			}
		} else {
			maxSeq = seq
		}
		// RFC 3550 A.8 interarrival jitter in 8 kHz units, reported in ms.
		arrival := now.UnixNano() / 125000
		tr := arrival - int64(ts)
		if seen {
			d := math.Abs(float64(tr - transit))
			jitter += (d - jitter) / 16
			l.jitterBits.Store(math.Float64bits(jitter / 8))
		}
		transit, seen = tr, true

		pt := pkt[1] & 0x7f
		t := l.table.Load()
		if int16(pt) == t.dtmf && len(pkt) >= 16 && pkt[13]&0x80 != 0 && (!dtmfSeen || ts != lastDTMF) {
			lastDTMF, dtmfSeen = ts, true
			if d := dtmfDigit(pkt[12]); d != 0 {
				l.w.emit(Event{LegID: l.id, Kind: EventDTMF, Digit: d})
			}
		}
		key := t.byPT[pt]
		for _, d := range *l.listeners.Load() {
			d.forward(l, pkt, key)
		}
	}
}

func dtmfDigit(ev byte) byte {
	switch {
	case ev <= 9:
		return '0' + ev
	case ev == 10:
		return '*'
	case ev == 11:
		return '#'
	case ev >= 12 && ev <= 15:
		return 'A' + ev - 12
	}
	return 0
}

// forward sends src's packet to this leg with this leg's payload type, SSRC
// and a continuous sequence/timestamp line.
func (l *Leg) forward(src *Leg, pkt []byte, codec string) {
	pt, ok := l.table.Load().byKey[codec]
	if codec == "" || !ok {
		l.badPT.Add(1)
		return
	}
	to := l.sendTo.Load()
	if to == nil {
		return
	}
	seq := binary.BigEndian.Uint16(pkt[2:])
	ts := binary.BigEndian.Uint32(pkt[4:])
	l.outMu.Lock()
	defer l.outMu.Unlock()
	marker := pkt[1] & 0x80
	if l.curSrc != src {
		l.curSrc = src
		if l.started {
			l.seqOff = l.lastSeq + 1 - seq
			l.tsOff = l.lastTs + 160 - ts
		} else {
			l.seqOff, l.tsOff = 0, 0
		}
		marker = 0x80 // a new talk spurt for the receiver's jitter buffer
	}
	out := l.obuf[:len(pkt)]
	copy(out, pkt)
	out[1] = marker | pt
	l.lastSeq, l.lastTs, l.started = seq+l.seqOff, ts+l.tsOff, true
	binary.BigEndian.PutUint16(out[2:], l.lastSeq)
	binary.BigEndian.PutUint32(out[4:], l.lastTs)
	binary.BigEndian.PutUint32(out[8:], l.ssrc)
	l.send(out, *to)
}

// sendTone sends one frame of the hold tone (PCMU, else PCMA). Called by the
// service's tone clock.
func (l *Leg) sendTone(frame int) {
	t := l.table.Load()
	var pt int16
	var payload []byte
	switch {
	case t.pcmu >= 0:
		pt, payload = t.pcmu, toneULaw[frame][:]
	case t.pcma >= 0:
		pt, payload = t.pcma, toneALaw[frame][:]
	default:
		return
	}
	to := l.sendTo.Load()
	if to == nil {
		return
	}
	l.outMu.Lock()
	defer l.outMu.Unlock()
	marker := byte(0)
	if l.curSrc != toneSrc {
		l.curSrc, marker = toneSrc, 0x80
	}
	if !l.started {
		l.lastSeq, l.lastTs, l.started = uint16(l.ssrc), l.ssrc, true
	}
	l.lastSeq++
	l.lastTs += 160
	out := l.obuf[:12+len(payload)]
	out[0] = 0x80
	out[1] = marker | byte(pt)
	binary.BigEndian.PutUint16(out[2:], l.lastSeq)
	binary.BigEndian.PutUint32(out[4:], l.lastTs)
	binary.BigEndian.PutUint32(out[8:], l.ssrc)
	copy(out[12:], payload)
	l.send(out, *to)
}

// send encrypts when the leg is SRTP and writes. Under outMu.
func (l *Leg) send(out []byte, to netip.AddrPort) {
	if l.tx != nil {
		enc, err := l.tx.EncryptRTP(l.ebuf[:0], out, nil)
		if err != nil {
			return
		}
		out = enc
	}
	if _, err := l.conn.WriteToUDPAddrPort(out, to); err == nil {
		l.pktsOut.Add(1)
		l.bytesOut.Add(uint64(len(out)))
	}
}

func (l *Leg) stats() LegStats {
	s := LegStats{ID: l.id, PacketsIn: l.pktsIn.Load(), PacketsOut: l.pktsOut.Load(), BytesIn: l.bytesIn.Load(),
		BytesOut: l.bytesOut.Load(), Lost: l.lost.Load(), JitterMs: math.Float64frombits(l.jitterBits.Load())}
	if l.latched.Load() {
		if a := l.sendTo.Load(); a != nil {
			s.Latched = a.String()
		}
	}
	return s
}

// flushMetrics adds what changed since the last flush to the node's
// counters: one atomic add per leg per second instead of one per packet.
func (l *Leg) flushMetrics() {
	out, lost := l.pktsOut.Load(), l.lost.Load()
	un, au := l.unexpected.Load(), l.authFail.Load()
	metrics.RTPRelayed.Add(float64(out - l.flushedOut))
	metrics.RTPLost.Add(float64(lost - l.flushedLost))
	if un > l.flushedUnexp {
		metrics.RTPDropped.WithLabelValues("unexpected_source").Add(float64(un - l.flushedUnexp))
	}
	if au > l.flushedAuth {
		metrics.RTPDropped.WithLabelValues("srtp_auth").Add(float64(au - l.flushedAuth))
	}
	l.flushedOut, l.flushedLost, l.flushedUnexp, l.flushedAuth = out, lost, un, au
}

func (l *Leg) close() {
	l.closeOnce.Do(func() {
		l.w.s.setTone(l, false)
		l.conn.Close()
		l.flushMetrics()
		l.w.s.release(l.port)
	})
}
