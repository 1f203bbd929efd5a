package call

import (
	"testing"
	"time"
)

// A shared line group's call rings every free member on the group's line
// for its ring time, then overflows; a pickup group's member rings after the
// delay beside the member called.
func TestGroupCalls(t *testing.T) {
	ann := Party{UserID: "ann", Number: "201", Display: "Ann"}
	ben := Party{UserID: "ben", Number: "202", Display: "Ben"}
	mia := Party{UserID: "mia", Number: "209", Display: "Mia"}
	annDesk := Contact{URI: "sip:201@192.0.2.41:5060", Destination: "192.0.2.41:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	benDesk := Contact{URI: "sip:202@192.0.2.42:5060", Destination: "192.0.2.42:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	miaDesk := Contact{URI: "sip:209@192.0.2.49:5060", Destination: "192.0.2.49:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	front := GroupRoute{ID: "front", Name: "Front Desk", Extension: "300", Members: []string{"ann", "ben"}}
	toMia := Lookup{Target: &mia, Contacts: []Contact{miaDesk}, Forward: true}
	toFront := Lookup{Group: &front, RingFor: 20 * time.Second, Then: &Target{Kind: "user", ID: "mia"},
		Plan:         &RingPlan{Stages: []RingStage{{Users: []string{"ann", "ben"}}}},
		Parties:      map[string]Party{"ann": ann, "ben": ben},
		UserContacts: map[string][]Contact{"ann": {annDesk}, "ben": {benDesk}}}
	ringing := story([]step{{in: start(outside, "+14155550300", toFront), want: []Effect{
		Originate{Leg: lb1, Contact: annDesk, FromUser: "+14155559999", Display: "Carrier Caller for Front Desk", ToUser: "201"},
		Originate{Leg: lb2, Contact: benDesk, FromUser: "+14155559999", Display: "Carrier Caller for Front Desk", ToUser: "202"},
		WakeAt{At: t0.Add(20 * time.Second)}, Event{Type: "call.ringing"}},
		state: "ringing until=+20s | a:trying b1:trying b2:trying"}})
	ringMia := Originate{Leg: "k-b3", Contact: miaDesk, FromUser: "+14155559999", Display: "Carrier Caller", ToUser: "209"}
	answered := story(ringing, step{at: 5 * time.Second, in: Answered{Leg: lb1},
		want:  []Effect{Connect{Caller: la, Callee: lb1}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
		state: "active answered=+5s | a:answered b1:answered b2:ended"})
	member := func(action, by string, lockPolicy bool) Control {
		return Control{Action: action, ByUser: by, Access: Access{Role: "member", Privileges: []string{"pickup_hold"}, LockPolicy: lockPolicy},
			Leg: "k-p1", NodeID: "n1", NodeAddr: "10.0.0.1:8090", Party: ben}
	}

	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"nobody answers in the group's ring time: the call overflows", story(ringing,
			step{at: 20 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, RouteTo{Target: Target{Kind: "user", ID: "mia"}}, WakeAt{}},
				state: "routing | a:trying b1:ended b2:ended"},
			step{at: 20 * time.Second, in: Routed{Route: toMia}, want: []Effect{ringMia, WakeAt{At: t0.Add(50 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+50s | a:trying b1:ended b2:ended b3:trying"},
		)},
		{"every member declines: the call overflows at once", story(ringing,
			step{at: 2 * time.Second, in: Failed{Leg: lb1, Code: 486}, state: "ringing until=+20s | a:trying b1:ended b2:trying"},
			step{at: 3 * time.Second, in: Failed{Leg: lb2, Code: 603}, want: []Effect{RouteTo{Target: Target{Kind: "user", ID: "mia"}}, WakeAt{}},
				state: "routing | a:trying b1:ended b2:ended"},
			step{at: 4 * time.Second, in: Cancelled{Leg: la}, want: ended("cancelled", HistoryEntry{Owner: "ann", Direction: "inbound", Peer: "+14155559999", Line: "group:front", Outcome: "cancelled"},
				HistoryEntry{Owner: "ben", Direction: "inbound", Peer: "+14155559999", Line: "group:front", Outcome: "cancelled"}),
				state: "ended(cancelled) ended=+4s | a:ended b1:ended b2:ended"},
			step{at: 5 * time.Second, in: Routed{Route: toMia}, state: "ended(cancelled) ended=+4s | a:ended b1:ended b2:ended"},
		)},
		{"a member picks up the group's held call", story(answered,
			step{at: 8 * time.Second, in: Reinvite{Leg: lb1, Direction: "sendonly"}, want: []Effect{HoldMedia{Holder: lb1, Held: la}, Event{Type: "call.held"}},
				state: "held held-by=b1 answered=+5s | a:answered b1:answered b2:ended"},
			step{at: 9 * time.Second, in: member("pickup", "ben", false),
				want:  []Effect{Adopt{Leg: "k-p1", Peer: la}, bridge(la, "k-p1"), EndLeg{Leg: lb1}, Event{Type: "call.picked_up"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended p1:answered"},
		)},
		{"without the lock policy a member cannot lock", story(answered,
			step{at: 8 * time.Second, in: Control{Action: "lock", ByUser: "ann", Access: Access{Role: "member"}}, err: "422 lock_not_allowed",
				state: "active answered=+5s | a:answered b1:answered b2:ended"},
		)},
		{"under the lock policy a locked held call is not picked up (403 over SIP)", story(answered,
			step{at: 6 * time.Second, in: Control{Action: "lock", ByUser: "ben", Access: Access{Role: "member", LockPolicy: true}}, err: "403 forbidden",
				state: "active answered=+5s | a:answered b1:answered b2:ended"},
			step{at: 7 * time.Second, in: Control{Action: "lock", ByUser: "ann", Access: Access{Role: "member", LockPolicy: true}},
				want:  []Effect{PersistLock{Locked: true}, Event{Type: "call.updated"}},
				state: "active locked answered=+5s | a:answered b1:answered b2:ended"},
			step{at: 8 * time.Second, in: Reinvite{Leg: lb1, Direction: "sendonly"}, want: []Effect{HoldMedia{Holder: lb1, Held: la}, Event{Type: "call.held"}},
				state: "held held-by=b1 locked answered=+5s | a:answered b1:answered b2:ended"},
			step{at: 9 * time.Second, in: member("pickup", "ben", true), err: "409 call_locked",
				state: "held held-by=b1 locked answered=+5s | a:answered b1:answered b2:ended"},
		)},
		{"a pickup group's member rings after the delay and takes the call", []step{
			{in: start(alice, "102", Lookup{Target: &bob, Contacts: []Contact{desk}, Pickup: &PickupRing{Delay: 10 * time.Second, Offers: []Offer{{Party: mia, Contacts: []Contact{miaDesk}}}}}),
				want:  []Effect{Originate{Leg: lb1, Contact: desk, FromUser: "101", Display: "Alice", ToUser: "102"}, WakeAt{At: t0.Add(10 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+30s | a:trying b1:trying"},
			{at: 10 * time.Second, in: Tick{}, want: []Effect{Originate{Leg: lb2, Contact: miaDesk, FromUser: "101", Display: "Alice for Bob", ToUser: "209"}, WakeAt{At: t0.Add(30 * time.Second)}},
				state: "ringing until=+30s | a:trying b1:trying b2:trying"},
			{at: 12 * time.Second, in: Answered{Leg: lb2},
				want:  []Effect{Connect{Caller: la, Callee: lb2}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, EndLeg{Leg: lb1}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+12s | a:answered b1:ended b2:answered"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

func TestRefusalSIPOverride(t *testing.T) {
	if code, _ := (&Refusal{Status: 409, Code: "call_locked", SIPStatus: 403}).SIP(); code != 403 {
		t.Errorf("a group's locked call answers a *8 with %d, want 403", code)
	}
	if code, _ := (&Refusal{Status: 409, Code: "call_locked"}).SIP(); code != 486 {
		t.Errorf("a locked call refusing monitoring answers %d, want 486", code)
	}
}
