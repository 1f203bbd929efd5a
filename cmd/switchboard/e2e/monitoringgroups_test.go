package e2e

import (
	"reflect"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/actors/monitoring"
)

// A group created and changed over REST, and a delegation accepted over
// REST, are the facts a call grain gets (Node.MonitorFacts), and the rule
// grants by them.
func TestMonitoringGroupIsWhatFactsRead(t *testing.T) {
	s := startNode(t, nil)
	s.user("sue", "1001", "sue-secret")
	s.user("gus", "1002", "gus-secret")
	s.user("dee", "1003", "dee-secret")
	s.expect("POST", "/v1/monitoring-groups", "", map[string]any{"id": "sales", "supervisors": []string{"sue"}, "members": []string{"gus"},
		"modes": []string{"listen", "whisper"}, "notify_agent": true}, 201, "")

	facts := func(sup, g string) monitoring.Facts {
		t.Helper()
		f, err := s.n.MonitorFacts(sup, g)
		if err != nil {
			t.Fatalf("facts(%s, %s): %v", sup, g, err)
		}
		return f
	}
	want := monitoring.Facts{Groups: []monitoring.Group{{ID: "sales", Supervisors: []string{"sue"}, Members: []string{"gus"},
		Modes: []monitoring.Mode{monitoring.Listen, monitoring.Whisper}, NotifyAgent: true, BargeTone: true}}}
	if got := facts("sue", "gus"); !reflect.DeepEqual(got, want) {
		t.Fatalf("facts %+v, want %+v", got, want)
	}
	grant, refusal := monitoring.May("sue", "gus", facts("sue", "gus"))
	if refusal != nil || !slices.Equal(grant.Modes, []monitoring.Mode{monitoring.Listen, monitoring.Whisper}) || !grant.NotifyAgent || !grant.BargeTone {
		t.Fatalf("sue over gus: %+v %v", grant, refusal)
	}
	if _, refusal := monitoring.May("sue", "dee", facts("sue", "dee")); refusal == nil || refusal.Code != "not_allowed" {
		t.Fatalf("sue over dee, in no group: %+v", refusal)
	}

	s.expect("PATCH", "/v1/monitoring-groups/sales", "", map[string]any{"modes": []string{"barge"}, "members": []string{"gus", "dee"}}, 200, "")
	grant, refusal = monitoring.May("sue", "dee", facts("sue", "dee"))
	if refusal != nil || !slices.Equal(grant.Modes, []monitoring.Mode{monitoring.Barge}) {
		t.Fatalf("sue over dee after the patch: %+v %v", grant, refusal)
	}

	// dee accepts gus's invitation: each may monitor the other, in every mode.
	if f := facts("dee", "gus"); f.Delegation {
		t.Fatal("a delegation before any invitation")
	}
	s.expect("POST", "/v1/users/gus/delegates", "", map[string]any{"delegate": "dee", "privileges": []string{}}, 201, "")
	if f := facts("dee", "gus"); f.Delegation {
		t.Fatal("a pending invitation counted as a delegation")
	}
	s.expect("POST", "/v1/users/dee/delegations/gus/accept", "", nil, 200, "")
	for _, pair := range [][2]string{{"dee", "gus"}, {"gus", "dee"}} {
		grant, refusal := monitoring.May(pair[0], pair[1], facts(pair[0], pair[1]))
		if refusal != nil || !slices.Equal(grant.Modes, monitoring.Modes) || grant.NotifyAgent {
			t.Fatalf("%s over %s: %+v %v", pair[0], pair[1], grant, refusal)
		}
	}

	// Deleting a user takes them out of the group; deleting the group ends it.
	s.expect("DELETE", "/v1/users/dee", "", nil, 204, "")
	if f := facts("sue", "gus"); len(f.Groups) != 1 || !slices.Equal(f.Groups[0].Members, []string{"gus"}) {
		t.Fatalf("dee is still a member: %+v", f)
	}
	s.expect("DELETE", "/v1/monitoring-groups/sales", "", nil, 204, "")
	if f := facts("sue", "gus"); len(f.Groups) != 0 {
		t.Fatalf("a deleted group is still a fact: %+v", f)
	}
}
