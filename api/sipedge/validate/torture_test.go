package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// tortureDir finds RFC 4475's messages in the sipgo module this build uses.
func tortureDir(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/emiago/sipgo").Output()
	if err != nil {
		tb.Fatalf("locate sipgo module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "sip", "testdata", "torture")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("torture corpus: %v", err)
	}
	return dir
}

type kind int

const (
	accept    kind = iota // parsed; Request returns nil
	refused               // parsed; Request returns code
	malformed             // RFC: syntactically invalid, 400. Dropping what cannot be parsed satisfies it (INTERFACE section 2)
	keepResp              // a response Response keeps
	dropResp              // a response dropped, by the parser or by Response
)

type expectation struct {
	section string // of RFC 4475
	kind    kind
	code    int    // for refused
	extra   string // Unsupported (420) or Accept (415/406) value expected
	why     string
	// gap, when set, is why sipgo v1.7.2's parser drops a message the RFC
	// wants answered; the test asserts the drop so a fixed sipgo shows up.
	gap string
}

// Every file of the corpus, with what RFC 4475 says a UAS (or, for
// responses, a UAC) does with it. The directory names (valid/invalid) are
// sipgo's parser view, not the RFC's.
var torture = map[string]expectation{
	// 3.1.1 valid messages
	"wsinv":      {section: "3.1.1.1", kind: accept, why: "short tortuous INVITE: valid"},
	"intmeth":    {section: "3.1.1.2", kind: refused, code: 501, why: "valid syntax; the method is an unknown extension"},
	"esc01":      {section: "3.1.1.3", kind: accept, why: "valid use of % escaping"},
	"escnull":    {section: "3.1.1.4", kind: accept, why: "escaped NULs in URIs are valid"},
	"esc02":      {section: "3.1.1.5", kind: refused, code: 501, why: "RE%47IST%45R is an unknown method, not REGISTER"},
	"lwsdisp":    {section: "3.1.1.6", kind: accept, why: "no LWS between display name and <"},
	"longreq":    {section: "3.1.1.7", kind: accept, why: "long values are valid: must not trip size limits"},
	"dblreq":     {section: "3.1.1.8", kind: accept, why: "trailing octets of the UDP datagram are ignored"},
	"semiuri":    {section: "3.1.1.9", kind: accept, why: "; in the user part"},
	"transports": {section: "3.1.1.10", kind: accept, why: "unknown transports in lower Vias"},
	"mpart01": {section: "3.1.1.11", kind: refused, code: 415, extra: "text/plain",
		why: "must parse; our MESSAGE takes text/plain only (RFC 3428 7)"},
	"unreason": {section: "3.1.1.12", kind: keepResp, why: "unusual reason phrase"},
	"noreason": {section: "3.1.1.13", kind: keepResp, why: "empty reason phrase"},

	// 3.1.2 invalid messages
	"badinv01":   {section: "3.1.2.1", kind: malformed, why: "extraneous separators"},
	"clerr":      {section: "3.1.2.2", kind: malformed, why: "Content-Length larger than the datagram"},
	"ncl":        {section: "3.1.2.3", kind: malformed, why: "negative Content-Length"},
	"scalar02":   {section: "3.1.2.4", kind: malformed, why: "CSeq beyond 2**31-1"},
	"scalarlg":   {section: "3.1.2.5", kind: dropResp, why: "response with overlarge scalars is discarded"},
	"quotbal":    {section: "3.1.2.6", kind: malformed, why: "unterminated quoted display name"},
	"ltgtruri":   {section: "3.1.2.7", kind: malformed, why: "<> around the Request-URI"},
	"lwsruri":    {section: "3.1.2.8", kind: malformed, why: "LWS inside the Request-URI"},
	"lwsstart":   {section: "3.1.2.9", kind: malformed, why: "multiple SP in the Request-Line"},
	"trws":       {section: "3.1.2.10", kind: malformed, why: "trailing SP in the Request-Line"},
	"escruri":    {section: "3.1.2.11", kind: refused, code: 400, why: "URI headers in the Request-URI"},
	"baddate":    {section: "3.1.2.12", kind: accept, why: "bad Date time zone; we do not use Date, so ignore it"},
	"regbadct":   {section: "3.1.2.13", kind: accept, why: "Contact addr-spec with ?headers; the RFC allows inferring the <> (sipgo does)"},
	"badaspec":   {section: "3.1.2.14", kind: malformed, why: "spaces inside the addr-spec"},
	"baddn":      {section: "3.1.2.15", kind: malformed, why: "non-token display name without quotes"},
	"badvers":    {section: "3.1.2.16", kind: refused, code: 505, why: "SIP/7.0"},
	"mismatch01": {section: "3.1.2.17", kind: refused, code: 400, why: "CSeq method differs from the Request-Line"},
	"mismatch02": {section: "3.1.2.18", kind: refused, code: 501, why: "unknown method: 501 preferred to 400"},
	"bigcode":    {section: "3.1.2.19", kind: dropResp, why: "status code beyond 699 is discarded"},

	// 3.2 transaction layer
	"badbranch": {section: "3.2.1", kind: accept, why: "branch without a transaction id: treat as RFC 2543"},

	// 3.3 application layer
	"insuf":  {section: "3.3.1", kind: refused, code: 400, why: "no Call-ID, From or To"},
	"unkscm": {section: "3.3.2", kind: refused, code: 416, why: "unknown Request-URI scheme"},
	"novelsc": {section: "3.3.3", kind: refused, code: 416, why: "soap.beep Request-URI we do not support",
		gap: "sipgo accepts only letters in a URI scheme (sip/utils.go isASCII), RFC 3261 allows digits, '+', '-', '.'"},
	"unksm2": {section: "3.3.4", kind: refused, code: 400, why: "a registrar needs a SIP(S) URI in To"},
	"bext01": {section: "3.3.5", kind: refused, code: 420, extra: "nothingSupportsThis, nothingSupportsThisEither",
		why: "unknown Require tags; as UAS we list Require's, not Proxy-Require's"},
	"invut":    {section: "3.3.6", kind: refused, code: 415, extra: "application/sdp", why: "unknown body type in INVITE"},
	"regaut01": {section: "3.3.7", kind: accept, why: "unknown Authorization scheme: the registrar challenges (401)"},
	"multi01":  {section: "3.3.8", kind: refused, code: 400, why: "several To, From, Call-ID, CSeq, Max-Forwards"},
	"mcl01":    {section: "3.3.9", kind: malformed, why: "two Content-Length values"},
	"bcast":    {section: "3.3.10", kind: dropResp, why: "response with a second (broadcast) Via"},
	"zeromf":   {section: "3.3.11", kind: accept, why: "Max-Forwards 0 on OPTIONS: an endpoint processes it"},
	"cparam01": {section: "3.3.12", kind: accept, why: "contact-param, not url-param"},
	"cparam02": {section: "3.3.13", kind: accept, why: "url-param inside <>"},
	"regescrt": {section: "3.3.14", kind: accept, why: "escaped header inside <> Contact"},
	"sdp01":    {section: "3.3.15", kind: refused, code: 406, extra: "application/sdp", why: "Accept excludes application/sdp"},

	// 3.4 backward compatibility
	"inv2543": {section: "3.4.1", kind: accept, why: "RFC 2543 INVITE must be accepted"},

	// not from RFC 4475: sipgo's own addition
	"test": {section: "-", kind: malformed, why: "Request-Line without SIP-Version"},
}

func TestTorture(t *testing.T) {
	dir := tortureDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.dat"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no torture files in %s: %v", dir, err)
	}
	parser := sip.NewParser()
	seen := map[string]bool{}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".dat")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := torture[name]
			if !ok {
				t.Fatalf("%s is not classified: add it to the table from RFC 4475", file)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			msg, perr := parser.ParseSIP(data)
			if want.gap != "" {
				if perr == nil {
					t.Fatalf("sipgo now parses it (gap was: %s); expect %d per RFC 4475 %s", want.gap, want.code, want.section)
				}
				t.Logf("RFC 4475 %s wants %d; dropped instead: %s", want.section, want.code, want.gap)
				return
			}
			check(t, want, msg, perr)
		})
	}
	for name := range torture {
		if !seen[name] {
			t.Errorf("table entry %s has no file in the corpus", name)
		}
	}
}

func check(t *testing.T, want expectation, msg sip.Message, perr error) {
	t.Helper()
	ctx := "RFC 4475 " + want.section + " (" + want.why + ")"
	switch want.kind {
	case malformed:
		if perr != nil {
			return // garbage: dropped and counted by the edge
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			t.Fatalf("%s: parsed as %T", ctx, msg)
		}
		if r := Request(req); r == nil || r.Code != 400 {
			t.Fatalf("%s: got %+v, want drop or 400", ctx, r)
		}
	case dropResp:
		if perr != nil {
			return
		}
		res, ok := msg.(*sip.Response)
		if !ok || !Response(res) {
			t.Fatalf("%s: %T kept, want dropped", ctx, msg)
		}
	case keepResp:
		res, ok := msg.(*sip.Response)
		if perr != nil || !ok || Response(res) {
			t.Fatalf("%s: dropped (parse error %v), want kept", ctx, perr)
		}
	case accept, refused:
		if perr != nil {
			t.Fatalf("%s: parse error %v", ctx, perr)
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			t.Fatalf("%s: parsed as %T", ctx, msg)
		}
		r := Request(req)
		if want.kind == accept {
			if r != nil {
				t.Fatalf("%s: refused %+v, want accepted", ctx, r)
			}
			return
		}
		if r == nil || r.Code != want.code {
			t.Fatalf("%s: got %+v, want %d", ctx, r, want.code)
		}
		if r.Warning == "" || r.Reason == "" {
			t.Fatalf("%s: refusal without reason or warning: %+v", ctx, r)
		}
		switch want.code {
		case 420:
			if r.Unsupported != want.extra {
				t.Fatalf("%s: Unsupported %q, want %q", ctx, r.Unsupported, want.extra)
			}
		case 415, 406:
			if r.Accept != want.extra {
				t.Fatalf("%s: Accept %q, want %q", ctx, r.Accept, want.extra)
			}
		}
	}
}

// FuzzRequest feeds whatever sipgo parses to Request and Response: they
// must never panic, and a refusal must be a real final response.
func FuzzRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(tortureDir(f), "*", "*.dat"))
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	for _, m := range []string{invite, register} {
		f.Add([]byte(m))
	}
	parser := sip.NewParser()
	codes := []int{400, 406, 413, 414, 415, 416, 420, 483, 501, 505, 513}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *sip.Request:
			r := Request(m)
			if r == nil {
				return
			}
			if !slices.Contains(codes, r.Code) || r.Reason == "" {
				t.Fatalf("refusal %+v", r)
			}
			for _, h := range r.Headers("node.example") {
				if strings.ContainsAny(h.Value(), "\r\n") {
					t.Fatalf("header %q breaks the message", h.Value())
				}
			}
		case *sip.Response:
			Response(m)
		}
	})
}
