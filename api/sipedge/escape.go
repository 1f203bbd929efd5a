package sipedge

import (
	"strings"
	"unicode"

	"github.com/emiago/sipgo/sip"
)

// What the edge writes into a header from a name, a number or a grain's
// header is made safe here. sipgo's writers put a DisplayName between
// quotes and a URI's user part as they are, escaping nothing, and its
// parser hands back a quoted display name still escaped: so a name with a
// line break in it would start a header of its author's choosing.

// maxDisplay bounds a display name we write, in characters: room for
// "<caller> for <line's name>" of two 64-character names.
const maxDisplay = 140

// quoteDisplay returns name as the inside of an RFC 3261 quoted-string
// (§25.1), the form sipgo's DisplayName is written in: `"` and `\` are
// escaped, control characters dropped, invalid UTF-8 becomes U+FFFD.
func quoteDisplay(name string) string {
	var b strings.Builder
	n := 0
	for _, r := range name {
		if unicode.IsControl(r) {
			continue
		}
		if n == maxDisplay {
			break
		}
		n++
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// unquoteDisplay undoes the quoted-pairs of a display name as sipgo parses
// it (the text between the quotes, or an unquoted token, which holds no
// backslash).
func unquoteDisplay(raw string) string {
	if !strings.Contains(raw, `\`) {
		return raw
	}
	var b strings.Builder
	escaped := false
	for _, r := range raw {
		if r == '\\' && !escaped {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String()
}

// requoteDisplay writes again a display name read from the wire.
func requoteDisplay(raw string) string { return quoteDisplay(unquoteDisplay(raw)) }

// userPart returns s as an RFC 3261 user part (§25.1: unreserved,
// user-unreserved or escaped): every other byte is percent-escaped, and an
// escape already there is kept.
func userPart(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !userChar(s, i) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; userChar(s, i) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// userChar: s[i] may stand as it is in a user part.
func userChar(s string, i int) bool {
	c := s[i]
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '%':
		return i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2])
	}
	return strings.IndexByte("-_.!~*'()&=+$,;?/", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// headerLine splits a grain's "Name: value" and says whether it can be
// written as one header of its own: the name a token, the value free of
// control characters (a tab aside), and the header not one sipgo parses
// (From, Via, Content-Length...): those are the edge's to write, and a
// second or malformed one would contradict it or fail the message.
func headerLine(h string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(h, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if _, typed := sip.DefaultHeadersParser()[strings.ToLower(name)]; !ok || name == "" || typed {
		return "", "", false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return "", "", false
		}
	}
	for _, r := range value {
		if unicode.IsControl(r) && r != '\t' {
			return "", "", false
		}
	}
	return name, value, true
}
