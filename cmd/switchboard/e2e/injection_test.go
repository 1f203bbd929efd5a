package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// A user cannot put a header into other phones' INVITEs through their
// name: a name that would break the From line is refused at save (400
// naming the field), and a name with quotes and backslashes, which is
// allowed, reaches the callee and a delegate ("<caller> for <line>") as a
// correct quoted-string with no header added.
func TestNameHeaderInjection(t *testing.T) {
	s := startNode(t, nil)
	alice := s.user("alice", "1001", "alice-secret")
	bob := s.user("bob", "1002", "bob-secret")
	dan := s.user("dan", "1003", "dan-secret")

	for _, name := range []string{
		"Alice\r\nCall-Info: <sip:x>;answer-after=0",
		"Alice\nCall-Info: <sip:x>;answer-after=0",
		"Alice\u0000",
		"Alice\tB",
		"Alice\u202eecilA",
		strings.Repeat("a", 65),
	} {
		status, e := s.raw("PATCH", "/v1/users/alice", alice.Token, `{"name":`+jsonString(name)+`}`)
		if status != 400 || e.Error.Code != "invalid_field" || !strings.HasPrefix(e.Error.Message, "name:") {
			t.Errorf("rename to %q: got %d %+v, want 400 invalid_field naming name", name, status, e.Error)
		}
		status, e = s.raw("POST", "/v1/users", s.token, `{"id":"mallory","name":`+jsonString(name)+`,"extension":"1009","sip_password":"mallory-secret"}`)
		if status != 400 || e.Error.Code != "invalid_field" || !strings.HasPrefix(e.Error.Message, "name:") {
			t.Errorf("create named %q: got %d %+v, want 400 invalid_field naming name", name, status, e.Error)
		}
	}
	var got struct{ Name string }
	if s.api("GET", "/v1/users/alice", "", nil, &got); got.Name != "alice" {
		t.Fatalf("a refused rename changed the name to %q", got.Name)
	}

	const aliceName, danName = `Alice "The Boss" O\Brien`, `Dan \ "D"`
	s.expect("PATCH", "/v1/users/alice", alice.Token, map[string]any{"name": aliceName}, 200, "")
	s.expect("PATCH", "/v1/users/dan", dan.Token, map[string]any{"name": danName}, 200, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "bob", "privileges": []string{"answer_calls"}}, 201, "")
	s.expect("POST", "/v1/users/bob/delegations/dan/accept", bob.Token, nil, 200, "")
	aliceP := s.phone("alice", "alice-secret", nil)
	bobP := s.phone("bob", "bob-secret", nil)
	danP := s.phone("dan", "dan-secret", nil)
	for _, p := range []*sipphone.Phone{aliceP, bobP, danP} {
		s.registered(p)
	}

	ctx := ctxT(t, 20*time.Second)
	done := make(chan *sipphone.Call, 1)
	go func() {
		c, err := aliceP.Dial(ctx, "1003", nil)
		if err != nil {
			t.Errorf("dial: %v", err)
		}
		done <- c
	}()
	danIn, bobIn := recvCall(t, danP), recvCall(t, bobP)
	for _, c := range []struct {
		who  string
		in   *sipphone.Call
		name string
	}{
		{"dan", danIn, aliceName},
		{"bob, dan's delegate", bobIn, aliceName + " for " + danName},
	} {
		quoted := quote(c.name)
		// sipgo hands back the text between the quotes, still escaped.
		if c.in.FromName != quoted {
			t.Errorf("%s's phone: From display parsed as %q, want %q (%q)", c.who, c.in.FromName, quoted, c.name)
		}
		if from := c.in.Request.From().Value(); !strings.HasPrefix(from, `"`+quoted+`" <sip:1001@`) {
			t.Errorf("%s's phone: From %s, want the display name %q quoted", c.who, from, c.name)
		}
		if h := c.in.Request.GetHeader("Call-Info"); h != nil {
			t.Errorf("%s's phone got a Call-Info header: %s", c.who, h.Value())
		}
	}
	if err := bobIn.Answer(); err != nil {
		t.Fatal(err)
	}
	if out := <-done; out != nil {
		_ = out.Hangup(ctx)
	}
}

// A carrier's caller name reaches the callee as the carrier wrote it: read
// once (its quoted-pairs undone) and escaped once when written again.
func TestCarrierDisplayNameWrittenAsSent(t *testing.T) {
	_, bob, conn, to, from := carrierToBob(t, nil)
	const display = `Mal \"lory\" \\ <sip:evil@example.com>`
	invite := strings.Replace(rawInvite(to, from, "+14155550102", carrierSDP), "From: <", `From: "`+display+`" <`, 1)
	if _, err := conn.WriteToUDP([]byte(invite), to); err != nil {
		t.Fatal(err)
	}
	in := recvCall(t, bob)
	if in.FromName != display || in.From != "+14155550000" {
		t.Fatalf("bob's phone: From %q %q, want %q %q", in.FromName, in.From, display, "+14155550000")
	}
	if err := in.Reject(486); err != nil {
		t.Fatal(err)
	}
	readFinal(t, conn) // the call is over before the node closes

}

// quote is name as the inside of an RFC 3261 quoted-string.
func quote(name string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
