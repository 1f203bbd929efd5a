package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

type lineView struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Calls []struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Locked bool   `json:"locked"`
	} `json:"calls"`
}

// groupCall is the call on user's view of a shared line group's line in
// state ("" when there is none).
func (s *sys) groupCall(user, tok, group, state string) string {
	s.t.Helper()
	var lines struct {
		Items []lineView `json:"items"`
	}
	if code := s.api("GET", "/v1/users/"+user+"/lines", tok, nil, &lines); code != 200 {
		s.t.Fatalf("lines of %s: %d", user, code)
	}
	for _, l := range lines.Items {
		if l.Kind != "shared_line_group" || l.ID != group {
			continue
		}
		for _, c := range l.Calls {
			if c.State == state {
				return c.ID
			}
		}
	}
	return ""
}

// A carrier's caller reaches a shared line group: every member's phone
// rings at once and Ann answers (the others stop). Ann holds; the call shows
// on Ben's lines as the group's, and Ben picks it up. Under the lock policy
// a member locks a call so the others cannot pick it up (*8 403, REST 409).
// With every member on a call, the next caller overflows at once to Mia.
func TestSharedLineGroup(t *testing.T) {
	s := startNode(t, nil)
	ann := s.user("ann", "2101", "ann-secret")
	ben := s.user("ben", "2102", "ben-secret")
	cal := s.user("cal", "2103", "cal-secret")
	s.user("mia", "2109", "mia-secret")
	annP, benP, calP, miaP := s.phone("ann", "ann-secret", nil), s.phone("ben", "ben-secret", nil), s.phone("cal", "cal-secret", nil), s.phone("mia", "mia-secret", nil)
	for _, p := range []*sipphone.Phone{annP, benP, calP, miaP} {
		s.registered(p)
	}
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}}, 201, "")
	s.expect("POST", "/v1/shared-line-groups", "", map[string]any{
		"id": "front", "name": "Front Desk", "extension": "3000", "numbers": []string{"+14155550300"},
		"members": []string{"ann", "ben", "cal"}, "ring_seconds": 10, "lock_policy": true,
		"overflow": map[string]any{"business": map[string]any{"kind": "user", "id": "mia"}},
	}, 201, "")
	// At most ten members: the eleventh is refused.
	many := []string{"ann", "ben", "cal", "mia"}
	for i := range 7 {
		id := fmt.Sprintf("extra%d", i)
		s.user(id, fmt.Sprintf("28%02d", i), "extra-secret")
		many = append(many, id)
	}
	s.expect("PATCH", "/v1/shared-line-groups/front", "", map[string]any{"members": many}, 422, "too_many_members")
	s.expect("POST", "/v1/queues", "", map[string]any{"id": "clash", "name": "Clash", "extension": "3000"}, 409, "")
	ctx := ctxT(t, 90*time.Second)

	// Every member rings; Ann answers and the others stop.
	done := make(chan error, 1)
	var caller *sipphone.Call
	go func() {
		var err error
		caller, err = carrier.Dial(ctx, "+14155550300", nil)
		done <- err
	}()
	annIn, benIn, calIn := recvCall(t, annP), recvCall(t, benP), recvCall(t, calP)
	if !strings.Contains(benIn.FromName, "for Front Desk") {
		t.Errorf("a member's phone shows %q; want the caller for Front Desk", benIn.FromName)
	}
	if err := annIn.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("calling the group: %v", err)
	}
	for _, c := range []*sipphone.Call{benIn, calIn} {
		select {
		case <-c.Ended():
		case <-time.After(5 * time.Second):
			t.Fatal("another member's phone still rings after Ann answered")
		}
	}
	hearsOnly(t, []party{{"caller", caller, 1000}, {"ann", annIn, 2000}}, map[string][]string{"caller": {"ann"}, "ann": {"caller"}}, time.Second)

	// Without a lock, Ann holds and Ben picks the group's call up over REST.
	if err := annIn.Hold(ctx, "sendonly"); err != nil {
		t.Fatal(err)
	}
	var callID string
	eventually(t, 3*time.Second, "the held call on Ben's view of the group's line", func() bool {
		callID = s.groupCall("ben", ben.Token, "front", "held")
		return callID != ""
	})
	s.expect("POST", "/v1/calls/"+callID+"/pickup", ben.Token, nil, 200, "")
	benIn = recvCall(t, benP)
	if err := benIn.Answer(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-annIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Ann's leg did not end when Ben picked up")
	}
	hearsOnly(t, []party{{"caller", caller, 1000}, {"ben", benIn, 2000}}, map[string][]string{"caller": {"ben"}, "ben": {"caller"}}, time.Second)

	// Ben locks the call and holds it: Cal may not take it, over SIP or REST.
	s.expect("POST", "/v1/calls/"+callID+"/lock", ann.Token, nil, 403, "")
	s.expect("POST", "/v1/calls/"+callID+"/lock", ben.Token, nil, 200, "")
	if err := benIn.Hold(ctx, "sendonly"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the locked call held", func() bool { return s.groupCall("cal", cal.Token, "front", "held") == callID })
	var rej *sipphone.ErrRejected
	if _, err := calP.Dial(ctx, "*83000", nil); !errors.As(err, &rej) || rej.Code != 403 {
		t.Fatalf("*8 of a locked group call: want 403, got %v", err)
	}
	s.expect("POST", "/v1/calls/"+callID+"/pickup", cal.Token, nil, 409, "call_locked")
	if err := benIn.Resume(ctx); err != nil {
		t.Fatal(err)
	}

	// Ann calls Cal: every member is on a call, so the next caller goes to
	// Mia at once.
	annOut, calIn := answered(t, ctx, annP, "2103", calP)
	eventually(t, 3*time.Second, "Ann and Cal on a call", func() bool {
		var lines struct {
			Items []lineView `json:"items"`
		}
		s.api("GET", "/v1/users/cal/lines", cal.Token, nil, &lines)
		for _, l := range lines.Items {
			if l.Kind == "own" && len(l.Calls) > 0 && l.Calls[0].State == "active" {
				return true
			}
		}
		return false
	})
	second, miaIn := answered(t, ctx, carrier, "3000", miaP)
	hearsOnly(t, []party{{"caller", second, 1000}, {"mia", miaIn, 2000}}, map[string][]string{"caller": {"mia"}, "mia": {"caller"}}, time.Second)
	for _, c := range []*sipphone.Call{second, caller, annOut} {
		_ = c.Hangup(ctx)
	}
	<-calIn.Ended()
}

// Pat's phone rings unanswered; after the pickup group's delay Quinn's
// rings too, showing whom the call is for, and Quinn takes it.
func TestGroupCallPickup(t *testing.T) {
	s := startNode(t, nil)
	s.user("pat", "2201", "pat-secret", "+14155550201")
	s.user("quinn", "2202", "quinn-secret")
	patP, quinnP := s.phone("pat", "pat-secret", nil), s.phone("quinn", "quinn-secret", nil)
	s.registered(patP)
	s.registered(quinnP)
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}}, 201, "")
	s.expect("POST", "/v1/pickup-groups", "", map[string]any{"id": "desk", "members": []string{"pat", "quinn"}, "delay_seconds": 1}, 201, "")
	ctx := ctxT(t, 60*time.Second)

	done := make(chan error, 1)
	var caller *sipphone.Call
	start := time.Now()
	go func() {
		var err error
		caller, err = carrier.Dial(ctx, "+14155550201", nil)
		done <- err
	}()
	patIn := recvCall(t, patP)
	quinnIn := recvCall(t, quinnP)
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("Quinn rang after %v, before the group's delay", waited)
	}
	if !strings.Contains(quinnIn.FromName, "for pat") && !strings.Contains(quinnIn.FromName, "for Pat") {
		t.Errorf("Quinn's phone shows %q; want the caller for Pat", quinnIn.FromName)
	}
	if err := quinnIn.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-patIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Pat's phone still rings after Quinn answered")
	}
	hearsOnly(t, []party{{"caller", caller, 1000}, {"quinn", quinnIn, 2000}}, map[string][]string{"caller": {"quinn"}, "quinn": {"caller"}}, time.Second)
	_ = caller.Hangup(ctx)
	<-quinnIn.Ended()
}
