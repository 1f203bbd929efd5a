package media

// The negotiation of one leg's media: SDP offers and answers (RFC 3264),
// the codecs both sides agreed on, and the SDES keys of SRTP (RFC 4568).
// The packet path that uses what is agreed here is relay.go's.

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"

	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/media/sdp"
)

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
		// Nothing in common (a re-offer that dropped the codec in use, a
		// supervisor's phone with the other G.711 law): keep the dialog
		// alive with the offer's first codec. G.711 is converted between
		// the laws; other packets the other leg cannot take are dropped as
		// no_codec, as we do not transcode.
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
