package sipedge

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestStatelessTag(t *testing.T) {
	invite := func(branch, fromTag string) *sip.Request {
		return parseReq(t, "INVITE sip:1002@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch="+branch+"\n"+
			"From: <sip:1001@example.com>;tag="+fromTag+"\nTo: <sip:1002@example.com>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n")
	}
	tag := statelessTag(invite("z9hG4bK-1", "a"))
	if tag != statelessTag(invite("z9hG4bK-1", "a")) {
		t.Fatal("a retransmission gets another tag")
	}
	if tag == statelessTag(invite("z9hG4bK-2", "a")) || tag == statelessTag(invite("z9hG4bK-1", "b")) {
		t.Fatal("another request gets the same tag")
	}
	ack := func(toTag string) *sip.Request {
		return parseReq(t, "ACK sip:1002@example.com SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1\n"+
			"From: <sip:1001@example.com>;tag=a\nTo: <sip:1002@example.com>;tag="+toTag+"\nCall-ID: c1\nCSeq: 1 ACK\nContent-Length: 0\n\n")
	}
	for _, tc := range []struct {
		toTag string
		want  bool
	}{
		{tag, true},
		{statelessTag(invite("z9hG4bK-2", "a")), false}, // another request's
		{"sl-", false},
		{"abc", false},
	} {
		if got := ackOfStateless(ack(tc.toTag)); got != tc.want {
			t.Errorf("ACK with To tag %q: %v, want %v", tc.toTag, got, tc.want)
		}
	}
}
