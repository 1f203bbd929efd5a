package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

type queueStats struct {
	Waiting             int     `json:"waiting"`
	LongestWaitSeconds  int     `json:"longest_wait_seconds"`
	Completed           int     `json:"completed"`
	Abandoned           int     `json:"abandoned"`
	Overflowed          int     `json:"overflowed"`
	AverageWaitSeconds  int     `json:"average_wait_seconds"`
	ServiceLevelPercent float64 `json:"service_level_percent"`
	Members             []struct {
		User   string `json:"user"`
		State  string `json:"state"`
		Reason string `json:"reason"`
	} `json:"members"`
}

// memberState is a member's state in the queue's stats.
func (st queueStats) memberState(user string) string {
	for _, m := range st.Members {
		if m.User == user {
			return m.State
		}
	}
	return ""
}

// A carrier's caller reaches a sequential queue's number: the queue answers
// at once with its greeting and music, rings Ann (first by order), who
// declines, then Ben, who answers; they talk. A second caller waits while
// both members are opted out and hangs up (abandoned); a third, with the
// queue full (max_calls 1), overflows at once to Mia. The stats count one
// of each, and Mia, the queue's admin, sees the call labelled for the queue.
func TestQueueCall(t *testing.T) {
	s := startNode(t, nil)
	ann := s.user("ann", "2001", "ann-secret")
	s.user("ben", "2002", "ben-secret")
	mia := s.user("mia", "2009", "mia-secret")
	outsider := s.user("oz", "2010", "oz-secret")
	annP, benP, miaP := s.phone("ann", "ann-secret", nil), s.phone("ben", "ben-secret", nil), s.phone("mia", "mia-secret", nil)
	for _, p := range []*sipphone.Phone{annP, benP, miaP} {
		s.registered(p)
	}
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}}, 201, "")
	s.expect("POST", "/v1/queues", "", map[string]any{
		"id": "sales", "name": "Sales", "extension": "5000", "numbers": []string{"+14155550150"},
		"members":      []map[string]any{{"user": "ann", "order": 1}, {"user": "ben", "order": 2}},
		"distribution": "sequential", "ring_seconds": 5, "max_calls": 1, "admins": []string{"mia"},
		"overflow": map[string]any{"business": map[string]any{"kind": "user", "id": "mia"}},
	}, 201, "")
	ctx := ctxT(t, 90*time.Second)
	miaEvents := s.events(ctx, mia.Token)
	stats := func() queueStats {
		var st queueStats
		if code := s.api("GET", "/v1/queues/sales/stats", mia.Token, nil, &st); code != 200 {
			t.Fatalf("stats: %d", code)
		}
		return st
	}

	// The queue answers at once, and the caller hears the greeting.
	caller, err := carrier.Dial(ctx, "+14155550150", nil)
	if err != nil {
		t.Fatalf("calling the queue: %v", err)
	}
	// The caller's first packets open its media path; its voice comes later.
	go func() { _ = caller.SendRTP(25, 20*time.Millisecond) }()
	eventually(t, 3*time.Second, "the greeting on the caller's line", func() bool { return caller.VariedFrames() > 10 })
	if st := stats(); st.Waiting != 1 {
		t.Fatalf("waiting while the queue rings: %+v", st)
	}

	// Sequential: Ann rings first and declines; Ben rings next and answers.
	annIn := recvCall(t, annP)
	if from := annIn.FromName; !strings.Contains(from, "for Sales") {
		t.Errorf("a member's phone shows %q; want the caller for Sales", from)
	}
	if err := annIn.Reject(603); err != nil {
		t.Fatal(err)
	}
	benIn := recvCall(t, benP)
	if err := benIn.Answer(); err != nil {
		t.Fatal(err)
	}
	hearsOnly(t, []party{{"caller", caller, 1000}, {"ben", benIn, 2000}}, map[string][]string{"caller": {"ben"}, "ben": {"caller"}}, 1500*time.Millisecond)
	if st := stats(); st.Waiting != 0 || st.memberState("ben") != "on_call" {
		t.Fatalf("while Ben talks: %+v", st)
	}
	_ = caller.Hangup(ctx)
	<-benIn.Ended()
	eventually(t, 5*time.Second, "the completed call in the stats", func() bool { return stats().Completed == 1 })
	sse(t, miaEvents, "queue.updated for the queue's admin", func(b string) bool { return strings.Contains(b, "queue.updated") })
	eventually(t, 5*time.Second, "the queue call in Mia's history", func() bool {
		return slices.Contains(s.labels("mia"), "Answered by ben for Sales")
	})

	// Opted out, with a reason: nobody rings; the caller waits and gives up.
	s.expect("POST", "/v1/queues/sales/members/ann/opt-out", outsider.Token, map[string]any{"reason": "lunch"}, 403, "")
	for _, u := range []string{"ann", "ben"} {
		var m struct {
			User    string `json:"user"`
			OptedIn bool   `json:"opted_in"`
			Reason  string `json:"reason"`
		}
		tok := ""
		if u == "ann" {
			tok = ann.Token // the member herself
		}
		if code := s.api("POST", "/v1/queues/sales/members/"+u+"/opt-out", tok, map[string]any{"reason": "lunch"}, &m); code != 200 || m.OptedIn || m.Reason != "lunch" {
			t.Fatalf("opt-out %s: %d %+v", u, code, m)
		}
	}
	waiter, err := carrier.Dial(ctx, "5000", nil)
	if err != nil {
		t.Fatalf("second caller: %v", err)
	}
	eventually(t, 3*time.Second, "the second caller waiting", func() bool { return stats().Waiting == 1 })
	if st := stats(); st.memberState("ann") != "opted_out" || st.Members[0].Reason != "lunch" {
		t.Fatalf("opted-out member: %+v", st.Members)
	}

	// The queue is full: the third caller goes to Mia at once.
	miaCaller, miaIn := answered(t, ctx, carrier, "+14155550150", miaP)
	hearsOnly(t, []party{{"caller", miaCaller, 1000}, {"mia", miaIn, 2000}}, map[string][]string{"caller": {"mia"}, "mia": {"caller"}}, time.Second)
	_ = miaCaller.Hangup(ctx)
	_ = waiter.Hangup(ctx)
	eventually(t, 5*time.Second, "one completed, one abandoned, one overflowed", func() bool {
		st := stats()
		return st.Completed == 1 && st.Abandoned == 1 && st.Overflowed == 1 && st.Waiting == 0
	})
	if st := stats(); st.ServiceLevelPercent != 50 {
		t.Errorf("service level after one answered in time and one abandoned: %v", st.ServiceLevelPercent)
	}
	s.expect("GET", "/v1/queues/sales/stats", outsider.Token, nil, 403, "")
}
