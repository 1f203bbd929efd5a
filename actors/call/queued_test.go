package call

import (
	"testing"
	"time"
)

// A call to a queue: answered with the queue's greeting and music, its
// members' phones rung as the queue offers them, the queue told what
// happened; the queue's overflow sends the caller on.
func TestQueuedCall(t *testing.T) {
	sales := QueueRoute{ID: "sales", Name: "Sales", Admins: []string{"mia"}, Names: map[string]string{"carol": "Carol", "mia": "Mia"}}
	carol := Party{UserID: "carol", Number: "103", Display: "Carol"}
	carolDesk := Contact{URI: "sip:103@192.0.2.30:5060", Destination: "192.0.2.30:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	toSales := start(outside, "+14155550150", Lookup{Queue: &sales})
	waiting := []Effect{Wait{Leg: la, Prompt: PromptQueue}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}, Event{Type: "call.queued"}}
	ringBob := Originate{Leg: lb1, Contact: desk, FromUser: "+14155559999", Display: "Carrier Caller for Sales", ToUser: "102", Peer: la}
	ringCarol := Originate{Leg: lb2, Contact: carolDesk, FromUser: "+14155559999", Display: "Carrier Caller for Sales", ToUser: "103", Peer: la}
	offerBob := Offer{Party: bob, Contacts: []Contact{desk}}
	offerCarol := Offer{Party: carol, Contacts: []Contact{carolDesk}}
	queued := story([]step{{in: toSales, want: waiting, state: "queued | a:answered"}},
		step{at: time.Second, in: offerBob, want: []Effect{ringBob}, state: "queued | a:answered b1:trying"})

	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"a declined offer is reported; the next member answers and talks with the caller", story(queued,
			step{at: 2 * time.Second, in: Rang{Leg: lb1}, state: "queued | a:answered b1:ringing"},
			step{at: 3 * time.Second, in: Failed{Leg: lb1, Code: 603}, want: []Effect{TellQueue{Queue: "sales", Kind: "declined", User: "bob"}},
				state: "queued | a:answered b1:ended"},
			step{at: 4 * time.Second, in: offerCarol, want: []Effect{ringCarol}, state: "queued | a:answered b1:ended b2:trying"},
			step{at: 6 * time.Second, in: Answered{Leg: lb2},
				want:  []Effect{AcceptAnswer{Leg: lb2}, bridge(la, lb2), TellQueue{Queue: "sales", Kind: "answered", User: "carol"}, Event{Type: "call.answered"}},
				state: "active answered=+6s | a:answered b1:ended b2:answered"},
			step{at: 20 * time.Second, in: Bye{Leg: la},
				want: effs([]Effect{EndLeg{Leg: lb2, Code: 480}, TellQueue{Queue: "sales", Kind: "ended", User: "carol"}}, ended("answered",
					HistoryEntry{Owner: "carol", Direction: "inbound", Peer: "+14155559999", Label: "Answered by you for Sales", Outcome: "answered"},
					HistoryEntry{Owner: "mia", Direction: "inbound", Peer: "+14155559999", Label: "Answered by Carol for Sales", Outcome: "answered"})...),
				state: "ended(answered) answered=+6s ended=+20s | a:ended b1:ended b2:ended"},
		)},
		{"the caller hangs up while a member rings: the queue hears the caller left", story(queued,
			step{at: 9 * time.Second, in: Bye{Leg: la},
				want: effs([]Effect{EndLeg{Leg: lb1, Code: 480}, TellQueue{Queue: "sales", Kind: "left"}}, ended("missed",
					HistoryEntry{Owner: "mia", Direction: "inbound", Peer: "+14155559999", Outcome: "missed"})...),
				state: "ended(missed) ended=+9s | a:ended b1:ended"},
		)},
		{"a withdrawn offer stops the member's phones and tells the queue nothing", story(queued,
			step{at: 21 * time.Second, in: Withdraw{User: "bob"}, want: []Effect{EndLeg{Leg: lb1}}, state: "queued | a:answered b1:ended"},
			step{at: 21 * time.Second, in: Failed{Leg: lb1, Code: 487}, state: "queued | a:answered b1:ended"},
		)},
		{"a member with no phone declines at once", []step{
			{in: toSales, want: waiting, state: "queued | a:answered"},
			{at: time.Second, in: Offer{Party: carol}, want: []Effect{TellQueue{Queue: "sales", Kind: "declined", User: "carol"}}, state: "queued | a:answered"},
		}},
		{"max wait: the caller overflows to a user, who rings while the caller hears music", story(queued,
			step{at: 300 * time.Second, in: Overflow{Route: Lookup{Target: &carol, Contacts: []Contact{carolDesk}, Forward: true}},
				want: []Effect{EndLeg{Leg: lb1}, Originate{Leg: lb2, Contact: carolDesk, FromUser: "+14155559999", Display: "Carrier Caller", ToUser: "103", Peer: la},
					WakeAt{At: t0.Add(330 * time.Second)}, Event{Type: "call.transferring"}},
				state: "queued | a:answered b1:ended b2:trying"},
			step{at: 305 * time.Second, in: Answered{Leg: lb2},
				want:  []Effect{AcceptAnswer{Leg: lb2}, bridge(la, lb2), WakeAt{}, Event{Type: "call.transferred"}},
				state: "active | a:answered b1:ended b2:answered"},
		)},
		{"overflow to another queue: the caller waits there", story(queued,
			step{at: 300 * time.Second, in: Overflow{Route: Lookup{Queue: &QueueRoute{ID: "support", Name: "Support"}}},
				want:  []Effect{EndLeg{Leg: lb1}, Wait{Leg: la, Prompt: PromptQueue, Answered: true}, Event{Type: "call.queued"}},
				state: "queued | a:answered b1:ended"},
			step{at: 301 * time.Second, in: offerCarol, want: []Effect{
				Originate{Leg: lb2, Contact: carolDesk, FromUser: "+14155559999", Display: "Carrier Caller for Support", ToUser: "103", Peer: la}},
				state: "queued | a:answered b1:ended b2:trying"},
		)},
		{"overflow to a message: the greeting plays, then the call ends", story(queued,
			step{at: 300 * time.Second, in: Overflow{Route: Lookup{Finale: FinaleMessage}},
				want:  []Effect{EndLeg{Leg: lb1}, Wait{Leg: la, Prompt: PromptMessage, Answered: true}},
				state: "queued | a:answered b1:ended"},
			step{at: 303 * time.Second, in: PromptDone{Leg: la},
				want:  effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("missed")...),
				state: "ended(missed) ended=+5m3s | a:ended b1:ended"},
		)},
		{"closed: the caller overflows at once to a message, answered for it", []step{
			{in: start(outside, "+14155550150", Lookup{Finale: FinaleMessage}),
				want: []Effect{Wait{Leg: la, Prompt: PromptMessage}, Respond{Leg: la, Code: 200, Reason: "OK", WithSDP: true}}, state: "queued | a:answered"},
		}},
		{"full, overflowing to disconnect: the caller hears 480 unanswered", []step{
			{in: start(outside, "+14155550150", Lookup{Finale: FinaleDisconnect}),
				want:  effs([]Effect{Respond{Leg: la, Code: 480, Reason: "Temporarily Unavailable"}}, ended("missed")...),
				state: "ended(missed) ended=+0s | a:ended"},
		}},
		{"a trunk's caller overflowing to an outside number goes out through the trunk", []step{
			{in: start(outside, "+14155550150", Lookup{IsE164: true, OutboundTrunk: &trunk, Forward: true}),
				want: []Effect{Originate{Leg: lb1, Contact: trunk, FromUser: "+14155559999", Display: "Carrier Caller", ToUser: "+14155550150", PAI: "+14155559999"},
					WakeAt{At: t0.Add(30 * time.Second)}, Event{Type: "call.ringing"}},
				state: "ringing until=+30s | a:trying b1:trying"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}
