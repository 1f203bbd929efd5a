package txn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Over a reliable transport the layer resends nothing, and what UDP keeps a
// transaction for (timers G, I, J, D…) is zero: these tests drive it over
// TCP through sipgo's transport, with the same probes as over UDP.

// stream is the peer's end of a TCP connection with the layer.
type stream struct {
	h *harness
	c net.Conn
	r *bufio.Reader
}

func (h *harness) stream(c net.Conn) *stream {
	h.t.Cleanup(func() { c.Close() })
	return &stream{h: h, c: c, r: bufio.NewReader(c)}
}

func (s *stream) write(b []byte) {
	s.h.t.Helper()
	if _, err := s.c.Write(b); err != nil {
		s.h.t.Fatalf("tcp write: %v", err)
	}
}

// read is the next message on the stream; it must come within wait.
func (s *stream) read(wait time.Duration) sip.Message {
	s.h.t.Helper()
	_ = s.c.SetReadDeadline(time.Now().Add(wait))
	var head strings.Builder
	length := 0
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.h.t.Fatalf("tcp read: %v", err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(value))
		}
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(s.r, body); err != nil {
		s.h.t.Fatalf("tcp read body: %v", err)
	}
	m, err := sip.ParseMessage(append([]byte(head.String()), body...))
	if err != nil {
		s.h.t.Fatalf("tcp: unparseable %q: %v", head.String(), err)
	}
	return m
}

// sync is the harness's probe over the stream: what the layer sent on it
// before answering the probe.
func (s *stream) sync() []sip.Message {
	s.h.t.Helper()
	s.h.mu.Lock()
	s.h.probes++
	n := s.h.probes
	s.h.mu.Unlock()
	id := fmt.Sprintf("%s%d", probeCall, n)
	s.write([]byte("OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n" +
		"From: <sip:probe@127.0.0.1>;tag=probe\r\nTo: <sip:probe@127.0.0.1>\r\n" +
		"Call-ID: " + id + "\r\n" + fmt.Sprintf("CSeq: %d OPTIONS\r\n", n) +
		"Content-Length: 0\r\n\r\n"))
	var got []sip.Message
	for {
		m := s.read(expectWait)
		if res, ok := m.(*sip.Response); ok && res.CallID() != nil && res.CallID().Value() == id {
			return got
		}
		got = append(got, m)
	}
}

func (s *stream) quiet(when string) {
	s.h.t.Helper()
	for _, m := range s.sync() {
		s.h.t.Errorf("%s: unexpected %s on TCP", when, firstLine(m))
	}
}

// serveTCP has the harness's layer serve TCP too.
func (h *harness) serveTCP() net.Listener {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = h.l.ServeTCP(ln); close(done) }()
	h.t.Cleanup(func() { ln.Close(); <-done })
	return ln
}

// tcpRequest is a request as a UAC on a TCP connection writes it.
func tcpRequest(c net.Conn, method, branch, cseqMethod, toTag string) []byte {
	if cseqMethod == "" {
		cseqMethod = method
	}
	to := "<sip:bob@127.0.0.1>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return []byte(fmt.Sprintf("%s sip:bob@127.0.0.1 SIP/2.0\r\n"+
		"Via: SIP/2.0/TCP %s;branch=%s\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=alice-1\r\nTo: %s\r\n"+
		"Call-ID: tcp-1\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n",
		method, c.LocalAddr(), branch, to, cseqMethod))
}

// TestServerTCP: over TCP a final response goes back on the connection and
// is never resent; a non-INVITE's transaction ends with its final, an
// INVITE's with the ACK of its non-2xx (or timer H/L).
func TestServerTCP(t *testing.T) {
	h := newHarness(t)
	ln := h.serveTCP()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := h.stream(c)

	// A non-INVITE.
	{
		s.write(tcpRequest(c, "OPTIONS", "z9hG4bK-tcp-1", "", ""))
		r := h.nextRequest()
		if r.req.Transport() != "TCP" {
			t.Errorf("request transport %q", r.req.Transport())
		}
		respond(t, r.tx, r.req, 200, "uas-1")
		if res, ok := s.read(expectWait).(*sip.Response); !ok || res.StatusCode != 200 {
			t.Fatalf("no 200 on the connection")
		}
		if n, _ := h.pending(); n != 0 {
			t.Errorf("Pending servers = %d after the final over TCP, want 0 (timer J is 0)", n)
		}
	}

	// An INVITE rejected.
	{
		base := h.clock.Now()
		s.write(tcpRequest(c, "INVITE", "z9hG4bK-tcp-2", "", ""))
		r := h.nextRequest()
		respond(t, r.tx, r.req, 486, "uas-1")
		if res, ok := s.read(expectWait).(*sip.Response); !ok || res.StatusCode != 486 {
			t.Fatalf("no 486 on the connection")
		}
		// No timer G over TCP.
		for k := 1; k <= 8; k++ {
			h.elapseTo(base.Add(time.Duration(k) * T1))
			s.quiet(fmt.Sprintf("at %d·T1", k))
		}
		if n, _ := h.pending(); n != 1 {
			t.Fatalf("Pending servers = %d before the ACK, want 1", n)
		}
		s.write(tcpRequest(c, "ACK", "z9hG4bK-tcp-2", "ACK", "uas-1"))
		s.quiet("after the ACK")
		h.noRequest()
		if n, _ := h.pending(); n != 0 {
			t.Errorf("Pending servers = %d after the ACK over TCP, want 0 (timer I is 0)", n)
		}
	}

	// An INVITE accepted, never acked.
	{
		base := h.clock.Now()
		s.write(tcpRequest(c, "INVITE", "z9hG4bK-tcp-3", "", ""))
		r := h.nextRequest()
		noAck := make(chan struct{}, 2)
		r.tx.OnNoAck(func() { noAck <- struct{}{} })
		respond(t, r.tx, r.req, 200, "uas-1")
		if res, ok := s.read(expectWait).(*sip.Response); !ok || res.StatusCode != 200 {
			t.Fatalf("no 200 on the connection")
		}
		h.elapseTo(base.Add(linger - wheelTick))
		if len(noAck) != 0 {
			t.Fatal("OnNoAck ran before 64·T1")
		}
		h.elapseTo(base.Add(linger))
		if len(noAck) != 1 {
			t.Fatalf("OnNoAck ran %d times at 64·T1, want once", len(noAck))
		}
		if n, _ := h.pending(); n != 0 {
			t.Errorf("Pending servers = %d after timer L, want 0", n)
		}
	}
}

// TestClientTCP: over TCP a request is sent once (no timer A/E), a non-2xx
// to an INVITE is ACKed on the connection and the transaction ends at once,
// and with no answer the 408 comes at 64·T1.
func TestClientTCP(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("accept: %v", err)
			}
			return
		}
		accepted <- c
	}()

	newReq := func(method sip.RequestMethod) *sip.Request {
		req := h.newRequest(method)
		req.SetTransport("TCP")
		req.SetDestination(ln.Addr().String())
		return req
	}
	base := h.clock.Now()
	inv := &got{clock: h.clock}
	if _, err := h.l.Request(newReq(sip.INVITE), inv.onResponse); err != nil {
		t.Fatalf("Request over TCP: %v", err)
	}
	var s *stream
	select {
	case c := <-accepted:
		s = h.stream(c)
	case <-time.After(expectWait):
		t.Fatal("the layer did not connect")
	}
	first, ok := s.read(expectWait).(*sip.Request)
	if !ok || first.Method != sip.INVITE {
		t.Fatalf("no INVITE on the connection")
	}
	if via := first.Via(); via == nil || !strings.EqualFold(via.Transport, "TCP") {
		t.Errorf("Via %v, want TCP", via)
	}
	// No timer A over TCP.
	for k := 1; k <= 8; k++ {
		h.elapseTo(base.Add(time.Duration(k) * T1))
		s.quiet(fmt.Sprintf("at %d·T1", k))
	}

	s.write(wire(response(first, 486, "Busy Here", "uas-1")))
	ack, ok := s.read(expectWait).(*sip.Request)
	if !ok || ack.Method != sip.ACK {
		t.Fatalf("no ACK on the connection")
	}
	checkAck(t, ack, first, "uas-1")
	// The ACK leaves before onResponse runs: wait for the reader.
	s.quiet("after the ACK")
	if _, n := h.pending(); n != 0 {
		t.Errorf("Pending clients = %d after the ACK over TCP, want 0 (timer D is 0)", n)
	}
	if codes := inv.list(); len(codes) != 1 || codes[0] != 486 {
		t.Errorf("onResponse got %v, want [486]", codes)
	}

	// An OPTIONS nobody answers: one sending, then the 408 at 64·T1.
	base = h.clock.Now()
	opt := &got{clock: h.clock}
	if _, err := h.l.Request(newReq(sip.OPTIONS), opt.onResponse); err != nil {
		t.Fatalf("Request over TCP: %v", err)
	}
	if m, ok := s.read(expectWait).(*sip.Request); !ok || m.Method != sip.OPTIONS {
		t.Fatalf("no OPTIONS on the connection")
	}
	h.elapseTo(base.Add(linger - wheelTick))
	s.quiet("before 64·T1")
	if codes := opt.list(); len(codes) != 0 {
		t.Fatalf("onResponse got %v before 64·T1", codes)
	}
	h.elapseTo(base.Add(linger))
	if codes := opt.list(); len(codes) != 1 || codes[0] != 408 {
		t.Errorf("onResponse got %v at 64·T1, want [408]", codes)
	}
}
