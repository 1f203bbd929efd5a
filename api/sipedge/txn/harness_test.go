package txn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The tests drive a layer over real UDP on loopback with a fake clock: the
// layer's timers fire only when a test moves the clock and calls advance, so
// every retransmission schedule below is exact, whatever the machine's load.
//
// "Nothing arrives" is never a sleep: the peer sends a probe (a request
// without Via, which the layer does not keep; the harness's TU answers it
// 200 on the reading goroutine) and reads up to the probe's answer. The
// layer's socket sends in order, and the reader handles datagrams in order,
// so whatever an earlier datagram or an earlier advance() produced is in the
// peer's queue before the probe's 200, and every callback it caused has run.

// epoch is where every fake clock starts.
var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is Config.Now in the tests; the reader goroutine and the test
// both read it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const (
	expectWait = time.Second // for a packet that must come
	probeCall  = "probe-"    // Call-ID prefix of the harness's probes
)

// received is one call of Config.OnRequest.
type received struct {
	req *sip.Request
	tx  *ServerTx
}

// harness is a layer on a loopback socket and a peer socket the test speaks
// raw SIP through.
type harness struct {
	t     *testing.T
	clock *fakeClock
	l     *Layer
	conn  *net.UDPConn // the layer's socket
	peer  *net.UDPConn // the far end
	addr  netip.AddrPort

	reqs   chan received      // Config.OnRequest, probes excepted
	strays chan *sip.Response // Config.OnResponse

	mu     sync.Mutex
	drops  []string
	probes int
}

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen udp: %v", err)
	}
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// newHarness starts a layer with a fake clock on a loopback socket; tweak
// may change its Config before New.
func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, clock: newFakeClock(), reqs: make(chan received, 64), strays: make(chan *sip.Response, 64)}
	h.conn = listenUDP(t)
	h.peer = listenUDP(t)
	h.addr = addrOf(h.conn)
	cfg := Config{
		Host: "127.0.0.1",
		Port: int(h.addr.Port()),
		Now:  h.clock.Now,
		OnRequest: func(req *sip.Request, tx *ServerTx) {
			if id := req.CallID(); id != nil && strings.HasPrefix(id.Value(), probeCall) {
				if err := tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
					t.Errorf("probe: %v", err)
				}
				return
			}
			select {
			case h.reqs <- received{req, tx}:
			default:
				t.Errorf("OnRequest: queue full")
			}
		},
		OnResponse: func(res *sip.Response) {
			select {
			case h.strays <- res:
			default:
				t.Errorf("OnResponse: queue full")
			}
		},
		OnDrop: func(reason string) {
			h.mu.Lock()
			h.drops = append(h.drops, reason)
			h.mu.Unlock()
		},
	}
	for _, f := range tweak {
		f(&cfg)
	}
	h.l = New(cfg)
	done := make(chan error, 1)
	go func() { done <- h.l.ServeUDP(h.conn) }()
	t.Cleanup(func() {
		h.conn.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeUDP: %v", err)
		}
		h.l.Close()
		h.peer.Close()
	})
	// Requests leave through the socket ServeUDP registers: wait for it.
	h.sync()
	return h
}

// ---- the clock -------------------------------------------------------------

// elapseTo moves the clock to t one wheel tick at a time, as the real ticker
// would, firing what falls due on the way.
func (h *harness) elapseTo(t time.Time) {
	for h.clock.Now().Before(t) {
		h.clock.add(wheelTick)
		h.l.advance()
	}
}

// walk moves the clock to base + k·T1 for k = from…to and after each step
// hands step what reached the peer meanwhile. Every timer of the layer is a
// multiple of T1 away from the message that armed it, so this sees each one.
func (h *harness) walk(base time.Time, from, to int, step func(k int, got []sip.Message)) {
	h.t.Helper()
	for k := from; k <= to; k++ {
		h.elapseTo(base.Add(time.Duration(k) * T1))
		got := h.sync()
		if step != nil {
			step(k, got)
		}
	}
}

// timeline walks the clock and returns the multiples of T1 at which a
// message that want accepts arrived; any other message fails the test.
func (h *harness) timeline(base time.Time, from, to int, want func(sip.Message) bool) []int {
	h.t.Helper()
	var ks []int
	h.walk(base, from, to, func(k int, got []sip.Message) {
		for _, m := range got {
			if want(m) {
				ks = append(ks, k)
			} else {
				h.t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
			}
		}
	})
	return ks
}

// ---- the peer --------------------------------------------------------------

// send writes raw SIP from the peer to the layer.
func (h *harness) send(b []byte) { h.sendFrom(h.peer, b) }

func (h *harness) sendFrom(c *net.UDPConn, b []byte) {
	h.t.Helper()
	if _, err := c.WriteToUDPAddrPort(b, h.addr); err != nil {
		h.t.Fatalf("peer write: %v", err)
	}
}

// readFrom reads and parses one datagram from c; nil when none came in wait.
func (h *harness) readFrom(c *net.UDPConn, wait time.Duration) sip.Message {
	h.t.Helper()
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		h.t.Fatalf("peer read: %v", err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		h.t.Fatalf("peer got unparseable %q: %v", buf[:n], err)
	}
	return m
}

// expect reads the next message the layer sends the peer; it must come.
func (h *harness) expect() sip.Message {
	h.t.Helper()
	m := h.readFrom(h.peer, expectWait)
	if m == nil {
		h.t.Fatalf("peer: nothing arrived in %v", expectWait)
	}
	return m
}

func (h *harness) expectResponse(code int) *sip.Response {
	h.t.Helper()
	m := h.expect()
	res, ok := m.(*sip.Response)
	if !ok || res.StatusCode != code {
		h.t.Fatalf("peer got %s, want a %d", firstLine(m), code)
	}
	return res
}

func (h *harness) expectRequest(method sip.RequestMethod) *sip.Request {
	h.t.Helper()
	m := h.expect()
	req, ok := m.(*sip.Request)
	if !ok || req.Method != method {
		h.t.Fatalf("peer got %s, want a %s", firstLine(m), method)
	}
	return req
}

// sync returns what the layer sent the peer up to now (see the top of this
// file); it is also a barrier for what the peer sent before.
func (h *harness) sync() []sip.Message { return h.syncFrom(h.peer) }

func (h *harness) syncFrom(c *net.UDPConn) []sip.Message {
	h.t.Helper()
	h.mu.Lock()
	h.probes++
	n := h.probes
	h.mu.Unlock()
	id := fmt.Sprintf("%s%d", probeCall, n)
	h.sendFrom(c, []byte("OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=probe\r\n"+
		"To: <sip:probe@127.0.0.1>\r\n"+
		"Call-ID: "+id+"\r\n"+
		fmt.Sprintf("CSeq: %d OPTIONS\r\n", n)+
		"Content-Length: 0\r\n\r\n"))
	var got []sip.Message
	for {
		m := h.readFrom(c, expectWait)
		if m == nil {
			h.t.Fatalf("probe %s: no answer in %v", id, expectWait)
		}
		if res, ok := m.(*sip.Response); ok && res.CallID() != nil && res.CallID().Value() == id {
			return got
		}
		got = append(got, m)
	}
}

// quiet: the layer sent the peer nothing, and OnRequest got nothing.
func (h *harness) quiet() {
	h.t.Helper()
	for _, m := range h.sync() {
		h.t.Errorf("peer got unexpected %s", firstLine(m))
	}
	h.noRequest()
}

// nextRequest is the next request OnRequest got; it must come.
func (h *harness) nextRequest() received {
	h.t.Helper()
	select {
	case r := <-h.reqs:
		return r
	case <-time.After(expectWait):
		h.t.Fatalf("OnRequest: nothing in %v", expectWait)
		return received{}
	}
}

// noRequest: OnRequest got nothing (call it after a sync).
func (h *harness) noRequest() {
	h.t.Helper()
	select {
	case r := <-h.reqs:
		h.t.Errorf("OnRequest got unexpected %s (tx %v)", r.req.StartLine(), r.tx != nil)
	default:
	}
}

func (h *harness) dropped() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.drops...)
}

func (h *harness) pending() (servers, clients int) { return h.l.Pending() }

// ---- messages --------------------------------------------------------------

// request is a request as a UAC behind the peer socket writes it.
type request struct {
	method     string
	branch     string // the Via's branch, "" for none
	viaPort    int    // the Via's sent-by port; 0: the peer's own
	rport      bool
	noVia      bool
	callID     string // "" for "call-1"
	cseq       int    // 0 for 1
	cseqMethod string // "" for method
	toTag      string
}

func (h *harness) raw(r request) []byte {
	if r.callID == "" {
		r.callID = "call-1"
	}
	if r.cseq == 0 {
		r.cseq = 1
	}
	if r.cseqMethod == "" {
		r.cseqMethod = r.method
	}
	if r.viaPort == 0 {
		r.viaPort = int(addrOf(h.peer).Port())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:bob@127.0.0.1:%d SIP/2.0\r\n", r.method, h.addr.Port())
	if !r.noVia {
		fmt.Fprintf(&b, "Via: SIP/2.0/UDP 127.0.0.1:%d", r.viaPort)
		if r.branch != "" {
			b.WriteString(";branch=" + r.branch)
		}
		if r.rport {
			b.WriteString(";rport")
		}
		b.WriteString("\r\n")
	}
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("From: <sip:alice@127.0.0.1>;tag=alice-1\r\n")
	b.WriteString("To: <sip:bob@127.0.0.1>")
	if r.toTag != "" {
		b.WriteString(";tag=" + r.toTag)
	}
	b.WriteString("\r\n")
	b.WriteString("Call-ID: " + r.callID + "\r\n")
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.cseq, r.cseqMethod)
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// response builds what a UAS would answer to req (as the peer parsed it),
// with toTag in the To ("" keeps sipgo's own tag, none for a 100).
func response(req *sip.Request, code int, reason, toTag string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if toTag != "" {
		res.To().Params.Add("tag", toTag)
	}
	return res
}

func wire(m sip.Message) []byte { return []byte(m.String()) }

// respond has the TU answer tx with code and To tag toTag.
func respond(t *testing.T, tx *ServerTx, req *sip.Request, code int, toTag string) {
	t.Helper()
	if err := tx.Respond(response(req, code, fmt.Sprintf("Status %d", code), toTag)); err != nil {
		t.Fatalf("Respond %d: %v", code, err)
	}
}

func firstLine(m sip.Message) string {
	if m == nil {
		return "<nothing>"
	}
	s := m.String()
	if i := strings.Index(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if cseq := cseqOf(m); cseq != nil {
		s += " (CSeq " + cseq.Value() + ")"
	}
	return s
}

func cseqOf(m sip.Message) *sip.CSeqHeader {
	switch m := m.(type) {
	case *sip.Request:
		return m.CSeq()
	case *sip.Response:
		return m.CSeq()
	}
	return nil
}

func isResponse(code int) func(sip.Message) bool {
	return func(m sip.Message) bool {
		res, ok := m.(*sip.Response)
		return ok && res.StatusCode == code
	}
}

func isRequest(method sip.RequestMethod) func(sip.Message) bool {
	return func(m sip.Message) bool {
		req, ok := m.(*sip.Request)
		return ok && req.Method == method
	}
}

func toTag(m sip.Message) string {
	var to *sip.ToHeader
	switch m := m.(type) {
	case *sip.Request:
		to = m.To()
	case *sip.Response:
		to = m.To()
	}
	if to == nil {
		return ""
	}
	tag, _ := to.Params.Get("tag")
	return tag
}

func branchOf(m sip.Message) string {
	var via *sip.ViaHeader
	switch m := m.(type) {
	case *sip.Request:
		via = m.Via()
	case *sip.Response:
		via = m.Via()
	}
	if via == nil {
		return ""
	}
	b, _ := via.Params.Get("branch")
	return b
}

// Retransmission schedules in multiples of T1 after the first sending.
var (
	// T1, 2T1, 4T1… capped at T2 (timers E and G, and a 2xx's
	// retransmissions), up to 64·T1.
	capped = []int{1, 3, 7, 15, 23, 31, 39, 47, 55, 63}
	// T1, 2T1, 4T1… with no cap (timer A) until timer B at 64·T1.
	doubling = []int{1, 3, 7, 15, 31, 63}
)
