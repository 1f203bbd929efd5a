package call

import (
	"testing"
	"time"
)

// Click-to-call (REST POST /v1/calls): alice's desk phone and softphone
// ring first with our offer; the one she answers becomes the caller's leg
// and what she asked for is dialed as if she had dialed it. Her leg is ours,
// so it is never answered or refused with a response: it gets EndLeg.

var (
	aliceDesk = Contact{URI: "sip:101@192.0.2.31:5060", Destination: "192.0.2.31:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	aliceSoft = Contact{URI: "sip:101@192.0.2.32:5060", Destination: "192.0.2.32:5060", Transport: "udp", NodeID: "n2", NodeAddr: "10.0.0.2:8090"}
)

const lb3c = "k-b3" // the first leg after alice's two devices

// dialBob: alice clicks to call bob's extension; bob has a desk phone.
var dialBob = Dial{From: alice, Dialed: "102", Devices: []Contact{aliceDesk, aliceSoft}, Lookup: Lookup{Target: &bob, Contacts: []Contact{desk}}}

func ringAlice(leg string, ct Contact, display string) Originate {
	return Originate{Leg: leg, Contact: ct, FromUser: "102", Display: display, ToUser: "101"}
}

var ringAliceEffects = []Effect{
	ringAlice(lb1, aliceDesk, "Call to 102"), ringAlice(lb2, aliceSoft, "Call to 102"),
	WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"},
}

const aliceRinging = "ringing until=+30s | b1:trying b2:trying"

// aliceAnswered: her softphone answers at +3s; the desk phone stops and
// bob's desk phone rings (the no-answer time counts from here).
var aliceAnswered = []step{
	{in: dialBob, want: ringAliceEffects, state: aliceRinging},
	{at: 2 * time.Second, in: Rang{Leg: lb1}, state: aliceRinging},
	{at: 3 * time.Second, in: Answered{Leg: lb2},
		want: []Effect{AcceptAnswer{Leg: lb2}, EndLeg{Leg: lb1},
			Originate{Leg: lb3c, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"},
			WakeAt{At: t0.Add(33 * time.Second)}, Event{Type: "call.ringing"}},
		state: "ringing until=+33s | b1:ended b2:answered b3:trying"},
}

const bobRingsForAlice = "ringing until=+33s | b1:ended b2:answered b3:trying"

// aliceOnlyOut is alice's history of a click-to-call that never reached bob.
func aliceOnlyOut(outcome string) HistoryEntry {
	return HistoryEntry{Owner: "alice", Direction: "outbound", Peer: "102", Line: "alice", Outcome: outcome}
}

func TestClickToCall(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"bob answers: his answer is taken and bridged, alice is not answered again; no 180 to her", story(aliceAnswered,
			step{at: 4 * time.Second, in: Rang{Leg: lb3c}, state: "ringing until=+33s | b1:ended b2:answered b3:ringing"},
			step{at: 6 * time.Second, in: Answered{Leg: lb3c},
				want:  []Effect{Connect{Caller: lb2, Callee: lb3c, CallerUp: true}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+6s | b1:ended b2:answered b3:answered"},
			step{at: time.Minute, in: Bye{Leg: lb3c},
				want:  effs([]Effect{EndLeg{Leg: lb2, Code: 480}}, ended("answered", aliceOut("answered"), bobIn("answered"))...),
				state: "ended(answered) answered=+6s ended=+1m0s | b1:ended b2:ended b3:ended"},
		)},
		{"the desk phone answers after the softphone won: it is hung up", story(aliceAnswered,
			step{at: 4 * time.Second, in: Answered{Leg: lb1}, want: []Effect{EndLeg{Leg: lb1}}, state: bobRingsForAlice},
			step{at: 5 * time.Second, in: Failed{Leg: lb1, Code: 487}, state: bobRingsForAlice},
		)},
		{"alice answers none of her devices: missed when the no-answer time is up, in her history only", []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{at: 29 * time.Second, in: Tick{}, state: aliceRinging},
			{at: 30 * time.Second, in: Tick{},
				want:  effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}}, ended("missed", aliceOnlyOut("missed"))...),
				state: "ended(missed) ended=+30s | b1:ended b2:ended"},
		}},
		{"every device declines: missed, nobody else rang", []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{at: time.Second, in: Failed{Leg: lb1, Code: 486}, state: "ringing until=+30s | b1:ended b2:trying"},
			{at: 2 * time.Second, in: Failed{Leg: lb2, Code: 603},
				want:  ended("missed", aliceOnlyOut("missed")),
				state: "ended(missed) ended=+2s | b1:ended b2:ended"},
		}},
		{"alice hangs up over REST while her devices ring", []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{at: time.Second, in: Control{Action: "hangup", ByUser: "bob"}, err: "403 forbidden", state: aliceRinging},
			{at: 2 * time.Second, in: Control{Action: "hangup", ByUser: "alice"},
				want:  effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}}, ended("cancelled", aliceOnlyOut("cancelled"))...),
				state: "ended(cancelled) ended=+2s | b1:ended b2:ended"},
		}},
		{"bob moved to his softphone while alice's phones rang: her answer routes with the lookup taken then", []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{at: 3 * time.Second, in: Answered{Leg: lb2, Lookup: &Lookup{Target: &bob, Contacts: []Contact{soft}}},
				want: []Effect{AcceptAnswer{Leg: lb2}, EndLeg{Leg: lb1},
					Originate{Leg: lb3c, Contact: soft, FromUser: "101", Display: "Alice", ToUser: "102"},
					WakeAt{At: t0.Add(33 * time.Second)}, Event{Type: "call.ringing"}},
				state: bobRingsForAlice},
		}},
		{"alice's softphone answers and hangs up before its answer is taken: the desk phone stops, the call was cancelled", []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{at: 3 * time.Second, in: Bye{Leg: lb2},
				want:  effs([]Effect{EndLeg{Leg: lb1}}, ended("cancelled", aliceOnlyOut("cancelled"))...),
				state: "ended(cancelled) ended=+3s | b1:ended b2:ended"},
		}},
		{"alice hangs up while bob rings: bob stops, the call was cancelled", story(aliceAnswered,
			step{at: 5 * time.Second, in: Bye{Leg: lb2},
				want:  effs([]Effect{EndLeg{Leg: lb3c}}, ended("cancelled", aliceOut("cancelled"), bobIn("cancelled"))...),
				state: "ended(cancelled) ended=+5s | b1:ended b2:ended b3:ended"},
		)},
		{"bob does not answer: alice's leg ends (BYE), no response to send", story(aliceAnswered,
			step{at: 33 * time.Second, in: Tick{},
				want:  effs([]Effect{EndLeg{Leg: lb3c}, EndLeg{Leg: lb2}}, ended("missed", aliceOut("missed"), bobIn("missed"))...),
				state: "ended(missed) ended=+33s | b1:ended b2:ended b3:ended"},
		)},
		{"bob is busy: alice's leg ends, outcome busy", story(aliceAnswered,
			step{at: 4 * time.Second, in: Failed{Leg: lb3c, Code: 486},
				want:  effs([]Effect{EndLeg{Leg: lb2}}, ended("busy", aliceOut("busy"), bobIn("busy"))...),
				state: "ended(busy) ended=+4s | b1:ended b2:ended b3:ended"},
		)},
		{"alice's answer is unusable (media refused it): her phone gets a BYE, the call ends", story(aliceAnswered,
			step{at: 3 * time.Second, in: Failed{Leg: lb2, Code: 488},
				want:  effs([]Effect{EndLeg{Leg: lb2}, EndLeg{Leg: lb3c, Code: 480}}, ended("failed", aliceOut("failed"), bobIn("failed"))...),
				state: "ended(failed) ended=+3s | b1:ended b2:ended b3:ended"},
		)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

// A delegate clicks to call on the delegator's line: the delegate's phone
// shows whose line it calls for, the carrier sees the delegator's number
// (as for SIP P-Preferred-Identity), history carries seed 000's labels.
// Without place_calls nothing rings and the REST request gets 403.
func TestClickToCallOnBehalf(t *testing.T) {
	place := Access{Role: "delegate", Privileges: []string{"place_calls"}}
	dial := func(a Access) Dial {
		return Dial{From: ann, Dialed: outsideNumber, Devices: []Contact{annDesk},
			Lookup:   Lookup{IsE164: true, OutboundTrunk: &trunk, CallerNames: names},
			OnBehalf: &OnBehalf{Line: dan, Access: a, Names: names, Viewers: viewers}}
	}
	out := func(owner, label string) HistoryEntry {
		return HistoryEntry{Owner: owner, Direction: "outbound", Peer: outsideNumber, Line: "dan", Label: label, Outcome: "answered"}
	}
	runStory(t, []step{
		{in: dial(place),
			want: []Effect{Originate{Leg: lb1, Contact: annDesk, FromUser: outsideNumber, Display: "Call to " + outsideNumber + " for Dan", ToUser: "1002"},
				WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
			state: "ringing until=+30s | b1:trying"},
		{at: time.Second, in: Answered{Leg: lb1},
			want: []Effect{AcceptAnswer{Leg: lb1},
				Originate{Leg: lb2, Contact: trunk, FromUser: "+14155550100", Display: "Dan", ToUser: outsideNumber, PAI: "+14155550100"},
				WakeAt{At: t0.Add(31 * time.Second)}, Event{Type: "call.ringing"}},
			state: "ringing until=+31s | b1:answered b2:trying"},
		{at: 2 * time.Second, in: Answered{Leg: lb2},
			want:  []Effect{Connect{Caller: lb1, Callee: lb2, CallerUp: true}, WakeAt{}, Event{Type: "call.answered"}},
			state: "active answered=+2s | b1:answered b2:answered"},
		{at: 3 * time.Second, in: Bye{Leg: lb1},
			want: effs([]Effect{EndLeg{Leg: lb2, Code: 480}}, ended("answered",
				out("ann", "Outgoing by you for Dan"), out("dan", "Outgoing by Ann for you"), out("bob", "Outgoing by Ann for Dan"))...),
			state: "ended(answered) answered=+2s ended=+3s | b1:ended b2:ended"},
	})

	// Refusals answer the REST request; nothing rings, the call stays empty.
	const empty = "routing |"
	noDevices := dial(place)
	noDevices.Devices = nil
	unreachable := Dial{From: alice, Dialed: "102", Devices: []Contact{aliceDesk}, Lookup: Lookup{Target: &bob}}
	unknown := Dial{From: alice, Dialed: "5550100", Devices: []Contact{aliceDesk}, Lookup: Lookup{OutboundTrunk: &trunk}}
	draining := dialBob
	draining.Draining = true
	for _, tc := range []struct {
		name string
		in   Dial
		err  string
	}{
		{"a delegate without place_calls", dial(Access{Role: "delegate", Privileges: []string{"answer_calls"}}), "403 missing_privilege"},
		{"not a delegate of the line", dial(Access{Role: "none"}), "403 forbidden"},
		{"no registered device", noDevices, "409 no_devices"},
		{"a target nobody can ring now", unreachable, "409 unreachable"},
		{"an unknown, non-E.164 target", unknown, "404 not_found"},
		{"a draining node", draining, "503 draining"},
	} {
		t.Run(tc.name, func(t *testing.T) { runStory(t, []step{{in: tc.in, err: tc.err, state: empty}}) })
	}
	t.Run("a second dial of the same call", func(t *testing.T) {
		runStory(t, []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{in: dialBob, err: "409 call_exists", state: aliceRinging},
		})
	})
}
