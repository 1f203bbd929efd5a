package sipedge

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
)

// registerWithUA is a REGISTER with a User-Agent header for each of uas.
func registerWithUA(uas ...string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "example.com"})
	for _, ua := range uas {
		req.AppendHeader(sip.NewHeader("User-Agent", ua))
	}
	return req
}

// A binding keeps the User-Agent as REST may show it: bounded, one clean
// line of valid UTF-8.
func TestUserAgent(t *testing.T) {
	long := strings.Repeat("a", maxUserAgent+10)
	// 85 three-byte characters fill 255 bytes: the 86th does not fit.
	wide := strings.Repeat("李", 90)
	for _, c := range []struct {
		name string
		in   []string // nil: no header
		want string
	}{
		{"none", nil, ""},
		{"the first of two", []string{"First/1", "Second/2"}, "First/1"},
		{"empty", []string{""}, ""},
		{"a phone", []string{"baresip v1.0.0 (x86_64/linux)"}, "baresip v1.0.0 (x86_64/linux)"},
		{"spaces around", []string{"  Yealink SIP-T46S 66.86.0.15  "}, "Yealink SIP-T46S 66.86.0.15"},
		{"exactly the bound", []string{long[:maxUserAgent]}, long[:maxUserAgent]},
		{"too long", []string{long}, long[:maxUserAgent]},
		{"cut at a character's end", []string{wide}, strings.Repeat("李", 85)},
		{"control characters", []string{"Evil\r\nCall-Info: <x>;answer-after=0\x00\x7f"}, "EvilCall-Info: <x>;answer-after=0"},
		{"invalid UTF-8", []string{"Phone \xff\xfe1.0"}, "Phone 1.0"},
	} {
		if got := userAgent(registerWithUA(c.in...)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// Whatever the header holds, what is kept is bounded, valid, clean, and
// the start of the header's clean text.
func FuzzUserAgent(f *testing.F) {
	for _, s := range []string{"", "baresip v1.0.0", "a\r\nb", strings.Repeat("李", 90), "\xff\x00 x ", strings.Repeat("é", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := userAgent(registerWithUA(in))
		switch {
		case len(got) > maxUserAgent:
			t.Fatalf("%q kept as %d bytes", in, len(got))
		case !utf8.ValidString(got):
			t.Fatalf("%q kept as invalid UTF-8 %q", in, got)
		case strings.IndexFunc(got, unicode.IsControl) >= 0:
			t.Fatalf("%q kept with a control character: %q", in, got)
		case strings.TrimSpace(got) != got:
			t.Fatalf("%q kept with spaces around: %q", in, got)
		}
		clean := strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return -1
			}
			return r
		}, strings.ToValidUTF8(in, ""))
		if !strings.HasPrefix(strings.TrimSpace(clean), got) {
			t.Fatalf("%q kept as %q, not the start of %q", in, got, clean)
		}
	})
}
