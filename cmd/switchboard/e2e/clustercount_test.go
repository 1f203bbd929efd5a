package e2e

import "testing"

// GET /v1/cluster counts a node's grains of every kind: a delegation
// request activates the delegator's grain, and its node's count grows by
// one; reading another user's VIP settings activates theirs.
func TestClusterCountsEveryGrainKind(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	s.user("carol", "1003", "carol-secret")
	actors := func() int {
		t.Helper()
		var l struct {
			Items []struct {
				State  string `json:"state"`
				Actors int    `json:"actors"`
			} `json:"items"`
		}
		if code := s.api("GET", "/v1/cluster", "", nil, &l); code != 200 || len(l.Items) != 1 || l.Items[0].State != "alive" {
			t.Fatalf("cluster: %d %+v", code, l)
		}
		return l.Items[0].Actors
	}
	before := actors()
	s.expect("POST", "/v1/users/alice/delegates", "", map[string]any{"delegate": "bob", "privileges": []string{"answer_calls"}}, 201, "")
	if got := actors(); got != before+1 {
		t.Fatalf("after alice's delegator grain started: %d actors, want %d", got, before+1)
	}
	s.expect("GET", "/v1/users/carol/vip", "", nil, 200, "")
	if got := actors(); got != before+2 {
		t.Fatalf("after carol's delegator grain started: %d actors, want %d", got, before+2)
	}
}
