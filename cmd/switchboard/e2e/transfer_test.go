package e2e

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/node"
)

// A transfer rings the target's whole ring plan, stage after stage, and
// when nobody answers within the no-answer time the call comes back to the
// transferor as it was: Alice calls Ann, who holds and transfers to Dan.
// Dan's plan (Ann is no VIP of his) rings his delegate Bob, then Dan. Bob
// declines, so Dan rings at once; Dan never answers, so his phone stops
// and the call is Ann's again, still on hold, until she resumes it.
func TestTransferNotAnsweredComesBack(t *testing.T) {
	s := startNode(t, func(c *node.Config) { c.NoAnswer = 2 * time.Second })
	dan := s.user("dan", "1001", "dan-secret")
	ann := s.user("ann", "1002", "ann-secret")
	s.user("bob", "1003", "bob-secret")
	s.user("alice", "1004", "alice-secret")
	s.expect("PATCH", "/v1/users/dan", "", map[string]any{"power_pack": true}, 200, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "bob", "privileges": []string{"answer_calls"}, "order": 0}, 201, "")
	s.expect("POST", "/v1/users/bob/delegations/dan/accept", "", nil, 200, "")
	// The shortest stages there are: Bob 5 s, then Dan 5 s.
	s.expect("PUT", "/v1/users/dan/vip", dan.Token, map[string]any{"enabled": true, "vip_mode": "me_only", "everybody_else": "delegates_then_me", "ring_seconds": 5}, 200, "")
	danP, annP, bobP, aliceP := s.phone("dan", "dan-secret", nil), s.phone("ann", "ann-secret", nil), s.phone("bob", "bob-secret", nil), s.phone("alice", "alice-secret", nil)
	s.registered(danP)
	s.registered(annP)
	s.registered(bobP)
	s.registered(aliceP)
	ctx := ctxT(t, 30*time.Second)

	out, annIn := answered(t, ctx, aliceP, "1002", annP)
	var callID string
	eventually(t, 3*time.Second, "the call active on Ann's line", func() bool {
		id, st, _ := s.lineCall("ann", ann.Token, "ann")
		callID = id
		return st == "active"
	})
	s.expect("POST", "/v1/calls/"+callID+"/hold", ann.Token, nil, 200, "")
	s.expect("POST", "/v1/calls/"+callID+"/transfer", ann.Token, map[string]any{"to": "dan"}, 200, "")

	// Bob's stage rings first; his decline hands the transfer to Dan's.
	bobIn := recvCall(t, bobP)
	_ = bobIn.Reject(486)
	danIn := recvCall(t, danP)
	select {
	case <-danIn.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("Dan's phone should stop ringing once the no-answer time has passed")
	}
	if _, st, _ := s.lineCall("ann", ann.Token, "ann"); st != "held" {
		t.Fatalf("after the unanswered transfer the call is %q, want held (Ann's again)", st)
	}
	select {
	case <-annIn.Ended():
		t.Fatal("Ann's leg ended though nobody took the transfer")
	default:
	}

	// Ann resumes: she and Alice hear each other again.
	s.expect("POST", "/v1/calls/"+callID+"/resume", ann.Token, nil, 200, "")
	eventually(t, 3*time.Second, "the call active again", func() bool { _, st, _ := s.lineCall("ann", ann.Token, "ann"); return st == "active" })
	atAnn, atAlice := annIn.Received(), out.Received()
	_ = out.SendRTP(20, 2*time.Millisecond)
	_ = annIn.SendRTP(20, 2*time.Millisecond)
	eventually(t, 3*time.Second, "RTP both ways after the resume", func() bool {
		return annIn.Received() >= atAnn+18 && out.Received() >= atAlice+18
	})
	_ = out.Hangup(ctx)
}
