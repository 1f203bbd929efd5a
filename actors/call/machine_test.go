package call

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The call core's tests are stories: each case is a sequence of inputs at
// offsets from a fake clock's base time, each with the effects it must
// produce (exact values, in order) and the state the call must be in after
// it. Expectations come from INTERFACE.md section 2 and RFC 3261.

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// testSettings is an explicit test value (not DefaultSettings) so a core
// that ignored its settings would show.
var testSettings = Settings{NoAnswer: 30 * time.Second}

const callID = "k"

// Legs: the caller's is k-a (named by the SIP edge); callee legs are k-b1,
// k-b2... in the order the core creates them.
const (
	la  = "k-a"
	lb1 = "k-b1"
	lb2 = "k-b2"
)

var (
	alice   = Party{UserID: "alice", Number: "101", External: "+14155550101", Display: "Alice"}
	bob     = Party{UserID: "bob", Number: "102", Display: "Bob"}
	outside = Party{Number: "+14155559999", Display: "Carrier Caller", TrunkID: "carrier"}

	desk  = Contact{URI: "sip:102@192.0.2.10:5060", Destination: "192.0.2.10:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	soft  = Contact{URI: "sip:102@198.51.100.20:52000;transport=tcp", Destination: "198.51.100.20:52000", Transport: "tcp", NodeID: "n2", NodeAddr: "10.0.0.2:8090"}
	trunk = Contact{URI: "sip:carrier.example.net", Destination: "203.0.113.5:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
)

const outsideNumber = "+12125550100" // not owned in the system

func start(from Party, dialed string, lk Lookup) Start {
	return Start{CallerLeg: la, NodeID: "n1", NodeAddr: "10.0.0.1:8090", From: from, Dialed: dialed, Lookup: lk}
}

// startToBob: alice dials bob's extension; bob has a desk phone and a softphone.
var startToBob = start(alice, "102", Lookup{Target: &bob, Contacts: []Contact{desk, soft}})

// The two Originates and the ring timer that startToBob must produce at t0.
var ringBobEffects = []Effect{
	Originate{Leg: lb1, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"},
	Originate{Leg: lb2, Contact: soft, FromUser: "101", Display: "Alice", ToUser: "102"},
	WakeAt{At: t0.Add(30 * time.Second)},
	Event{Type: "call.ringing"},
}

const ringingBob = "ringing until=+30s | a:trying b1:trying b2:trying"

// startOut: alice dials an outside number; it goes to the outbound trunk
// carrying her external number in From and P-Asserted-Identity.
var startOut = start(alice, outsideNumber, Lookup{IsE164: true, OutboundTrunk: &trunk})

var ringOutEffects = []Effect{
	Originate{Leg: lb1, Contact: trunk, FromUser: "+14155550101", Display: "Alice", ToUser: outsideNumber, PAI: "+14155550101"},
	WakeAt{At: t0.Add(30 * time.Second)},
	Event{Type: "call.ringing"},
}

// ended is the tail every finished call's effects end with.
func ended(outcome string, hist ...HistoryEntry) []Effect {
	return []Effect{WakeAt{}, Event{Type: "call.ended"}, Finished{Outcome: outcome, History: hist}}
}

func effs(head []Effect, tail ...Effect) []Effect {
	return append(append([]Effect{}, head...), tail...)
}

// History entries of an alice -> bob call.
func aliceOut(outcome string) HistoryEntry {
	return HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "102", Line: "alice", Outcome: outcome}
}

func bobIn(outcome string) HistoryEntry {
	return HistoryEntry{Owner: "bob", Direction: "inbound", Peer: "101", Line: "bob", Outcome: outcome}
}

// step is one input of a story.
type step struct {
	at    time.Duration // offset from t0
	in    any
	want  []Effect
	err   string // "" or "<status> <code>" of the expected *Refusal
	state string // summary(c) after the step
}

// answeredByB2 rings bob and has the softphone (b2) answer at +5s after the
// desk phone rang; the steps the active-call stories start from.
var answeredByB2 = []step{
	{at: 0, in: startToBob, want: ringBobEffects, state: ringingBob},
	{at: 2 * time.Second, in: Rang{Leg: lb1}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
		state: "ringing until=+30s | a:trying b1:ringing b2:trying"},
	{at: 5 * time.Second, in: Answered{Leg: lb2},
		want:  []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, WakeAt{}, Event{Type: "call.answered"}},
		state: active},
}

const active = "active answered=+5s | a:answered b1:ended b2:answered"

func story(prefix []step, more ...step) []step {
	return append(append([]step{}, prefix...), more...)
}

// summary is the state of the call in one line: state (with outcome once
// ended), holder of a live call, pending ring deadline, answer and end times as offsets from
// t0, then each leg's state ("k-" dropped from leg ids).
func summary(c *Call) string {
	var b strings.Builder
	b.WriteString(string(c.State))
	if c.State == Ended {
		fmt.Fprintf(&b, "(%s)", c.Outcome)
	}
	short := func(id string) string { return strings.TrimPrefix(id, c.ID+"-") }
	if c.HeldBy != "" && c.State != Ended { // who held an ended call is no rule's concern
		fmt.Fprintf(&b, " held-by=%s", short(c.HeldBy))
	}
	if c.Locked {
		b.WriteString(" locked")
	}
	if !c.Ring.StageUntil.IsZero() {
		fmt.Fprintf(&b, " stage=+%s", c.Ring.StageUntil.Sub(t0))
	}
	if !c.Ring.Until.IsZero() {
		fmt.Fprintf(&b, " until=+%s", c.Ring.Until.Sub(t0))
	}
	if !c.AnsweredAt.IsZero() {
		fmt.Fprintf(&b, " answered=+%s", c.AnsweredAt.Sub(t0))
	}
	if !c.EndedAt.IsZero() {
		fmt.Fprintf(&b, " ended=+%s", c.EndedAt.Sub(t0))
	}
	b.WriteString(" |")
	for _, l := range c.Legs {
		fmt.Fprintf(&b, " %s:%s", short(l.ID), l.State)
	}
	return b.String()
}

func runStory(t *testing.T, steps []step) *Call {
	t.Helper()
	c := New(callID, t0)
	for i, st := range steps {
		got, err := c.Step(st.in, t0.Add(st.at), testSettings)
		gotErr := ""
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("step %d (+%s %T%+v): error %v is not a *Refusal", i, st.at, st.in, st.in, err)
			}
			gotErr = fmt.Sprintf("%d %s", r.Status, r.Code)
			if r.Message == "" {
				t.Errorf("step %d: refusal %s has no message", i, gotErr)
			}
		}
		if gotErr != st.err {
			t.Errorf("step %d (+%s %T%+v): error %q, want %q", i, st.at, st.in, st.in, gotErr, st.err)
		}
		// A story lists effects in the order the rules produce them; the
		// core hands them over sorted by obligation, each obligation in
		// that order.
		if want := effectsOf(readyOf(st.want)); !sameEffects(effectsOf(got), want) {
			t.Errorf("step %d (+%s %T%+v): effects\n got  %s\n want %s", i, st.at, st.in, st.in, show(effectsOf(got)), show(want))
		}
		if s := summary(c); s != st.state {
			t.Errorf("step %d (+%s %T%+v): state\n got  %s\n want %s", i, st.at, st.in, st.in, s, st.state)
		}
		if t.Failed() {
			t.FailNow() // later steps would only repeat the divergence
		}
	}
	return c
}

func sameEffects(got, want []Effect) bool {
	if len(got) == 0 && len(want) == 0 {
		return true
	}
	return reflect.DeepEqual(got, want)
}

func show(es []Effect) string {
	if len(es) == 0 {
		return "(none)"
	}
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = fmt.Sprintf("%T%+v", e, e)
	}
	return strings.Join(parts, "\n      ")
}

func TestRouting(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"extension rings every contact of the user", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
		}},
		{"user id routes like the extension", []step{
			{in: start(alice, "bob", Lookup{Target: &bob, Contacts: []Contact{desk}}),
				want: []Effect{
					Originate{Leg: lb1, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"},
					WakeAt{At: t0.Add(30 * time.Second)},
					Event{Type: "call.ringing"},
				},
				state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"ring deadline follows the clock it is given", []step{
			{at: 90 * time.Second, in: startToBob,
				want: []Effect{
					Originate{Leg: lb1, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"},
					Originate{Leg: lb2, Contact: soft, FromUser: "101", Display: "Alice", ToUser: "102"},
					WakeAt{At: t0.Add(120 * time.Second)},
					Event{Type: "call.ringing"},
				},
				state: "ringing until=+2m0s | a:trying b1:trying b2:trying"},
		}},
		{"known user without registrations is unreachable: 480", []step{
			{in: start(alice, "102", Lookup{Target: &bob}),
				want:  effs([]Effect{Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}}, ended("missed", aliceOut("missed"), bobIn("missed"))...),
				state: "ended(missed) ended=+0s | a:ended"},
		}},
		{"unknown target: 404", []step{
			{in: start(alice, "199", Lookup{}),
				want: effs([]Effect{Respond{Leg: la, Code: 404, Reason: "Not Found"}},
					ended("failed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "199", Line: "alice", Outcome: "failed"})...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"owned E.164 from a trunk rings its owner with the caller's number", []step{
			{in: start(outside, "+14155550102", Lookup{Target: &bob, Contacts: []Contact{desk}, IsE164: true, OutboundTrunk: &trunk}),
				want: []Effect{
					Originate{Leg: lb1, Contact: desk, FromUser: "+14155559999", Display: "Carrier Caller", ToUser: "102"},
					WakeAt{At: t0.Add(30 * time.Second)},
					Event{Type: "call.ringing"},
				},
				state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"owned E.164 from a user goes to its owner, not the trunk", []step{
			{in: start(alice, "+14155550102", Lookup{Target: &bob, Contacts: []Contact{desk}, IsE164: true, OutboundTrunk: &trunk}),
				want: []Effect{
					Originate{Leg: lb1, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"},
					WakeAt{At: t0.Add(30 * time.Second)},
					Event{Type: "call.ringing"},
				},
				state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"other E.164 from a user goes to the outbound trunk with PAI", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"E.164 from a trunk that is not owned: 404, never back out", []step{
			{in: start(outside, outsideNumber, Lookup{IsE164: true, OutboundTrunk: &trunk}),
				want:  effs([]Effect{Respond{Leg: la, Code: 404, Reason: "Not Found"}}, ended("failed")...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"E.164 from a user with no outbound trunk: 404", []step{
			{in: start(alice, outsideNumber, Lookup{IsE164: true}),
				want: effs([]Effect{Respond{Leg: la, Code: 404, Reason: "Not Found"}},
					ended("failed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "failed"})...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"a non-E.164 unknown string from a user does not go to the trunk", []step{
			{in: start(alice, "5550100", Lookup{OutboundTrunk: &trunk}),
				want: effs([]Effect{Respond{Leg: la, Code: 404, Reason: "Not Found"}},
					ended("failed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "5550100", Line: "alice", Outcome: "failed"})...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"draining node refuses new calls: 503, rings nobody", []step{
			{in: func() Start { s := startToBob; s.Draining = true; return s }(),
				want: effs([]Effect{Respond{Leg: la, Code: 503, Reason: "Service Unavailable"}},
					ended("failed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "102", Line: "alice", Outcome: "failed"})...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"caller's SDP refused: 488, rings nobody", []step{
			{in: func() Start { s := startToBob; s.OfferCode = 488; return s }(),
				want: effs([]Effect{Respond{Leg: la, Code: 488, Reason: "Not Acceptable Here"}},
					ended("failed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "102", Line: "alice", Outcome: "failed"})...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestRingingAndAnswer(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"first 180 is relayed once, whichever branch sends it", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Rang{Leg: lb2}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:ringing"},
			{at: 2 * time.Second, in: Rang{Leg: lb1}, want: nil,
				state: "ringing until=+30s | a:trying b1:ringing b2:ringing"},
			{at: 3 * time.Second, in: Rang{Leg: lb2}, want: nil,
				state: "ringing until=+30s | a:trying b1:ringing b2:ringing"},
		}},
		{"ringing from the caller's own leg or an unknown leg is ignored", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{in: Rang{Leg: la}, want: nil, state: ringingBob},
			{in: Rang{Leg: "k-b9"}, want: nil, state: ringingBob},
		}},
		{"first answer wins; the other branch is ended", answeredByB2},
		{"a late second answer gets EndLeg; a repeated answer of the winner changes nothing", story(answeredByB2,
			step{at: 6 * time.Second, in: Answered{Leg: lb1}, want: []Effect{EndLeg{Leg: lb1}}, state: active},
			step{at: 7 * time.Second, in: Answered{Leg: lb2}, want: nil, state: active},
			step{at: 8 * time.Second, in: Rang{Leg: lb1}, want: nil, state: active},
		)},
		{"answer without a 180 first", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 4 * time.Second, in: Answered{Leg: lb1},
				want:  []Effect{Connect{Caller: la, Callee: lb1}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+4s | a:answered b1:answered b2:ended"},
		}},
		{"an answer after a branch failed connects the one left", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 480}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 3 * time.Second, in: Answered{Leg: lb2},
				want:  []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+3s | a:answered b1:ended b2:answered"},
		}},
		{"the caller's own leg cannot answer", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{in: Answered{Leg: la}, want: nil, state: ringingBob},
		}},
		{"every branch fails: 480", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 408}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 2 * time.Second, in: Failed{Leg: lb2, Code: 480},
				want:  effs([]Effect{Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}}, ended("missed", aliceOut("missed"), bobIn("missed"))...),
				state: "ended(missed) ended=+2s | a:trying b1:ended b2:ended"},
		}},
		{"a busy branch makes the caller hear busy: 486", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 486}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 2 * time.Second, in: Failed{Leg: lb2, Code: 408},
				want:  effs([]Effect{Respond{Leg: la, Code: 486, Reason: "Busy Here"}}, ended("busy", aliceOut("busy"), bobIn("busy"))...),
				state: "ended(busy) ended=+2s | a:trying b1:ended b2:ended"},
		}},
		{"a phone that refuses the offer (SRTP required): the caller hears 488", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 488}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 2 * time.Second, in: Failed{Leg: lb2, Code: 480},
				want:  effs([]Effect{Respond{Leg: la, Code: 488, Reason: "Not Acceptable Here"}}, ended("failed", aliceOut("failed"), bobIn("failed"))...),
				state: "ended(failed) ended=+2s | a:trying b1:ended b2:ended"},
		}},
		{"busy wins over a refused offer", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 606}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 2 * time.Second, in: Failed{Leg: lb2, Code: 486},
				want:  effs([]Effect{Respond{Leg: la, Code: 486, Reason: "Busy Here"}}, ended("busy", aliceOut("busy"), bobIn("busy"))...),
				state: "ended(busy) ended=+2s | a:trying b1:ended b2:ended"},
		}},
		{"600 Busy Everywhere counts as busy", []step{
			{in: start(alice, "102", Lookup{Target: &bob, Contacts: []Contact{desk}}),
				want: []Effect{
					Originate{Leg: lb1, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"},
					WakeAt{At: t0.Add(30 * time.Second)},
					Event{Type: "call.ringing"},
				},
				state: "ringing until=+30s | a:trying b1:trying"},
			{at: time.Second, in: Failed{Leg: lb1, Code: 600},
				want:  effs([]Effect{Respond{Leg: la, Code: 486, Reason: "Busy Here"}}, ended("busy", aliceOut("busy"), bobIn("busy"))...),
				state: "ended(busy) ended=+1s | a:trying b1:ended"},
		}},
		{"a repeated failure of a branch counts once", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 480}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: time.Second, in: Failed{Leg: lb1, Code: 480}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
		}},
		{"the trunk's failure code is passed through to the caller", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 404},
				want: effs([]Effect{Respond{Leg: la, Code: 404}},
					ended("missed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "missed"})...),
				state: "ended(missed) ended=+3s | a:trying b1:ended"},
		}},
		{"a busy carrier: 486 passed through, outcome busy", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 486},
				want: effs([]Effect{Respond{Leg: la, Code: 486}},
					ended("busy", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "busy"})...),
				state: "ended(busy) ended=+3s | a:trying b1:ended"},
		}},
		{"a carrier's challenge or overload is not forwarded: 500", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 503},
				want: effs([]Effect{Respond{Leg: la, Code: 500, Reason: "Server Internal Error"}},
					ended("missed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "missed"})...),
				state: "ended(missed) ended=+3s | a:trying b1:ended"},
		}},
		{"a carrier's 407 is not forwarded: 500", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 407},
				want: effs([]Effect{Respond{Leg: la, Code: 500, Reason: "Server Internal Error"}},
					ended("missed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "missed"})...),
				state: "ended(missed) ended=+3s | a:trying b1:ended"},
		}},
		{"a trunk that never answered (408) gives our 480, not a timeout", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 408},
				want: effs([]Effect{Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}},
					ended("missed", HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "missed"})...),
				state: "ended(missed) ended=+3s | a:trying b1:ended"},
		}},
		{"caller CANCEL ends every branch; the edge already sent 487", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 2 * time.Second, in: Rang{Leg: lb1}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
				state: "ringing until=+30s | a:trying b1:ringing b2:trying"},
			{at: 4 * time.Second, in: Cancelled{Leg: la},
				want:  effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}}, ended("cancelled", aliceOut("cancelled"), bobIn("cancelled"))...),
				state: "ended(cancelled) ended=+4s | a:ended b1:ended b2:ended"},
			// Our CANCEL crossed b2's 200: the call is over, the edge hangs it up.
			{at: 5 * time.Second, in: Answered{Leg: lb2}, want: nil, state: "ended(cancelled) ended=+4s | a:ended b1:ended b2:ended"},
		}},
		{"CANCEL skips a branch that already failed", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Failed{Leg: lb1, Code: 480}, want: nil, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 4 * time.Second, in: Cancelled{Leg: la},
				want:  effs([]Effect{EndLeg{Leg: lb2}}, ended("cancelled", aliceOut("cancelled"), bobIn("cancelled"))...),
				state: "ended(cancelled) ended=+4s | a:ended b1:ended b2:ended"},
		}},
		{"a CANCEL after the answer changes nothing (RFC 3261 9.2)", story(answeredByB2,
			step{at: 6 * time.Second, in: Cancelled{Leg: la}, want: nil, state: active},
		)},
		{"Cancelled naming a callee leg is not the caller's CANCEL", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{in: Cancelled{Leg: lb1}, want: nil, state: ringingBob},
		}},
		{"the caller's leg breaks while ringing: every branch is ended", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 3 * time.Second, in: Failed{Leg: la, Code: 503},
				want:  effs([]Effect{EndLeg{Leg: lb1, Code: 480}, EndLeg{Leg: lb2, Code: 480}}, ended("failed", aliceOut("failed"), bobIn("failed"))...),
				state: "ended(failed) ended=+3s | a:ended b1:ended b2:ended"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestRingTimeout(t *testing.T) {
	timedOut := effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}},
		ended("missed", aliceOut("missed"), bobIn("missed"))...)
	cases := []struct {
		name  string
		steps []step
	}{
		{"a Tick before RingUntil changes nothing; at RingUntil the caller gets 480", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 2 * time.Second, in: Rang{Leg: lb1}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
				state: "ringing until=+30s | a:trying b1:ringing b2:trying"},
			{at: 30*time.Second - time.Nanosecond, in: Tick{}, want: nil, state: "ringing until=+30s | a:trying b1:ringing b2:trying"},
			{at: 30 * time.Second, in: Tick{}, want: timedOut, state: "ended(missed) ended=+30s | a:ended b1:ended b2:ended"},
			{at: 31 * time.Second, in: Tick{}, want: nil, state: "ended(missed) ended=+30s | a:ended b1:ended b2:ended"},
		}},
		{"a late Tick (after RingUntil) ends the call at its own time", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 45 * time.Second, in: Tick{}, want: timedOut, state: "ended(missed) ended=+45s | a:ended b1:ended b2:ended"},
		}},
		{"a stale Tick after the answer changes nothing", story(answeredByB2,
			step{at: 30 * time.Second, in: Tick{}, want: nil, state: active},
		)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestEstablished(t *testing.T) {
	answered := func(hist ...HistoryEntry) []Effect { return ended("answered", hist...) }
	const (
		heldByA = "held held-by=a answered=+5s | a:answered b1:ended b2:answered"
		heldByB = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered"
		over    = "ended(answered) answered=+5s ended=+1m0s | a:ended b1:ended b2:ended"
	)
	holdByA := []Effect{HoldMedia{Holder: la, Held: lb2}, Event{Type: "call.held"}}
	holdByB := []Effect{HoldMedia{Holder: lb2, Held: la}, Event{Type: "call.held"}}
	cases := []struct {
		name  string
		steps []step
	}{
		{"BYE from the caller ends the callee's leg", story(answeredByB2,
			step{at: time.Minute, in: Bye{Leg: la},
				want:  effs([]Effect{EndLeg{Leg: lb2, Code: 480}}, answered(aliceOut("answered"), bobIn("answered"))...),
				state: over},
		)},
		{"BYE from the callee ends the caller's leg", story(answeredByB2,
			step{at: time.Minute, in: Bye{Leg: lb2},
				want:  effs([]Effect{EndLeg{Leg: la, Code: 480}}, answered(aliceOut("answered"), bobIn("answered"))...),
				state: over},
		)},
		{"BYE from the losing branch is ignored", story(answeredByB2,
			step{at: time.Minute, in: Bye{Leg: lb1}, want: nil, state: active},
		)},
		{"hold by sendonly; only the holder's sendrecv resumes", story(answeredByB2,
			step{at: 10 * time.Second, in: Reinvite{Leg: la, Direction: "sendonly"}, want: holdByA, state: heldByA},
			step{at: 11 * time.Second, in: Reinvite{Leg: la, Direction: "sendonly"}, want: nil, state: heldByA},
			step{at: 12 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendrecv"}, want: nil, state: heldByA},
			step{at: 13 * time.Second, in: Reinvite{Leg: lb2, Direction: "inactive"}, want: nil, state: heldByA},
			step{at: 20 * time.Second, in: Reinvite{Leg: la, Direction: "sendrecv"},
				want: []Effect{bridge(la, lb2), Event{Type: "call.resumed"}}, state: active},
		)},
		{"hold by inactive from the callee; the caller's sendrecv does not resume", story(answeredByB2,
			step{at: 10 * time.Second, in: Reinvite{Leg: lb2, Direction: "inactive"}, want: holdByB, state: heldByB},
			step{at: 12 * time.Second, in: Reinvite{Leg: la, Direction: "sendrecv"}, want: nil, state: heldByB},
			step{at: 20 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendrecv"},
				want: []Effect{bridge(la, lb2), Event{Type: "call.resumed"}}, state: active},
		)},
		{"a sendrecv re-INVITE on an active call (session refresh) changes nothing", story(answeredByB2,
			step{at: 10 * time.Second, in: Reinvite{Leg: la, Direction: "sendrecv"}, want: nil, state: active},
		)},
		{"re-INVITE hold while ringing or from the losing branch is ignored", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Reinvite{Leg: la, Direction: "sendonly"}, want: nil, state: ringingBob},
			{at: 5 * time.Second, in: Answered{Leg: lb2},
				want:  []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, WakeAt{}, Event{Type: "call.answered"}},
				state: active},
			{at: 6 * time.Second, in: Reinvite{Leg: lb1, Direction: "sendonly"}, want: nil, state: active},
		}},
		{"the caller hangs up a held call", story(answeredByB2,
			step{at: 10 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendonly"}, want: holdByB, state: heldByB},
			step{at: time.Minute, in: Bye{Leg: la},
				want:  effs([]Effect{EndLeg{Leg: lb2, Code: 480}}, answered(aliceOut("answered"), bobIn("answered"))...),
				state: over},
		)},
		{"media timeout ends an active call", story(answeredByB2,
			step{at: time.Minute, in: MediaTimeout{},
				want:  effs([]Effect{EndLeg{Leg: la, Code: 480}, EndLeg{Leg: lb2, Code: 480}}, ended("rtp_timeout", aliceOut("rtp_timeout"), bobIn("rtp_timeout"))...),
				state: "ended(rtp_timeout) answered=+5s ended=+1m0s | a:ended b1:ended b2:ended"},
		)},
		{"media timeout leaves a held call alone (inactive sends no RTP)", story(answeredByB2,
			step{at: 10 * time.Second, in: Reinvite{Leg: la, Direction: "inactive"}, want: holdByA, state: heldByA},
			step{at: time.Minute, in: MediaTimeout{}, want: nil, state: heldByA},
		)},
		{"media timeout while ringing changes nothing", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: MediaTimeout{}, want: nil, state: ringingBob},
		}},
		{"an established callee leg that breaks (no ACK) gets a BYE and ends the call", story(answeredByB2,
			step{at: 37 * time.Second, in: Failed{Leg: lb2, Code: 408},
				want:  effs([]Effect{EndLeg{Leg: lb2}, EndLeg{Leg: la, Code: 480}}, ended("failed", aliceOut("failed"), bobIn("failed"))...),
				state: "ended(failed) answered=+5s ended=+37s | a:ended b1:ended b2:ended"},
		)},
		{"a late failure of the losing branch changes nothing", story(answeredByB2,
			step{at: 6 * time.Second, in: Failed{Leg: lb1, Code: 487}, want: nil, state: active},
		)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestControl(t *testing.T) {
	const (
		heldByA = "held held-by=a answered=+5s | a:answered b1:ended b2:answered"
		heldByB = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered"
	)
	holdByA := []Effect{HoldMedia{Holder: la, Held: lb2}, Event{Type: "call.held"}}
	holdByB := []Effect{HoldMedia{Holder: lb2, Held: la}, Event{Type: "call.held"}}
	resumeA := []Effect{bridge(la, lb2), Event{Type: "call.resumed"}}
	resumeB := []Effect{bridge(la, lb2), Event{Type: "call.resumed"}}
	hungUp := func(at string) string {
		return "ended(answered) answered=+5s ended=" + at + " | a:ended b1:ended b2:ended"
	}
	byeBoth := effs([]Effect{EndLeg{Leg: la, Code: 480}, EndLeg{Leg: lb2, Code: 480}}, ended("answered", aliceOut("answered"), bobIn("answered"))...)
	cases := []struct {
		name  string
		steps []step
	}{
		{"the caller holds and resumes", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "alice"}, want: holdByA, state: heldByA},
			step{at: 20 * time.Second, in: Control{Action: "resume", ByUser: "alice"}, want: resumeA, state: active},
		)},
		{"the callee holds and resumes", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "bob"}, want: holdByB, state: heldByB},
			step{at: 20 * time.Second, in: Control{Action: "resume", ByUser: "bob"}, want: resumeB, state: active},
		)},
		{"the held party cannot resume (only the holder, as over SIP): 403", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "alice"}, want: holdByA, state: heldByA},
			step{at: 20 * time.Second, in: Control{Action: "resume", ByUser: "bob"}, err: "403 not_holder", state: heldByA},
		)},
		{"a party cannot resume a hold made over SIP by the other party", story(answeredByB2,
			step{at: 10 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendonly"}, want: holdByB, state: heldByB},
			step{at: 20 * time.Second, in: Control{Action: "resume", ByUser: "alice"}, err: "403 not_holder", state: heldByB},
			step{at: 30 * time.Second, in: Control{Action: "resume", ByUser: "bob"}, want: resumeB, state: active},
		)},
		{"an admin holds (for the answering side) and resumes", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", Admin: true}, want: holdByB, state: heldByB},
			step{at: 20 * time.Second, in: Control{Action: "resume", Admin: true}, want: resumeB, state: active},
		)},
		{"an admin resumes a party's hold", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "alice"}, want: holdByA, state: heldByA},
			step{at: 20 * time.Second, in: Control{Action: "resume", ByUser: "root", Admin: true}, want: resumeA, state: active},
		)},
		{"a stranger can neither hold, resume nor hang up: 403", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "carol"}, err: "403 forbidden", state: active},
			step{at: 11 * time.Second, in: Control{Action: "hangup", ByUser: "carol"}, err: "403 forbidden", state: active},
			step{at: 12 * time.Second, in: Control{Action: "hold", ByUser: "alice"}, want: holdByA, state: heldByA},
			step{at: 13 * time.Second, in: Control{Action: "resume", ByUser: "carol"}, err: "403 forbidden", state: heldByA},
			step{at: 14 * time.Second, in: Control{Action: "hangup"}, err: "403 forbidden", state: heldByA},
		)},
		{"hold when not active: 409 while ringing and while held", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: time.Second, in: Control{Action: "hold", ByUser: "alice"}, err: "409 call_not_active", state: ringingBob},
			{at: time.Second, in: Control{Action: "hold", Admin: true}, err: "409 call_not_active", state: ringingBob},
			{at: 5 * time.Second, in: Answered{Leg: lb2},
				want:  []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, WakeAt{}, Event{Type: "call.answered"}},
				state: active},
			{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "bob"}, want: holdByB, state: heldByB},
			{at: 11 * time.Second, in: Control{Action: "hold", ByUser: "alice"}, err: "409 call_not_active", state: heldByB},
		}},
		{"resume when not held: 409", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "resume", ByUser: "alice"}, err: "409 call_not_held", state: active},
		)},
		{"an unknown action: 400", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "park", ByUser: "alice"}, err: "400 invalid_action", state: active},
		)},
		{"the caller hangs up an active call", story(answeredByB2,
			step{at: time.Minute, in: Control{Action: "hangup", ByUser: "alice"}, want: byeBoth, state: hungUp("+1m0s")},
		)},
		{"the callee hangs up a held call", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "alice"}, want: holdByA, state: heldByA},
			step{at: time.Minute, in: Control{Action: "hangup", ByUser: "bob"}, want: byeBoth, state: hungUp("+1m0s")},
		)},
		{"an admin hangs up", story(answeredByB2,
			step{at: 2 * time.Minute, in: Control{Action: "hangup", Admin: true}, want: byeBoth, state: hungUp("+2m0s")},
		)},
		{"the caller hangs up while ringing: every branch ends, outcome cancelled", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 3 * time.Second, in: Control{Action: "hangup", ByUser: "alice"},
				want: effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}},
					ended("cancelled", aliceOut("cancelled"), bobIn("cancelled"))...),
				state: "ended(cancelled) ended=+3s | a:ended b1:ended b2:ended"},
		}},
		{"the losing branch's user is still a party (same user): controls act on the winning leg", story(answeredByB2,
			step{at: 10 * time.Second, in: Control{Action: "hold", ByUser: "bob"}, want: holdByB, state: heldByB},
		)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestHistory(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"internal answered call: outbound for the caller, inbound for the callee", story(answeredByB2,
			step{at: 90 * time.Second, in: Bye{Leg: lb2},
				want: effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("answered",
					HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "102", Line: "alice", Outcome: "answered"},
					HistoryEntry{Owner: "bob", Direction: "inbound", Peer: "101", Line: "bob", Outcome: "answered"})...),
				state: "ended(answered) answered=+5s ended=+1m30s | a:ended b1:ended b2:ended"},
		)},
		{"outbound to the trunk: only the caller, peer is the dialed number", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 8 * time.Second, in: Answered{Leg: lb1},
				want:  []Effect{Connect{Caller: la, Callee: lb1}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+8s | a:answered b1:answered"},
			{at: time.Minute, in: Bye{Leg: la},
				want: effs([]Effect{EndLeg{Leg: lb1, Code: 480}}, ended("answered",
					HistoryEntry{Owner: "alice", Direction: "outbound", Peer: outsideNumber, Line: "alice", Outcome: "answered"})...),
				state: "ended(answered) answered=+8s ended=+1m0s | a:ended b1:ended"},
		}},
		{"inbound from a trunk: only the callee, peer is the caller's number", []step{
			{in: start(outside, "+14155550102", Lookup{Target: &bob, Contacts: []Contact{desk}, IsE164: true}),
				want: []Effect{
					Originate{Leg: lb1, Contact: desk, FromUser: "+14155559999", Display: "Carrier Caller", ToUser: "102"},
					WakeAt{At: t0.Add(30 * time.Second)},
					Event{Type: "call.ringing"},
				},
				state: "ringing until=+30s | a:trying b1:trying"},
			{at: 30 * time.Second, in: Tick{},
				want: effs([]Effect{EndLeg{Leg: lb1}, Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}}, ended("missed",
					HistoryEntry{Owner: "bob", Direction: "inbound", Peer: "+14155559999", Line: "bob", Outcome: "missed"})...),
				state: "ended(missed) ended=+30s | a:ended b1:ended"},
		}},
		{"a call nobody answered is never recorded as answered", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 2 * time.Second, in: Bye{Leg: la}, // a BYE where a CANCEL belonged
				want:  effs([]Effect{EndLeg{Leg: lb1, Code: 480}, EndLeg{Leg: lb2, Code: 480}}, ended("missed", aliceOut("missed"), bobIn("missed"))...),
				state: "ended(missed) ended=+2s | a:ended b1:ended b2:ended"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

// After Ended every input is ignored and every control is refused with 409,
// whoever sends it; state and outcome stay as they were.
func TestEndedIgnoresInputs(t *testing.T) {
	over := "ended(answered) answered=+5s ended=+1m0s | a:ended b1:ended b2:ended"
	prefix := story(answeredByB2, step{at: time.Minute, in: Bye{Leg: la},
		want:  effs([]Effect{EndLeg{Leg: lb2, Code: 480}}, ended("answered", aliceOut("answered"), bobIn("answered"))...),
		state: over})
	late := []any{
		Start{CallerLeg: "k-z", From: alice, Dialed: "102", Lookup: Lookup{Target: &bob, Contacts: []Contact{desk}}},
		Rang{Leg: lb1}, Answered{Leg: lb1}, Answered{Leg: lb2}, Failed{Leg: lb2, Code: 500}, Cancelled{Leg: la},
		Bye{Leg: lb2}, Reinvite{Leg: la, Direction: "sendonly"}, Tick{}, MediaTimeout{},
	}
	steps := prefix
	for i, in := range late {
		steps = append(steps, step{at: time.Minute + time.Duration(i+1)*time.Second, in: in, want: nil, state: over})
	}
	for _, ctl := range []Control{
		{Action: "hangup", ByUser: "alice"}, {Action: "hold", ByUser: "bob"}, {Action: "resume", Admin: true},
		{Action: "hangup", ByUser: "carol"}, {Action: "park", ByUser: "alice"},
	} {
		steps = append(steps, step{at: 2 * time.Minute, in: ctl, err: "409 call_ended", state: over})
	}
	runStory(t, steps)
}

func TestUnknownInputIsAnError(t *testing.T) {
	c := New(callID, t0)
	if _, err := c.Step(startToBob, t0, testSettings); err != nil {
		t.Fatal(err)
	}
	effs, err := c.Step(struct{ X int }{1}, t0, testSettings)
	var r *Refusal
	if err == nil || errors.As(err, &r) || !empty(effs) {
		t.Fatalf("unknown input: effects %v, error %v; want no effects and a plain error", effs, err)
	}
	if s := summary(c); s != ringingBob {
		t.Fatalf("unknown input changed the call: %s", s)
	}
}

// Step must not keep or alias the inputs it is given: the Lookup's target is
// copied, so a later change to the adapter's value does not reach the call.
func TestStartCopiesTarget(t *testing.T) {
	target := bob
	c := New(callID, t0)
	if _, err := c.Step(start(alice, "102", Lookup{Target: &target, Contacts: []Contact{desk}}), t0, testSettings); err != nil {
		t.Fatal(err)
	}
	target.UserID = "mallory"
	if c.To.UserID != "bob" || c.Line != "bob" || c.Legs[1].Party.UserID != "bob" {
		t.Fatalf("call follows a changed lookup: to %+v line %q", c.To, c.Line)
	}
}
