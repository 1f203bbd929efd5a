package call

import (
	"testing"
	"time"
)

func TestTransfer(t *testing.T) {
	const (
		ringing = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:trying"
		active  = "active answered=+5s | a:answered b1:ended b2:answered b3:ended"
		// Dan's plan rings Bob, then Dan: b4 is Bob's phone, b5 Dan's.
		lb5       = "k-b5"
		stage2    = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended b5:trying"
		returned  = "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended b5:ended"
		heldAgain = "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended b5:ended"
	)
	toBob := Control{Action: "transfer", ByUser: "ann", To: "1003", Route: &Lookup{Target: &bobD, Contacts: contacts["bob"]}}
	// Dan's ring plan as his delegator grain computes it with Ann calling:
	// Bob for 15 s, then Dan himself.
	danPlan := &RingPlan{Stages: []RingStage{{Users: []string{"bob"}, Seconds: 15}, {Users: []string{"dan"}, Seconds: 15}}, Viewers: viewers, Names: names}
	toDanPlan := Control{Action: "transfer", ByUser: "ann", To: "1001", Route: &Lookup{Target: &dan, Parties: parties, UserContacts: contacts, Plan: danPlan}}
	// The no-answer time (30 s) counts from the transfer at +10s.
	started := []Effect{HoldMedia{Holder: lb2, Held: la},
		Originate{Leg: lb4, Contact: bobDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1003", Peer: la},
		WakeAt{At: t0.Add(40 * time.Second)}, Event{Type: "call.transferring"}}
	planStarted := []Effect{HoldMedia{Holder: lb2, Held: la},
		Originate{Leg: lb4, Contact: bobDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1003", Peer: la},
		WakeAt{At: t0.Add(25 * time.Second)}, Event{Type: "call.transferring"}}
	ringDanXfer := Originate{Leg: lb5, Contact: danDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1001", Peer: la}
	answeredDan := step{at: 30 * time.Second, in: Answered{Leg: lb5},
		want:  []Effect{AcceptAnswer{Leg: lb5}, bridge(la, lb5), EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.transferred"}},
		state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:ended b5:answered"}
	cases := []struct {
		name  string
		steps []step
	}{
		{"Ann transfers to Bob: the caller hears music, Bob answers, Ann's leg ends", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 11 * time.Second, in: toBob, err: "409 already_picked_up", state: ringing},
			step{at: 12 * time.Second, in: Answered{Leg: lb4},
				want:  []Effect{AcceptAnswer{Leg: lb4}, bridge(la, lb4), EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.transferred"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"},
		)},
		{"while the target rings, the line's owner cannot pick the held call up", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 11 * time.Second, in: Control{Action: "pickup", ByUser: "dan", Access: ownerAccess, Contacts: contacts["dan"], Party: dan},
				err: "409 already_picked_up", state: ringing},
		)},
		{"Ann takes the call back (resumes) while Bob rings: the transfer is off and Bob's phone stops", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 12 * time.Second, in: Reinvite{Leg: lb2, Direction: "sendrecv"},
				want:  []Effect{EndLeg{Leg: lb4}, WakeAt{}, bridge(la, lb2), Event{Type: "call.resumed"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
			step{at: 13 * time.Second, in: Answered{Leg: lb4}, want: []Effect{EndLeg{Leg: lb4}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
			step{at: 40 * time.Second, in: Tick{}, state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
		)},
		{"the target declines: Ann has the call back", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 12 * time.Second, in: Failed{Leg: lb4, Code: 603}, want: []Effect{bridge(la, lb2), WakeAt{}, Event{Type: "call.transfer_failed"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
		)},
		{"the target's whole plan rings: Bob for his stage, then Dan, who answers", story(annAnswered,
			step{at: 10 * time.Second, in: toDanPlan, want: planStarted, state: ringing},
			step{at: 24 * time.Second, in: Tick{}, state: ringing},
			step{at: 25 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb4}, ringDanXfer, WakeAt{At: t0.Add(40 * time.Second)}}, state: stage2},
			answeredDan,
		)},
		{"a stage whose phones all decline gives way to the next at once", story(annAnswered,
			step{at: 10 * time.Second, in: toDanPlan, want: planStarted, state: ringing},
			step{at: 12 * time.Second, in: Failed{Leg: lb4, Code: 486}, want: []Effect{ringDanXfer, WakeAt{At: t0.Add(40 * time.Second)}}, state: stage2},
			step{at: 25 * time.Second, in: Tick{}, state: stage2},
			answeredDan,
		)},
		{"nobody answers within the no-answer time: the phones stop and Ann talks with the caller again", story(annAnswered,
			step{at: 10 * time.Second, in: toDanPlan, want: planStarted, state: ringing},
			step{at: 25 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb4}, ringDanXfer, WakeAt{At: t0.Add(40 * time.Second)}}, state: stage2},
			step{at: 39 * time.Second, in: Tick{}, state: stage2},
			step{at: 40 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb5}, bridge(la, lb2), WakeAt{}, Event{Type: "call.transfer_failed"}}, state: returned},
			// Dan's 200 crossed the CANCEL: his leg is hung up, the call stays Ann's.
			step{at: 41 * time.Second, in: Answered{Leg: lb5}, want: []Effect{EndLeg{Leg: lb5}}, state: returned},
			step{at: 42 * time.Second, in: toBob, want: []Effect{HoldMedia{Holder: lb2, Held: la},
				Originate{Leg: "k-b6", Contact: bobDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1003", Peer: la},
				WakeAt{At: t0.Add(72 * time.Second)}, Event{Type: "call.transferring"}},
				state: "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended b5:ended b6:trying"},
		)},
		{"a held call comes back held: the caller hears music until Ann resumes", story(annHeld,
			step{at: 12 * time.Second, in: toDanPlan, want: []Effect{
				Originate{Leg: lb4, Contact: bobDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1003", Peer: la},
				WakeAt{At: t0.Add(27 * time.Second)}, Event{Type: "call.transferring"}}, state: ringing},
			step{at: 27 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb4}, ringDanXfer, WakeAt{At: t0.Add(42 * time.Second)}}, state: stage2},
			step{at: 42 * time.Second, in: Tick{}, want: []Effect{EndLeg{Leg: lb5}, WakeAt{}, Event{Type: "call.transfer_failed"}}, state: heldAgain},
			step{at: 50 * time.Second, in: Control{Action: "resume", ByUser: "ann"}, want: []Effect{bridge(la, lb2), Event{Type: "call.resumed"}}, state: returned},
		)},
		{"every phone of the plan declines: Ann has the call back at once", story(annAnswered,
			step{at: 10 * time.Second, in: toDanPlan, want: planStarted, state: ringing},
			step{at: 12 * time.Second, in: Failed{Leg: lb4, Code: 486}, want: []Effect{ringDanXfer, WakeAt{At: t0.Add(40 * time.Second)}}, state: stage2},
			step{at: 13 * time.Second, in: Failed{Leg: lb5, Code: 603}, want: []Effect{bridge(la, lb2), WakeAt{}, Event{Type: "call.transfer_failed"}}, state: returned},
			step{at: 40 * time.Second, in: Tick{}, state: returned},
		)},
		{"an outside number rings through the outbound trunk", story(annAnswered,
			step{at: 10 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: outsideNumber, Route: &Lookup{IsE164: true, OutboundTrunk: &trunk}},
				want: []Effect{HoldMedia{Holder: lb2, Held: la},
					Originate{Leg: lb4, Contact: trunk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: outsideNumber, Peer: la},
					WakeAt{At: t0.Add(40 * time.Second)}, Event{Type: "call.transferring"}},
				state: ringing},
		)},
		{"a stage with nobody registered is skipped", story(annAnswered,
			step{at: 10 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: "1001", Route: &Lookup{Target: &dan, Parties: parties,
				UserContacts: map[string][]Contact{"dan": {danDesk}}, Plan: danPlan}},
				want: []Effect{HoldMedia{Holder: lb2, Held: la},
					Originate{Leg: lb4, Contact: danDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1001", Peer: la},
					WakeAt{At: t0.Add(40 * time.Second)}, Event{Type: "call.transferring"}},
				state: ringing},
		)},
		{"blind: Ann hangs up while Bob rings; Bob still gets the caller", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 11 * time.Second, in: Bye{Leg: lb2}, state: "held held-by=b2 answered=+5s | a:answered b1:ended b2:ended b3:ended b4:trying"},
			step{at: 12 * time.Second, in: Answered{Leg: lb4},
				want:  []Effect{AcceptAnswer{Leg: lb4}, bridge(la, lb4), WakeAt{}, Event{Type: "call.transferred"}},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"},
		)},
		{"blind, and nobody answers: the call ends", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 11 * time.Second, in: Bye{Leg: lb2}, state: "held held-by=b2 answered=+5s | a:answered b1:ended b2:ended b3:ended b4:trying"},
			step{at: 12 * time.Second, in: Failed{Leg: lb4, Code: 480},
				want: effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("answered",
					danIn("Answered by Ann for you", "answered"), viewerIn("ann", "Answered by you for Dan", "answered"), viewerIn("bob", "Answered by Ann for Dan", "answered"))...),
				state: "ended(answered) answered=+5s ended=+12s | a:ended b1:ended b2:ended b3:ended b4:ended"},
		)},
		{"blind, and the no-answer time passes: the phones stop and the call ends", story(annAnswered,
			step{at: 10 * time.Second, in: toBob, want: started, state: ringing},
			step{at: 11 * time.Second, in: Bye{Leg: lb2}, state: "held held-by=b2 answered=+5s | a:answered b1:ended b2:ended b3:ended b4:trying"},
			step{at: 40 * time.Second, in: Tick{},
				want: effs([]Effect{EndLeg{Leg: lb4}, EndLeg{Leg: la, Code: 480}}, ended("answered",
					danIn("Answered by Ann for you", "answered"), viewerIn("ann", "Answered by you for Dan", "answered"), viewerIn("bob", "Answered by Ann for Dan", "answered"))...),
				state: "ended(answered) answered=+5s ended=+40s | a:ended b1:ended b2:ended b3:ended b4:ended"},
		)},
		{"refusals: a stranger, a target nobody can ring, a call not answered", []step{
			annAnswered[0],
			{at: 2 * time.Second, in: toBob, err: "409 call_not_active", state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			annAnswered[1],
			{at: 6 * time.Second, in: Control{Action: "transfer", ByUser: "eve", To: "1003", Route: toBob.Route}, err: "403 forbidden", state: active},
			{at: 7 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: "1001", Route: &Lookup{Target: &dan}}, err: "409 unreachable", state: active},
			{at: 8 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: "1001", Route: &Lookup{Target: &dan, Parties: parties, Plan: danPlan}}, err: "409 unreachable", state: active},
			{at: 8 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: "1999"}, err: "404 not_found", state: active},
			{at: 8 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: "5550100", Route: &Lookup{OutboundTrunk: &trunk}}, err: "404 not_found", state: active},
			{at: 9 * time.Second, in: Tick{}, state: active},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}
