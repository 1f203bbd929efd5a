package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// BenchmarkCallSetup compares, in one run on one node, the setup latency
// (INVITE to 180 Ringing, or to the answer when that comes first) of a call to a plain user and of a call to
// a delegator whose line rings a delegate too (ring plan from the delegator
// grain, contacts of two lines, two forks).
//
//	go test -run XXX -bench CallSetup -benchtime 300x ./cmd/switchboard/e2e/
func BenchmarkCallSetup(b *testing.B) {
	s := startNode(b, nil)
	s.user("bob", "1002", "bob-secret")
	dan := s.user("dan", "1001", "dan-secret")
	ann := s.user("ann", "1003", "ann-secret")
	s.user("alice", "1004", "alice-secret")
	s.api("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{"answer_calls"}}, nil)
	s.api("POST", "/v1/users/ann/delegations/dan/accept", ann.Token, nil, nil)
	answer := func(c *sipphone.Config) { c.AutoAnswerOn = true; c.Backlog = 100000 }
	for _, u := range [][2]string{{"bob", "bob-secret"}, {"dan", "dan-secret"}, {"ann", "ann-secret"}} {
		s.registered(s.phone(u[0], u[1], answer))
	}
	alice := s.phone("alice", "alice-secret", nil)
	s.registered(alice)
	for _, tc := range []struct{ name, target string }{{"plain", "1002"}, {"delegated", "1001"}} {
		b.Run(tc.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				var setup time.Duration
				c, err := alice.Dial(ctx, tc.target, func(code int) {
					if setup == 0 && code >= 180 {
						setup = time.Since(start)
					}
				})
				if err != nil {
					cancel()
					b.Fatalf("call %s: %v", tc.target, err)
				}
				if setup == 0 { // answered before any 180 got through
					setup = time.Since(start)
				}
				total += setup
				_ = c.Hangup(ctx)
				cancel()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "setup-ms/op")
		})
	}
}
