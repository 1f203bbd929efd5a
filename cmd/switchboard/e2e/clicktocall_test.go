package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

type dialed struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Line  string `json:"line"`
}

// POST /v1/calls: Ann's registered phone rings first (showing whom she
// calls), she answers, then Bob's phone rings with Ann as the caller; once
// he answers RTP flows both ways. Refusals come with their documented codes
// and ring nobody.
func TestClickToCall(t *testing.T) {
	s := startNode(t, nil)
	s.user("dan", "1001", "dan-secret")
	ann := s.user("ann", "1002", "ann-secret")
	s.user("bob", "1003", "bob-secret")
	annP, bobP := s.phone("ann", "ann-secret", nil), s.phone("bob", "bob-secret", nil)
	s.registered(annP)
	s.registered(bobP)
	ctx := ctxT(t, 30*time.Second)

	s.expect("POST", "/v1/calls", ann.Token, map[string]any{"to": "1003"}, 400, "invalid_field")
	s.expect("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "ann", "to": "1003", "from": "x"}, 400, "unknown_field")
	s.expect("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "bob", "to": "1002"}, 403, "forbidden")
	s.expect("POST", "/v1/calls", "", map[string]any{"from_user": "zed", "to": "1002"}, 404, "not_found")
	s.expect("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "ann", "to": "1999"}, 404, "not_found")
	s.expect("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "ann", "to": "1001"}, 409, "unreachable")
	s.expect("POST", "/v1/calls", "", map[string]any{"from_user": "dan", "to": "1003"}, 409, "no_devices")
	select {
	case c := <-annP.Incoming():
		t.Fatalf("a refused click-to-call rang Ann (from %q)", c.From)
	case c := <-bobP.Incoming():
		t.Fatalf("a refused click-to-call rang Bob (from %q)", c.From)
	case <-time.After(200 * time.Millisecond):
	}

	var cl dialed
	if code := s.api("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "ann", "to": "1003"}, &cl); code != 201 || cl.ID == "" || cl.State != "ringing" {
		t.Fatalf("click-to-call: %d %+v", code, cl)
	}
	annIn := recvCall(t, annP)
	if annIn.From != "1003" || !strings.Contains(annIn.FromName, "Call to 1003") {
		t.Fatalf("Ann's phone should show whom she is calling: %q %q", annIn.From, annIn.FromName)
	}
	select {
	case <-bobP.Incoming():
		t.Fatal("Bob rang before Ann answered")
	case <-time.After(200 * time.Millisecond):
	}
	if err := annIn.Answer(); err != nil {
		t.Fatal(err)
	}
	bobIn := recvCall(t, bobP)
	if bobIn.From != "1002" {
		t.Fatalf("Bob should see Ann calling, From %q", bobIn.From)
	}
	if err := bobIn.Answer(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the call active", func() bool {
		var got dialed
		return s.api("GET", "/v1/calls/"+cl.ID, ann.Token, nil, &got) == 200 && got.State == "active"
	})
	_ = annIn.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "Ann's audio at Bob", func() bool { return bobIn.Received() >= 8 })
	_ = bobIn.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "Bob's audio at Ann", func() bool { return annIn.Received() >= 8 })
	_ = bobIn.Hangup(ctx)
	select {
	case <-annIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Ann's leg should end when Bob hangs up")
	}
}

// A delegate with place_calls clicks to call on the delegator's line: the
// carrier sees the delegator's number in From and P-Asserted-Identity, as
// for SIP P-Preferred-Identity. Without the privilege: 403, nothing rings.
func TestClickToCallOnBehalf(t *testing.T) {
	s := startNode(t, nil)
	dan := s.user("dan", "1001", "dan-secret", "+14155550100")
	ann := s.user("ann", "1002", "ann-secret", "+14155550102")
	bob := s.user("bob", "1003", "bob-secret")
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}, "outbound": true}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{"place_calls"}}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "bob", "privileges": []string{"answer_calls"}}, 201, "")
	s.expect("POST", "/v1/users/ann/delegations/dan/accept", ann.Token, nil, 200, "")
	s.expect("POST", "/v1/users/bob/delegations/dan/accept", bob.Token, nil, 200, "")
	annP, bobP := s.phone("ann", "ann-secret", nil), s.phone("bob", "bob-secret", nil)
	s.registered(annP)
	s.registered(bobP)
	ctx := ctxT(t, 30*time.Second)

	s.expect("POST", "/v1/calls", bob.Token, map[string]any{"from_user": "bob", "to": "+12125550100", "on_behalf_of": "dan"}, 403, "missing_privilege")
	s.expect("POST", "/v1/calls", "", map[string]any{"from_user": "bob", "to": "+12125550100", "on_behalf_of": "ann"}, 403, "forbidden")
	select {
	case <-bobP.Incoming():
		t.Fatal("a refused call on behalf rang Bob")
	case <-carrier.Incoming():
		t.Fatal("a refused call on behalf reached the carrier")
	case <-time.After(200 * time.Millisecond):
	}

	var cl dialed
	if code := s.api("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "ann", "to": "+12125550100", "on_behalf_of": "dan"}, &cl); code != 201 || cl.Line != "dan" {
		t.Fatalf("click-to-call on behalf: %d %+v", code, cl)
	}
	annIn := recvCall(t, annP)
	if !strings.Contains(annIn.FromName, "for dan") {
		t.Fatalf("Ann's phone should show the line she calls for: %q", annIn.FromName)
	}
	if err := annIn.Answer(); err != nil {
		t.Fatal(err)
	}
	in := recvCall(t, carrier)
	if in.From != "+14155550100" || !strings.Contains(in.PAI, "+14155550100") {
		t.Fatalf("the carrier should see Dan's number: from=%q pai=%q", in.From, in.PAI)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	_ = in.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "the far end's audio at Ann", func() bool { return annIn.Received() >= 8 })
	_ = annIn.Hangup(ctx)
	eventually(t, 3*time.Second, "labels of a click-to-call on behalf", func() bool {
		d, a := s.labels("dan"), s.labels("ann")
		return len(d) > 0 && len(a) > 0 && d[0] == "Outgoing by ann for you" && a[0] == "Outgoing by you for dan"
	})
}
