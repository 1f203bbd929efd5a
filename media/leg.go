package media

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/media/sdp"
)

const suite = "AES_CM_128_HMAC_SHA1_80"

// Leg is one SIP leg's media: its sockets, what its remote agreed to, and
// the outbound stream (SSRC, sequence, timestamp) of what it hears.
type Leg struct {
	w         *Worker
	id        string
	sock      sockets // its reader's until done; the pool's after close
	ssrc      uint32
	stopping  atomic.Bool   // close has asked the reader to return
	done      chan struct{} // closed when the reader has returned
	closeOnce sync.Once

	// Negotiation, under mu.
	mu        sync.Mutex
	offer     *sdp.Session // the remote's last offer
	offerIdx  int          // its m= line we answer
	offerTag  int          // crypto tag we answer with
	sentSRTP  bool         // our last offer was RTP/SAVP
	codecs    []sdp.Format // what the remote agreed to (or offered)
	direction string       // what the remote asked for
	sdpAddr   netip.AddrPort
	localKey  []byte        // our SDES master key||salt, made once per leg
	txCtx     *srtp.Context // its encrypt context, in out.tx while SRTP is on
	remoteKey []byte
	sessID    uint64
	version   uint64
	lastSDP   []byte

	// Read by the packet path without mu.
	table     atomic.Pointer[codecTable]
	dest      atomic.Pointer[peer]
	rxCtx     atomic.Pointer[srtp.Context] // used by the reader goroutine only
	listeners atomic.Pointer[[]*Leg]       // legs that hear this one

	rx        rxState // the reader goroutine's own
	outMu     sync.Mutex
	outClosed bool     // under outMu: the leg has ended, and its socket may be another leg's now
	out       outState // what this leg hears; written by other legs' readers, the tone clock and the mix clock

	// This leg's audio while it is a mix source, else nil (mix.go): most
	// legs never are, so its buffers are not part of every leg.
	cap      atomic.Pointer[capture]
	mixo     mixOut      // the mix clock's state for what this leg hears
	chimeReq atomic.Bool // a chime is asked for; the mix clock starts it

	counters
}

// peer is where a leg's media goes. It is replaced whole so the reader,
// the forwarders and the negotiation never see half of a change.
type peer struct {
	addr    netip.AddrPort // invalid until the SDP or a latch gives one
	latched bool           // addr is the source seen, not the SDP's
	recv    bool           // the remote wants media (not sendonly/inactive)
}

func newLeg(w *Worker, id string, sock sockets) (*Leg, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("media: leg %s: random: %w", id, err)
	}
	l := &Leg{w: w, id: id, sock: sock, done: make(chan struct{}),
		ssrc: binary.BigEndian.Uint32(b[0:]), sessID: uint64(binary.BigEndian.Uint32(b[4:]))}
	// RFC 3550: random initial sequence number and timestamp.
	l.out.seq = binary.BigEndian.Uint16(b[8:])
	l.out.ts = binary.BigEndian.Uint32(b[10:])
	l.table.Store(noCodecs)
	l.dest.Store(&peer{recv: true})
	l.listeners.Store(noListeners)
	return l, nil
}

// LocalPort is the leg's RTP port.
func (l *Leg) LocalPort() int { return l.sock.port }

// Codecs is what the remote of this leg agreed to (or offered, before an answer).
func (l *Leg) Codecs() []sdp.Format {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.codecs)
}

// RemoteDirection is the direction the remote last asked for ("sendonly"
// also for an RFC 2543 hold with c=0.0.0.0).
func (l *Leg) RemoteDirection() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.direction
}

// AcceptOffer takes the remote's offer (initial or re-INVITE).
func (l *Leg) AcceptOffer(offer []byte, requireSRTP bool) error {
	s, err := sdp.Parse(offer)
	if err != nil {
		return fmt.Errorf("media: leg %s: offer: %w", l.id, err)
	}
	idx := audioIndex(s)
	if idx < 0 {
		return fmt.Errorf("leg %s: offer: %w", l.id, ErrNoCodec)
	}
	m := s.Media[idx]
	c, err := remoteCrypto(m, requireSRTP)
	if err != nil {
		return fmt.Errorf("leg %s: offer: %w", l.id, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var key []byte
	if c != nil {
		key = c.Key
		if err := l.ensureLocalKey(); err != nil {
			return err
		}
		l.offerTag = c.Tag
	}
	if err := l.setRemoteKey(key); err != nil {
		return err
	}
	l.offer, l.offerIdx = s, idx
	l.codecs = m.Formats
	l.setRemote(s, m)
	return nil
}

// Answer is our answer to the stored offer: the offer's payload types of the
// codecs the other leg agreed on (telephone-event only when both have it),
// our address and port, our own key when the offer was SRTP, the offer's
// direction mirrored, and every other m= line rejected with port 0.
func (l *Leg) Answer(codecs []sdp.Format) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.offer == nil {
		// A caller bug, but the dialog still needs a body: offer what we have.
		l.w.s.log.Error("answer without an offer; sending an offer instead", "call", l.w.callID, "leg", l.id)
		return l.offerLocked(codecs, false)
	}
	om := l.offer.Media[l.offerIdx]
	var fs []sdp.Format
	for _, f := range om.Formats {
		if slices.ContainsFunc(codecs, f.Same) {
			fs = append(fs, f)
		}
	}
	if !slices.ContainsFunc(fs, sdp.Format.IsAudio) {
		// Nothing in common (a re-offer that dropped the codec in use): keep
		// the dialog alive with the offer's first codec; packets the other
		// leg cannot take are dropped as no_codec, as we do not transcode.
		i := slices.IndexFunc(om.Formats, sdp.Format.IsAudio)
		fs = append([]sdp.Format{om.Formats[i]}, fs...)
		l.w.s.log.Warn("no codec in common with the other leg", "call", l.w.callID, "leg", l.id, "answered", om.Formats[i].Name)
	}
	l.codecs = fs
	l.table.Store(newTable(fs))
	l.encrypt(l.remoteKey != nil)
	media := make([]*sdp.Media, len(l.offer.Media))
	for i, m := range l.offer.Media {
		if i != l.offerIdx {
			media[i] = &sdp.Media{Type: m.Type, Port: 0, Proto: m.Proto, Formats: m.Formats, OtherFormats: m.OtherFormats}
			continue
		}
		a := &sdp.Media{Type: "audio", Port: l.sock.port, Proto: m.Proto, Formats: fs, Direction: mirror(l.direction), Ptime: 20}
		if l.remoteKey != nil {
			a.Crypto = []sdp.Crypto{{Tag: l.offerTag, Suite: suite, Key: l.localKey}}
		}
		media[i] = a
	}
	return l.describe(media)
}

// Offer is our offer to this leg's remote with the given codecs (usually the
// other leg's), plus telephone-event so digits can be seen on this leg too.
func (l *Leg) Offer(codecs []sdp.Format, useSRTP bool) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.offerLocked(codecs, useSRTP)
}

func (l *Leg) offerLocked(codecs []sdp.Format, useSRTP bool) []byte {
	m := &sdp.Media{Type: "audio", Port: l.sock.port, Proto: "RTP/AVP", Formats: withDTMF(codecs), Direction: "sendrecv", Ptime: 20}
	l.sentSRTP = false
	if useSRTP {
		if err := l.ensureLocalKey(); err != nil {
			l.w.s.log.Error("no SRTP key; offering plain RTP", "call", l.w.callID, "leg", l.id, "err", err)
		} else {
			l.sentSRTP = true
			m.Proto = "RTP/SAVP"
			m.Crypto = []sdp.Crypto{{Tag: 1, Suite: suite, Key: l.localKey}}
		}
	}
	// The remote knows our key from the offer, so early media may go
	// encrypted already; its answer confirms or fails the call.
	l.encrypt(l.sentSRTP)
	return l.describe([]*sdp.Media{m})
}

// AcceptAnswer takes the remote's answer to our Offer.
func (l *Leg) AcceptAnswer(answer []byte) error {
	s, err := sdp.Parse(answer)
	if err != nil {
		return fmt.Errorf("media: leg %s: answer: %w", l.id, err)
	}
	idx := audioIndex(s)
	if idx < 0 {
		return fmt.Errorf("leg %s: answer: %w", l.id, ErrNoCodec)
	}
	m := s.Media[idx]
	l.mu.Lock()
	defer l.mu.Unlock()
	var key []byte
	if isSAVP(m.Proto) != l.sentSRTP {
		return fmt.Errorf("leg %s: answer %s does not match our offer: %w", l.id, m.Proto, ErrNoCrypto)
	}
	if l.sentSRTP {
		c := pickCrypto(m.Crypto)
		if c == nil {
			return fmt.Errorf("leg %s: answer: %w", l.id, ErrNoCrypto)
		}
		key = c.Key
	}
	if err := l.setRemoteKey(key); err != nil {
		return err
	}
	l.encrypt(l.sentSRTP)
	l.codecs = m.Formats
	l.setRemote(s, m)
	return nil
}

// setRemote points the leg at the SDP's address and direction. A changed
// address undoes the latch (the phone moved or re-INVITEd with a new c=).
// Under mu.
func (l *Leg) setRemote(s *sdp.Session, m *sdp.Media) {
	addr, ok := s.Addr(m)
	dir := m.Direction
	if ok && addr.Addr().IsUnspecified() {
		// RFC 2543 hold: "do not send to me".
		addr, ok = netip.AddrPort{}, false
		dir = map[string]string{"sendrecv": "sendonly", "recvonly": "inactive"}[dir]
		if dir == "" {
			dir = m.Direction
		}
	}
	l.direction = dir
	l.table.Store(newTable(l.codecs))
	recv := dir == "sendrecv" || dir == "recvonly"
	changed := addr != l.sdpAddr
	l.sdpAddr = addr
	for {
		cur := l.dest.Load()
		next := &peer{addr: addr, recv: recv}
		if !changed {
			next.addr, next.latched = cur.addr, cur.latched
		}
		if l.dest.CompareAndSwap(cur, next) {
			break
		}
	}
}

// ensureLocalKey makes our SDES key and its encrypt context once per leg, so
// a re-INVITE neither rekeys nor resets the rollover counter. Under mu.
func (l *Leg) ensureLocalKey() error {
	if l.localKey != nil {
		return nil
	}
	k := make([]byte, 30)
	if _, err := rand.Read(k); err != nil {
		return fmt.Errorf("media: leg %s: SRTP key: %w", l.id, err)
	}
	tx, err := srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	if err != nil {
		return fmt.Errorf("media: leg %s: SRTP context: %w", l.id, err)
	}
	l.localKey, l.txCtx = k, tx
	return nil
}

// encrypt turns SRTP on or off for what this leg sends. Under mu.
func (l *Leg) encrypt(on bool) {
	var tx *srtp.Context
	if on {
		tx = l.txCtx
	}
	l.outMu.Lock()
	l.out.tx = tx
	l.outMu.Unlock()
}

// setRemoteKey installs the decrypt context for the remote's key; the same
// key keeps the context (and its replay window and rollover counter). Under mu.
func (l *Leg) setRemoteKey(k []byte) error {
	if bytes.Equal(k, l.remoteKey) {
		return nil
	}
	var rx *srtp.Context
	if k != nil {
		var err error
		rx, err = srtp.CreateContext(k[:16], k[16:], srtp.ProtectionProfileAes128CmHmacSha1_80, srtp.SRTPReplayProtection(128))
		if err != nil {
			return fmt.Errorf("media: leg %s: remote SRTP key: %w", l.id, err)
		}
	}
	l.remoteKey = slices.Clone(k)
	l.rxCtx.Store(rx)
	return nil
}

// describe wraps media in a session with our address; the o= version goes
// up only when the description changes (RFC 3264 section 8). Under mu.
func (l *Leg) describe(media []*sdp.Media) []byte {
	ip := l.w.s.ip
	s := &sdp.Session{Origin: sdp.Origin{Username: "switchboard", SessID: l.sessID, SessVersion: l.version + 1, IP: ip},
		Name: "switchboard", ConnIP: ip, Media: media}
	// Written once, with the next version: when all but the o= line matches
	// the last description, that one (and its version) is the answer.
	b := s.Marshal()
	if l.lastSDP != nil && bytes.Equal(afterOrigin(b), afterOrigin(l.lastSDP)) {
		return slices.Clone(l.lastSDP)
	}
	l.version++
	l.lastSDP = b
	return slices.Clone(b)
}

// afterOrigin is a description from the line after o= on.
func afterOrigin(b []byte) []byte {
	_, rest, _ := bytes.Cut(b, []byte("\no="))
	_, rest, _ = bytes.Cut(rest, []byte("\n"))
	return rest
}

// audioIndex is the first audio m= line we can relay: not rejected, an RTP
// profile, and at least one voice codec.
func audioIndex(s *sdp.Session) int {
	return slices.IndexFunc(s.Media, func(m *sdp.Media) bool {
		return m.Type == "audio" && m.Port != 0 && m.IsRTP() && slices.ContainsFunc(m.Formats, sdp.Format.IsAudio)
	})
}

func isSAVP(proto string) bool { return proto == "RTP/SAVP" || proto == "RTP/SAVPF" }

// remoteCrypto is the offer's usable SDES crypto, nil for plain RTP.
func remoteCrypto(m *sdp.Media, requireSRTP bool) (*sdp.Crypto, error) {
	switch {
	case isSAVP(m.Proto):
		if c := pickCrypto(m.Crypto); c != nil {
			return c, nil
		}
	case m.Proto == "RTP/AVP" || m.Proto == "RTP/AVPF":
		if !requireSRTP {
			return nil, nil
		}
	}
	if requireSRTP {
		return nil, ErrSRTPRequired
	}
	return nil, fmt.Errorf("%s: %w", m.Proto, ErrNoCrypto) // DTLS-SRTP or a suite we lack
}

func pickCrypto(cs []sdp.Crypto) *sdp.Crypto {
	i := slices.IndexFunc(cs, func(c sdp.Crypto) bool { return c.Suite == suite && len(c.Key) == 30 })
	if i < 0 {
		return nil
	}
	return &cs[i]
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

// withDTMF adds telephone-event/8000 (PT 101 or the first free dynamic PT)
// when the codecs lack it.
func withDTMF(codecs []sdp.Format) []sdp.Format {
	fs := slices.Clone(codecs)
	if slices.ContainsFunc(fs, sdp.Format.IsDTMF) {
		return fs
	}
	used := func(pt int) bool { return slices.ContainsFunc(fs, func(f sdp.Format) bool { return int(f.PT) == pt }) }
	pt := 101
	for used(pt) {
		if pt = pt + 1; pt > 127 {
			pt = 96
		}
		if pt == 101 {
			return fs // every dynamic PT taken
		}
	}
	return append(fs, sdp.Format{PT: uint8(pt), Name: "telephone-event", Rate: 8000, Fmtp: "0-16"})
}

// codecTable maps one leg's payload types to codecs and back. It is never
// changed once stored, so legs share the empty one.
type codecTable struct {
	at    [128]uint8 // 1 + the index in fmts of a payload type's codec; 0 unknown
	fmts  []ptKey    // each codec once, with its first PT
	dtmf  int16      // PT of telephone-event, -1 none
	pcmu  int16
	pcma  int16
	g711  int16 // PT of the first G.711 codec agreed (what the mixer sends), -1 none
	g711A bool  // it is PCMA
}

type ptKey struct {
	key  string
	pt   uint8
	rate uint32
}

var (
	noCodecs    = newTable(nil)
	noListeners = &[]*Leg{}
)

// commonKeys are the keys of common codecs, interned so that building a
// table for them allocates no strings.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"pcmu/8000", "pcma/8000", "telephone-event/8000", "cn/8000", "g722/8000", "g729/8000", "gsm/8000", "opus/48000"} {
		m[k] = k
	}
	return m
}()

// codecKey is the codec's lower-case name and rate, "pcmu/8000".
func codecKey(f sdp.Format) string {
	var buf [40]byte
	b := buf[:0]
	for i := 0; i < len(f.Name); i++ {
		c := f.Name[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(f.Name) + "/" + strconv.Itoa(f.Rate)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = strconv.AppendInt(append(b, '/'), int64(f.Rate), 10)
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

func newTable(fs []sdp.Format) *codecTable {
	t := &codecTable{dtmf: -1, pcmu: -1, pcma: -1, g711: -1}
	for _, f := range fs {
		if f.Name == "" || f.PT > 127 || f.Rate <= 0 {
			continue
		}
		k := codecKey(f)
		if i := slices.IndexFunc(t.fmts, func(p ptKey) bool { return p.key == k }); i >= 0 {
			t.at[f.PT] = uint8(i + 1)
			continue
		}
		if t.fmts == nil {
			t.fmts = make([]ptKey, 0, len(fs))
		}
		t.fmts = append(t.fmts, ptKey{key: k, pt: f.PT, rate: uint32(f.Rate)})
		t.at[f.PT] = uint8(len(t.fmts))
		switch k {
		case "telephone-event/8000":
			t.dtmf = int16(f.PT)
		case "pcmu/8000":
			t.pcmu = int16(f.PT)
		case "pcma/8000":
			t.pcma = int16(f.PT)
		}
		if t.g711 < 0 && (t.pcmu >= 0 || t.pcma >= 0) {
			t.g711, t.g711A = int16(f.PT), t.pcma >= 0
		}
	}
	return t
}

// codec is a payload type's codec key and clock rate, "" and 0 unknown.
func (t *codecTable) codec(pt uint8) (key string, rate uint32) {
	if i := t.at[pt&0x7f]; i > 0 {
		p := &t.fmts[i-1]
		return p.key, p.rate
	}
	return "", 0
}

// lookup is this leg's payload type for a codec key: a scan of a handful of
// entries beats a map for the per-packet path.
func (t *codecTable) lookup(key string) (pt uint8, rate uint32, ok bool) {
	for i := range t.fmts {
		if t.fmts[i].key == key {
			return t.fmts[i].pt, t.fmts[i].rate, true
		}
	}
	return 0, 0, false
}
