// Package validate holds the RFC 3261 / RFC 4475 checks that sipgo's parser
// leaves to the application: a message sipgo parsed may still be one a UAS
// must refuse (wrong version, unknown URI scheme, missing or repeated
// headers, unsupported extensions or bodies, exhausted Max-Forwards).
//
// Switchboard is a B2BUA, so every request is judged in the UAS role, and
// every response in the UAC role.
package validate

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Limits beyond which a parsed request is refused. sipgo already caps a
// whole message at sip.ParseMaxMessageLength (65535 bytes); these keep one
// field from taking all of it. RFC 4475 longreq (47 header fields, values
// up to ~600 bytes) is far inside them.
const (
	MaxHeaders     = 128      // header fields, each comma-separated value counted
	MaxHeaderValue = 8 << 10  // bytes in one header field value
	MaxBody        = 16 << 10 // bytes of body (SDP with video and ICE is < 8 KiB)
	MaxRequestURI  = 1 << 10  // bytes of Request-URI
	sdp            = "application/sdp"
	textPlain      = "text/plain"
)

// Refusal is the response a request must get instead of being processed.
type Refusal struct {
	Code   int
	Reason string
	// Warning is the text of a `Warning: 399 <host> "<text>"` header.
	Warning string
	// Unsupported lists the option tags for a 420 (RFC 3261 8.2.2.3).
	Unsupported string
	// Accept lists the media types for a 415 or 406 (RFC 3261 21.4.13).
	Accept string
}

// Headers returns the header fields the refusal's response carries beyond
// those copied from the request; host names this node in the Warning.
func (r *Refusal) Headers(host string) []sip.Header {
	var hs []sip.Header
	if r.Warning != "" {
		hs = append(hs, sip.NewHeader("Warning", "399 "+host+" "+quote(r.Warning)))
	}
	if r.Unsupported != "" {
		hs = append(hs, sip.NewHeader("Unsupported", r.Unsupported))
	}
	if r.Accept != "" {
		hs = append(hs, sip.NewHeader("Accept", r.Accept))
	}
	return hs
}

// quote makes a SIP quoted-string (RFC 3261 25.1): only '"' and '\' are
// escaped, and CR/LF, which cannot appear in a header, become spaces.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\r', '\n':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func refuse(code int, reason, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Reason: reason, Warning: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Refusal {
	return refuse(sip.StatusBadRequest, "Bad Request", format, args...)
}

// known are the methods of RFC 3261 and its registered extensions. Anything
// else is 501 (RFC 3261 21.5.2); whether the edge serves a known method (or
// answers 405 with Allow) is the router's business.
var known = map[sip.RequestMethod]bool{
	sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true, sip.REGISTER: true,
	sip.OPTIONS: true, sip.SUBSCRIBE: true, sip.NOTIFY: true, sip.REFER: true, sip.INFO: true,
	sip.MESSAGE: true, sip.PRACK: true, sip.UPDATE: true, sip.PUBLISH: true,
}

// relayed are the methods the B2BUA turns into a new request towards
// someone else, so a Max-Forwards of 0 means a loop (RFC 3261 16.3 step 3).
// The rest (REGISTER, OPTIONS, SUBSCRIBE, ...) end here; RFC 4475 3.3.11
// says an endpoint processes them as if Max-Forwards were still positive.
var relayed = map[sip.RequestMethod]bool{sip.INVITE: true, sip.MESSAGE: true, sip.REFER: true}

// supported are the option tags a peer may Require of us. We implement no
// SIP extension that changes the request's semantics yet; add tags here
// when one is built.
var supported = map[string]bool{}

// singular header fields may appear at most once (RFC 3261 7.3.1, 20;
// RFC 4475 3.3.8, 3.3.9). Names are those sipgo's Header.Name returns,
// lower-cased; compact forms were expanded by its parser.
var singular = [...]string{"to", "from", "call-id", "cseq", "max-forwards", "content-length", "content-type", "expires"}

// Request returns nil when req may be processed, else the response it must
// get. An ACK is never answered: for an ACK a non-nil Refusal means drop it.
//
// Checks run in the order of RFC 3261 8.2 (version, headers needed to
// answer at all, method, URI, hops, Require, body), so that each torture
// message of RFC 4475 gets the code the RFC names.
func Request(req *sip.Request) *Refusal {
	if !strings.EqualFold(req.SipVersion, "SIP/2.0") {
		return refuse(sip.StatusVersionNotSupported, "Version Not Supported", "SIP version %q is not supported", req.SipVersion)
	}
	h, r := scanHeaders(req)
	if r != nil {
		return r
	}
	if !known[req.Method] {
		// Before the CSeq check: RFC 4475 3.1.2.18 prefers 501 to 400.
		return refuse(sip.StatusNotImplemented, "Not Implemented", "method %q is not implemented", req.Method)
	}
	if cseq := req.CSeq(); cseq.MethodName != req.Method {
		return badRequest("CSeq method %q does not match request method %q", cseq.MethodName, req.Method)
	}
	if r := requestURI(&req.Recipient); r != nil {
		return r
	}
	if mf := req.MaxForwards(); mf != nil && *mf == 0 && relayed[req.Method] {
		return refuse(sip.StatusTooManyHops, "Too Many Hops", "Max-Forwards is 0")
	}
	// Require is ignored in CANCEL and ACK (RFC 3261 8.2.2.3).
	if req.Method != sip.ACK && req.Method != sip.CANCEL {
		if tags := unsupported(h.require); tags != "" {
			return &Refusal{Code: sip.StatusBadExtension, Reason: "Bad Extension", Unsupported: tags,
				Warning: "unsupported extension required: " + tags}
		}
	}
	if r := body(req, h); r != nil {
		return r
	}
	if req.Method == sip.REGISTER {
		// RFC 3261 10.3 step 5: the address-of-record must be a SIP(S) URI
		// (RFC 4475 3.3.4).
		if s := req.To().Address.Scheme; s != "sip" && s != "sips" {
			return badRequest("To of a REGISTER must be a sip or sips URI, not %q", s)
		}
	}
	return nil
}

// headerFacts are what one pass over the header fields collects.
type headerFacts struct {
	require []string // values of every Require
	accept  []string // values of every Accept (an empty one included)
}

// lenWriter counts what is written to it. Value() would serialise every
// parsed header again just to be measured.
type lenWriter int

func (n *lenWriter) WriteString(s string) (int, error) {
	*n += lenWriter(len(s))
	return len(s), nil
}

func scanHeaders(req *sip.Request) (headerFacts, *Refusal) {
	var f headerFacts
	all := req.Headers()
	if len(all) > MaxHeaders {
		return f, refuse(sip.StatusMessageTooLarge, "Message Too Large", "more than %d header fields", MaxHeaders)
	}
	var counts [len(singular)]int
	n := new(lenWriter) // one per request: as an interface it escapes
	for _, hdr := range all {
		name := hdr.Name()
		*n = 0
		hdr.StringWrite(n) // "Name: value", measured without being built
		if int(*n)-len(name)-2 > MaxHeaderValue {
			return f, refuse(sip.StatusMessageTooLarge, "Message Too Large", "%s header longer than %d bytes", name, MaxHeaderValue)
		}
		for i, s := range singular {
			if strings.EqualFold(name, s) {
				counts[i]++
			}
		}
		switch {
		case strings.EqualFold(name, "Require"):
			f.require = append(f.require, hdr.Value())
		case strings.EqualFold(name, "Accept"):
			f.accept = append(f.accept, hdr.Value())
		}
	}
	for i, s := range singular {
		if counts[i] > 1 {
			return f, badRequest("%d %s header fields, only one is allowed", counts[i], canonical(s))
		}
	}
	// RFC 3261 8.1.1: To, From, CSeq, Call-ID and Via are mandatory;
	// a missing Max-Forwards is tolerated (RFC 4475 3.4.1).
	switch {
	case req.To() == nil:
		return f, badRequest("missing To header")
	case req.From() == nil:
		return f, badRequest("missing From header")
	case req.CallID() == nil:
		return f, badRequest("missing Call-ID header")
	case req.CSeq() == nil:
		return f, badRequest("missing CSeq header")
	case req.Via() == nil:
		return f, badRequest("missing Via header")
	}
	return f, nil
}

func canonical(lower string) string {
	switch lower {
	case "call-id":
		return "Call-ID"
	case "cseq":
		return "CSeq"
	}
	parts := strings.Split(lower, "-")
	for i, p := range parts {
		parts[i] = strings.ToUpper(p[:1]) + p[1:]
	}
	return strings.Join(parts, "-")
}

func requestURI(u *sip.Uri) *Refusal {
	switch u.Scheme {
	case "sip", "sips":
	case "tel":
		if u.Raw() == "" {
			return badRequest("empty tel URI")
		}
		return nil
	default:
		return refuse(sip.StatusRequestedRangeNotSatisfiable, "Unsupported URI Scheme", "URI scheme %q is not supported", u.Scheme)
	}
	if u.Host == "" {
		return badRequest("Request-URI has no host")
	}
	// RFC 3261 19.1.5: headers are not allowed in a Request-URI (RFC 4475
	// 3.1.2.11).
	if u.Headers.Length() > 0 {
		return badRequest("Request-URI carries URI headers")
	}
	if !escapesOK(u.User) || !escapesOK(u.Password) {
		return badRequest("bad %%-escape in Request-URI user part")
	}
	if n := len(u.String()); n > MaxRequestURI {
		return refuse(sip.StatusRequestURITooLong, "Request-URI Too Long", "Request-URI of %d bytes", n)
	}
	return nil
}

// escapesOK reports whether every '%' starts a %HH escape (RFC 3261 25.1).
func escapesOK(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		i += 2
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unsupported returns the Require tags we do not support, comma separated,
// each once.
func unsupported(values []string) string {
	var out []string
	for _, v := range values {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "" || supported[strings.ToLower(tag)] || containsFold(out, tag) {
				continue
			}
			out = append(out, tag)
		}
	}
	return strings.Join(out, ", ")
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func body(req *sip.Request, h headerFacts) *Refusal {
	b := req.Body()
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(b) {
		return badRequest("Content-Length %d but body has %d bytes", int(*cl), len(b))
	}
	if len(b) > MaxBody {
		return refuse(sip.StatusRequestEntityTooLarge, "Request Entity Too Large", "body of %d bytes, limit %d", len(b), MaxBody)
	}
	if req.Method == sip.ACK {
		// An ACK's body is the SDP answer of its dialog; a bad one is the
		// call's problem, and an ACK cannot be refused anyway.
		return nil
	}
	if len(b) > 0 {
		ct := req.ContentType()
		if ct == nil {
			// RFC 3261 20.15: a non-empty body MUST have a Content-Type.
			return badRequest("body without Content-Type")
		}
		mt := mediaType(string(*ct))
		switch {
		case req.Method == sip.INVITE && mt != sdp:
			return &Refusal{Code: sip.StatusUnsupportedMediaType, Reason: "Unsupported Media Type", Accept: sdp,
				Warning: fmt.Sprintf("body type %q is not supported", mt)}
		case req.Method == sip.MESSAGE && mt != textPlain:
			// INTERFACE section 2: a MESSAGE is an SMS in text/plain
			// (RFC 3428 7: 415 for other types).
			return &Refusal{Code: sip.StatusUnsupportedMediaType, Reason: "Unsupported Media Type", Accept: textPlain,
				Warning: fmt.Sprintf("body type %q is not supported", mt)}
		}
	}
	// Our answer to an INVITE carries SDP: a caller that cannot take it gets
	// 406 (RFC 3261 21.4.7, RFC 4475 3.3.15).
	if req.Method == sip.INVITE && len(h.accept) > 0 && !accepts(h.accept, sdp) {
		return &Refusal{Code: sip.StatusNotAcceptable, Reason: "Not Acceptable", Accept: sdp,
			Warning: "Accept does not allow " + sdp}
	}
	return nil
}

// mediaType returns the lower-cased type/subtype of a Content-Type value.
func mediaType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// accepts reports whether the Accept values allow media type mt. An empty
// Accept allows nothing (RFC 3261 20.1); q=0 excludes a range.
func accepts(values []string, mt string) bool {
	typ, _, _ := strings.Cut(mt, "/")
	for _, v := range values {
		for _, rng := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(rng, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != mt && name != typ+"/*" && name != "*/*" {
				continue
			}
			if !zeroQ(params) {
				return true
			}
		}
	}
	return false
}

func zeroQ(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimRight(strings.TrimSpace(v), "0")
		return v == "0." || v == "0" || v == ""
	}
	return false
}

// Response reports whether a response must be dropped unprocessed. As a UA
// we only ever see responses to our own requests, which carry exactly our
// one Via (RFC 3261 8.1.3.3; RFC 4475 3.3.10 is the broadcast-Via attack
// this stops).
func Response(res *sip.Response) bool {
	switch {
	case !strings.EqualFold(res.SipVersion, "SIP/2.0"):
		return true
	case res.StatusCode < 100 || res.StatusCode > 699:
		return true
	case len(res.GetHeaders("Via")) != 1:
		return true
	case res.From() == nil || res.To() == nil || res.CallID() == nil || res.CSeq() == nil:
		return true
	case res.CSeq().MethodName == sip.ACK:
		return true // nobody answers an ACK
	}
	var counts [len(singular)]int
	for _, hdr := range res.Headers() {
		for i, s := range singular {
			if strings.EqualFold(hdr.Name(), s) {
				counts[i]++
				if counts[i] > 1 {
					return true
				}
			}
		}
	}
	if cl := res.ContentLength(); cl != nil && int(*cl) != len(res.Body()) {
		return true
	}
	return false
}
