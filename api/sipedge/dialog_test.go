package sipedge

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func parseReq(t *testing.T, raw string) *sip.Request {
	t.Helper()
	m, err := sip.NewParser().ParseSIP([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

func parseRes(t *testing.T, raw string) *sip.Response {
	t.Helper()
	m, err := sip.NewParser().ParseSIP([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Response)
}

const inviteIn = `INVITE sip:1002@example.com SIP/2.0
Via: SIP/2.0/UDP 10.0.0.8:5062;branch=z9hG4bKp1
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKa1
Record-Route: <sip:10.0.0.8:5062;lr>
Record-Route: <sip:10.0.0.9;lr>
From: "Alice" <sip:1001@example.com>;tag=alicetag
To: <sip:1002@example.com>
Call-ID: call-in
CSeq: 7 INVITE
Contact: <sip:alice@10.0.0.2:5060>
Content-Length: 0

`

// A dialog we answered sends its requests to the caller's Contact through
// the INVITE's Record-Route in order, from the To party with our tag to the
// From party with theirs, with CSeq numbers of its own.
func TestUASDialogRequests(t *testing.T) {
	inv := parseReq(t, inviteIn)
	d := uasDialog(inv, "ourtag")
	bye := d.request(sip.BYE, nil)
	if got := bye.Recipient.String(); got != "sip:alice@10.0.0.2:5060" {
		t.Errorf("Request-URI %s, want the caller's Contact", got)
	}
	var routes []string
	for _, h := range bye.GetHeaders("Route") {
		routes = append(routes, h.Value())
	}
	if strings.Join(routes, ",") != "<sip:10.0.0.8:5062;lr>,<sip:10.0.0.9;lr>" {
		t.Errorf("routes %v, want the Record-Route in order", routes)
	}
	if bye.Destination() != "10.0.0.8:5062" {
		t.Errorf("destination %s, want the first route", bye.Destination())
	}
	if tag, _ := bye.From().Params.Get("tag"); tag != "ourtag" || bye.From().Address.User != "1002" {
		t.Errorf("From %s, want 1002 with our tag", bye.From().Value())
	}
	if tag, _ := bye.To().Params.Get("tag"); tag != "alicetag" || bye.To().Address.User != "1001" {
		t.Errorf("To %s, want 1001 with the caller's tag", bye.To().Value())
	}
	if bye.GetHeader("Contact") != nil {
		t.Error("a BYE carries no Contact")
	}
	second := d.request(sip.BYE, nil)
	if a, b := bye.CSeq().SeqNo, second.CSeq().SeqNo; b != a+1 {
		t.Errorf("CSeq %d then %d, want one more each request", a, b)
	}
	// The caller's in-dialog requests name the same dialog.
	in := parseReq(t, strings.Replace(strings.Replace(inviteIn, "INVITE sip", "BYE sip", 1), "To: <sip:1002@example.com>", "To: <sip:1002@example.com>;tag=ourtag", 1))
	if k, ok := requestKey(in); !ok || k != d.key() {
		t.Errorf("request key %q, dialog key %q", k, d.key())
	}
}

// A dialog our INVITE created goes to the callee's Contact through the
// 2xx's Record-Route reversed; its ACK keeps the INVITE's CSeq number.
func TestUACDialogRequests(t *testing.T) {
	inv := parseReq(t, strings.Replace(inviteIn, "Record-Route: <sip:10.0.0.8:5062;lr>\nRecord-Route: <sip:10.0.0.9;lr>\n", "", 1))
	res := parseRes(t, `SIP/2.0 200 OK
Via: SIP/2.0/UDP 10.0.0.8:5062;branch=z9hG4bKp1
Record-Route: <sip:10.0.0.9;lr>, <sip:10.0.0.8:5062;lr>
From: "Alice" <sip:1001@example.com>;tag=alicetag
To: <sip:1002@example.com>;tag=bobtag
Call-ID: call-in
CSeq: 7 INVITE
Contact: <sip:bob@10.0.0.3:5070>
Content-Length: 0

`)
	d := uacDialog(inv, res)
	ack := d.request(sip.ACK, nil)
	if ack.CSeq().SeqNo != 7 || ack.CSeq().MethodName != sip.ACK {
		t.Errorf("ACK CSeq %s, want 7 ACK", ack.CSeq().Value())
	}
	if ack.Recipient.String() != "sip:bob@10.0.0.3:5070" {
		t.Errorf("ACK to %s, want the callee's Contact", ack.Recipient.String())
	}
	var routes []string
	for _, h := range ack.GetHeaders("Route") {
		routes = append(routes, h.Value())
	}
	if strings.Join(routes, ",") != "<sip:10.0.0.8:5062;lr>,<sip:10.0.0.9;lr>" {
		t.Errorf("routes %v, want the 2xx's Record-Route reversed", routes)
	}
	if bye := d.request(sip.BYE, nil); bye.CSeq().SeqNo != 8 {
		t.Errorf("BYE CSeq %d, want 8", bye.CSeq().SeqNo)
	}
	if k, ok := responseKey(res); !ok || k != d.key() {
		t.Errorf("response key %q, dialog key %q", k, d.key())
	}
	// Without a route set the request goes to the remote target.
	d.routes = nil
	if dst := d.request(sip.BYE, nil).Destination(); dst != "10.0.0.3:5070" {
		t.Errorf("destination %s, want the Contact's", dst)
	}
}
