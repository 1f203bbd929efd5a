package call

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/actors/monitoring"
)

// Monitoring stories: a carrier calls Dan, Ann answers for him at +5s
// (annAnswered: the caller is k-a, Ann k-b2), and Sue, a supervisor whose
// group covers Ann, monitors the call. INTERFACE §5: who hears whom per
// mode, the refusals, takeover is final, monitoring ends when the
// monitored party leaves.
func TestMonitor(t *testing.T) {
	var (
		sue     = Party{UserID: "sue", Number: "1009", Display: "Sue"}
		sueDesk = Contact{URI: "sip:1009@192.0.2.9", Destination: "192.0.2.9:5060", Transport: "udp", NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
		all     = monitoring.Grant{Modes: monitoring.Modes, BargeTone: true}
		grants  = map[string]monitoring.Grant{"ann": all}
		active  = "active answered=+5s | a:answered b1:ended b2:answered b3:ended"
		ringing = "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:trying"
		up      = "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:answered"
		sipUp   = "active answered=+5s | a:answered b1:ended b2:answered b3:ended m1:answered"
		lm1     = "k-m1"
	)
	rest := func(mode string) Monitor {
		return Monitor{By: "sue", Mode: mode, Grants: grants, Party: sue, Contacts: []Contact{sueDesk}}
	}
	byPhone := func(mode string) Monitor {
		return Monitor{By: "sue", Mode: mode, Of: "ann", Grants: grants, Party: sue, Leg: lm1, NodeID: "n1", NodeAddr: "10.0.0.1:8090"}
	}
	ringSue := Originate{Leg: lb4, Contact: sueDesk, FromUser: "1002", Display: "Monitor Ann", ToUser: "1009", Peer: la}
	slot := func(mode string) PersistMonitor {
		if mode == "" {
			return PersistMonitor{}
		}
		return PersistMonitor{By: "sue", Mode: mode}
	}
	event := func(typ string) Event { return Event{Type: typ, Also: []string{"sue"}, Hide: []string{"ann"}} }
	listen := func(s string) Hear {
		return Hear{Routes: Routes([]Participant{{Leg: la, Mode: Talk}, {Leg: lb2, Mode: Talk}, {Leg: s, Mode: Listen}})}
	}
	whisper := func(s string) Hear {
		return Hear{Routes: Routes([]Participant{{Leg: la, Mode: Talk}, {Leg: lb2, Mode: Talk}, {Leg: s, Mode: Whisper, To: lb2}})}
	}
	sueListening := story(annAnswered,
		step{at: 10 * time.Second, in: rest("listen"), want: []Effect{slot("listen"), ringSue, Event{Type: "call.updated"}}, state: ringing},
		step{at: 12 * time.Second, in: Answered{Leg: lb4},
			want: []Effect{AcceptAnswer{Leg: lb4}, listen(lb4), event("call.monitor_started")}, state: up},
	)

	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"from REST: listen, whisper, barge, take over; takeover is final", story(sueListening,
			step{at: 13 * time.Second, in: rest("whisper"), want: []Effect{slot("whisper"), whisper(lb4), event("call.monitor_changed")}, state: up},
			step{at: 14 * time.Second, in: rest("whisper"), state: up},
			step{at: 15 * time.Second, in: rest("barge"),
				want: []Effect{slot("barge"), mix(la, lb2, lb4), Tone{Name: ToneEntry, Legs: []string{la, lb2}}, event("call.monitor_changed")}, state: up},
			step{at: 16 * time.Second, in: rest("takeover"),
				want:  []Effect{slot("takeover"), EndLeg{Leg: lb2}, bridge(la, lb4), event("call.monitor_changed")},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"},
			step{at: 17 * time.Second, in: rest("listen"), err: "409 taken_over", state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"},
			step{at: 18 * time.Second, in: Unmonitor{By: "sue"}, err: "409 taken_over", state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"},
			step{at: 20 * time.Second, in: Bye{Leg: lb4},
				want: effs([]Effect{EndLeg{Leg: la, Code: 480}}, ended("answered",
					danIn("Answered by Ann for you", "answered"), viewerIn("ann", "Answered by you for Dan", "answered"), viewerIn("bob", "Answered by Ann for Dan", "answered"),
					HistoryEntry{Owner: "sue", Direction: "inbound", Peer: outside.Number, Line: "dan", Label: "Taken over from Ann", Outcome: "answered"})...),
				state: "ended(answered) answered=+5s ended=+20s | a:ended b1:ended b2:ended b3:ended b4:ended"},
		)},
		{"from a phone: *1 is the supervisor's leg; DTMF 2 whispers, 4 takes over", story(annAnswered,
			step{at: 10 * time.Second, in: byPhone("listen"), want: []Effect{slot("listen"), Adopt{Leg: lm1, Peer: la}, listen(lm1), event("call.monitor_started")}, state: sipUp},
			step{at: 11 * time.Second, in: DTMF{Leg: lm1, Digit: "2"}, want: []Effect{slot("whisper"), whisper(lm1), event("call.monitor_changed")}, state: sipUp},
			step{at: 12 * time.Second, in: DTMF{Leg: lm1, Digit: "9"}, state: sipUp},
			step{at: 12 * time.Second, in: DTMF{Leg: lm1, Digit: ""}, state: sipUp},
			step{at: 12 * time.Second, in: DTMF{Leg: lm1, Digit: "*"}, state: sipUp},
			step{at: 12 * time.Second, in: DTMF{Leg: lm1, Digit: "0"}, state: sipUp},
			step{at: 13 * time.Second, in: DTMF{Leg: lm1, Digit: "4"}, want: []Effect{slot("takeover"), EndLeg{Leg: lb2}, bridge(la, lm1), event("call.monitor_changed")},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended m1:answered"},
			step{at: 14 * time.Second, in: DTMF{Leg: lm1, Digit: "1"}, state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended m1:answered"},
		)},
		{"the supervisor hangs up, or stops from REST: the sides are bridged again", story(sueListening,
			step{at: 13 * time.Second, in: Bye{Leg: lb4}, want: []Effect{slot(""), bridge(la, lb2), event("call.monitor_ended")},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
			step{at: 14 * time.Second, in: byPhone("listen"), want: []Effect{slot("listen"), Adopt{Leg: lm1, Peer: la}, listen(lm1), event("call.monitor_started")},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended m1:answered"},
			step{at: 15 * time.Second, in: Unmonitor{By: "bob"}, err: "409 not_monitoring", state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended m1:answered"},
			step{at: 16 * time.Second, in: Unmonitor{By: "sue"}, want: []Effect{slot(""), EndLeg{Leg: lm1}, bridge(la, lb2), event("call.monitor_ended")},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended m1:ended"},
		)},
		{"the monitored party leaves (Ann's transfer to Bob completes): monitoring ends", story(sueListening,
			step{at: 13 * time.Second, in: Control{Action: "transfer", ByUser: "ann", To: "1003", Route: &Lookup{Target: &bobD, Contacts: contacts["bob"]}},
				want: []Effect{HoldMedia{Holder: lb2, Held: la},
					Originate{Leg: "k-b5", Contact: bobDesk, FromUser: outside.Number, Display: "Carrier Caller", ToUser: "1003", Peer: la},
					WakeAt{At: t0.Add(43 * time.Second)}, Event{Type: "call.transferring"}},
				state: "held held-by=b2 answered=+5s | a:answered b1:ended b2:answered b3:ended b4:answered b5:trying"},
			step{at: 15 * time.Second, in: Answered{Leg: "k-b5"},
				want: []Effect{AcceptAnswer{Leg: "k-b5"}, Hear{Routes: Routes([]Participant{{Leg: la, Mode: Talk}, {Leg: "k-b5", Mode: Talk}, {Leg: lb4, Mode: Listen}})},
					EndLeg{Leg: lb2}, WakeAt{}, Event{Type: "call.transferred"},
					slot(""), EndLeg{Leg: lb4}, bridge(la, "k-b5"), event("call.monitor_ended")},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:ended b5:answered"},
		)},
		{"the group's notice: Ann hears the notice tone and gets the events", story(annAnswered,
			step{at: 10 * time.Second, in: Monitor{By: "sue", Mode: "whisper", Grants: map[string]monitoring.Grant{"ann": {Modes: monitoring.Modes, NotifyAgent: true}}, Party: sue, Leg: lm1, NodeID: "n1", NodeAddr: "10.0.0.1:8090"},
				want:  []Effect{slot("whisper"), Adopt{Leg: lm1, Peer: la}, whisper(lm1), Tone{Name: ToneNotice, Legs: []string{lb2}}, Event{Type: "call.monitor_started", Also: []string{"sue"}}},
				state: sipUp},
			step{at: 11 * time.Second, in: DTMF{Leg: lm1, Digit: "3"}, want: []Effect{slot("barge"), mix(la, lb2, lm1), Event{Type: "call.monitor_changed", Also: []string{"sue"}}}, state: sipUp},
		)},
		{"refusals", []step{
			annAnswered[0],
			{at: 1 * time.Second, in: rest("listen"), err: "409 not_active", state: "ringing until=+30s | a:trying b1:trying b2:trying b3:trying"},
			annAnswered[1],
			{at: 6 * time.Second, in: Monitor{By: "sue", Mode: "listen", Party: sue, Contacts: []Contact{sueDesk}}, err: "403 not_allowed", state: active},
			{at: 6 * time.Second, in: Monitor{By: "sue", Mode: "listen", Of: "dan", Grants: grants, Party: sue, Contacts: []Contact{sueDesk}}, err: "403 not_allowed", state: active},
			{at: 6 * time.Second, in: rest("shout"), err: "400 invalid_field", state: active},
			{at: 6 * time.Second, in: rest("takeover"), err: "409 not_monitoring", state: active},
			{at: 6 * time.Second, in: Monitor{By: "sue", Mode: "barge", Grants: map[string]monitoring.Grant{"ann": {Modes: []monitoring.Mode{monitoring.Listen}}}, Party: sue, Contacts: []Contact{sueDesk}}, err: "403 mode_not_allowed", state: active},
			{at: 6 * time.Second, in: Monitor{By: "sue", Mode: "listen", Grants: grants, Party: sue}, err: "409 no_devices", state: active},
			{at: 6 * time.Second, in: Monitor{By: "sue", Mode: "listen", Grants: grants, Party: sue, Leg: lm1, PartySRTP: true}, err: "488 srtp_required", state: active},
			{at: 6 * time.Second, in: Monitor{By: "sue", Mode: "listen", Grants: grants, Party: sue, Leg: lm1, Draining: true}, err: "503 draining", state: active},
			{at: 7 * time.Second, in: rest("listen"), want: []Effect{slot("listen"), ringSue, Event{Type: "call.updated"}}, state: ringing},
			{at: 8 * time.Second, in: Monitor{By: "tom", Mode: "listen", Grants: grants, Party: Party{UserID: "tom"}, Contacts: []Contact{sueDesk}}, err: "409 already_monitored", state: ringing},
			{at: 8 * time.Second, in: Monitor{By: "tom", Mode: "takeover", Grants: grants, Party: Party{UserID: "tom"}, Contacts: []Contact{sueDesk}}, err: "409 already_monitored", state: ringing},
			{at: 9 * time.Second, in: rest("takeover"), err: "409 not_monitoring", state: ringing},
			{at: 10 * time.Second, in: Failed{Leg: lb4, Code: 486}, want: []Effect{slot(""), Event{Type: "call.updated"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
		}},
		{"the slot is lost (a stale twin holds it): the supervisor's phone stops with 486", story(annAnswered,
			step{at: 7 * time.Second, in: rest("listen"), want: []Effect{slot("listen"), ringSue, Event{Type: "call.updated"}}, state: ringing},
			step{at: 8 * time.Second, in: MonitorLost{}, want: []Effect{EndLeg{Leg: lb4, Code: 486}, Event{Type: "call.updated"}},
				state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
			step{at: 9 * time.Second, in: MonitorLost{}, state: "active answered=+5s | a:answered b1:ended b2:answered b3:ended b4:ended"},
		)},
		{"a takeover whose slot is lost leaves nobody with the caller: the call ends", story(sueListening,
			step{at: 16 * time.Second, in: rest("takeover"), want: []Effect{slot("takeover"), EndLeg{Leg: lb2}, bridge(la, lb4), event("call.monitor_changed")},
				state: "active answered=+5s | a:answered b1:ended b2:ended b3:ended b4:answered"},
			step{at: 17 * time.Second, in: MonitorLost{},
				want: effs([]Effect{EndLeg{Leg: la, Code: 480}, EndLeg{Leg: lb4, Code: 480}}, ended("failed",
					danIn("Answered by Ann for you", "failed"), viewerIn("ann", "Answered by you for Dan", "failed"), viewerIn("bob", "Answered by Ann for Dan", "failed"))...),
				state: "ended(failed) answered=+5s ended=+17s | a:ended b1:ended b2:ended b3:ended b4:ended"},
		)},
		{"a locked call refuses monitoring", story(annAnswered,
			step{at: 6 * time.Second, in: Control{Action: "lock", ByUser: "dan", Access: ownerAccess}, want: []Effect{PersistLock{Locked: true}, Event{Type: "call.updated"}},
				state: "active locked answered=+5s | a:answered b1:ended b2:answered b3:ended"},
			step{at: 7 * time.Second, in: rest("listen"), err: "409 call_locked", state: "active locked answered=+5s | a:answered b1:ended b2:answered b3:ended"},
		)},
	} {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}
