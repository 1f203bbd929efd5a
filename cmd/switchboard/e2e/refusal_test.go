package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

func rawInvite(to, from *net.UDPAddr, target, sdp string) string {
	return fmt.Sprintf("INVITE sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:+14155550000@%s>;tag=raw1\r\nTo: <sip:%s@%s>\r\nCall-ID: raw-%d\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:carrier@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		target, to, from, time.Now().UnixNano(), from.IP, target, to.IP, time.Now().UnixNano(), from, len(sdp), sdp)
}

// readFinal reads responses until a final one and returns its status line.
func readFinal(t *testing.T, conn *net.UDPConn) string {
	t.Helper()
	buf := make([]byte, 65535)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		line := firstLine(string(buf[:n]))
		if !strings.HasPrefix(line, "SIP/2.0 1") {
			return line
		}
	}
}

// An offer with no usable audio codec is refused with 488 before anybody rings.
func TestNoUsableCodec488(t *testing.T) {
	_, bob, conn, to, from := carrierToBob(t, nil)
	for name, sdp := range map[string]string{
		"video only":      "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=video 4000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n",
		"dtmf only":       "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",
		"not even an SDP": "hello",
	} {
		if _, err := conn.WriteToUDP([]byte(rawInvite(to, from, "+14155550102", sdp)), to); err != nil {
			t.Fatal(err)
		}
		if line := readFinal(t, conn); !strings.HasPrefix(line, "SIP/2.0 488") && !strings.HasPrefix(line, "SIP/2.0 400") {
			t.Errorf("%s: want 488, got %q", name, line)
		}
	}
	select {
	case <-bob.Incoming():
		t.Fatal("a refused offer must ring nobody")
	case <-time.After(200 * time.Millisecond):
	}
}

// SIGTERM's drain: new calls, and pickups or joins that would be new legs
// here, get 503 with Retry-After while active calls go on (a re-INVITE in
// one is answered).
func TestDrainRefusesNewCalls(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	alice := s.phone("alice", "alice-secret", nil)
	bob := s.phone("bob", "bob-secret", func(c *sipphone.Config) { c.AutoAnswerOn = true })
	s.registered(alice)
	s.registered(bob)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := alice.Dial(ctx, "1002", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := recvCall(t, bob)
	drained := make(chan error, 1)
	go func() { drained <- s.n.Drain(5 * time.Second) }()
	eventually(t, 2*time.Second, "readyz to report draining", func() bool {
		return s.api("GET", "/readyz", "", nil, nil) == 503
	})
	var rej *sipphone.ErrRejected
	if _, err := alice.Dial(ctx, "1002", nil); !errors.As(err, &rej) || rej.Code != 503 || rej.RetryAfter != "30" {
		t.Fatalf("new call while draining: want 503 with Retry-After 30, got %v %+v", err, rej)
	}
	// Alice may not join Bob's line (403 on a node up); a draining one
	// refuses the new leg first.
	if _, err := alice.Dial(ctx, "*71002", nil); !errors.As(err, &rej) || rej.Code != 503 || rej.RetryAfter != "30" {
		t.Fatalf("*7 while draining: want 503 with Retry-After 30, got %v %+v", err, rej)
	}
	if err := b.Hold(ctx, "sendonly"); err != nil {
		t.Fatalf("a re-INVITE in the active call while draining: %v", err)
	}
	if err := b.Resume(ctx); err != nil {
		t.Fatalf("resuming while draining: %v", err)
	}
	// Click-to-call is a new call too, and its media would anchor here.
	s.expect("POST", "/v1/calls", "", map[string]any{"from_user": "alice", "to": "1002"}, 503, "draining")
	_ = b.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "the active call still carries audio", func() bool { return a.Received() >= 9 })
	_ = a.Hangup(ctx)
	select {
	case err := <-drained:
		if err != nil {
			t.Fatalf("drain should finish once the last call ends: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not finish")
	}
}
