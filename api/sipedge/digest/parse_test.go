package digest

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		scheme string
		params map[string]string
		err    error
	}{
		{
			name:   "typical phone",
			in:     `Digest username="100", realm="switchboard.local", nonce="abc", uri="sip:switchboard.local", response="0123", algorithm=MD5, qop=auth, nc=00000001, cnonce="xyz"`,
			scheme: "Digest",
			params: map[string]string{"username": "100", "realm": "switchboard.local", "nonce": "abc", "uri": "sip:switchboard.local", "response": "0123", "algorithm": "MD5", "qop": "auth", "nc": "00000001", "cnonce": "xyz"},
		},
		{
			name:   "case-insensitive names, odd whitespace, empty elements",
			in:     "  digest  UserName = \"a\" ,, \tREALM=\"r\" ,",
			scheme: "digest",
			params: map[string]string{"username": "a", "realm": "r"},
		},
		{
			name:   "escapes in quoted strings",
			in:     `Digest username="a\"b\\c\d", realm="with, comma = and spaces"`,
			scheme: "Digest",
			params: map[string]string{"username": `a"b\cd`, "realm": "with, comma = and spaces"},
		},
		{
			name:   "bare base64 and sip uri values",
			in:     `Digest nonce=7ypf/xlj9XXw+fDP==,uri=sip:100@example.com;transport=udp`,
			scheme: "Digest",
			params: map[string]string{"nonce": "7ypf/xlj9XXw+fDP==", "uri": "sip:100@example.com;transport=udp"},
		},
		{name: "scheme only", in: "Digest", scheme: "Digest", params: map[string]string{}},
		{name: "empty", in: "  ", err: errEmpty},
		{name: "no scheme", in: `="x"`, err: errNoScheme},
		{name: "junk after scheme", in: `Digest"x"`, err: errTrailing},
		{name: "no equals", in: `Digest username`, err: errNoEquals},
		{name: "missing value", in: `Digest username=, realm="r"`, err: errBadValue},
		{name: "unterminated quote", in: `Digest username="abc`, err: errUnclosed},
		{name: "dangling escape", in: `Digest username="abc\`, err: errUnclosed},
		{name: "duplicate", in: `Digest nc=1, NC=2`, err: errDuplicate},
		{name: "two values", in: `Digest realm="a" "b"`, err: errTrailing},
		{name: "bad name", in: `Digest (x)=1`, err: errBadName},
		{name: "too long", in: "Digest username=\"" + strings.Repeat("a", maxHeaderLen) + "\"", err: errTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCredentials(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if c.scheme != tt.scheme || !maps.Equal(c.params, tt.params) {
				t.Fatalf("got %q %v, want %q %v", c.scheme, c.params, tt.scheme, tt.params)
			}
		})
	}
}

// format writes credentials back in canonical form: every value quoted.
func format(c credentials) string {
	var b strings.Builder
	b.WriteString(c.scheme)
	for i, k := range slices.Sorted(maps.Keys(c.params)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + k + "=" + quote(c.params[k]))
	}
	return b.String()
}

func FuzzParseCredentials(f *testing.F) {
	for _, s := range []string{
		`Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="8ca523f5e9506fed4657c9700eebdbec"`,
		`Digest a="\"\\", ,b=c`,
		`NoOneKnowsThisScheme opaque-data=here`,
		`Digest`,
		`Digest x="unterminated`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCredentials(s)
		if err != nil {
			return
		}
		out := format(c)
		if len(out) > maxHeaderLen {
			return // quoting grew it past the length cap; nothing to compare
		}
		again, err := parseCredentials(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
		}
		if again.scheme != c.scheme || !maps.Equal(again.params, c.params) {
			t.Fatalf("round trip of %q changed %q %v into %q %v", s, c.scheme, c.params, again.scheme, again.params)
		}
	})
}
