package call

import (
	"testing"
	"time"
)

// Ringing driven from outside the call: a driver (a queue offering the call
// to one member at a time) rings more phones with Offer and stops a user's
// with Withdraw, within the call's no-answer time; the call's own rules
// (first answer wins, the caller hears 480 when nobody is left) still hold.
func TestOfferAndWithdraw(t *testing.T) {
	carol := Party{UserID: "carol", Number: "103", Display: "Carol"}
	carolDesk := Contact{URI: "sip:103@192.0.2.30:5060", Destination: "192.0.2.30:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	offerCarol := Offer{Party: carol, Contacts: []Contact{carolDesk}}
	ringCarol := Originate{Leg: "k-b3", Contact: carolDesk, FromUser: "101", Display: "Alice for bob", ToUser: "103"}
	missed := ended("missed", aliceOut("missed"), bobIn("missed"))

	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"an offer rings beside the plan; the offered phone may answer", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 2 * time.Second, in: offerCarol, want: []Effect{ringCarol},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 5 * time.Second, in: Answered{Leg: "k-b3"},
				want: []Effect{Connect{Caller: la, Callee: "k-b3"}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true},
					EndLeg{Leg: lb1}, EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:answered"},
		}},
		{"withdraw stops one user's phones; the last withdrawn leaves the caller 480", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 2 * time.Second, in: offerCarol, want: []Effect{ringCarol},
				state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			{at: 3 * time.Second, in: Withdraw{User: "bob"}, want: []Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}},
				state: "ringing until=+30s | a:trying b1:ended b2:ended b3:trying"},
			{at: 4 * time.Second, in: Withdraw{User: "bob"}, state: "ringing until=+30s | a:trying b1:ended b2:ended b3:trying"},
			{at: 6 * time.Second, in: Withdraw{User: "carol"},
				want:  effs([]Effect{EndLeg{Leg: "k-b3"}, Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}}, missed...),
				state: "ended(missed) ended=+6s | a:ended b1:ended b2:ended b3:ended"},
		}},
		{"an offer to an answered call rings nobody", []step{
			{in: startToBob, want: ringBobEffects, state: ringingBob},
			{at: 5 * time.Second, in: Answered{Leg: lb1},
				want: []Effect{Connect{Caller: la, Callee: lb1}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true},
					EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.answered"}},
				state: "active answered=+5s | a:answered b1:answered b2:ended"},
			{at: 6 * time.Second, in: offerCarol, state: "active answered=+5s | a:answered b1:answered b2:ended"},
			{at: 7 * time.Second, in: Withdraw{User: "bob"}, state: "active answered=+5s | a:answered b1:answered b2:ended"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}
