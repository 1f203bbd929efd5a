package sipedge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/api/sipedge/digest"
	"github.com/switchboard/switchboard/api/sipedge/validate"
	pb "github.com/switchboard/switchboard/proto"
)

func TestMessageRefusal(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		want int // 0: taken
	}{
		{"one byte", 1, 0},
		{"a text", 16, 0},
		{"the longest", 1600, 0},
		{"one byte too many", 1601, 413},
		{"far too long", 64 << 10, 413},
		{"empty", 0, 400},
	} {
		r := messageRefusal(bytes.Repeat([]byte("x"), tc.size))
		got := 0
		if r != nil {
			got = r.Code
		}
		if got != tc.want {
			t.Errorf("%s: refused %d, want %d (%+v)", tc.name, got, tc.want, r)
		}
		if r != nil && r.Warning == "" {
			t.Errorf("%s: a refusal that does not say why", tc.name)
		}
	}
}

// Whatever a MESSAGE carries, the edge takes it (validate.Request, then
// messageRefusal, as onRequest and onMessage apply them) only as a
// text/plain body of 1..1600 bytes, and refuses it with 400, 413 or 415
// otherwise: 415 with Accept: text/plain.
func FuzzMessageBody(f *testing.F) {
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "TEXT/PLAIN", " text/plain ; format=flowed", "text/html", "", ";", "text/plainer", "text/ plain"} {
		f.Add(ct, []byte("hello"))
	}
	f.Add("text/plain", []byte{})
	f.Add("text/plain", bytes.Repeat([]byte("é"), 801))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		contentType = strings.NewReplacer("\r", "", "\n", "").Replace(contentType)
		raw := "MESSAGE sip:+14155550400@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n" +
			"From: <sip:+14155550777@example.com>;tag=f\r\nTo: <sip:+14155550400@example.com>\r\nCall-ID: fuzz\r\n" +
			"CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: " + contentType + "\r\n" +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + string(body)
		m, err := sip.NewParser().ParseSIP([]byte(raw))
		if err != nil {
			return // the transport drops what does not parse
		}
		req := m.(*sip.Request)
		r := validate.Request(req)
		if r == nil {
			r = messageRefusal(req.Body())
		}
		mt, _, _ := strings.Cut(contentType, ";")
		isText := strings.EqualFold(strings.TrimSpace(mt), "text/plain")
		fits := len(body) >= 1 && len(body) <= MaxMessageText
		switch {
		case r == nil && !(isText && fits):
			t.Fatalf("took %q with %d bytes", contentType, len(body))
		case r == nil:
		case r.Code == 415 && r.Accept != "text/plain":
			t.Fatalf("%q: a 415 that accepts %q", contentType, r.Accept)
		case r.Code != 400 && r.Code != 413 && r.Code != 415:
			t.Fatalf("%q with %d bytes refused %d", contentType, len(body), r.Code)
		case r.Code == 415 && isText, r.Code == 413 && fits:
			t.Fatalf("%q with %d bytes refused %+v", contentType, len(body), r)
		}
	})
}

// fakeMessages records what the edge hands over and answers code; block,
// when set, holds every answer until it is closed.
type fakeMessages struct {
	mu     sync.Mutex
	got    []InboundMessage
	code   int
	reason string
	block  chan struct{}
}

func (f *fakeMessages) Receive(_ context.Context, m InboundMessage) (int, string) {
	f.mu.Lock()
	f.got = append(f.got, m)
	code, reason, block := f.code, f.reason, f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if code == 0 {
		return 202, "Accepted"
	}
	return code, reason
}

func (f *fakeMessages) answer(code int, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got, f.code, f.reason = nil, code, reason
}

func (f *fakeMessages) received() []InboundMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]InboundMessage(nil), f.got...)
}

// lockedBuffer is a log the edge writes from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// waitFor waits until the log holds want.
func (l *lockedBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		found := strings.Contains(l.b.String(), want)
		l.mu.Unlock()
		if found {
			return
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Fatalf("the log never said %q:\n%s", want, l.b.String())
}

// messageEdge serves an edge of cfg (the domain example.com, on loopback,
// logging to the buffer returned) with a UDP socket to send to it from.
func messageEdge(t *testing.T, cfg Config) (*Edge, *net.UDPConn, *lockedBuffer) {
	t.Helper()
	log := &lockedBuffer{}
	cfg.NodeID, cfg.Domain, cfg.Host = "n1", "example.com", "127.0.0.1"
	cfg.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := New(cfg)
	e.msgTimeout = 200 * time.Millisecond
	addr, err := e.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = e.Serve(ctx) }()
	t.Cleanup(func() { e.Close() })
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return e, c, log
}

// outOfDialog is a request from c to the edge with the headers given.
func outOfDialog(c *net.UDPConn, method, callID string, cseq int, headers []string, body string) string {
	local := c.LocalAddr().String()
	msg := method + " sip:+14155550400@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + callID + fmt.Sprint(cseq) + "\r\n" +
		"From: \"Ann\" <sip:+14155550777@example.com>;tag=f-" + callID + "\r\n" +
		"To: <sip:+14155550400@example.com>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		fmt.Sprintf("CSeq: %d %s\r\n", cseq, method) +
		"Max-Forwards: 70\r\n"
	for _, h := range headers {
		msg += h + "\r\n"
	}
	return msg + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// exchange sends msg and returns the final response to it.
func exchange(t *testing.T, c *net.UDPConn, msg string) *sip.Response {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to\n%s: %v", msg, err)
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			t.Fatalf("%v: %q", err, buf[:n])
		}
		if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 && strings.Contains(msg, "Call-ID: "+res.CallID().Value()+"\r\n") {
			return res
		}
	}
}

// header is the value of res's header name ("": none).
func header(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// A trunk's MESSAGE, known by its source, is handed over without a
// challenge and answered as the service says once the body is fit.
func TestMessageFromTrunk(t *testing.T) {
	msgs := &fakeMessages{}
	_, c, _ := messageEdge(t, Config{Dir: trunkDir{}, Messages: msgs})
	for i, tc := range []struct {
		name, contentType, body string
		code                    int // the service's answer (0: 202)
		reason                  string
		want                    int
		wantReason              string // "": the service's
		wantHeaders             map[string]string
	}{
		{name: "a text", contentType: "text/plain", body: "my order is late", want: 202},
		{name: "a charset", contentType: "text/plain; charset=UTF-8", body: "hello", want: 202},
		{name: "1600 bytes", contentType: "text/plain", body: strings.Repeat("x", 1600), want: 202},
		{name: "1601 bytes", contentType: "text/plain", body: strings.Repeat("x", 1601), want: 413},
		{name: "html", contentType: "text/html", body: "<b>hi</b>", want: 415, wantHeaders: map[string]string{"Accept": "text/plain"}},
		{name: "empty", contentType: "text/plain", want: 400, wantHeaders: map[string]string{"Warning": `399 127.0.0.1 "a MESSAGE needs a text"`}},
		{name: "a number nobody owns", contentType: "text/plain", body: "hi", code: 404, reason: "Not Found", want: 404},
		{name: "opted out", contentType: "text/plain", body: "hi", code: 409, reason: "Recipient Opted Out", want: 409},
		{name: "etcd away", contentType: "text/plain", body: "hi", code: 503, reason: "Service Unavailable", want: 503, wantHeaders: map[string]string{"Retry-After": "5"}},
		{name: "a reason on two lines", contentType: "text/plain", body: "hi", code: 500, reason: "store:\r\nX-Evil: 1", want: 500, wantReason: "store:X-Evil: 1"},
		{name: "no final code", contentType: "text/plain", body: "hi", code: 180, reason: "Ringing", want: 500, wantReason: "Server Internal Error"},
		{name: "no reason", contentType: "text/plain", body: "hi", code: 404, want: 404, wantReason: "Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs.answer(tc.code, tc.reason)
			callID := fmt.Sprintf("trunk-%d", i)
			res := exchange(t, c, outOfDialog(c, "MESSAGE", callID, 1, []string{"Content-Type: " + tc.contentType}, tc.body))
			if res.StatusCode != tc.want {
				t.Fatalf("answer %d %s, want %d", res.StatusCode, res.Reason, tc.want)
			}
			wantReason := tc.wantReason
			if wantReason == "" {
				wantReason = tc.reason
			}
			if tc.code != 0 && res.Reason != wantReason {
				t.Errorf("reason %q, want %q", res.Reason, wantReason)
			}
			if res.GetHeader("X-Evil") != nil {
				t.Errorf("the service's reason wrote a header")
			}
			for name, want := range tc.wantHeaders {
				if got := header(res, name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			got := msgs.received()
			if tc.want == 202 || tc.code != 0 {
				want := InboundMessage{From: Identity{TrunkID: "carrier", Number: "+14155550777", Display: "Ann"}, To: "+14155550400", Text: tc.body}
				if len(got) != 1 || got[0] != want {
					t.Fatalf("handed over %+v, want %+v", got, want)
				}
			} else if len(got) != 0 {
				t.Fatalf("a refused MESSAGE was handed over: %+v", got)
			}
		})
	}
}

// userDir knows the user 1001 (password alice-secret) and no trunk.
type userDir struct{}

func (userDir) HA1(alg, username string) (string, string, bool) {
	if username != "1001" {
		return "", "", false
	}
	return digest.HA1(alg, username, "example.com", "alice-secret"), "u-alice", true
}

func (userDir) User(id string) (Identity, bool) {
	return Identity{UserID: id, Number: "1001", Display: "Alice"}, id == "u-alice"
}
func (userDir) Resolve(string) (string, bool)                      { return "", false }
func (userDir) Line(string) (string, bool)                         { return "", false }
func (userDir) TrunkBySource(netip.Addr) (trunkID string, ok bool) { return "", false }

// proxyAuthorization answers res's MD5 challenge as 1001 with password.
func proxyAuthorization(t *testing.T, res *sip.Response, method, password string) string {
	t.Helper()
	var nonce string
	for _, h := range res.GetHeaders("Proxy-Authenticate") {
		if strings.Contains(h.Value(), "algorithm=MD5") {
			nonce = regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(h.Value())[1]
		}
	}
	if nonce == "" {
		t.Fatalf("no MD5 challenge in %d %s", res.StatusCode, res.Reason)
	}
	const uri = "sip:+14155550400@example.com"
	h := func(s string) string { b := md5.Sum([]byte(s)); return hex.EncodeToString(b[:]) }
	resp := h(h("1001:example.com:"+password) + ":" + nonce + ":00000001:c0ffee:auth:" + h(method+":"+uri))
	return fmt.Sprintf(`Proxy-Authorization: Digest username="1001", realm="example.com", nonce=%q, uri=%q, response=%q, algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee"`,
		nonce, uri, resp)
}

// A user's MESSAGE is challenged as an INVITE is, whatever it carries, and
// handed over once the credentials hold.
func TestMessageFromUser(t *testing.T) {
	msgs := &fakeMessages{}
	_, c, _ := messageEdge(t, Config{Dir: userDir{}, Messages: msgs,
		Auth: DigestAuth{Auth: digest.New("example.com", []byte("cluster-secret"), nil), Algorithms: []string{digest.SHA256, digest.MD5}}})
	text := []string{"Content-Type: text/plain"}

	if res := exchange(t, c, outOfDialog(c, "MESSAGE", "stranger", 1, text, strings.Repeat("x", 1601))); res.StatusCode != 407 {
		t.Fatalf("an unauthenticated long MESSAGE: %d, want 407 before its text is measured", res.StatusCode)
	}
	challenge := exchange(t, c, outOfDialog(c, "MESSAGE", "alice", 1, text, "call me"))
	if challenge.StatusCode != 407 {
		t.Fatalf("first MESSAGE answered %d, want 407", challenge.StatusCode)
	}
	if got := msgs.received(); len(got) != 0 {
		t.Fatalf("handed over before authentication: %+v", got)
	}
	wrong := exchange(t, c, outOfDialog(c, "MESSAGE", "alice", 2, append([]string{proxyAuthorization(t, challenge, "MESSAGE", "guess")}, text...), "call me"))
	if wrong.StatusCode != 403 || len(msgs.received()) != 0 {
		t.Fatalf("a wrong password: %d, handed over %+v; want 403 and nothing", wrong.StatusCode, msgs.received())
	}
	challenge = exchange(t, c, outOfDialog(c, "MESSAGE", "alice-again", 1, text, "call me"))
	res := exchange(t, c, outOfDialog(c, "MESSAGE", "alice-again", 2, append([]string{proxyAuthorization(t, challenge, "MESSAGE", "alice-secret")}, text...), "call me"))
	if res.StatusCode != 202 {
		t.Fatalf("authenticated MESSAGE answered %d %s, want 202", res.StatusCode, res.Reason)
	}
	want := InboundMessage{From: Identity{UserID: "u-alice", Number: "1001", Display: "Alice"}, To: "+14155550400", Text: "call me"}
	if got := msgs.received(); len(got) != 1 || got[0] != want {
		t.Fatalf("handed over %+v, want %+v", got, want)
	}
}

// A service that does not answer in time does not hold the sender: 503
// with Retry-After.
func TestMessageNotStoredInTime(t *testing.T) {
	msgs := &fakeMessages{block: make(chan struct{})}
	t.Cleanup(func() { close(msgs.block) })
	_, c, log := messageEdge(t, Config{Dir: trunkDir{}, Messages: msgs})
	start := time.Now()
	res := exchange(t, c, outOfDialog(c, "MESSAGE", "slow", 1, []string{"Content-Type: text/plain"}, "hi"))
	if res.StatusCode != 503 || header(res, "Retry-After") != "5" {
		t.Fatalf("answer %d, Retry-After %q; want 503 and 5", res.StatusCode, header(res, "Retry-After"))
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("answered after %v, the bound is 200ms", waited)
	}
	log.waitFor(t, "message not stored in time")
}

// Without a service MESSAGE is a method the node does not take.
func TestMessageWithoutService(t *testing.T) {
	_, c, _ := messageEdge(t, Config{Dir: trunkDir{}})
	res := exchange(t, c, outOfDialog(c, "MESSAGE", "none", 1, []string{"Content-Type: text/plain"}, "hi"))
	if res.StatusCode != 405 || strings.Contains(header(res, "Allow"), "MESSAGE") {
		t.Fatalf("answer %d, Allow %q; want 405 without MESSAGE", res.StatusCode, header(res, "Allow"))
	}
	if allow := header(exchange(t, c, outOfDialog(c, "OPTIONS", "opts", 1, nil, "")), "Allow"); strings.Contains(allow, "MESSAGE") {
		t.Fatalf("OPTIONS' Allow %q lists MESSAGE", allow)
	}
}

func TestOptionsAllowsMessage(t *testing.T) {
	_, c, _ := messageEdge(t, Config{Dir: trunkDir{}, Messages: &fakeMessages{}})
	res := exchange(t, c, outOfDialog(c, "OPTIONS", "opts", 1, nil, ""))
	if allow := header(res, "Allow"); res.StatusCode != 200 || !strings.Contains(allow, "MESSAGE") {
		t.Fatalf("OPTIONS %d, Allow %q: want 200 listing MESSAGE", res.StatusCode, allow)
	}
}

// readRequest reads the next request from r (a phone's TCP flow).
func readRequest(t *testing.T, r *bufio.Reader) *sip.Request {
	t.Helper()
	var head strings.Builder
	length := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no request: %v", err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length:"); ok {
			_, _ = fmt.Sscan(strings.TrimSpace(v), &length)
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	m, err := sip.NewParser().ParseSIP(append([]byte(head.String()), body...))
	if err != nil {
		t.Fatal(err)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %s", m)
	}
	return req
}

// udpPhone is a phone's UDP socket on loopback.
func udpPhone(t *testing.T) *net.UDPConn {
	t.Helper()
	p, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// next reads the next request the phone gets within wait (nil: none).
func next(t *testing.T, phone *net.UDPConn, wait time.Duration) (*sip.Request, *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 65536)
	_ = phone.SetReadDeadline(time.Now().Add(wait))
	n, from, err := phone.ReadFromUDP(buf)
	if err != nil {
		return nil, nil
	}
	m, err := sip.NewParser().ParseSIP(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %s", m)
	}
	return req, from
}

// checkMessage fails unless req is the MESSAGE asked for by m.
func checkMessage(t *testing.T, req *sip.Request, m *pb.SmsOut) {
	t.Helper()
	from, to := req.From(), req.To()
	switch {
	case req.Method != sip.MESSAGE || req.Recipient.String() != m.RequestUri:
		t.Errorf("request line %s %s, want MESSAGE %s", req.Method, req.Recipient.String(), m.RequestUri)
	case from.Address.String() != "sip:"+m.FromUser+"@example.com" || from.DisplayName != m.FromDisplay || from.Params.GetOr("tag", "") == "":
		t.Errorf("From %s: want %q <sip:%s@example.com> with a tag", from.Value(), m.FromDisplay, m.FromUser)
	case to.Address.String() != "sip:"+m.ToUser+"@example.com" || to.Params.Has("tag"):
		t.Errorf("To %s: want <sip:%s@example.com> without a tag", to.Value(), m.ToUser)
	case req.ContentType() == nil || !strings.HasPrefix(req.ContentType().Value(), "text/plain"):
		t.Errorf("Content-Type %v, want text/plain", req.ContentType())
	case req.MaxForwards() == nil || *req.MaxForwards() != 70:
		t.Errorf("Max-Forwards %v, want 70", req.MaxForwards())
	case req.CallID() == nil || req.CallID().Value() == "" || req.CSeq().MethodName != sip.MESSAGE:
		t.Errorf("Call-ID %v, CSeq %v", req.CallID(), req.CSeq())
	case string(req.Body()) != m.Text:
		t.Errorf("body %q, want %q", req.Body(), m.Text)
	}
}

// An SmsOut reaches a UDP phone as the MESSAGE asked for; the phone's 200
// ends the transaction.
func TestMessageToPhone(t *testing.T) {
	e, _, log := messageEdge(t, Config{Dir: trunkDir{}, Messages: &fakeMessages{}})
	phone := udpPhone(t)
	addr := phone.LocalAddr().String()
	m := &pb.SmsOut{RequestUri: "sip:2302@" + addr, Destination: addr, Transport: "udp", FromUser: "+14155550400", FromDisplay: "Help Desk", ToUser: "2302", Text: "on its way ✓"}
	e.Command(m, nil)
	req, from := next(t, phone, 5*time.Second)
	if req == nil {
		t.Fatal("no MESSAGE")
	}
	checkMessage(t, req, m)
	if _, err := phone.WriteToUDP([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()), from); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "code=200")
	// Unanswered, the MESSAGE would be sent again after 500 ms.
	if again, _ := next(t, phone, 800*time.Millisecond); again != nil {
		t.Fatalf("sent again after the 200: %s %s", again.Method, again.CallID().Value())
	}
	// Two messages are two transactions of their own.
	e.SendMessage(m)
	second, _ := next(t, phone, 5*time.Second)
	if second == nil || second.CallID().Value() == req.CallID().Value() || second.From().Params.GetOr("tag", "") == req.From().Params.GetOr("tag", "") {
		t.Fatalf("a second MESSAGE %v shares the first's Call-ID or tag", second)
	}
}

// A trunk's challenge is not answered: the MESSAGE is not sent again, and
// the refusal is logged.
func TestMessageChallengedByTrunk(t *testing.T) {
	e, _, log := messageEdge(t, Config{Dir: trunkDir{}, Messages: &fakeMessages{}})
	carrier := udpPhone(t)
	addr := carrier.LocalAddr().String()
	e.SendMessage(&pb.SmsOut{RequestUri: "sip:+14155550123@" + addr, Destination: addr, Transport: "udp", FromUser: "+14155550400", ToUser: "+14155550123", Text: "hi"})
	req, from := next(t, carrier, 5*time.Second)
	if req == nil {
		t.Fatal("no MESSAGE")
	}
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	res.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="carrier", nonce="abc", algorithm=MD5`))
	if _, err := carrier.WriteToUDP([]byte(res.String()), from); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, "code=407")
	if again, _ := next(t, carrier, 800*time.Millisecond); again != nil {
		t.Fatalf("sent again after the 407: %s CSeq %v", again.Method, again.CSeq())
	}
}

// A phone on TCP gets its MESSAGE over the connection it registered on.
func TestMessageOverPhoneFlow(t *testing.T) {
	e, _, _ := messageEdge(t, Config{Dir: trunkDir{}, Messages: &fakeMessages{}})
	conn, err := net.Dial("tcp", e.tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	local := conn.LocalAddr().String()
	// The flow exists once the phone sent on it (its REGISTER; an OPTIONS
	// here, the directory taking every source for a trunk).
	opts := "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP " + local + ";branch=z9hG4bK-flow\r\n" +
		"From: <sip:2302@example.com>;tag=p\r\nTo: <sip:example.com>\r\nCall-ID: flow\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(opts)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("OPTIONS: %q %v", line, err)
	}
	for line := ""; line != "\r\n"; {
		if line, err = r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	m := &pb.SmsOut{RequestUri: "sip:2302@" + local + ";transport=tcp", Destination: local, Transport: "tcp", FromUser: "1001", FromDisplay: "Alice", ToUser: "2302", Text: "lunch?"}
	e.SendMessage(m)
	checkMessage(t, readRequest(t, r), m)
}
