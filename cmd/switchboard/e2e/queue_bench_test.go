package e2e

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// BenchmarkQueueSetup compares, in one run on one node, a call to a queue
// answered by its member with a direct call to a user. The queue answers
// its caller at once (greeting, music), so the caller's 200 says little:
// what the caller waits for is the member's voice. Per call it reports,
// from the caller's INVITE: the caller's 200 (answer-ms), the callee's
// INVITE (offer-ms), the callee's 200 (callee-answered-ms: the callee
// answers the moment it rings), and the first frame of the callee's audio
// at the caller (audio-ms); and bridge-ms, from the callee's 200 to that
// frame. The callee sends a frame every 2 ms from its answer until heard.
// Between calls the queue sees its member available again.
//
//	go test -run XXX -bench QueueSetup -benchtime 100x ./cmd/switchboard/e2e/
func BenchmarkQueueSetup(b *testing.B) {
	s := startNode(b, nil)
	s.user("bob", "1002", "bob-secret")
	s.user("ann", "2001", "ann-secret")
	s.user("alice", "1004", "alice-secret")
	if code := s.api("POST", "/v1/queues", "", map[string]any{"id": "sales", "name": "Sales", "extension": "5000",
		"members": []map[string]any{{"user": "ann", "order": 1}}}, nil); code != 201 {
		b.Fatalf("create queue: %d", code)
	}
	backlog := func(c *sipphone.Config) { c.Backlog = 100000 }
	bobP, annP, alice := s.phone("bob", "bob-secret", backlog), s.phone("ann", "ann-secret", backlog), s.phone("alice", "alice-secret", nil)
	for _, p := range []*sipphone.Phone{bobP, annP, alice} {
		s.registered(p)
	}
	frame := ulawFrame(3000)
	for _, tc := range []struct {
		name, target string
		callee       *sipphone.Phone
		queue        bool
	}{{"direct", "1002", bobP, false}, {"queue", "5000", annP, true}} {
		b.Run(tc.name, func(b *testing.B) {
			rings := stampRings(b, tc.callee)
			var answer, offer, calleeAnswered, audio, bridge time.Duration
			for b.Loop() {
				if tc.queue {
					waitMemberAvailable(b, s, "sales", "ann")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, at := queueBenchCall(ctx, b, alice, tc.target, rings, frame)
				answer += at.answer
				offer += at.offer
				calleeAnswered += at.calleeAnswered
				audio += at.audio
				bridge += at.audio - at.calleeAnswered
				_ = c.out.Hangup(ctx)
				select {
				case <-c.in.Ended():
				case <-ctx.Done():
					b.Fatal("the callee's call did not end after the caller hung up")
				}
				cancel()
			}
			n := float64(b.N)
			b.ReportMetric(millis(answer)/n, "answer-ms/op")
			b.ReportMetric(millis(offer)/n, "offer-ms/op")
			b.ReportMetric(millis(calleeAnswered)/n, "callee-answered-ms/op")
			b.ReportMetric(millis(audio)/n, "audio-ms/op")
			b.ReportMetric(millis(bridge)/n, "bridge-ms/op")
		})
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// stampedRing is an INVITE at a phone and when it was taken off the phone's queue.
type stampedRing struct {
	call *sipphone.Call
	at   time.Time
}

// stampRings timestamps p's incoming calls as they arrive, until b ends.
func stampRings(b *testing.B, p *sipphone.Phone) <-chan stampedRing {
	out := make(chan stampedRing, 16)
	done := make(chan struct{})
	b.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case <-done:
				return
			case c := <-p.Incoming():
				out <- stampedRing{c, time.Now()}
			}
		}
	}()
	return out
}

// setupTimes are a call's moments, from the caller's INVITE.
type setupTimes struct{ answer, offer, calleeAnswered, audio time.Duration }

// bothEnds are a call's two dialogs.
type bothEnds struct{ out, in *sipphone.Call }

// queueBenchCall places one call from caller to target; the callee answers
// as soon as it rings and sends frame every 2 ms until the caller hears it.
func queueBenchCall(ctx context.Context, b *testing.B, caller *sipphone.Phone, target string, rings <-chan stampedRing, frame []byte) (bothEnds, setupTimes) {
	type dialed struct {
		c   *sipphone.Call
		at  time.Time
		err error
	}
	dc := make(chan dialed, 1)
	start := time.Now()
	go func() {
		c, err := caller.Dial(ctx, target, nil)
		dc <- dialed{c, time.Now(), err}
	}()
	var r stampedRing
	select {
	case r = <-rings:
	case <-ctx.Done():
		b.Fatalf("call %s: the callee did not ring", target)
	}
	if err := r.call.Answer(); err != nil {
		b.Fatalf("call %s: answer: %v", target, err)
	}
	answered := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if r.call.SendPayload(1, 0, frame) != nil {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	d := <-dc
	if d.err != nil {
		b.Fatalf("call %s: %v", target, d.err)
	}
	for !bytes.Equal(d.c.LastPayload(), frame) {
		if ctx.Err() != nil {
			b.Fatalf("call %s: the callee's audio never reached the caller", target)
		}
		time.Sleep(200 * time.Microsecond)
	}
	heard := time.Now()
	return bothEnds{d.c, r.call}, setupTimes{answer: d.at.Sub(start), offer: r.at.Sub(start), calleeAnswered: answered.Sub(start), audio: heard.Sub(start)}
}

// waitMemberAvailable polls the queue's stats until user is available
// again (the last call's end has reached the queue).
func waitMemberAvailable(b *testing.B, s *sys, queue, user string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st struct {
			Members []struct{ User, State string } `json:"members"`
		}
		if code := s.api("GET", "/v1/queues/"+queue+"/stats", "", nil, &st); code != 200 {
			b.Fatalf("queue stats: %d", code)
		}
		for _, m := range st.Members {
			if m.User == user && m.State == "available" {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not available in queue %s after 5 s: %+v", user, queue, st.Members)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
