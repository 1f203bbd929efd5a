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
	"strconv"
	"strings"
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

func syntax(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrSyntax, line, fmt.Sprintf(format, args...))
}

// Parse reads an SDP body; lines may end in CRLF or LF.
func Parse(b []byte) (*Session, error) {
	s := &Session{}
	var m *Media
	sessDir := ""
	sawV, sawO := false, false
	for i, raw := range strings.Split(string(b), "\n") {
		n := i + 1
		line := strings.TrimRight(raw, "\r")
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
			f := strings.Fields(val)
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
			ip, err := parseConn(val)
			if err != nil {
				return nil, syntax(n, "%v", err)
			}
			if m != nil {
				m.ConnIP = ip
			} else {
				s.ConnIP = ip
			}
		case 'm':
			nm, err := parseMedia(val)
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

// parseConn reads "IN IP4|IP6 <address>[/ttl]". A host name is kept (it is
// legal SDP) but AudioAddr will not resolve it; an IP must match its family.
func parseConn(v string) (string, error) {
	f := strings.Fields(v)
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

func parseMedia(v string) (*Media, error) {
	f := strings.Fields(v)
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
		m.OtherFormats = f[3:]
		return m, nil
	}
	seen := map[int]bool{}
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
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || parts[0] == "" {
		return fmt.Errorf("rtpmap %q needs encoding/rate", trunc(val))
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil || rate <= 0 {
		return fmt.Errorf("rtpmap %q: bad rate", trunc(val))
	}
	ch := 0
	if len(parts) > 2 {
		if ch, err = strconv.Atoi(parts[2]); err != nil || ch <= 0 {
			return fmt.Errorf("rtpmap %q: bad channels", trunc(val))
		}
	}
	if f := m.format(pt); f != nil {
		f.Name, f.Rate, f.Channels = parts[0], rate, ch
	}
	return nil
}

// parseCrypto reads "<tag> <suite> inline:<base64 key>[|lifetime] [params]".
// ok is false for lines that are well formed but unusable (another key
// method, or an MKI, which the relay does not put on the wire).
func parseCrypto(v string) (c Crypto, ok bool, err error) {
	f := strings.Fields(v)
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

func ipv(ip string) string {
	if strings.Contains(ip, ":") {
		return "IP6"
	}
	return "IP4"
}

// Marshal writes the session with CRLF line ends in RFC 4566 order
// (v o s c t m), the direction last in each m= section.
func (s *Session) Marshal() []byte {
	var b strings.Builder
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
	fmt.Fprintf(&b, "v=0\r\no=%s %d %d IN %s %s\r\ns=%s\r\n", user, s.Origin.SessID, s.Origin.SessVersion, ipv(oip), oip, name)
	if s.ConnIP != "" {
		fmt.Fprintf(&b, "c=IN %s %s\r\n", ipv(s.ConnIP), s.ConnIP)
	}
	b.WriteString("t=0 0\r\n")
	for _, m := range s.Media {
		m.marshal(&b)
	}
	return []byte(b.String())
}

func (m *Media) marshal(b *strings.Builder) {
	fmt.Fprintf(b, "m=%s %d %s", m.Type, m.Port, m.Proto)
	for _, f := range m.Formats {
		fmt.Fprintf(b, " %d", f.PT)
	}
	for _, f := range m.OtherFormats {
		b.WriteString(" " + f)
	}
	b.WriteString("\r\n")
	if m.ConnIP != "" {
		fmt.Fprintf(b, "c=IN %s %s\r\n", ipv(m.ConnIP), m.ConnIP)
	}
	for _, f := range m.Formats {
		if f.Name != "" {
			fmt.Fprintf(b, "a=rtpmap:%d %s/%d", f.PT, f.Name, f.Rate)
			if f.Channels > 0 {
				fmt.Fprintf(b, "/%d", f.Channels)
			}
			b.WriteString("\r\n")
		}
		if f.Fmtp != "" {
			fmt.Fprintf(b, "a=fmtp:%d %s\r\n", f.PT, f.Fmtp)
		}
	}
	if m.Ptime > 0 {
		fmt.Fprintf(b, "a=ptime:%d\r\n", m.Ptime)
	}
	for _, c := range m.Crypto {
		fmt.Fprintf(b, "a=crypto:%d %s inline:%s", c.Tag, c.Suite, base64.StdEncoding.EncodeToString(c.Key))
		if c.Params != "" {
			b.WriteString(" " + c.Params)
		}
		b.WriteString("\r\n")
	}
	for _, a := range m.Attrs {
		b.WriteString("a=" + a + "\r\n")
	}
	if m.Direction != "" {
		b.WriteString("a=" + m.Direction + "\r\n")
	}
}
