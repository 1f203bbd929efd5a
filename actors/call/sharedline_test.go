package call

import (
	"testing"
	"time"
)

// Dan's line is shared with Ann and Bob. Outside callers reach Dan's
// number through the trunk.
var (
	dan      = Party{UserID: "dan", Number: "1001", External: "+14155550100", Display: "Dan"}
	ann      = Party{UserID: "ann", Number: "1002", Display: "Ann"}
	bobD     = Party{UserID: "bob", Number: "1003", Display: "Bob"}
	danDesk  = Contact{URI: "sip:1001@192.0.2.1", Destination: "192.0.2.1:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	annDesk  = Contact{URI: "sip:1002@192.0.2.2", Destination: "192.0.2.2:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	bobDesk  = Contact{URI: "sip:1003@192.0.2.3", Destination: "192.0.2.3:5060", Transport: "udp", NodeID: "n2", NodeAddr: "10.0.0.2:8090"}
	names    = map[string]string{"dan": "Dan", "ann": "Ann", "bob": "Bob"}
	viewers  = []string{"ann", "bob"}
	parties  = map[string]Party{"dan": dan, "ann": ann, "bob": bobD}
	contacts = map[string][]Contact{"dan": {danDesk}, "ann": {annDesk}, "bob": {bobDesk}}
)

const (
	lb3 = "k-b3"
	lb4 = "k-b4"
)

// toDan is the carrier calling Dan's number with plan stages.
func toDan(stages ...RingStage) Start {
	return start(outside, "+14155550100", Lookup{Target: &dan, IsE164: true,
		Plan: &RingPlan{Stages: stages, Viewers: viewers, Names: names}, Parties: parties, UserContacts: contacts})
}

func ringAnn(leg string) Originate {
	return Originate{Leg: leg, Contact: annDesk, FromUser: outside.Number, Display: "Carrier Caller for Dan", ToUser: "1002"}
}

func ringBob(leg string) Originate {
	return Originate{Leg: leg, Contact: bobDesk, FromUser: outside.Number, Display: "Carrier Caller for Dan", ToUser: "1003"}
}

func ringDan(leg string) Originate {
	return Originate{Leg: leg, Contact: danDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1001"}
}

func danIn(label, outcome string) HistoryEntry {
	return HistoryEntry{Owner: "dan", Direction: "inbound", Peer: outside.Number, Line: "dan", Label: label, Outcome: outcome}
}

func viewerIn(owner, label, outcome string) HistoryEntry {
	return HistoryEntry{Owner: owner, Direction: "inbound", Peer: outside.Number, Line: "dan", Label: label, Outcome: outcome}
}

// Ann answered a simultaneous ring of Dan, Ann and Bob at +5s.
var annAnswered = []step{
	{in: toDan(RingStage{Users: []string{"dan", "ann", "bob"}, Seconds: 20}),
		want:  []Effect{ringDan(lb1), ringAnn(lb2), ringBob(lb3), WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
		state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
	{at: 5 * time.Second, in: Answered{Leg: lb2},
		want:  []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, EndLeg{Leg: lb3}, WakeAt{}, Event{Type: "call.answered"}},
		state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
}

// ...and then held it at +10s.
var annHeld = story(annAnswered,
	step{at: 10 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendonly"},
		want: []Effect{HoldMedia{Holder: lb2, Held: la}, Event{Type: "call.held"}}, state: heldByAnn},
)

const heldByAnn = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended"

var (
	ownerAccess  = Access{Role: "owner", Privileges: []string{"place_calls", "answer_calls", "join_merge", "opt_in_out", "pickup_hold", "business_hours", "manage_vip"}}
	bobMayPickup = Access{Role: "delegate", Privileges: []string{"answer_calls", "pickup_hold"}}
	bobAnswers   = Access{Role: "delegate", Privileges: []string{"answer_calls"}}
	bobJoins     = Access{Role: "delegate", Privileges: []string{"answer_calls", "join_merge"}}
)

// chimeOn is a's rights on a line whose owner wants the join chime.
func chimeOn(a Access) Access {
	a.JoinChime = true
	return a
}

func TestRingStages(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"delegates first, me next: each stage in turn, then the caller gets 480", []step{
			{in: toDan(RingStage{Users: []string{"ann"}, Seconds: 15}, RingStage{Users: []string{"bob"}, Seconds: 15}, RingStage{Users: []string{"dan"}, Seconds: 15}),
				want:  []Effect{ringAnn(lb1), WakeAt{At: t0.Add(15 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing stage=+15s | a:trying b1:trying"},
			{at: 3 * time.Second, in: Rang{Leg: lb1}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
				state: "ringing stage=+15s | a:trying b1:ringing"},
			{at: 14 * time.Second, in: Tick{}, state: "ringing stage=+15s | a:trying b1:ringing"},
			{at: 15 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb1}, ringBob(lb2), WakeAt{At: t0.Add(30 * time.Second)}},
				state: "ringing stage=+30s | a:trying b1:ended b2:trying"},
			// The last stage rings its 15 s, past the 30 s no-answer time.
			{at: 30 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb2}, ringDan(lb3), WakeAt{At: t0.Add(45 * time.Second)}},
				state: "ringing until=+45s | a:trying b1:ended b2:ended b3:trying"},
			{at: 45 * time.Second, in: Tick{},
				want: effs([]Effect{EndLeg{Leg: lb3}, Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}},
					ended("missed", danIn("", "missed"), viewerIn("ann", "", "missed"), viewerIn("bob", "", "missed"))...),
				state: "ended(missed) ended=+45s | a:ended b1:ended b2:ended b3:ended"},
		}},
		{"a stage whose phones all decline gives way to the next at once", []step{
			{in: toDan(RingStage{Users: []string{"ann", "bob"}, Seconds: 15}, RingStage{Users: []string{"dan"}, Seconds: 15}),
				want:  []Effect{ringAnn(lb1), ringBob(lb2), WakeAt{At: t0.Add(15 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing stage=+15s | a:trying b1:trying b2:trying"},
			{at: 2 * time.Second, in: Failed{Leg: lb1, Code: 486}, state: "ringing stage=+15s | a:trying b1:ended b2:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb2, Code: 603}, want: []Effect{ringDan(lb3), WakeAt{At: t0.Add(30 * time.Second)}},
				state: "ringing until=+30s | a:trying b1:ended b2:ended b3:trying"},
			{at: 4 * time.Second, in: Answered{Leg: lb3},
				want:  []Effect{Connect{Caller: la, Callee: lb3}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+4s | a:answered b1:ended b2:ended b3:answered"},
		}},
		{"stages with nobody registered are skipped", []step{
			{in: start(outside, "+14155550100", Lookup{Target: &dan, IsE164: true, Parties: parties,
				Plan:         &RingPlan{Stages: []RingStage{{Users: []string{"ann"}, Seconds: 15}, {Users: []string{"dan"}, Seconds: 15}}, Viewers: viewers, Names: names},
				UserContacts: map[string][]Contact{"dan": {danDesk}}}),
				want:  []Effect{ringDan(lb1), WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"a voicemail plan (no voicemail service yet): 480", []step{
			{in: start(outside, "+14155550100", Lookup{Target: &dan, IsE164: true, Plan: &RingPlan{Voicemail: true}}),
				want:  effs([]Effect{Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}}, ended("voicemail", danIn("", "voicemail"))...),
				state: "ended(voicemail) ended=+0s | a:ended"},
		}},
		{"answered by a delegate: every other phone stops; labels for all three", story(annAnswered,
			step{at: 60 * time.Second, in: Bye{Leg: la},
				want: effs([]Effect{EndLeg{Leg: lb2, Code: 480}}, ended("answered",
					danIn("Answered by Ann for you", "answered"), viewerIn("ann", "Answered by you for Dan", "answered"), viewerIn("bob", "Answered by Ann for Dan", "answered"))...),
				state: "ended(answered) answered=+5s ended=+1m0s | a:ended b1:ended b2:ended b3:ended"},
		)},
		{"answered by the delegator: delegates see it answered by him", []step{
			annAnswered[0],
			{at: 5 * time.Second, in: Answered{Leg: lb1},
				want:  []Effect{Connect{Caller: la, Callee: lb1}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb2}, EndLeg{Leg: lb3}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+5s | a:answered b1:answered b2:ended b3:ended"},
			{at: 9 * time.Second, in: Bye{Leg: lb1},
				want: effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("answered",
					danIn("", "answered"), viewerIn("ann", "Answered by Dan", "answered"), viewerIn("bob", "Answered by Dan", "answered"))...),
				state: "ended(answered) answered=+5s ended=+9s | a:ended b1:ended b2:ended b3:ended"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestPickupAndLock(t *testing.T) {
	const (
		bobRinging  = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:trying"
		pickedByBob = "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"
		heldLocked  = "held held-by=b2 locked answered=+5s | a:answered b1:ended b2:answered b3:ended"
	)
	pickup := func(by string, a Access) Control {
		return Control{Action: "pickup", ByUser: by, Access: a, Contacts: contacts[by], Party: parties[by]}
	}
	ringBobPickup := Originate{Leg: lb4, Contact: bobDesk, FromUser: outside.Number, Display: "Pick up for Dan", ToUser: "1003", Peer: la}
	cases := []struct {
		name  string
		steps []step
	}{
		{"a delegate with pickup_hold picks up over REST: rung, then bridged; the holder's leg ends", story(annHeld,
			step{at: 20 * time.Second, in: pickup("bob", bobMayPickup), want: []Effect{ringBobPickup, Event{Type: "call.pickup_ringing"}}, state: bobRinging},
			step{at: 21 * time.Second, in: pickup("dan", ownerAccess), err: "409 already_picked_up", state: bobRinging},
			step{at: 22 * time.Second, in: Answered{Leg: lb4},
				want:  []Effect{AcceptAnswer{Leg: lb4}, bridge(la, lb4), EndLeg{Leg: lb2}, Event{Type: "call.picked_up"}},
				state: pickedByBob},
			step{at: 30 * time.Second, in: Bye{Leg: lb4},
				want: effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("answered",
					danIn("Answered by Ann for you", "answered"), viewerIn("ann", "Answered by you for Dan", "answered"), viewerIn("bob", "Answered by Ann for Dan", "answered"))...),
				state: "ended(answered) answered=+5s ended=+30s | a:ended b1:ended b2:ended b3:ended b4:ended"},
		)},
		{"the holder's BYE after a pickup does not end the call", story(annHeld,
			step{at: 20 * time.Second, in: pickup("bob", bobMayPickup), want: []Effect{ringBobPickup, Event{Type: "call.pickup_ringing"}}, state: bobRinging},
			step{at: 22 * time.Second, in: Answered{Leg: lb4},
				want:  []Effect{AcceptAnswer{Leg: lb4}, bridge(la, lb4), EndLeg{Leg: lb2}, Event{Type: "call.picked_up"}},
				state: pickedByBob},
			step{at: 23 * time.Second, in: Bye{Leg: lb2}, state: pickedByBob},
		)},
		{"a pickup whose phone declines frees the call for the next", story(annHeld,
			step{at: 20 * time.Second, in: pickup("bob", bobMayPickup), want: []Effect{ringBobPickup, Event{Type: "call.pickup_ringing"}}, state: bobRinging},
			step{at: 25 * time.Second, in: Failed{Leg: lb4, Code: 486}, want: []Effect{Event{Type: "call.updated"}},
				state: "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
			step{at: 26 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				want:  []Effect{Adopt{Leg: "k-p1", Peer: la}, bridge(la, "k-p1"), EndLeg{Leg: lb2}, Event{Type: "call.picked_up"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:ended p1:answered"},
		)},
		{"a *8 INVITE that reached a draining node is refused 503; a REST pickup is not a new leg there", story(annHeld,
			step{at: 20 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090", Draining: true},
				err: "503 draining", state: heldByAnn},
		)},
		{"a *8 picker whose policy requires SRTP and who offers plain RTP is refused 488; with SRTP it picks up", story(annHeld,
			step{at: 20 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090", PartySRTP: true},
				err: "488 srtp_required", state: heldByAnn},
			step{at: 21 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Leg: "k-p2", NodeID: "n1", NodeAddr: "10.0.0.1:8090", PartySRTP: true, OfferSRTP: true},
				want:  []Effect{Adopt{Leg: "k-p2", Peer: la}, bridge(la, "k-p2"), EndLeg{Leg: lb2}, Event{Type: "call.picked_up"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended p2:answered"},
		)},
		{"refusals: privilege, stranger, not held, nobody's devices", story(annAnswered,
			step{at: 6 * time.Second, in: pickup("bob", bobMayPickup), err: "409 call_not_held", state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			step{at: 10 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendonly"}, want: []Effect{HoldMedia{Holder: lb2, Held: la}, Event{Type: "call.held"}}, state: heldByAnn},
			step{at: 11 * time.Second, in: pickup("bob", bobAnswers), err: "403 missing_privilege", state: heldByAnn},
			step{at: 12 * time.Second, in: pickup("eve", Access{Role: "none"}), err: "403 forbidden", state: heldByAnn},
			step{at: 13 * time.Second, in: Control{Action: "pickup", ByUser: "bob", Access: bobMayPickup}, err: "409 no_devices", state: heldByAnn},
		)},
		{"a locked call: delegates can neither pick up nor join; the owner can; unlock restores", story(annHeld,
			step{at: 11 * time.Second, in: Control{Action: "lock", ByUser: "bob", Access: bobMayPickup}, err: "403 forbidden", state: heldByAnn},
			step{at: 12 * time.Second, in: Control{Action: "lock", ByUser: "dan", Access: ownerAccess}, want: []Effect{PersistLock{Locked: true}, Event{Type: "call.updated"}}, state: heldLocked},
			step{at: 13 * time.Second, in: Control{Action: "lock", ByUser: "dan", Access: ownerAccess}, err: "409 already_locked", state: heldLocked},
			step{at: 14 * time.Second, in: pickup("bob", bobMayPickup), err: "403 call_locked", state: heldLocked},
			step{at: 15 * time.Second, in: Control{Action: "unlock", ByUser: "dan", Access: ownerAccess}, want: []Effect{PersistLock{Locked: false}, Event{Type: "call.updated"}}, state: heldByAnn},
			step{at: 16 * time.Second, in: Control{Action: "unlock", ByUser: "dan", Access: ownerAccess}, err: "409 not_locked", state: heldByAnn},
			step{at: 20 * time.Second, in: pickup("bob", bobMayPickup), want: []Effect{ringBobPickup, Event{Type: "call.pickup_ringing"}}, state: bobRinging},
		)},
		{"the owner locks with *5 and unlocks with *6 over DTMF; a delegate's digits do nothing", story(annAnswered,
			step{at: 6 * time.Second, in: DTMF{Leg: lb2, Digit: "*"}, state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			step{at: 6 * time.Second, in: DTMF{Leg: lb2, Digit: "5"}, state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			step{at: 7 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				err: "409 call_not_held", state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			step{at: 8 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendonly"}, want: []Effect{HoldMedia{Holder: lb2, Held: la}, Event{Type: "call.held"}}, state: heldByAnn},
			step{at: 9 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				want:  []Effect{Adopt{Leg: "k-p1", Peer: la}, bridge(la, "k-p1"), EndLeg{Leg: lb2}, Event{Type: "call.picked_up"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
			step{at: 10 * time.Second, in: DTMF{Leg: "k-p1", Digit: "*"}, state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
			step{at: 10 * time.Second, in: DTMF{Leg: "k-p1", Digit: "5"}, want: []Effect{PersistLock{Locked: true}, Event{Type: "call.updated"}},
				state: "active locked answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
			step{at: 11 * time.Second, in: DTMF{Leg: "k-p1", Digit: "5"}, state: "active locked answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
			step{at: 12 * time.Second, in: DTMF{Leg: "k-p1", Digit: "*"}, state: "active locked answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
			step{at: 12 * time.Second, in: DTMF{Leg: "k-p1", Digit: "6"}, want: []Effect{PersistLock{Locked: false}, Event{Type: "call.updated"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
		)},
		{"a lock that etcd did not take is undone", story(annHeld,
			step{at: 12 * time.Second, in: Control{Action: "lock", ByUser: "dan", Access: ownerAccess}, want: []Effect{PersistLock{Locked: true}, Event{Type: "call.updated"}}, state: heldLocked},
			step{at: 12 * time.Second, in: LockLost{}, want: []Effect{Event{Type: "call.updated"}}, state: heldByAnn},
			step{at: 14 * time.Second, in: pickup("bob", bobMayPickup), want: []Effect{ringBobPickup, Event{Type: "call.pickup_ringing"}}, state: bobRinging},
		)},
		{"join needs join_merge and an active call, then mixes three with a chime when the owner wants one", story(annAnswered,
			step{at: 6 * time.Second, in: Control{Action: "join", ByUser: "bob", Access: bobMayPickup, Contacts: contacts["bob"], Party: bobD}, err: "403 missing_privilege",
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			step{at: 7 * time.Second, in: Control{Action: "join", ByUser: "dan", Access: chimeOn(ownerAccess), Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				want:  []Effect{Adopt{Leg: "k-p1", Peer: la}, mix(la, lb2, "k-p1"), Chime{Legs: []string{la, lb2}}, Event{Type: "call.joined"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended p1:answered"},
			step{at: 8 * time.Second, in: Control{Action: "join", ByUser: "bob", Access: Access{Role: "delegate", Privileges: []string{"join_merge"}}}, err: "409 already_picked_up",
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended p1:answered"},
			step{at: 9 * time.Second, in: Bye{Leg: "k-p1"},
				want:  []Effect{bridge(la, lb2), Chime{Legs: []string{la, lb2}}, Event{Type: "call.updated"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended p1:ended"},
		)},
		{"with the chime off (the default) a delegate joins and leaves silently", story(annAnswered,
			step{at: 7 * time.Second, in: Control{Action: "join", ByUser: "bob", Access: bobJoins, Contacts: contacts["bob"], Party: bobD},
				want:  []Effect{Originate{Leg: lb4, Contact: bobDesk, FromUser: outside.Number, Display: "Pick up for Dan", ToUser: "1003", Peer: la}, Event{Type: "call.pickup_ringing"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:trying"},
			step{at: 8 * time.Second, in: Answered{Leg: lb4},
				want:  []Effect{AcceptAnswer{Leg: lb4}, mix(la, lb2, lb4), Event{Type: "call.joined"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:answered"},
			step{at: 9 * time.Second, in: Bye{Leg: lb4},
				want:  []Effect{bridge(la, lb2), Event{Type: "call.updated"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
		)},
		{"with the chime on a delegate's join and leave both chime", story(annAnswered,
			step{at: 7 * time.Second, in: Control{Action: "join", ByUser: "bob", Access: chimeOn(bobJoins), Contacts: contacts["bob"], Party: bobD},
				want:  []Effect{Originate{Leg: lb4, Contact: bobDesk, FromUser: outside.Number, Display: "Pick up for Dan", ToUser: "1003", Peer: la}, Event{Type: "call.pickup_ringing"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:trying"},
			step{at: 8 * time.Second, in: Answered{Leg: lb4},
				want:  []Effect{AcceptAnswer{Leg: lb4}, mix(la, lb2, lb4), Chime{Legs: []string{la, lb2}}, Event{Type: "call.joined"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:answered"},
			step{at: 9 * time.Second, in: Bye{Leg: lb4},
				want:  []Effect{bridge(la, lb2), Chime{Legs: []string{la, lb2}}, Event{Type: "call.updated"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
		)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestCallOnBehalfRules(t *testing.T) {
	onBehalf := func(a Access) Start {
		st := start(ann, outsideNumber, Lookup{IsE164: true, OutboundTrunk: &trunk, CallerNames: names})
		st.From = ann
		st.OnBehalf = &OnBehalf{Line: dan, Access: a, Names: names, Viewers: viewers}
		return st
	}
	out := func(owner, label string) HistoryEntry {
		return HistoryEntry{Owner: owner, Direction: "outbound", Peer: outsideNumber, Line: "dan", Label: label, Outcome: "answered"}
	}
	runStory(t, []step{
		{in: onBehalf(Access{Role: "delegate", Privileges: []string{"place_calls"}}),
			want: []Effect{Originate{Leg: lb1, Contact: trunk, FromUser: "+14155550100", Display: "Dan", ToUser: outsideNumber, PAI: "+14155550100"},
				WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
			state: "ringing until=+30s | a:trying b1:trying"},
		{at: time.Second, in: Answered{Leg: lb1},
			want:  []Effect{Connect{Caller: la, Callee: lb1}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, WakeAt{}, Event{Type: "call.answered"}},
			state: "active answered=+1s | a:answered b1:answered"},
		{at: 2 * time.Second, in: Bye{Leg: la},
			want: effs([]Effect{EndLeg{Leg: lb1, Code: 480}}, ended("answered",
				out("ann", "Outgoing by you for Dan"), out("dan", "Outgoing by Ann for you"), out("bob", "Outgoing by Ann for Dan"))...),
			state: "ended(answered) answered=+1s ended=+2s | a:ended b1:ended"},
	})
	runStory(t, []step{
		{in: onBehalf(Access{Role: "delegate", Privileges: []string{"answer_calls"}}),
			want:  effs([]Effect{Respond{Leg: la, Code: 403, Reason: "Forbidden"}}, ended("failed", HistoryEntry{Owner: "ann", Direction: "outbound", Peer: outsideNumber, Line: "ann", Outcome: "failed"})...),
			state: "ended(failed) ended=+0s | a:ended"},
	})
}

func TestPickupRinging(t *testing.T) {
	const ringingDanAnn = "ringing until=+30s | a:trying b1:trying b2:trying"
	ringDanAnn := step{in: toDan(RingStage{Users: []string{"dan", "ann"}, Seconds: 20}),
		want: []Effect{ringDan(lb1), ringAnn(lb2), WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}}, state: ringingDanAnn}
	sipPickup := func(by string, a Access) Control {
		return Control{Action: "pickup", ByUser: by, Access: a, Leg: "k-p1", NodeID: "n2", NodeAddr: "10.0.0.2:8090", Party: parties[by]}
	}
	restPickup := func(by string, a Access) Control {
		return Control{Action: "pickup", ByUser: by, Access: a, Contacts: contacts[by], Party: parties[by]}
	}
	ringBobPickup := func(leg string) Originate {
		return Originate{Leg: leg, Contact: bobDesk, FromUser: outside.Number, Display: "Pick up for Dan", ToUser: "1003", Peer: la}
	}
	byBob := []HistoryEntry{danIn("Answered by Bob for you", "answered"), viewerIn("ann", "Answered by Bob for Dan", "answered"), viewerIn("bob", "Answered by you for Dan", "answered")}
	cases := []struct {
		name  string
		steps []step
	}{
		{"*8 by a delegate with pickup_hold: the caller gets its 200 through the picker, the line's phones stop", []step{
			ringDanAnn,
			{at: 2 * time.Second, in: Rang{Leg: lb1}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
				state: "ringing until=+30s | a:trying b1:ringing b2:trying"},
			{at: 4 * time.Second, in: sipPickup("bob", bobMayPickup),
				want: []Effect{Adopt{Leg: "k-p1", Peer: la}, Connect{Caller: la, Callee: "k-p1", Adopted: true},
					Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+4s | a:answered b1:ended b2:ended p1:answered"},
			{at: 5 * time.Second, in: sipPickup("dan", ownerAccess), err: "409 call_not_held",
				state: "active answered=+4s | a:answered b1:ended b2:ended p1:answered"},
			{at: 9 * time.Second, in: Bye{Leg: la},
				want:  effs([]Effect{EndLeg{Leg: "k-p1", Code: 480}}, ended("answered", byBob...)...),
				state: "ended(answered) answered=+4s ended=+9s | a:ended b1:ended b2:ended p1:ended"},
		}},
		{"*8 by a delegate whose own phone rings for the call: that branch stops with the others", []step{
			{in: toDan(RingStage{Users: []string{"dan", "bob"}, Seconds: 20}),
				want:  []Effect{ringDan(lb1), ringBob(lb2), WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying"},
			{at: 4 * time.Second, in: sipPickup("bob", bobMayPickup),
				want: []Effect{Adopt{Leg: "k-p1", Peer: la}, Connect{Caller: la, Callee: "k-p1", Adopted: true},
					Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+4s | a:answered b1:ended b2:ended p1:answered"},
		}},
		{"REST pickup: the picker's phone rings beside the line's; its answer connects the caller, the others stop", []step{
			ringDanAnn,
			{at: 3 * time.Second, in: restPickup("bob", bobMayPickup), want: []Effect{ringBobPickup(lb3), Event{Type: "call.pickup_ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 4 * time.Second, in: restPickup("dan", ownerAccess), err: "409 already_picked_up",
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 5 * time.Second, in: Rang{Leg: lb3}, want: []Effect{Respond{Leg: la, Code: 180, Reason: "Ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:ringing"},
			{at: 6 * time.Second, in: Answered{Leg: lb3},
				want: []Effect{Connect{Caller: la, Callee: lb3}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true},
					EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+6s | a:answered b1:ended b2:ended b3:answered"},
			{at: 9 * time.Second, in: Bye{Leg: lb3},
				want:  effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("answered", byBob...)...),
				state: "ended(answered) answered=+6s ended=+9s | a:ended b1:ended b2:ended b3:ended"},
		}},
		{"REST pickup loses to a line phone answering first: the picker's phone stops and the pickup is over", []step{
			ringDanAnn,
			{at: 3 * time.Second, in: restPickup("bob", bobMayPickup), want: []Effect{ringBobPickup(lb3), Event{Type: "call.pickup_ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 5 * time.Second, in: Answered{Leg: lb2},
				want: []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true},
					EndLeg{Leg: lb1}, EndLeg{Leg: lb3}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			{at: 6 * time.Second, in: Answered{Leg: lb3}, want: []Effect{EndLeg{Leg: lb3}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			// Not already_picked_up: nothing is promised to Bob any more.
			{at: 7 * time.Second, in: restPickup("bob", bobMayPickup), err: "409 call_not_held",
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended"},
		}},
		{"the picker's phone declines: the line rings on and may be picked up again", []step{
			ringDanAnn,
			{at: 3 * time.Second, in: restPickup("bob", bobMayPickup), want: []Effect{ringBobPickup(lb3), Event{Type: "call.pickup_ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 4 * time.Second, in: Failed{Leg: lb3, Code: 603}, state: "ringing until=+30s | a:trying b1:trying b2:trying b3:ended"},
			{at: 5 * time.Second, in: sipPickup("bob", bobMayPickup),
				want: []Effect{Adopt{Leg: "k-p1", Peer: la}, Connect{Caller: la, Callee: "k-p1", Adopted: true},
					Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended p1:answered"},
		}},
		{"the next stage does not stop the picker's phone", []step{
			{in: toDan(RingStage{Users: []string{"ann"}, Seconds: 10}, RingStage{Users: []string{"dan"}, Seconds: 10}),
				want:  []Effect{ringAnn(lb1), WakeAt{At: t0.Add(10 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing stage=+10s | a:trying b1:trying"},
			{at: 8 * time.Second, in: restPickup("bob", bobMayPickup), want: []Effect{ringBobPickup(lb2), Event{Type: "call.pickup_ringing"}},
				state: "ringing stage=+10s | a:trying b1:trying b2:trying"},
			{at: 10 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb1}, ringDan(lb3), WakeAt{At: t0.Add(30 * time.Second)}},
				state: "ringing until=+30s | a:trying b1:ended b2:trying b3:trying"},
			{at: 12 * time.Second, in: Answered{Leg: lb2},
				want: []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true},
					EndLeg{Leg: lb3}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+12s | a:answered b1:ended b2:answered b3:ended"},
		}},
		{"the line's phones and then the picker's all decline: the caller hears busy", []step{
			{in: toDan(RingStage{Users: []string{"ann"}}),
				want:  []Effect{ringAnn(lb1), WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+30s | a:trying b1:trying"},
			{at: 2 * time.Second, in: restPickup("bob", bobMayPickup), want: []Effect{ringBobPickup(lb2), Event{Type: "call.pickup_ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying"},
			{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 480}, state: "ringing until=+30s | a:trying b1:ended b2:trying"},
			{at: 4 * time.Second, in: Failed{Leg: lb2, Code: 486},
				want: effs([]Effect{Respond{Leg: la, Code: 486, Reason: "Busy Here"}},
					ended("busy", danIn("", "busy"), viewerIn("ann", "", "busy"), viewerIn("bob", "", "busy"))...),
				state: "ended(busy) ended=+4s | a:trying b1:ended b2:ended"},
		}},
		{"no answer while the picker's phone rings: everything stops, the caller gets 480", []step{
			ringDanAnn,
			{at: 3 * time.Second, in: restPickup("bob", bobMayPickup), want: []Effect{ringBobPickup(lb3), Event{Type: "call.pickup_ringing"}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 30 * time.Second, in: Tick{},
				want: effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, EndLeg{Leg: lb3}, Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}},
					ended("missed", danIn("", "missed"), viewerIn("ann", "", "missed"), viewerIn("bob", "", "missed"))...),
				state: "ended(missed) ended=+30s | a:ended b1:ended b2:ended b3:ended"},
		}},
		{"refusals of a ringing call: privilege, stranger, nobody's devices", []step{
			ringDanAnn,
			{at: 1 * time.Second, in: sipPickup("bob", bobAnswers), err: "403 missing_privilege", state: ringingDanAnn},
			{at: 2 * time.Second, in: restPickup("eve", Access{Role: "none"}), err: "403 forbidden", state: ringingDanAnn},
			{at: 3 * time.Second, in: Control{Action: "pickup", ByUser: "bob", Access: bobMayPickup}, err: "409 no_devices", state: ringingDanAnn},
		}},
		{"a delegate cannot pick up the call they are making to the line", []step{
			{in: start(bobD, "1001", Lookup{Target: &dan, Plan: &RingPlan{Stages: []RingStage{{Users: []string{"dan"}}}, Viewers: viewers, Names: names},
				Parties: parties, UserContacts: contacts}),
				want:  []Effect{Originate{Leg: lb1, Contact: danDesk, FromUser: "1003", Display: "Bob", ToUser: "1001"}, WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+30s | a:trying b1:trying"},
			{at: time.Second, in: sipPickup("bob", bobMayPickup), err: "409 already_on_call", state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"an outgoing call ringing on the caller's line is not the line's to pick up", []step{
			{in: startOut, want: ringOutEffects, state: "ringing until=+30s | a:trying b1:trying"},
			{at: 2 * time.Second, in: Control{Action: "pickup", ByUser: "alice", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				err: "409 call_not_held", state: "ringing until=+30s | a:trying b1:trying"},
		}},
		{"a click-to-call: not while the caller's own phones ring; once the target rings, its line may pick it up", []step{
			aliceAnswered[0],
			{at: time.Second, in: Control{Action: "pickup", ByUser: "alice", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				err: "409 call_not_held", state: aliceRinging},
			aliceAnswered[1], aliceAnswered[2],
			{at: 5 * time.Second, in: Control{Action: "pickup", ByUser: "bob", Access: ownerAccess, Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				want:  []Effect{Adopt{Leg: "k-p1", Peer: lb2}, Connect{Caller: lb2, Callee: "k-p1", CallerUp: true, Adopted: true}, EndLeg{Leg: lb3c}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+5s | b1:ended b2:answered b3:ended p1:answered"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}
