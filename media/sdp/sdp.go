// Package sdp parses and builds the SDP (RFC 4566) of offers and answers
// (RFC 3264), with the SDES crypto attribute (RFC 4568). It keeps what a
// media relay needs and carries the rest of each m= section through as raw
// attributes. Parse is lenient about line ends and lines it does not use,
// and strict about what the relay acts on: m= and c= lines, ports, payload
// types, rtpmap and SDES keys.
package sdp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Session is one SDP description.
type Session struct {
	Origin Origin
	Name   string
	ConnIP string // session-level c= address
	Media  []*Media
}

// Origin is the o= line.
type Origin struct {
	Username    string
	SessID      uint64
	SessVersion uint64
	IP          string
}

// Media is one m= section.
type Media struct {
	Type    string // audio, video, ...
	Port    int
	Proto   string   // RTP/AVP, RTP/SAVP, ...
	Formats []Format // payload types of an RTP m= line, in m= order
	// OtherFormats are the fmt tokens of a non-RTP m= line ("*",
	// "webrtc-datachannel"), kept so an answer can reject it verbatim.
	OtherFormats []string
	ConnIP       string // media-level c=, overrides the session's
	Direction    string // sendrecv (also when absent), sendonly, recvonly, inactive
	Crypto       []Crypto
	Ptime        int
	Attrs        []string // other a= lines, raw ("rtcp:9")
}

// Format is one payload type of an m= line with its rtpmap and fmtp.
type Format struct {
	PT       uint8
	Name     string
	Rate     int
	Channels int
	Fmtp     string
}

// Crypto is an a=crypto line with an inline SDES key.
type Crypto struct {
	Tag    int
	Suite  string
	Key    []byte // master key || master salt (30 bytes for AES_CM_128)
	Params string // session parameters after the key, raw
}

// ErrSyntax is wrapped by every Parse error.
var ErrSyntax = errors.New("sdp: syntax")

// static payload types that need no rtpmap (RFC 3551).
var static = map[uint8]Format{
	0: {PT: 0, Name: "PCMU", Rate: 8000}, 3: {PT: 3, Name: "GSM", Rate: 8000}, 4: {PT: 4, Name: "G723", Rate: 8000},
	8: {PT: 8, Name: "PCMA", Rate: 8000}, 9: {PT: 9, Name: "G722", Rate: 8000}, 13: {PT: 13, Name: "CN", Rate: 8000},
	18: {PT: 18, Name: "G729", Rate: 8000},
}

// Same is true when two formats are the same codec (name and rate).
func (f Format) Same(o Format) bool { return strings.EqualFold(f.Name, o.Name) && f.Rate == o.Rate }

// IsDTMF is true for RFC 4733 telephone-event.
func (f Format) IsDTMF() bool { return strings.EqualFold(f.Name, "telephone-event") }

// IsAudio is true for a known format that carries voice (not DTMF, not
// comfort noise). A dynamic payload type without rtpmap is not usable.
func (f Format) IsAudio() bool {
	return f.Name != "" && !f.IsDTMF() && !strings.EqualFold(f.Name, "CN")
}

// IsRTP is true for the RTP profiles (RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF...).
func (m *Media) IsRTP() bool { return strings.Contains(m.Proto, "RTP/") }

// SRTP is true for the SDES-keyed secure profiles (RTP/SAVP, RTP/SAVPF).
func (m *Media) SRTP() bool { return m.Proto == "RTP/SAVP" || m.Proto == "RTP/SAVPF" }

func syntax(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, line, fmt.Sprintf(format, args...))
}

// Parse reads an SDP body; lines may end in CRLF or LF.
func Parse(b []byte) (*Session, error) {
	s := &Session{}
	var m *Media
	sessDir := ""
	sawV, sawO := false, false
	var fb [8]string // fields of the line at hand, on the stack
	for n, rest := 1, string(b); rest != ""; n++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, syntax(n, "%q is not type=value", trunc(line))
		}
		typ, val := line[0], line[2:]
		if !sawV {
			if typ != 'v' || val != "0" {
				return nil, syntax(n, "must start with v=0")
			}
			sawV = true
			continue
		}
		switch typ {
		case 'o':
			f := fields(fb[:0], val)
			if len(f) != 6 {
				return nil, syntax(n, "o= needs 6 fields, has %d", len(f))
			}
			id, err1 := strconv.ParseUint(f[1], 10, 64)
			ver, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, syntax(n, "o= session id and version must be numbers")
			}
			s.Origin = Origin{Username: f[0], SessID: id, SessVersion: ver, IP: f[5]}
			sawO = true
		case 's':
			s.Name = strings.TrimSpace(val)
		case 'c':
			ip, err := parseConn(fields(fb[:0], val))
			if err != nil {
				return nil, syntax(n, "%v", err)
			}
			if m != nil {
				m.ConnIP = ip
			} else {
				s.ConnIP = ip
			}
		case 'm':
			nm, err := parseMedia(fields(fb[:0], val))
			if err != nil {
				return nil, syntax(n, "%v", err)
			}
			m = nm
			s.Media = append(s.Media, m)
		case 'a':
			if m == nil {
				// Only the session-level direction matters to a relay.
				if isDirection(val) {
					sessDir = val
				}
				continue
			}
			if err := m.attr(val); err != nil {
				return nil, syntax(n, "%v", err)
			}
		}
	}
	if !sawV {
		return nil, syntax(0, "empty description")
	}
	if !sawO {
		return nil, syntax(0, "no o= line")
	}
	for _, m := range s.Media {
		if m.Direction == "" {
			m.Direction = sessDir
		}
		if m.Direction == "" {
			m.Direction = "sendrecv"
		}
		for i, f := range m.Formats {
			if sf, ok := static[f.PT]; ok && f.Name == "" {
				sf.Fmtp = f.Fmtp
				m.Formats[i] = sf
			}
		}
	}
	return s, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// fields is strings.Fields appending to dst, so a caller's stack array
// spares the allocation.
func fields(dst []string, s string) []string {
	start := -1
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				dst = append(dst, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:])
	}
	return dst
}

// parseConn reads the fields of "IN IP4|IP6 <address>[/ttl]". A host name is
// kept (it is legal SDP) but AudioAddr will not resolve it; an IP must match
// its family.
func parseConn(f []string) (string, error) {
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return "", errors.New("c= must be IN IP4|IP6 <address>")
	}
	addr, _, _ := strings.Cut(f[2], "/")
	if addr == "" {
		return "", errors.New("c= has no address")
	}
	if ip, err := netip.ParseAddr(addr); err == nil && ip.Is4() != (f[1] == "IP4") {
		return "", fmt.Errorf("c= address %s is not %s", addr, f[1])
	}
	return addr, nil
}

// parseMedia reads the fields of an m= line.
func parseMedia(f []string) (*Media, error) {
	if len(f) < 4 {
		return nil, errors.New("m= needs media, port, proto and at least one format")
	}
	portStr, _, _ := strings.Cut(f[1], "/") // port count: one stream is all we use
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("m= port %q out of range", f[1])
	}
	m := &Media{Type: f[0], Port: port, Proto: f[2]}
	if !m.IsRTP() {
		m.OtherFormats = slices.Clone(f[3:])
		return m, nil
	}
	var seen [128]bool
	m.Formats = make([]Format, 0, len(f)-3)
	for _, p := range f[3:] {
		pt, err := strconv.Atoi(p)
		if err != nil || pt < 0 || pt > 127 {
			return nil, fmt.Errorf("m= payload type %q not in 0-127", p)
		}
		if seen[pt] {
			return nil, fmt.Errorf("m= payload type %d listed twice", pt)
		}
		seen[pt] = true
		m.Formats = append(m.Formats, Format{PT: uint8(pt)})
	}
	return m, nil
}

func isDirection(v string) bool {
	switch v {
	case "sendrecv", "sendonly", "recvonly", "inactive":
		return true
	}
	return false
}

func (m *Media) format(pt int) *Format {
	for i := range m.Formats {
		if int(m.Formats[i].PT) == pt {
			return &m.Formats[i]
		}
	}
	return nil
}

func (m *Media) attr(v string) error {
	if isDirection(v) {
		m.Direction = v
		return nil
	}
	name, val, _ := strings.Cut(v, ":")
	switch name {
	case "rtpmap":
		return m.rtpmap(val)
	case "fmtp":
		ptS, params, _ := strings.Cut(val, " ")
		if pt, err := strconv.Atoi(ptS); err == nil {
			if f := m.format(pt); f != nil {
				f.Fmtp = params
			}
		}
	case "ptime":
		if p, err := strconv.Atoi(strings.TrimSpace(val)); err == nil && p > 0 && p <= 1000 {
			m.Ptime = p
		}
	case "crypto":
		c, ok, err := parseCrypto(val)
		if err != nil {
			return err
		}
		if !ok {
			m.Attrs = append(m.Attrs, v) // a key method or MKI we cannot use
			return nil
		}
		m.Crypto = append(m.Crypto, c)
	default:
		m.Attrs = append(m.Attrs, v)
	}
	return nil
}

// rtpmap reads "<pt> <name>/<rate>[/<channels>]".
func (m *Media) rtpmap(val string) error {
	ptS, enc, ok := strings.Cut(val, " ")
	pt, err := strconv.Atoi(ptS)
	if !ok || err != nil || pt < 0 || pt > 127 {
		return fmt.Errorf("rtpmap %q: bad payload type", trunc(val))
	}
	name, rest, ok := strings.Cut(strings.TrimSpace(enc), "/")
	if !ok || name == "" {
		return fmt.Errorf("rtpmap %q needs encoding/rate", trunc(val))
	}
	rateS, rest, hasCh := strings.Cut(rest, "/")
	rate, err := strconv.Atoi(rateS)
	if err != nil || rate <= 0 {
		return fmt.Errorf("rtpmap %q: bad rate", trunc(val))
	}
	ch := 0
	if hasCh {
		chS, _, _ := strings.Cut(rest, "/")
		if ch, err = strconv.Atoi(chS); err != nil || ch <= 0 {
			return fmt.Errorf("rtpmap %q: bad channels", trunc(val))
		}
	}
	if f := m.format(pt); f != nil {
		f.Name, f.Rate, f.Channels = name, rate, ch
	}
	return nil
}

// parseCrypto reads "<tag> <suite> inline:<base64 key>[|lifetime] [params]".
// ok is false for lines that are well formed but unusable (another key
// method, or an MKI, which the relay does not put on the wire).
func parseCrypto(v string) (c Crypto, ok bool, err error) {
	var fb [6]string
	f := fields(fb[:0], v)
	if len(f) < 3 {
		return c, false, errors.New("crypto needs tag, suite and key")
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > 999999999 {
		return c, false, fmt.Errorf("crypto tag %q", f[0])
	}
	key, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return c, false, nil
	}
	keyStr, rest, _ := strings.Cut(key, "|")
	if strings.Contains(rest, ":") {
		return c, false, nil // MKI
	}
	k, err := base64.StdEncoding.DecodeString(keyStr)
	if err != nil {
		if k, err = base64.RawStdEncoding.DecodeString(keyStr); err != nil {
			return c, false, fmt.Errorf("crypto tag %d: key is not base64", tag)
		}
	}
	if len(k) == 0 {
		return c, false, fmt.Errorf("crypto tag %d: empty key", tag)
	}
	return Crypto{Tag: tag, Suite: f[1], Key: k, Params: strings.Join(f[3:], " ")}, true, nil
}

// Addr is where this media wants RTP: its c= (or the session's) and port.
// ok is false for a rejected stream (port 0) or a c= that is not an IP.
func (s *Session) Addr(m *Media) (netip.AddrPort, bool) {
	ip := m.ConnIP
	if ip == "" {
		ip = s.ConnIP
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || m.Port == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(m.Port)), true
}

// Audio returns the first audio m= line that is not rejected (port 0).
func (s *Session) Audio() *Media {
	for _, m := range s.Media {
		if m.Type == "audio" && m.Port != 0 {
			return m
		}
	}
	return nil
}

// AudioAddr is the address of the first usable audio stream.
func (s *Session) AudioAddr() (netip.AddrPort, bool) {
	m := s.Audio()
	if m == nil {
		return netip.AddrPort{}, false
	}
	return s.Addr(m)
}

// Marshal writes the session with CRLF line ends in RFC 4566 order
// (v o s c t m), the direction last in each m= section.
func (s *Session) Marshal() []byte {
	user := s.Origin.Username
	if user == "" {
		user = "-"
	}
	oip := s.Origin.IP
	if oip == "" {
		oip = s.ConnIP
	}
	if oip == "" {
		oip = "0.0.0.0"
	}
	name := s.Name
	if name == "" {
		name = " " // RFC 4566: "s= " when there is no name
	}
	b := make([]byte, 0, s.size())
	b = append(b, "v=0\r\no="...)
	b = append(b, user...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.Origin.SessID, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, s.Origin.SessVersion, 10)
	b = append(b, " IN "...)
	b = appendAddr(b, oip)
	b = append(b, "\r\ns="...)
	b = append(b, name...)
	b = append(b, "\r\n"...)
	if s.ConnIP != "" {
		b = appendConn(b, s.ConnIP)
	}
	b = append(b, "t=0 0\r\n"...)
	for _, m := range s.Media {
		b = m.marshal(b)
	}
	return b
}

// size bounds what Marshal writes (numbers of the widths SDP uses), so it
// allocates once.
func (s *Session) size() int {
	n := 96 + len(s.Origin.Username) + len(s.Origin.IP) + len(s.Name) + 2*len(s.ConnIP)
	for _, m := range s.Media {
		n += 48 + len(m.Type) + len(m.Proto) + len(m.ConnIP) + len(m.Direction)
		for _, f := range m.Formats {
			n += 40 + len(f.Name) + len(f.Fmtp)
		}
		for _, f := range m.OtherFormats {
			n += 1 + len(f)
		}
		for _, c := range m.Crypto {
			n += 40 + len(c.Suite) + base64.StdEncoding.EncodedLen(len(c.Key)) + len(c.Params)
		}
		for _, a := range m.Attrs {
			n += 4 + len(a)
		}
	}
	return n
}

// appendAddr writes "IP4|IP6 <ip>".
func appendAddr(b []byte, ip string) []byte {
	if strings.Contains(ip, ":") {
		b = append(b, "IP6 "...)
	} else {
		b = append(b, "IP4 "...)
	}
	return append(b, ip...)
}

func appendConn(b []byte, ip string) []byte {
	b = appendAddr(append(b, "c=IN "...), ip)
	return append(b, "\r\n"...)
}

func (m *Media) marshal(b []byte) []byte {
	b = append(b, "m="...)
	b = append(b, m.Type...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(m.Port), 10)
	b = append(b, ' ')
	b = append(b, m.Proto...)
	for _, f := range m.Formats {
		b = strconv.AppendUint(append(b, ' '), uint64(f.PT), 10)
	}
	for _, f := range m.OtherFormats {
		b = append(append(b, ' '), f...)
	}
	b = append(b, "\r\n"...)
	if m.ConnIP != "" {
		b = appendConn(b, m.ConnIP)
	}
	for _, f := range m.Formats {
		if f.Name != "" {
			b = strconv.AppendUint(append(b, "a=rtpmap:"...), uint64(f.PT), 10)
			b = append(append(b, ' '), f.Name...)
			b = strconv.AppendInt(append(b, '/'), int64(f.Rate), 10)
			if f.Channels > 0 {
				b = strconv.AppendInt(append(b, '/'), int64(f.Channels), 10)
			}
			b = append(b, "\r\n"...)
		}
		if f.Fmtp != "" {
			b = strconv.AppendUint(append(b, "a=fmtp:"...), uint64(f.PT), 10)
			b = append(append(b, ' '), f.Fmtp...)
			b = append(b, "\r\n"...)
		}
	}
	if m.Ptime > 0 {
		b = strconv.AppendInt(append(b, "a=ptime:"...), int64(m.Ptime), 10)
		b = append(b, "\r\n"...)
	}
	for _, c := range m.Crypto {
		b = strconv.AppendInt(append(b, "a=crypto:"...), int64(c.Tag), 10)
		b = append(append(b, ' '), c.Suite...)
		b = base64.StdEncoding.AppendEncode(append(b, " inline:"...), c.Key)
		if c.Params != "" {
			b = append(append(b, ' '), c.Params...)
		}
		b = append(b, "\r\n"...)
	}
	for _, a := range m.Attrs {
		b = append(append(b, "a="...), a...)
		b = append(b, "\r\n"...)
	}
	if m.Direction != "" {
		b = append(append(b, "a="...), m.Direction...)
		b = append(b, "\r\n"...)
	}
	return b
}
