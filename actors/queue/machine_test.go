package queue

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/actors/hours"
)

// The queue core's tests are stories on a fake clock: inputs at offsets
// (in seconds) from t0, each with the exact effects it must give, rendered
// as text, and sometimes the stats after it. Expectations come from
// INTERFACE.md §5 "Call queues".

var t0 = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC) // a Monday

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// members gives users the orders 1, 2, 3, ... as listed.
func members(users ...string) []Member {
	ms := make([]Member, len(users))
	for i, u := range users {
		ms[i] = Member{User: u, Order: i + 1}
	}
	return ms
}

// config is a queue with the INTERFACE defaults and easy-to-read overflow
// targets: voicemail during business hours, a message when closed.
func config(dist string, ms ...Member) Config {
	return Config{
		ID: "q1", Name: "Support", Members: ms, Distribution: dist,
		Ring: 20 * time.Second, MaxWait: 300 * time.Second, MaxCalls: 20, ServiceLevel: 20 * time.Second,
		Business: Target{Kind: "voicemail"}, Closed: Target{Kind: "message"},
	}
}

func up(user string) Presence     { return Presence{User: user, Registered: true} }
func onCall(user string) Presence { return Presence{User: user, Registered: true, OnCall: true} }

func offset(t time.Time) string { return fmt.Sprintf("+%ds", int(t.Sub(t0)/time.Second)) }

func target(t Target) string {
	if t.ID != "" {
		return t.Kind + ":" + t.ID
	}
	return t.Kind
}

func render(effects []Effect) string {
	parts := make([]string, len(effects))
	for i, e := range effects {
		switch e := e.(type) {
		case Arrived:
			parts[i] = "arrived " + e.Call
			if e.Overflow != nil {
				parts[i] += " -> " + target(*e.Overflow)
			}
		case Ring:
			parts[i] = "ring " + e.Call + " " + e.User
		case Withdraw:
			parts[i] = "withdraw " + e.Call + " " + e.User
		case Serve:
			parts[i] = "serve " + e.Call + " " + e.User
		case WrapUp:
			parts[i] = "wrapup " + e.Call + " " + e.User
			if !e.Until.IsZero() {
				parts[i] += " until " + offset(e.Until)
			}
		case Overflow:
			parts[i] = "overflow " + e.Call + " -> " + target(e.Target)
		case Changed:
			parts[i] = "changed"
		case WakeAt:
			parts[i] = "wake none"
			if !e.At.IsZero() {
				parts[i] = "wake " + offset(e.At)
			}
		default:
			parts[i] = fmt.Sprintf("?%#v", e)
		}
	}
	return strings.Join(parts, "; ")
}

func renderStats(st Stats) string {
	ms := make([]string, len(st.Members))
	for i, m := range st.Members {
		ms[i] = m.User + "=" + m.State
		if m.Reason != "" {
			ms[i] += "(" + m.Reason + ")"
		}
	}
	return fmt.Sprintf("w=%d longest=%d done=%d abandoned=%d overflowed=%d avg=%d sl=%g | %s",
		st.Waiting, st.LongestWaitSeconds, st.Completed, st.Abandoned, st.Overflowed,
		st.AverageWaitSeconds, st.ServiceLevelPercent, strings.Join(ms, " "))
}

// reload persists q and reads it back, as the grain does across a restart.
func reload(t *testing.T, q *Queue) *Queue {
	t.Helper()
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back Queue
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return &back
}

// qstep is one input of a story.
type qstep struct {
	at     int
	in     any
	want   string
	stats  string                       // when set: the stats right after the step
	check  func(t *testing.T, q *Queue) // when set: more to assert after the step
	reload bool                         // persist and reload the queue before the step
}

func do(t *testing.T, q *Queue, s qstep) {
	t.Helper()
	if got := render(q.Step(s.in, at(s.at))); got != s.want {
		t.Errorf("+%ds %#v:\n got  %s\n want %s", s.at, s.in, got, s.want)
	}
	if s.stats != "" {
		if got := renderStats(q.Stats(at(s.at))); got != s.stats {
			t.Errorf("+%ds stats:\n got  %s\n want %s", s.at, got, s.stats)
		}
	}
	if s.check != nil {
		s.check(t, q)
	}
}

func entry(user string, order int, optedIn bool, reason string) func(*testing.T, *Queue) {
	return func(t *testing.T, q *Queue) {
		t.Helper()
		want := MemberEntry{User: user, Order: order, OptedIn: optedIn, Reason: reason}
		if got, ok := q.Member(user); !ok || got != want {
			t.Errorf("Member(%q) = %+v, %v; want %+v", user, got, ok, want)
		}
	}
}

func TestStories(t *testing.T) {
	ann, bob, cat, dan, eve := "ann", "bob", "cat", "dan", "eve"
	withWrap := config(Sequential, members(ann, bob)...)
	withWrap.WrapUp = 30 * time.Second
	smallQueue := config(Simultaneous, members(ann)...)
	smallQueue.MaxCalls = 2
	shortWait := config(Sequential, members(ann)...)
	shortWait.MaxWait = 60 * time.Second
	shortWait.Business = Target{Kind: "user", ID: "zed"}
	onCallToo := config(Simultaneous, members(ann)...)
	onCallToo.ReceiveWhileOnCall = true

	cases := []struct {
		name    string
		cfg     Config
		offline bool // members start offline (else each is registered at t0, before the story)
		steps   []qstep
	}{
		{name: "simultaneous rings everyone free; the first answer takes the call", cfg: config(Simultaneous, members(ann, bob, cat)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; ring c1 bob; ring c1 cat; changed; wake +20s"},
			{at: 5, in: Answered{"c1", bob}, want: "withdraw c1 ann; withdraw c1 cat; serve c1 bob; changed; wake none",
				stats: "w=0 longest=0 done=0 abandoned=0 overflowed=0 avg=5 sl=100 | ann=available bob=on_call cat=available"},
			{at: 6, in: Arrive{"c2"}, want: "arrived c2; ring c2 ann; ring c2 cat; changed; wake +26s"},
			// Bob is free again, but c2 already rings somebody.
			{at: 10, in: Ended{"c1"}, want: "wrapup c1 bob; changed"},
			// Ann and Cat did not answer: only Bob is left this round.
			{at: 26, in: Tick{}, want: "withdraw c2 ann; withdraw c2 cat; ring c2 bob; changed; wake +46s"},
			// Everyone passed over: a new round, everyone together again.
			{at: 46, in: Tick{}, want: "withdraw c2 bob; ring c2 ann; ring c2 bob; ring c2 cat; changed; wake +66s"},
			{at: 50, in: Left{"c2"}, want: "withdraw c2 ann; withdraw c2 bob; withdraw c2 cat; changed; wake none",
				stats: "w=0 longest=0 done=1 abandoned=1 overflowed=0 avg=5 sl=50 | ann=available bob=available cat=available"},
		}},
		{name: "sequential rings one at a time by order (ties by user id), from the first for every call",
			cfg: config(Sequential, Member{ann, 2}, Member{bob, 3}, Member{dan, 1}, Member{cat, 1}), steps: []qstep{
				{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 cat; changed; wake +20s"},
				{at: 20, in: Tick{}, want: "withdraw c1 cat; ring c1 dan; changed; wake +40s"},
				{at: 25, in: Declined{"c1", dan}, want: "withdraw c1 dan; ring c1 ann; changed; wake +45s"},
				{at: 30, in: Answered{"c1", ann}, want: "serve c1 ann; changed; wake none"},
				{at: 31, in: Arrive{"c2"}, want: "arrived c2; ring c2 cat; changed; wake +51s"},
				{at: 33, in: Answered{"c2", cat}, want: "serve c2 cat; changed; wake none"},
			}},
		{name: "rotating starts after whoever answered the previous call", cfg: config(Rotating, members(ann, bob, cat)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; changed; wake +20s"},
			{at: 2, in: Answered{"c1", ann}, want: "serve c1 ann; changed; wake none"},
			{at: 3, in: Ended{"c1"}, want: "wrapup c1 ann; changed"},
			{at: 4, in: Arrive{"c2"}, want: "arrived c2; ring c2 bob; changed; wake +24s"},
			{at: 5, in: Answered{"c2", bob}, want: "serve c2 bob; changed; wake none"},
			{at: 6, in: Ended{"c2"}, want: "wrapup c2 bob; changed"},
			{at: 7, in: Arrive{"c3"}, want: "arrived c3; ring c3 cat; changed; wake +27s"},
			{at: 8, in: Answered{"c3", cat}, want: "serve c3 cat; changed; wake none"},
			{at: 9, in: Ended{"c3"}, want: "wrapup c3 cat; changed"},
			{at: 10, in: Arrive{"c4"}, want: "arrived c4; ring c4 ann; changed; wake +30s"},
			// After Cat comes Ann, who is ringing: Bob.
			{at: 11, in: Arrive{"c5"}, want: "arrived c5; ring c5 bob; changed"},
		}},
		{name: "rotating before any answer starts after the last one offered; a new round keeps the order", cfg: config(Rotating, members(ann, bob, cat)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; changed; wake +20s"},
			{at: 5, in: Left{"c1"}, want: "withdraw c1 ann; changed; wake none"},
			{at: 6, in: Arrive{"c2"}, want: "arrived c2; ring c2 bob; changed; wake +26s"},
			{at: 26, in: Tick{}, want: "withdraw c2 bob; ring c2 cat; changed; wake +46s"},
			{at: 46, in: Tick{}, want: "withdraw c2 cat; ring c2 ann; changed; wake +66s"},
			{at: 66, in: Tick{}, want: "withdraw c2 ann; ring c2 bob; changed; wake +86s"},
		}},
		{name: "longest idle rings whoever has been free longest", cfg: config(LongestIdle, members(ann, bob, cat)...), offline: true, steps: []qstep{
			{at: 0, in: up(cat), want: "changed"},
			{at: 10, in: up(ann), want: "changed"},
			{at: 20, in: up(bob), want: "changed"},
			{at: 30, in: Arrive{"c1"}, want: "arrived c1; ring c1 cat; changed; wake +50s"},
			{at: 31, in: Answered{"c1", cat}, want: "serve c1 cat; changed; wake none"},
			{at: 40, in: Ended{"c1"}, want: "wrapup c1 cat; changed"},
			{at: 41, in: Arrive{"c2"}, want: "arrived c2; ring c2 ann; changed; wake +61s"},
			{at: 42, in: Answered{"c2", ann}, want: "serve c2 ann; changed; wake none"},
			{at: 50, in: Ended{"c2"}, want: "wrapup c2 ann; changed"},
			{at: 51, in: Arrive{"c3"}, want: "arrived c3; ring c3 bob; changed; wake +71s"},
			{at: 52, in: Answered{"c3", bob}, want: "serve c3 bob; changed; wake none"},
			{at: 53, in: Ended{"c3"}, want: "wrapup c3 bob; changed"},
			// Cat's call ended at 40, Ann's at 50, Bob's at 53.
			{at: 54, in: Arrive{"c4"}, want: "arrived c4; ring c4 cat; changed; wake +74s"},
		}},
		{name: "longest idle: a wrap-up after another queue's call counts as the end of a queue call", cfg: config(LongestIdle, members(ann, bob)...), steps: []qstep{
			{at: 5, in: Presence{User: ann, Registered: true, WrapUntil: at(10)}, want: "changed; wake +10s"},
			{at: 10, in: Tick{}, want: "changed"},
			// Both were first seen free at 0, but Ann's last call ended at 10.
			{at: 20, in: Arrive{"c1"}, want: "arrived c1; ring c1 bob; changed; wake +40s"},
		}},
		{name: "group rotating: one order value rings together, the groups take turns call by call",
			cfg: config(GroupRotating, Member{ann, 1}, Member{bob, 1}, Member{cat, 2}, Member{dan, 2}, Member{eve, 3}), steps: []qstep{
				{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; ring c1 bob; changed; wake +20s"},
				{at: 1, in: Answered{"c1", ann}, want: "withdraw c1 bob; serve c1 ann; changed; wake none"},
				{at: 2, in: Ended{"c1"}, want: "wrapup c1 ann; changed"},
				{at: 3, in: Arrive{"c2"}, want: "arrived c2; ring c2 cat; ring c2 dan; changed; wake +23s"},
				{at: 4, in: Answered{"c2", dan}, want: "withdraw c2 cat; serve c2 dan; changed; wake none"},
				{at: 5, in: Ended{"c2"}, want: "wrapup c2 dan; changed"},
				{at: 6, in: Arrive{"c3"}, want: "arrived c3; ring c3 eve; changed; wake +26s"},
				{at: 7, in: Answered{"c3", eve}, want: "serve c3 eve; changed; wake none"},
				{at: 8, in: Ended{"c3"}, want: "wrapup c3 eve; changed"},
				{at: 9, in: Arrive{"c4"}, reload: true, want: "arrived c4; ring c4 ann; ring c4 bob; changed; wake +29s"},
				// Group 1 passed over: group 2 rings for the same caller.
				{at: 29, in: Tick{}, want: "withdraw c4 ann; withdraw c4 bob; ring c4 cat; ring c4 dan; changed; wake +49s"},
				{at: 30, in: Declined{"c4", cat}, want: "withdraw c4 cat; changed"},
				{at: 31, in: Declined{"c4", dan}, want: "withdraw c4 dan; ring c4 eve; changed; wake +51s"},
				// Every group passed over: the next round starts with c4's first group.
				{at: 51, in: Tick{}, reload: true, want: "withdraw c4 eve; ring c4 ann; ring c4 bob; changed; wake +71s"},
			}},
		{name: "declines move on at once; stale declines change nothing", cfg: config(Simultaneous, members(ann, bob)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; ring c1 bob; changed; wake +20s"},
			{at: 3, in: Declined{"c1", ann}, want: "withdraw c1 ann; changed"},
			{at: 4, in: Declined{"c1", ann}, want: ""},
			{at: 4, in: Declined{"c1", "zed"}, want: ""},
			{at: 4, in: Declined{"c9", bob}, want: ""},
			// Everyone declined: a new round at once.
			{at: 5, in: Declined{"c1", bob}, want: "withdraw c1 bob; ring c1 ann; ring c1 bob; changed; wake +25s"},
		}},
		{name: "no answer in ring_seconds moves on; a late answer loses; then a new round", cfg: config(Sequential, members(ann, bob)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; changed; wake +20s"},
			{at: 20, in: Tick{}, want: "withdraw c1 ann; ring c1 bob; changed; wake +40s"},
			{at: 21, in: Answered{"c1", ann}, want: ""},
			// After a restart the grain has no timer: the first step asks for one.
			{at: 25, in: up(ann), reload: true, want: "wake +40s"},
			// An early tick: nothing is due, the timer is set again.
			{at: 30, in: Tick{}, want: "wake +40s"},
			{at: 40, in: Tick{}, want: "withdraw c1 bob; ring c1 ann; changed; wake +60s"},
			// The new round goes on in order.
			{at: 45, in: Declined{"c1", ann}, want: "withdraw c1 ann; ring c1 bob; changed; wake +65s"},
			{at: 50, in: Answered{"c1", bob}, want: "serve c1 bob; changed; wake none",
				stats: "w=0 longest=0 done=0 abandoned=0 overflowed=0 avg=50 sl=0 | ann=available bob=on_call"},
		}},
		{name: "wrap-up: not offered during it, offered when it ends", cfg: withWrap, steps: []qstep{
			{at: 0, in: onCall(bob), want: "changed"},
			{at: 1, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; changed; wake +21s"},
			{at: 5, in: Answered{"c1", ann}, want: "serve c1 ann; changed; wake none"},
			{at: 10, in: Ended{"c1"}, want: "wrapup c1 ann until +40s; changed; wake +40s",
				stats: "w=0 longest=0 done=1 abandoned=0 overflowed=0 avg=4 sl=100 | ann=wrap_up bob=on_call"},
			{at: 15, in: Arrive{"c2"}, want: "arrived c2; changed"},
			{at: 40, in: Tick{}, want: "ring c2 ann; changed; wake +60s"},
		}},
		{name: "first come first served: a member freeing up goes to the longest-waiting caller", cfg: config(Simultaneous, members(ann, bob)...), steps: []qstep{
			{at: 0, in: onCall(ann), want: "changed"},
			{at: 0, in: onCall(bob), want: "changed"},
			{at: 1, in: Arrive{"c1"}, want: "arrived c1; changed; wake +301s"},
			{at: 2, in: Arrive{"c2"}, want: "arrived c2; changed"},
			{at: 3, in: Arrive{"c3"}, want: "arrived c3; changed"},
			{at: 10, in: up(bob), want: "ring c1 bob; changed; wake +30s"},
			// c1 already rings Bob: Ann goes to the next caller.
			{at: 12, in: up(ann), want: "ring c2 ann; changed"},
			{at: 13, in: Answered{"c1", bob}, want: "serve c1 bob; changed; wake +32s",
				stats: "w=2 longest=11 done=0 abandoned=0 overflowed=0 avg=12 sl=100 | ann=ringing bob=on_call"},
			{at: 14, in: Ended{"c1"}, want: "wrapup c1 bob; ring c3 bob; changed"},
		}},
		{name: "max_calls: the next caller overflows at once", cfg: smallQueue, steps: []qstep{
			{at: 0, in: onCall(ann), want: "changed"},
			{at: 1, in: Arrive{"c1"}, want: "arrived c1; changed; wake +301s"},
			{at: 2, in: Arrive{"c2"}, want: "arrived c2; changed"},
			{at: 3, in: Arrive{"c3"}, want: "arrived c3 -> voicemail; changed",
				stats: "w=2 longest=2 done=0 abandoned=0 overflowed=1 avg=0 sl=100 | ann=on_call"},
			// A repeat of a waiting call is not a new caller.
			{at: 4, in: Arrive{"c1"}, want: "arrived c1"},
			{at: 5, in: Left{"c1"}, want: "changed; wake +302s"},
			{at: 6, in: Arrive{"c4"}, want: "arrived c4; changed"},
		}},
		{name: "max_wait: a caller who waited max_wait_seconds overflows, ringing or not", cfg: shortWait, steps: []qstep{
			{at: 0, in: onCall(ann), want: "changed"},
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; changed; wake +60s"},
			{at: 30, in: Arrive{"c2"}, want: "arrived c2; changed"},
			{at: 60, in: Tick{}, want: "overflow c1 -> user:zed; changed; wake +90s"},
			{at: 70, in: up(ann), want: "ring c2 ann; changed"},
			{at: 90, in: Tick{}, want: "withdraw c2 ann; overflow c2 -> user:zed; changed",
				stats: "w=0 longest=0 done=0 abandoned=0 overflowed=2 avg=0 sl=100 | ann=available"},
		}},
		{name: "opt-out with a reason withdraws the offer; opt-in clears it", cfg: config(Simultaneous, members(ann, bob)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; ring c1 bob; changed; wake +20s", check: entry(ann, 1, true, "")},
			{at: 5, in: OptOut{ann, "lunch"}, want: "withdraw c1 ann; changed",
				stats: "w=1 longest=5 done=0 abandoned=0 overflowed=0 avg=0 sl=100 | ann=opted_out(lunch) bob=ringing", check: entry(ann, 1, false, "lunch")},
			{at: 6, in: OptOut{ann, "training"}, want: "changed", check: entry(ann, 1, false, "training")},
			{at: 6, in: OptOut{"zed", "x"}, want: "", check: func(t *testing.T, q *Queue) {
				if _, ok := q.Member("zed"); ok {
					t.Error("zed is no member")
				}
			}},
			{at: 7, in: Answered{"c1", bob}, want: "serve c1 bob; changed; wake none"},
			{at: 8, in: Arrive{"c2"}, want: "arrived c2; changed; wake +308s"},
			{at: 9, in: OptIn{ann}, want: "ring c2 ann; changed; wake +29s", check: entry(ann, 1, true, "")},
		}},
		{name: "configure: a removed member's offer is withdrawn, a new member is offline until presence", cfg: config(Sequential, members(ann, bob, cat)...), steps: []qstep{
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; changed; wake +20s"},
			{at: 5, in: Configure{config(Sequential, members(bob, cat, dan)...)}, want: "withdraw c1 ann; ring c1 bob; changed; wake +25s",
				stats: "w=1 longest=5 done=0 abandoned=0 overflowed=0 avg=0 sl=100 | bob=ringing cat=available dan=offline"},
			{at: 6, in: up(dan), want: "changed"},
			{at: 7, in: up(ann), want: ""},
			{at: 8, in: Answered{"c1", ann}, want: ""},
			{at: 9, in: Answered{"c1", bob}, want: "serve c1 bob; changed; wake none"},
			// Bob leaves the queue mid-call: his call still completes.
			{at: 10, in: Configure{config(Sequential, members(cat, dan)...)}, want: "changed"},
			{at: 11, in: Ended{"c1"}, want: "wrapup c1 bob; changed",
				stats: "w=0 longest=0 done=1 abandoned=0 overflowed=0 avg=9 sl=100 | cat=available dan=available"},
			{at: 12, in: Ended{"c1"}, want: ""},
		}},
		{name: "receive_while_on_call offers members on a call", cfg: config(Simultaneous, members(ann)...), steps: []qstep{
			{at: 0, in: onCall(ann), want: "changed"},
			{at: 1, in: Arrive{"c1"}, want: "arrived c1; changed; wake +301s"},
			{at: 2, in: Configure{onCallToo}, want: "ring c1 ann; changed; wake +22s",
				stats: "w=1 longest=1 done=0 abandoned=0 overflowed=0 avg=0 sl=100 | ann=ringing"},
		}},
		{name: "stats after completed, abandoned and overflowed calls", cfg: smallQueue, steps: []qstep{
			{at: 0, in: Tick{}, want: "",
				stats: "w=0 longest=0 done=0 abandoned=0 overflowed=0 avg=0 sl=100 | ann=available"},
			{at: 0, in: Arrive{"c1"}, want: "arrived c1; ring c1 ann; changed; wake +20s"},
			{at: 10, in: Answered{"c1", ann}, want: "serve c1 ann; changed; wake none"},
			{at: 11, in: Arrive{"c2"}, want: "arrived c2; changed; wake +311s"},
			{at: 12, in: Arrive{"c3"}, want: "arrived c3; changed"},
			{at: 13, in: Arrive{"c4"}, want: "arrived c4 -> voicemail; changed"},
			{at: 20, in: Left{"c3"}, want: "changed",
				stats: "w=1 longest=9 done=0 abandoned=1 overflowed=1 avg=10 sl=50 | ann=on_call"},
			{at: 40, in: Ended{"c1"}, want: "wrapup c1 ann; ring c2 ann; changed; wake +60s"},
			{at: 45, in: Answered{"c2", ann}, want: "serve c2 ann; changed; wake none",
				stats: "w=0 longest=0 done=1 abandoned=1 overflowed=1 avg=22 sl=33.33 | ann=on_call"},
			{at: 50, in: Ended{"c2"}, want: "wrapup c2 ann; changed",
				stats: "w=0 longest=0 done=2 abandoned=1 overflowed=1 avg=22 sl=33.33 | ann=available"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := New(tc.cfg, t0)
			if !tc.offline {
				for _, m := range tc.cfg.Members {
					q.Step(up(m.User), t0)
				}
			}
			for _, s := range tc.steps {
				if s.reload {
					q = reload(t, q)
				}
				do(t, q, s)
			}
		})
	}
}

// A member of two queues: each queue decides alone, the member's line
// refuses the second offer, and the line's presence frees them again.
func TestMemberOfTwoQueues(t *testing.T) {
	sales := config(Sequential, members("ann")...)
	sales.ID, sales.WrapUp = "sales", 30*time.Second
	support := config(Sequential, members("ann", "bob")...)
	support.ID = "support"
	a, b := New(sales, t0), New(support, t0)
	for _, p := range []Presence{up("ann")} {
		a.Step(p, t0)
	}
	for _, p := range []Presence{up("ann"), up("bob")} {
		b.Step(p, t0)
	}

	do(t, a, qstep{at: 0, in: Arrive{"s1"}, want: "arrived s1; ring s1 ann; changed; wake +20s"})
	do(t, b, qstep{at: 1, in: Arrive{"b1"}, want: "arrived b1; ring b1 ann; changed; wake +21s"})
	// Ann's line is held by sales: the claim fails, support moves on.
	do(t, b, qstep{at: 1, in: Refused{"b1", "ann"}, want: "ring b1 bob; changed",
		stats: "w=1 longest=0 done=0 abandoned=0 overflowed=0 avg=0 sl=100 | ann=on_call bob=ringing"})
	do(t, b, qstep{at: 2, in: Arrive{"b2"}, want: "arrived b2; changed"})
	do(t, a, qstep{at: 3, in: Answered{"s1", "ann"}, want: "serve s1 ann; changed; wake none"})
	do(t, b, qstep{at: 3, in: Presence{User: "ann", Registered: true, Elsewhere: true}, want: ""})
	// Sales' call ends; Ann wraps up in every queue, as her line tells support.
	do(t, a, qstep{at: 10, in: Ended{"s1"}, want: "wrapup s1 ann until +40s; changed; wake +40s"})
	do(t, b, qstep{at: 10, in: Presence{User: "ann", Registered: true, WrapUntil: at(40)}, want: "changed",
		stats: "w=2 longest=9 done=0 abandoned=0 overflowed=0 avg=0 sl=100 | ann=wrap_up bob=ringing"})
	do(t, b, qstep{at: 21, in: Tick{}, want: "withdraw b1 bob; ring b1 bob; wake +40s"})
	do(t, b, qstep{at: 40, in: Tick{}, want: "ring b2 ann; changed; wake +41s"})
}

func TestClosedHours(t *testing.T) {
	nineToFive := hours.Week{"mon": {{"09:00", "17:00"}}, "tue": {{"09:00", "17:00"}}, "wed": {{"09:00", "17:00"}},
		"thu": {{"09:00", "17:00"}}, "fri": {{"09:00", "17:00"}}}
	monday := []hours.Holiday{{Date: "2026-03-02", Name: "Founders' Day"}}
	// Monday 2026-03-02 15:00 UTC is 10:00 in New York and Tuesday 00:00
	// in Tokyo; Monday 01:00 UTC is Sunday 20:00 in New York and Monday
	// 10:00 in Tokyo.
	nyMorning, tokyoMorning := t0, time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	const open, closed = "arrived c1", "arrived c1 -> message"
	cases := []struct {
		name  string
		hours hours.Schedule
		at    time.Time
		want  string
	}{
		{"no business hours: always open", hours.Schedule{TimeZone: "Asia/Tokyo"}, tokyoMorning.Add(-6 * time.Hour), open},
		{"New York on its Monday morning", hours.Schedule{TimeZone: "America/New_York", Business: nineToFive}, nyMorning, open},
		{"Tokyo at that instant: Tuesday midnight", hours.Schedule{TimeZone: "Asia/Tokyo", Business: nineToFive}, nyMorning, closed},
		{"Tokyo on its Monday morning", hours.Schedule{TimeZone: "Asia/Tokyo", Business: nineToFive}, tokyoMorning, open},
		{"New York at that instant: Sunday evening", hours.Schedule{TimeZone: "America/New_York", Business: nineToFive}, tokyoMorning, closed},
		{"a holiday closes Tokyo's Monday", hours.Schedule{TimeZone: "Asia/Tokyo", Business: nineToFive, Holidays: monday}, tokyoMorning, closed},
		{"a holiday closes New York's Monday", hours.Schedule{TimeZone: "America/New_York", Business: nineToFive, Holidays: monday}, nyMorning, closed},
		{"Tokyo's Monday holiday is over when New York's Monday morning comes", hours.Schedule{TimeZone: "Asia/Tokyo", Holidays: monday}, nyMorning, open},
		{"New York's holiday is still on when Tokyo's Tuesday has begun", hours.Schedule{TimeZone: "America/New_York", Holidays: monday}, nyMorning.Add(time.Hour), closed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(Simultaneous, members("ann")...)
			cfg.Hours = tc.hours
			q := New(cfg, tc.at)
			effects := q.Step(Arrive{"c1"}, tc.at)
			if got := render(effects[:1]); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			wantWaiting, wantOverflowed := 1, 0
			if tc.want == closed {
				wantWaiting, wantOverflowed = 0, 1
			}
			if st := q.Stats(tc.at); st.Waiting != wantWaiting || st.Overflowed != wantOverflowed {
				t.Errorf("waiting %d overflowed %d, want %d and %d", st.Waiting, st.Overflowed, wantWaiting, wantOverflowed)
			}
		})
	}
}

func TestUnknownInput(t *testing.T) {
	q := New(config(Simultaneous, members("ann")...), t0)
	before, _ := json.Marshal(q)
	for _, in := range []any{nil, "arrive", &Arrive{"c1"}, struct{}{}} {
		if got := q.Step(in, t0); got != nil {
			t.Errorf("Step(%#v) = %v, want nil", in, got)
		}
	}
	if after, _ := json.Marshal(q); string(after) != string(before) {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
}

func TestWaitingAndJSON(t *testing.T) {
	q := New(config(Sequential, members("ann", "bob")...), t0)
	q.Step(OptOut{"bob", "lunch"}, t0)
	for _, c := range []string{"c1", "c2"} {
		q.Step(Arrive{c}, t0)
	}
	if got := q.Waiting(); !reflect.DeepEqual(got, []string{"c1", "c2"}) {
		t.Errorf("Waiting() = %v", got)
	}
	b, err := json.Marshal(q.Stats(at(3)))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"waiting":2,"longest_wait_seconds":3,"completed":0,"abandoned":0,"overflowed":0,"average_wait_seconds":0,"service_level_percent":100,` +
		`"members":[{"user":"ann","state":"offline","reason":""},{"user":"bob","state":"opted_out","reason":"lunch"}]}`
	if string(b) != want {
		t.Errorf("stats JSON\n got  %s\n want %s", b, want)
	}
	e, _ := q.Member("bob")
	if b, _ := json.Marshal(e); string(b) != `{"user":"bob","order":2,"opted_in":false,"reason":"lunch"}` {
		t.Errorf("member JSON %s", b)
	}
}

// BenchmarkDecisions: 50 members, each op one caller's arrive, answer and
// end (three decisions).
func BenchmarkDecisions(b *testing.B) {
	for _, dist := range []string{Simultaneous, Sequential, Rotating, LongestIdle, GroupRotating} {
		b.Run(dist, func(b *testing.B) {
			ms := make([]Member, 50)
			for i := range ms {
				ms[i] = Member{User: fmt.Sprintf("m%02d", i), Order: i / 5}
			}
			q := New(config(dist, ms...), t0)
			for _, m := range ms {
				q.Step(up(m.User), t0)
			}
			now := t0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				call := fmt.Sprint("c", i)
				now = now.Add(time.Second)
				var user string
				for _, e := range q.Step(Arrive{call}, now) {
					if r, ok := e.(Ring); ok {
						user = r.User
						break
					}
				}
				if user == "" {
					b.Fatal("nobody rung")
				}
				q.Step(Answered{call, user}, now)
				q.Step(Ended{call}, now)
			}
			b.ReportMetric(float64(3*b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

func TestMayOpt(t *testing.T) {
	q := New(Config{ID: "sales", Members: []Member{{User: "gus"}, {User: "ann"}}, Admins: []string{"sue"}}, time.Time{})
	for _, tc := range []struct {
		by    string
		admin bool
		user  string
		want  bool
	}{
		{"gus", false, "gus", true},  // the member themselves
		{"sue", false, "gus", true},  // a queue admin
		{"", true, "ann", true},      // the admin token
		{"ann", false, "gus", false}, // another member
		{"cat", false, "gus", false}, // someone in no queue
	} {
		if got := q.MayOpt(tc.by, tc.admin, tc.user); got != tc.want {
			t.Errorf("%q (admin %v) opting %q: %v, want %v", tc.by, tc.admin, tc.user, got, tc.want)
		}
	}
}
