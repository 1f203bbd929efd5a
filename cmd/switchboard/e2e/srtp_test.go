package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

type outcomes struct {
	Items []struct {
		Outcome string `json:"outcome"`
	} `json:"items"`
}

// outcomes is user's history, newest first, as "outcome" per call.
func (s *sys) outcomes(user string) []string {
	s.t.Helper()
	var h outcomes
	if code := s.api("GET", "/v1/users/"+user+"/history", "", nil, &h); code != 200 {
		s.t.Fatalf("history of %s: %d", user, code)
	}
	var out []string
	for _, e := range h.Items {
		out = append(out, e.Outcome)
	}
	return out
}

// Alice's policy requires SRTP: her INVITE in plain RTP gets 488 with a
// Warning saying why and rings nobody; in SRTP her call goes through, the
// relay speaking SRTP to her and plain RTP to Bob.
func TestSRTPRequiredCaller(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	s.expect("PATCH", "/v1/users/alice", "", map[string]any{"srtp": "required"}, 200, "")
	plain := s.phone("alice", "alice-secret", nil)
	secure := s.phone("alice", "alice-secret", func(c *sipphone.Config) { c.SRTP = true })
	bob := s.phone("bob", "bob-secret", func(c *sipphone.Config) { c.AutoAnswerOn = true })
	s.registered(bob)
	ctx := ctxT(t, 20*time.Second)

	var rej *sipphone.ErrRejected
	if _, err := plain.Dial(ctx, "1002", nil); !errors.As(err, &rej) || rej.Code != 488 {
		t.Fatalf("plain RTP from a user who requires SRTP: want 488, got %v", err)
	}
	if !strings.Contains(rej.Warning, "SRTP is required") {
		t.Fatalf("the 488 should say why in a Warning, got %q", rej.Warning)
	}

	a, err := secure.Dial(ctx, "1002", nil)
	if err != nil {
		t.Fatalf("SRTP from a user who requires it: %v", err)
	}
	if !strings.Contains(a.RemoteSDP(), "RTP/SAVP") || !strings.Contains(a.RemoteSDP(), "a=crypto:") {
		t.Fatalf("the caller must get an SRTP answer: %s", a.RemoteSDP())
	}
	b := recvCall(t, bob)
	<-b.Answered()
	_ = a.SendRTP(30, 2*time.Millisecond)
	_ = b.SendRTP(30, 2*time.Millisecond)
	eventually(t, 3*time.Second, "SRTP<->RTP both ways", func() bool { return a.Received() >= 27 && b.Received() >= 27 })
	_ = a.Hangup(ctx)

	// The refused call is Alice's failed call; Bob, whom it never rang,
	// has only the one he answered.
	eventually(t, 3*time.Second, "both calls in the history", func() bool {
		al, bo := s.outcomes("alice"), s.outcomes("bob")
		return len(al) == 2 && len(bo) == 1
	})
	if al, bo := s.outcomes("alice"), s.outcomes("bob"); al[1] != "failed" || al[0] != "answered" || bo[0] != "answered" {
		t.Fatalf("history: alice %v, bob %v", al, bo)
	}
}

// Ann's policy requires SRTP: a click-to-call offers her phone SRTP, and
// an answer in plain RTP ends the call there: her phone is hung up, Bob
// never rings, the call is gone from REST, SSE says it ended, and it is a
// failed call in Ann's history only.
func TestSRTPRequiredClickToCall(t *testing.T) {
	s := startNode(t, nil)
	ann := s.user("ann", "1002", "ann-secret")
	s.user("bob", "1003", "bob-secret")
	s.expect("PATCH", "/v1/users/ann", "", map[string]any{"srtp": "required"}, 200, "")
	annP, bobP := s.phone("ann", "ann-secret", nil), s.phone("bob", "bob-secret", nil)
	s.registered(annP)
	s.registered(bobP)
	ctx := ctxT(t, 20*time.Second)
	evs := s.events(ctx, ann.Token)

	var cl dialed
	if code := s.api("POST", "/v1/calls", ann.Token, map[string]any{"from_user": "ann", "to": "1003"}, &cl); code != 201 || cl.State != "ringing" {
		t.Fatalf("click-to-call: %d %+v", code, cl)
	}
	annIn := recvCall(t, annP)
	if body := string(annIn.Request.Body()); !strings.Contains(body, "RTP/SAVP") || !strings.Contains(body, "a=crypto:") {
		t.Fatalf("Ann's phone must be offered SRTP: %s", body)
	}
	// sipphone answers in plain RTP. Its Answer may report "No ACK": the
	// BYE follows our ACK at once, and sipgo may handle it first (one
	// goroutine per message). What counts is below.
	_ = annIn.Answer()
	select {
	case <-annIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Ann's plain answer should end her leg")
	}
	sse(t, evs, "call.ended", func(ev string) bool {
		return strings.Contains(ev, "event: call.ended") && strings.Contains(ev, cl.ID)
	})
	eventually(t, 3*time.Second, "the ended call gone from REST", func() bool {
		return s.api("GET", "/v1/calls/"+cl.ID, ann.Token, nil, nil) == 404
	})
	eventually(t, 3*time.Second, "Ann's history", func() bool { return len(s.outcomes("ann")) == 1 })
	if got := s.outcomes("ann"); got[0] != "failed" {
		t.Fatalf("Ann's history: %v, want [failed]", got)
	}
	if got := s.outcomes("bob"); len(got) != 0 {
		t.Fatalf("Bob was never rung, yet his history has %v", got)
	}
}
