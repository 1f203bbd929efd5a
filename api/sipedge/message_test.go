package sipedge

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	pb "github.com/switchboard/switchboard/proto"
)

// fakeMessages records what the edge hands over and answers code.
type fakeMessages struct {
	mu   sync.Mutex
	got  []InboundMessage
	code int
}

func (f *fakeMessages) Receive(_ context.Context, m InboundMessage) (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
	if f.code == 0 {
		return 202, "Accepted"
	}
	return f.code, "Refused"
}

// messageEdge serves an edge on loopback that takes every source as the
// trunk "carrier" and hands MESSAGEs to msgs.
func messageEdge(t *testing.T, msgs Messages) (*Edge, *net.UDPConn) {
	t.Helper()
	sys := actor.NewActorSystem()
	cl := &cluster.Cluster{ActorSystem: sys, IdentityLookup: lookup{}}
	e := New(Config{NodeID: "n1", Domain: "example.com", Host: "127.0.0.1", Dir: trunkDir{},
		Cluster: func() *cluster.Cluster { return cl }, Messages: msgs})
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
	return e, c
}

// request sends a request out of dialog and reads the final response's
// status line and headers.
func request(t *testing.T, c *net.UDPConn, method, contentType, body string) (status string, headers string) {
	t.Helper()
	local, id := c.LocalAddr().String(), fmt.Sprintf("m%d", time.Now().UnixNano())
	msg := method + " sip:+14155550400@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + id + "\r\n" +
		"From: <sip:+14155550777@example.com>;tag=f-" + id + "\r\n" +
		"To: <sip:+14155550400@example.com>\r\n" +
		"Call-ID: " + id + "\r\n" +
		"CSeq: 1 " + method + "\r\n" +
		"Max-Forwards: 70\r\n"
	if contentType != "" {
		msg += "Content-Type: " + contentType + "\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%s: no answer: %v", method, err)
		}
		res := string(buf[:n])
		line, rest, _ := strings.Cut(res, "\r\n")
		if !strings.HasPrefix(line, "SIP/2.0 1") {
			return line, rest
		}
	}
}

func TestInboundMessage(t *testing.T) {
	msgs := &fakeMessages{}
	_, c := messageEdge(t, msgs)
	for _, tc := range []struct {
		name, contentType, body string
		code                    int // the service's answer (0: 202)
		want                    string
		handed                  bool
	}{
		{"a text is handed over and accepted", "text/plain", "my order is late", 0, "SIP/2.0 202 Accepted", true},
		{"parameters of text/plain are fine", "text/plain; charset=UTF-8", "hello", 0, "SIP/2.0 202 Accepted", true},
		{"1600 bytes are fine", "text/plain", strings.Repeat("x", 1600), 0, "SIP/2.0 202 Accepted", true},
		{"1601 bytes are too many", "text/plain", strings.Repeat("x", 1601), 0, "SIP/2.0 413 Request Entity Too Large", false},
		{"only text/plain", "text/html", "<b>hi</b>", 0, "SIP/2.0 415 Unsupported Media Type", false},
		{"a body without a content type is malformed", "", "hi", 0, "SIP/2.0 400 Bad Request", false},
		{"an empty text", "text/plain", "", 0, "SIP/2.0 400 Bad Request", false},
		{"the service's refusal is passed on", "text/plain", "hi", 404, "SIP/2.0 404 Refused", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs.mu.Lock()
			msgs.got, msgs.code = nil, tc.code
			msgs.mu.Unlock()
			status, headers := request(t, c, "MESSAGE", tc.contentType, tc.body)
			if status != tc.want {
				t.Fatalf("answer %q, want %q", status, tc.want)
			}
			if tc.want == "SIP/2.0 415 Unsupported Media Type" && !strings.Contains(headers, "Accept: text/plain") {
				t.Errorf("a 415 without Accept: text/plain:\n%s", headers)
			}
			msgs.mu.Lock()
			defer msgs.mu.Unlock()
			if !tc.handed {
				if len(msgs.got) != 0 {
					t.Fatalf("a refused MESSAGE was handed over: %+v", msgs.got)
				}
				return
			}
			if len(msgs.got) != 1 {
				t.Fatalf("handed over %d messages, want 1", len(msgs.got))
			}
			m := msgs.got[0]
			if m.From.TrunkID != "carrier" || m.From.Number != "+14155550777" || m.To != "+14155550400" || m.Text != tc.body {
				t.Errorf("handed over %+v", m)
			}
		})
	}
	// OPTIONS names MESSAGE among the methods the node takes.
	if _, headers := request(t, c, "OPTIONS", "", ""); !strings.Contains(headers, "MESSAGE") {
		t.Errorf("OPTIONS' Allow does not list MESSAGE:\n%s", headers)
	}
}

// An SmsOut reaches a phone as a MESSAGE with what was asked.
func TestOutboundMessage(t *testing.T) {
	e, _ := messageEdge(t, &fakeMessages{})
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	addr := phone.LocalAddr().String()
	e.Command(&pb.SmsOut{RequestUri: "sip:2302@" + addr, Destination: addr, Transport: "udp", FromUser: "+14155550400", FromDisplay: "Help", ToUser: "2302", Text: "on its way"}, nil)
	buf := make([]byte, 65536)
	_ = phone.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := phone.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("no MESSAGE: %v", err)
	}
	req := string(buf[:n])
	for _, want := range []string{"MESSAGE sip:2302@" + addr, "Content-Type: text/plain", "+14155550400@example.com", "2302@example.com", "\r\n\r\non its way"} {
		if !strings.Contains(req, want) {
			t.Errorf("the MESSAGE lacks %q:\n%s", want, req)
		}
	}
	// Answer it, as a phone does: the edge's transaction takes the 200.
	var res bytes.Buffer
	sc := bufio.NewScanner(strings.NewReader(req))
	res.WriteString("SIP/2.0 200 OK\r\n")
	for sc.Scan() {
		l := sc.Text()
		for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
			if strings.HasPrefix(l, h) {
				res.WriteString(l + "\r\n")
			}
		}
	}
	res.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := phone.WriteToUDP(res.Bytes(), from); err != nil {
		t.Fatal(err)
	}
}
