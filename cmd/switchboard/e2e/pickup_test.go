package e2e

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

type callInfo struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Line       string `json:"line"`
	AnsweredAt string `json:"answered_at"`
	AnsweredBy string `json:"answered_by"`
	Node       string `json:"node"`
	GrainNode  string `json:"grain_node"`
	Legs       []struct {
		Party string `json:"party"`
		State string `json:"state"`
	} `json:"legs"`
}

type callList struct {
	Items []callInfo `json:"items"`
}

// talking checks GET /v1/calls/{id}, which asks the call's grain: who talks
// to the caller now, and that the one node holds the media and the grain.
func (s *sys) talking(id, who string) {
	s.t.Helper()
	var c callInfo
	if code := s.api("GET", "/v1/calls/"+id, "", nil, &c); code != 200 || c.AnsweredBy != who || c.Node != "n1" || c.GrainNode != "n1" {
		s.t.Fatalf("GET /v1/calls/%s: %d %+v, want answered_by %q, node and grain_node n1", id, code, c, who)
	}
}

// answeredBy checks GET /v1/calls, which the nodes' indexes answer: the one
// call is active on line, picker talks to the caller, its answered leg is
// picker's, and nobody else's leg is still up but caller's.
func (s *sys) answeredBy(line, caller, picker string) {
	s.t.Helper()
	var cl callList
	if code := s.api("GET", "/v1/calls", "", nil, &cl); code != 200 || len(cl.Items) != 1 {
		s.t.Fatalf("GET /v1/calls: %d %+v, want the one call", code, cl)
	}
	c := cl.Items[0]
	if c.State != "active" || c.Line != line || c.AnsweredAt == "" || c.AnsweredBy != picker || c.GrainNode != "n1" {
		s.t.Fatalf("the picked-up call: %+v, want active on %s's line with answered_at, answered_by %s, grain_node n1", c, line, picker)
	}
	s.talking(c.ID, picker)
	up := map[string]int{}
	for _, l := range c.Legs {
		if l.State == "answered" {
			up[l.Party]++
		}
	}
	if len(up) != 2 || up[caller] != 1 || up[picker] != 1 {
		s.t.Fatalf("answered legs %v of %+v, want %s's and %s's", up, c.Legs, caller, picker)
	}
}

// ringingOn waits for the call to show ringing on line and returns its id.
func ringingOn(t *testing.T, s *sys, viewer, tok, line string) string {
	t.Helper()
	var id string
	eventually(t, 3*time.Second, "the call ringing on "+line+"'s line", func() bool {
		var st string
		id, st, _ = s.lineCall(viewer, tok, line)
		return st == "ringing"
	})
	return id
}

// Bob's phone rings and he does not answer. Dan, his delegate with
// pickup_hold, dials *8<bob's extension>: the call is answered for Dan,
// Bob's phone stops ringing, and Alice and Dan hear each other. Then Carol,
// another such delegate, picks up the next call over REST: her phone rings,
// Bob's rings on until she answers. A stranger is refused both ways.
func TestPickupRingingCall(t *testing.T) {
	s := startNode(t, nil)
	bob := s.user("bob", "1003", "bob-secret")
	dan := s.user("dan", "1001", "dan-secret")
	carol := s.user("carol", "1005", "carol-secret")
	eve := s.user("eve", "1009", "eve-secret")
	s.user("alice", "1004", "alice-secret")
	for i, d := range []user{dan, carol} {
		s.expect("POST", "/v1/users/bob/delegates", bob.Token, map[string]any{"delegate": d.ID, "privileges": []string{"pickup_hold"}, "order": i}, 201, "")
		s.expect("POST", "/v1/users/"+d.ID+"/delegations/bob/accept", d.Token, nil, 200, "")
	}
	bobP := s.phone("bob", "bob-secret", nil)
	danP := s.phone("dan", "dan-secret", nil)
	carolP := s.phone("carol", "carol-secret", nil)
	eveP := s.phone("eve", "eve-secret", nil)
	alice := s.phone("alice", "alice-secret", nil)
	for _, p := range []*sipphone.Phone{bobP, danP, carolP, eveP, alice} {
		s.registered(p)
	}
	ctx := ctxT(t, 60*time.Second)

	call := func() (<-chan error, **sipphone.Call) {
		done := make(chan error, 1)
		var out *sipphone.Call
		go func() {
			var err error
			out, err = alice.Dial(ctx, "1003", nil)
			done <- err
		}()
		return done, &out
	}
	bothWays := func(who string, out, picked *sipphone.Call) {
		t.Helper()
		_ = out.SendRTP(10, 2*time.Millisecond)
		eventually(t, 3*time.Second, "Alice's audio at "+who, func() bool { return picked.Received() >= 8 })
		got := out.Received()
		_ = picked.SendRTP(10, 2*time.Millisecond)
		eventually(t, 3*time.Second, who+"'s audio at Alice", func() bool { return out.Received() >= got+8 })
	}
	stopped := func(c *sipphone.Call) {
		t.Helper()
		select {
		case <-c.Ended():
		case <-time.After(5 * time.Second):
			t.Fatal("Bob's phone kept ringing after the pickup")
		}
		select {
		case <-c.Answered():
			t.Fatal("Bob's phone never answered, yet its call was answered")
		default:
		}
	}

	// *8 by Dan.
	done, out := call()
	bobIn := recvCall(t, bobP)
	callID := ringingOn(t, s, "dan", dan.Token, "bob")
	var rej *sipphone.ErrRejected
	if _, err := eveP.Dial(ctx, "*81003", nil); !errors.As(err, &rej) || rej.Code != 403 {
		t.Fatalf("*8 by a stranger: want 403, got %v", err)
	}
	s.expect("POST", "/v1/calls/"+callID+"/pickup", eve.Token, nil, 403, "forbidden")
	picked, err := danP.Dial(ctx, "*81003", nil)
	if err != nil {
		t.Fatalf("*8 pickup of a ringing call: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Alice's call, answered by Dan's pickup: %v", err)
	}
	stopped(bobIn)
	bothWays("Dan", *out, picked)
	s.answeredBy("bob", "alice", "dan")
	if _, err := carolP.Dial(ctx, "*81003", nil); !errors.As(err, &rej) || rej.Code != 404 {
		t.Fatalf("*8 with nothing ringing or held any more: want 404, got %v", err)
	}
	_ = picked.Hangup(ctx)
	eventually(t, 3*time.Second, "the line idle", func() bool { id, _, _ := s.lineCall("bob", bob.Token, "bob"); return id == "" })

	// REST pickup by Carol.
	done, out = call()
	bobIn = recvCall(t, bobP)
	callID = ringingOn(t, s, "carol", carol.Token, "bob")
	s.expect("POST", "/v1/calls/"+callID+"/pickup", carol.Token, nil, 200, "")
	s.expect("POST", "/v1/calls/"+callID+"/pickup", dan.Token, nil, 409, "already_picked_up")
	carolIn := recvCall(t, carolP)
	select {
	case <-bobIn.Ended():
		t.Fatal("Bob's phone stopped before Carol answered the pickup")
	default:
	}
	if err := carolIn.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Alice's call, answered by Carol's pickup: %v", err)
	}
	stopped(bobIn)
	bothWays("Carol", *out, carolIn)
	s.answeredBy("bob", "alice", "carol")
	_ = (*out).Hangup(ctx)

	// History labels each call as answered by its picker for Bob.
	want := map[string][]string{
		"bob":   {"Answered by carol for you", "Answered by dan for you"},
		"carol": {"Answered by dan for bob", "Answered by you for bob"},
		"dan":   {"Answered by carol for bob", "Answered by you for bob"},
	}
	eventually(t, 3*time.Second, "history labels", func() bool {
		for u, l := range want {
			got := s.labels(u)
			slices.Sort(got)
			if !slices.Equal(got, l) {
				return false
			}
		}
		return true
	})
}
