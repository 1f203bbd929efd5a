package digest

import (
	"errors"
	"fmt"
	"strings"
)

// maxHeaderLen bounds the work done on one Authorization value; real ones
// are a few hundred bytes.
const maxHeaderLen = 4096

var (
	errEmpty     = errors.New("empty header")
	errTooLong   = errors.New("header too long")
	errNoScheme  = errors.New("missing auth scheme")
	errBadName   = errors.New("bad parameter name")
	errNoEquals  = errors.New("parameter without '='")
	errBadValue  = errors.New("bad parameter value")
	errUnclosed  = errors.New("unterminated quoted string")
	errDuplicate = errors.New("duplicate parameter")
	errTrailing  = errors.New("junk after parameter")
)

// credentials is a parsed Authorization / Proxy-Authorization value:
// auth-scheme followed by a comma list of name=value (RFC 3261 25.1,
// RFC 7616 3.4). Names are lower-cased; values are unquoted.
type credentials struct {
	scheme string
	params map[string]string
}

// parseCredentials parses `scheme name=value, name="quoted \" value", ...`.
// It is written by hand because the grammar is small and the input is
// attacker-controlled: no regexps, no allocation beyond the result.
func parseCredentials(s string) (credentials, error) {
	if len(s) > maxHeaderLen {
		return credentials{}, errTooLong
	}
	s = trimLWS(s)
	if s == "" {
		return credentials{}, errEmpty
	}
	i := 0
	for i < len(s) && isToken(s[i]) {
		i++
	}
	if i == 0 {
		return credentials{}, errNoScheme
	}
	c := credentials{scheme: s[:i], params: map[string]string{}}
	rest := s[i:]
	if rest != "" && !isLWS(rest[0]) {
		return credentials{}, fmt.Errorf("after scheme %q: %w", c.scheme, errTrailing)
	}
	p := parser{s: rest}
	for {
		p.skipLWS()
		// Empty list elements ("a=1,,b=2") are allowed by the #rule.
		if p.eat(',') {
			continue
		}
		if p.done() {
			return c, nil
		}
		name, err := p.token()
		if err != nil {
			return credentials{}, fmt.Errorf("parameter %d: %w", len(c.params)+1, errBadName)
		}
		name = strings.ToLower(name)
		p.skipLWS()
		if !p.eat('=') {
			return credentials{}, fmt.Errorf("parameter %q: %w", name, errNoEquals)
		}
		p.skipLWS()
		val, err := p.value()
		if err != nil {
			return credentials{}, fmt.Errorf("parameter %q: %w", name, err)
		}
		if _, dup := c.params[name]; dup {
			return credentials{}, fmt.Errorf("parameter %q: %w", name, errDuplicate)
		}
		c.params[name] = val
		p.skipLWS()
		if !p.done() && !p.eat(',') {
			return credentials{}, fmt.Errorf("parameter %q: %w", name, errTrailing)
		}
	}
}

type parser struct {
	s   string
	pos int
}

func (p *parser) done() bool { return p.pos >= len(p.s) }

func (p *parser) eat(c byte) bool {
	if p.pos < len(p.s) && p.s[p.pos] == c {
		p.pos++
		return true
	}
	return false
}

func (p *parser) skipLWS() {
	for p.pos < len(p.s) && isLWS(p.s[p.pos]) {
		p.pos++
	}
}

func (p *parser) token() (string, error) {
	start := p.pos
	for p.pos < len(p.s) && isToken(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", errBadName
	}
	return p.s[start:p.pos], nil
}

// value reads a quoted-string or a bare value. Bare values are wider than
// RFC tokens (some phones send unquoted uri= or base64 nonces with '=' and
// '/'), but never hold separators, quotes or controls.
func (p *parser) value() (string, error) {
	if p.eat('"') {
		var b strings.Builder
		for p.pos < len(p.s) {
			c := p.s[p.pos]
			p.pos++
			switch {
			case c == '"':
				return b.String(), nil
			case c == '\\':
				if p.pos >= len(p.s) {
					return "", errUnclosed
				}
				c = p.s[p.pos]
				p.pos++
				if c == '\r' || c == '\n' {
					return "", errBadValue
				}
				b.WriteByte(c)
			case c == '\r' || c == '\n':
				return "", errBadValue
			default:
				b.WriteByte(c)
			}
		}
		return "", errUnclosed
	}
	start := p.pos
	for p.pos < len(p.s) && isBare(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", errBadValue
	}
	return p.s[start:p.pos], nil
}

func isLWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func trimLWS(s string) string {
	for s != "" && isLWS(s[0]) {
		s = s[1:]
	}
	for s != "" && isLWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// isToken reports RFC 3261 token characters.
func isToken(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

func isBare(c byte) bool {
	return c > ' ' && c < 0x7f && c != ',' && c != '"' && c != '\\'
}

// quote writes s as a quoted-string, escaping '"' and '\'.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
