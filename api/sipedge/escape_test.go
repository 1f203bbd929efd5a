package sipedge

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	pb "github.com/switchboard/switchboard/proto"
)

func TestQuoteDisplay(t *testing.T) {
	for _, c := range []struct {
		name, wire, shown string // shown: what a phone parsing wire displays
	}{
		{"Alice", `From: "Alice" <sip:1001@example.com>`, "Alice"},
		{`Ann "The Boss" O\Brien`, `From: "Ann \"The Boss\" O\\Brien" <sip:1001@example.com>`, `Ann "The Boss" O\Brien`},
		{"Alice\r\nCall-Info: <sip:x>;answer-after=0", `From: "AliceCall-Info: <sip:x>;answer-after=0" <sip:1001@example.com>`, "AliceCall-Info: <sip:x>;answer-after=0"},
		{"nul\x00 and del\x7f and nel\u0085", `From: "nul and del and nel" <sip:1001@example.com>`, "nul and del and nel"},
		{`trailing\`, `From: "trailing\\" <sip:1001@example.com>`, `trailing\`},
		{`"`, `From: "\"" <sip:1001@example.com>`, `"`},
		{"bad \xff utf-8", "From: \"bad \uFFFD utf-8\" <sip:1001@example.com>", "bad \uFFFD utf-8"},
		{"Zoë 李 👋", `From: "Zoë 李 👋" <sip:1001@example.com>`, "Zoë 李 👋"},
		{"\r\n", `From: <sip:1001@example.com>`, ""},
		{strings.Repeat("é", maxDisplay+5), `From: "` + strings.Repeat("é", maxDisplay) + `" <sip:1001@example.com>`, strings.Repeat("é", maxDisplay)},
	} {
		h := &sip.FromHeader{DisplayName: quoteDisplay(c.name), Address: sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"}}
		if got := h.String(); got != c.wire {
			t.Errorf("%q written as %q, want %q", c.name, got, c.wire)
		}
		var uri sip.Uri
		var params sip.HeaderParams
		raw, err := sip.ParseAddressValue(h.Value(), &uri, &params)
		if err != nil || unquoteDisplay(raw) != c.shown || uri.User != "1001" {
			t.Errorf("%q parsed back as %q (%q) %v, want %q", c.name, raw, unquoteDisplay(raw), err, c.shown)
		}
	}
}

// A display name read from the wire is written again as the same name,
// whether it came quoted or as a token.
func TestRequoteDisplay(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{`"Ann \"The Boss\" O\\Brien" <sip:a@example.com>`, `Ann \"The Boss\" O\\Brien`},
		{`Carrier Caller <sip:a@example.com>`, `Carrier Caller`},
		{"\"tab\\\tand nul\x00\" <sip:a@example.com>", "taband nul"},
		{`<sip:a@example.com>`, ``},
	} {
		var uri sip.Uri
		var params sip.HeaderParams
		raw, err := sip.ParseAddressValue(c.header, &uri, &params)
		if err != nil {
			t.Fatalf("%q: %v", c.header, err)
		}
		if got := requoteDisplay(raw); got != c.want {
			t.Errorf("%q requoted as %q, want %q", c.header, got, c.want)
		}
	}
}

func TestUserPart(t *testing.T) {
	for in, want := range map[string]string{
		"1001":                      "1001",
		"+14155550101":              "+14155550101",
		"alice.smith_2":             "alice.smith_2",
		"a;b,c?d/e&f=g$h":           "a;b,c?d/e&f=g$h", // user-unreserved, RFC 3261 25.1
		"a%20b":                     "a%20b",           // an escape already there
		"100%":                      "100%25",
		"a b":                       "a%20b",
		"a@b":                       "a%40b",
		"a>;evil":                   "a%3E;evil",
		"a\r\nCall-Info: <sip:x>":   "a%0D%0ACall-Info%3A%20%3Csip%3Ax%3E",
		"\"quoted\"":                "%22quoted%22",
		"Zoë":                       "Zo%C3%AB",
		"a:b":                       "a%3Ab",
		"":                          "",
		"%zz":                       "%25zz",
		"%0":                        "%250",
		"sip:1001@evil.example.com": "sip%3A1001%40evil.example.com",
	} {
		if got := userPart(in); got != want {
			t.Errorf("userPart(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderLine(t *testing.T) {
	for _, c := range []struct {
		in, name, value string
		ok              bool
	}{
		{"X-Call-Label: sales  ", "X-Call-Label", "sales", true},
		{"Alert-Info: <http://example.com/ring>;info=alert-internal", "Alert-Info", "<http://example.com/ring>;info=alert-internal", true},
		{"Subject: tab\there", "Subject", "tab\there", true},
		{"X-Evil: a\r\nCall-Info: <sip:x>;answer-after=0", "", "", false},
		{"X-Evil: nul\x00", "", "", false},
		{"Bad Name: x", "", "", false},
		{"X-Evil\r\nCall-Info: x", "", "", false},
		{"no colon", "", "", false},
		{": no name", "", "", false},
		{"Content-Length: 0", "", "", false}, // would end the message early
		{"l: 0", "", "", false},
		{"From: <sip:boss@example.com>", "", "", false},
		{"Via: SIP/2.0/UDP evil.example.com", "", "", false},
		{"Refer-To: garbage", "", "", false},
	} {
		name, value, ok := headerLine(c.in)
		if name != c.name || value != c.value || ok != c.ok {
			t.Errorf("headerLine(%q) = %q %q %v, want %q %q %v", c.in, name, value, ok, c.name, c.value, c.ok)
		}
	}
}

// injected are the values a user, a carrier or a bug might put into a
// field that ends up in one of our INVITE's headers.
var injected = []string{
	"Alice\r\nCall-Info: <sip:x>;answer-after=0",
	"Alice\nCall-Info: <sip:x>;answer-after=0",
	"Alice\rX: y",
	"Alice\x00",
	`Ann "The Boss" O\Brien`,
	`\`,
	`"`,
	`a>;tag=x, <sip:evil@example.com>`,
	"Alice\r\n\r\nv=0\r\ns=evil",
	"Content-Length: 0\r\n\r\nINVITE sip:x@y SIP/2.0",
	"\xff\xfe",
}

// Every field of LegOriginate that reaches a header of our INVITE, set to
// each injection: the INVITE keeps its headers (none added, none lost) and
// each field parses back to what was written.
func TestInviteHeadersEscaped(t *testing.T) {
	e := New(Config{NodeID: "n1", Domain: "example.com", Host: "127.0.0.1", Port: 5060})
	fields := map[string]func(*pb.LegOriginate, string){
		"from_display":      func(m *pb.LegOriginate, v string) { m.FromDisplay = v },
		"from_display for":  func(m *pb.LegOriginate, v string) { m.FromDisplay = "1001 for " + v },
		"from_user":         func(m *pb.LegOriginate, v string) { m.FromUser = v },
		"to_user":           func(m *pb.LegOriginate, v string) { m.ToUser = v },
		"asserted_identity": func(m *pb.LegOriginate, v string) { m.AssertedIdentity = v },
		"headers value":     func(m *pb.LegOriginate, v string) { m.Headers = []string{"X-Label: " + v} },
		"headers name":      func(m *pb.LegOriginate, v string) { m.Headers = []string{v + ": x"} },
	}
	for field, set := range fields {
		t.Run(field, func(t *testing.T) {
			for _, v := range injected {
				m := cleanOriginate()
				set(m, v)
				checkInvite(t, e, m)
			}
		})
	}
}

func cleanOriginate() *pb.LegOriginate {
	return &pb.LegOriginate{LegId: "l1", RequestUri: "sip:1002@127.0.0.1:5070", FromUser: "1001", FromDisplay: "Alice",
		ToUser: "1002", AssertedIdentity: "+14155550101", Sdp: []byte("v=0\r\n")}
}

var userRe = regexp.MustCompile(`^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})*$`)

// checkInvite builds m's INVITE, parses it back as the callee would and
// checks that nothing was injected.
func checkInvite(t *testing.T, e *Edge, m *pb.LegOriginate) {
	t.Helper()
	base := cleanOriginate()
	if m.AssertedIdentity == "" {
		base.AssertedIdentity = ""
	}
	want := headerNames(t, e, base)
	hname, hvalue, hok := "", "", false
	if len(m.Headers) == 1 {
		if hname, hvalue, hok = headerLine(m.Headers[0]); hok {
			want[strings.ToLower(hname)]++
		}
	}
	req, err := e.newInvite(m)
	if err != nil {
		t.Fatalf("%+v: %v", m, err)
	}
	wire := req.String()
	head, body, _ := strings.Cut(wire, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if strings.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("%+v: a header line holds a line break or NUL: %q", m, line)
		}
	}
	if body != string(m.Sdp) {
		t.Fatalf("%+v: body %q, want %q", m, body, m.Sdp)
	}
	msg, err := sip.NewParser().ParseSIP([]byte(wire))
	if err != nil {
		t.Fatalf("%+v: the INVITE does not parse: %v\n%s", m, err, wire)
	}
	got := map[string]int{}
	for _, h := range msg.(*sip.Request).Headers() {
		got[strings.ToLower(h.Name())]++
	}
	if !equalCounts(got, want) {
		t.Fatalf("%+v: headers %v, want %v\n%s", m, got, want, wire)
	}
	in := msg.(*sip.Request)
	if d := in.From().DisplayName; d != quoteDisplay(m.FromDisplay) {
		t.Fatalf("%+v: From display parsed as %q, want %q", m, d, quoteDisplay(m.FromDisplay))
	}
	for what, u := range map[string][2]string{"From": {in.From().Address.User, m.FromUser}, "To": {in.To().Address.User, m.ToUser}} {
		if u[0] != userPart(u[1]) || !userRe.MatchString(u[0]) {
			t.Fatalf("%+v: %s user parsed as %q", m, what, u[0])
		}
	}
	if m.AssertedIdentity != "" {
		if pai := in.GetHeader("P-Asserted-Identity").Value(); pai != "<sip:"+userPart(m.AssertedIdentity)+"@example.com>" {
			t.Fatalf("%+v: P-Asserted-Identity %q", m, pai)
		}
	}
	if hok {
		found := false
		for _, h := range in.GetHeaders(hname) {
			found = found || h.Value() == hvalue
		}
		if !found {
			t.Fatalf("%+v: no %s: %q parsed back\n%s", m, hname, hvalue, wire)
		}
	}
}

func headerNames(t *testing.T, e *Edge, m *pb.LegOriginate) map[string]int {
	t.Helper()
	req, err := e.newInvite(m)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, h := range req.Headers() {
		out[strings.ToLower(h.Name())]++
	}
	return out
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// clean: a name quoteDisplay writes without loss.
func clean(s string) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxDisplay {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

// Whatever the name, the From line written is one line, parses back to
// what was written, shows a clean name as it is, and is written the same
// when read and written again.
func FuzzDisplayName(f *testing.F) {
	for _, s := range injected {
		f.Add(s)
	}
	f.Add("Zoë 李 👋")
	f.Fuzz(func(t *testing.T, name string) {
		q := quoteDisplay(name)
		h := &sip.FromHeader{DisplayName: q, Address: sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"}, Params: sip.NewParams()}
		h.Params.Add("tag", "x")
		line := h.String()
		if strings.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("%q written as %q", name, line)
		}
		var uri sip.Uri
		params := sip.NewParams()
		raw, err := sip.ParseAddressValue(h.Value(), &uri, &params)
		if err != nil || raw != q || uri.User != "1001" || params.GetOr("tag", "") != "x" || params.Length() != 1 {
			t.Fatalf("%q written as %q parsed back as %q %v %v: %v", name, line, raw, uri.String(), params, err)
		}
		if clean(name) && unquoteDisplay(raw) != name {
			t.Fatalf("%q shown as %q", name, unquoteDisplay(raw))
		}
		if requoteDisplay(raw) != q {
			t.Fatalf("%q: written again as %q, was %q", name, requoteDisplay(raw), q)
		}
	})
}

// Whatever a grain asks for, our INVITE keeps its headers and each field
// parses back to what was written.
func FuzzHeaderWrite(f *testing.F) {
	for _, s := range injected {
		f.Add(s, s, s, s, "X-Label: "+s)
	}
	f.Add("Alice for Bob", "1001", "+14155550102", "", "Alert-Info: <http://example.com/r>")
	e := New(Config{NodeID: "n1", Domain: "example.com", Host: "127.0.0.1", Port: 5060})
	f.Fuzz(func(t *testing.T, display, fromUser, toUser, pai, header string) {
		m := cleanOriginate()
		m.FromDisplay, m.FromUser, m.ToUser, m.AssertedIdentity, m.Headers = display, fromUser, toUser, pai, []string{header}
		checkInvite(t, e, m)
		for _, u := range []string{fromUser, toUser, pai} {
			if w := userPart(u); !userRe.MatchString(w) {
				t.Fatalf("userPart(%q) = %q", u, w)
			} else if d, err := url.PathUnescape(w); !strings.Contains(u, "%") && (err != nil || d != u) {
				t.Fatalf("userPart(%q) = %q reads back as %q %v", u, w, d, err)
			}
		}
	})
}
