package sipedge

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A lamp's NOTIFYs go one at a time: a change while one is unanswered waits
// for its answer, and changes that pile up meanwhile leave as one NOTIFY of
// the newest state (a subscriber may refuse a NOTIFY that overtakes another).
func TestNotifiesOneAtATime(t *testing.T) {
	e := New(Config{NodeID: "n1", Domain: "example.com", Host: "127.0.0.1"})
	if _, err := e.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Serve(ctx) }()
	defer e.Close()

	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	s := &subscription{line: "bob", entity: "sip:1002@example.com", callID: "sub-1", localTag: "ours", remoteTag: "theirs",
		local: sip.Uri{Scheme: "sip", User: "1002", Host: "example.com"}, remote: sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"},
		target: sip.Uri{Scheme: "sip", User: "1001", Host: "127.0.0.1", Port: phone.LocalAddr().(*net.UDPAddr).Port},
		dest:   phone.LocalAddr().String(), transport: "UDP", cseq: 1, expires: time.Now().Add(time.Hour),
		contact: e.contactAt("UDP", "")}
	s.id = dialogKey(s.callID, s.localTag, s.remoteTag)
	e.subs[s.id] = s

	buf := make([]byte, 65535)
	next := func(wait time.Duration) *sip.Request {
		_ = phone.SetReadDeadline(time.Now().Add(wait))
		for {
			n, _, err := phone.ReadFromUDP(buf)
			if err != nil {
				return nil
			}
			m, err := sip.NewParser().ParseSIP(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			if req, ok := m.(*sip.Request); ok && req.CSeq().SeqNo != 0 {
				return req
			}
		}
	}
	answer := func(req *sip.Request) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if _, err := phone.WriteToUDP([]byte(res.String()), net.UDPAddrFromAddrPort(e.udp.LocalAddr().(*net.UDPAddr).AddrPort())); err != nil {
			t.Fatal(err)
		}
	}

	e.notify(s, []LineCall{{ID: "c1", State: "ringing", Peer: "1001"}}, false)
	first := next(time.Second)
	if first == nil {
		t.Fatal("no NOTIFY")
	}
	e.notify(s, []LineCall{{ID: "c1", State: "active", Peer: "1001"}}, false)
	e.notify(s, []LineCall{{ID: "c1", State: "held", Peer: "1001"}}, false)
	if r := next(300 * time.Millisecond); r != nil && r.CSeq().SeqNo != first.CSeq().SeqNo {
		t.Fatalf("NOTIFY CSeq %d left before CSeq %d was answered", r.CSeq().SeqNo, first.CSeq().SeqNo)
	}
	answer(first)
	second := next(time.Second)
	if second == nil {
		t.Fatal("the waiting state was not sent after the answer")
	}
	if second.CSeq().SeqNo != first.CSeq().SeqNo+1 {
		t.Errorf("CSeq %d after %d, want the next", second.CSeq().SeqNo, first.CSeq().SeqNo)
	}
	if body := string(second.Body()); !strings.Contains(body, `pname="+sip.rendering"`) {
		t.Errorf("the second NOTIFY is not the newest state (held):\n%s", body)
	}
	answer(second)
	if r := next(300 * time.Millisecond); r != nil && r.CSeq().SeqNo > second.CSeq().SeqNo {
		t.Errorf("a third NOTIFY (CSeq %d): the states that waited were not collapsed", r.CSeq().SeqNo)
	}
}
