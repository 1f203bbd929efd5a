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

// BenchmarkMonitorJoin measures a supervisor joining a call to listen: from
// the REST request (or the *1 INVITE) to the first packet of the call's
// audio at the supervisor's phone, which answers at once. Alice's call to
// Dan talks meanwhile; each iteration is a new call.
//
//	go test -run XXX -bench MonitorJoin -benchtime 100x ./cmd/switchboard/e2e/
func BenchmarkMonitorJoin(b *testing.B) {
	s := startNode(b, nil)
	s.user("dan", "1001", "dan-secret")
	sue := s.user("sue", "1009", "sue-secret")
	s.user("alice", "1004", "alice-secret")
	s.api("POST", "/v1/monitoring-groups", "", map[string]any{"id": "support", "supervisors": []string{"sue"}, "members": []string{"dan"}}, nil)
	answer := func(c *sipphone.Config) { c.AutoAnswerOn = true; c.Backlog = 100000 }
	danP, sueP, alice := s.phone("dan", "dan-secret", answer), s.phone("sue", "sue-secret", answer), s.phone("alice", "alice-secret", nil)
	for _, p := range []*sipphone.Phone{danP, sueP, alice} {
		s.registered(p)
	}
	frame := ulawFrame(1000)
	for _, via := range []string{"rest", "sip"} {
		b.Run(via, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := alice.Dial(ctx, "1001", nil)
				if err != nil {
					cancel()
					b.Fatalf("call: %v", err)
				}
				<-danP.Incoming()
				talking := make(chan struct{})
				go func() { defer close(talking); _ = c.SendPayload(100, 20*time.Millisecond, frame) }()
				id, _, _ := s.lineCall("dan", "", "dan")
				start := time.Now()
				var sc *sipphone.Call
				if via == "rest" {
					if code := s.api("POST", "/v1/calls/"+id+"/monitor", sue.Token, map[string]any{"mode": "listen"}, nil); code != 202 {
						b.Fatalf("monitor: %d", code)
					}
					sc = <-sueP.Incoming()
					<-sc.Answered() // auto-answered: its media exists from here
				} else if sc, err = sueP.Dial(ctx, "*11001", nil); err != nil {
					b.Fatalf("*1: %v", err)
				}
				for sc.Received() == 0 && ctx.Err() == nil {
					time.Sleep(200 * time.Microsecond)
				}
				total += time.Since(start)
				_ = c.Hangup(ctx)
				<-sc.Ended()
				<-talking
				cancel()
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "join-to-audio-ms/op")
		})
	}
}
