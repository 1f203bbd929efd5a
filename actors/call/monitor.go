package call

import (
	"slices"
	"time"

	"github.com/switchboard/switchboard/actors/monitoring"
)

// Monitoring (seed 004): a supervisor listens to, whispers to, barges into
// or takes over the call of a party they may monitor. The supervisor is a
// participant whose mode says what they hear and who hears them
// (parties.go); who may monitor whom is the monitoring core's rule, whose
// answer for each party arrives here as a monitoring.Grant.
//
// What happens to monitoring when the call changes: hold and resume keep
// it (the supervisor hears what the sides hear); a join keeps it (the third
// party is one more talker); when the monitored party leaves the call (a
// transfer they make completes, a pickup takes their held call, they hang
// up) monitoring ends and the supervisor's leg gets a BYE. A takeover is
// final: the supervisor is a side of the call from then on.

// Monitoring modes, as the monitoring rule names them; monitoring.Modes
// lists them in the order the DTMF digits 1-4 select them.
const (
	ModeListen   = string(monitoring.Listen)
	ModeWhisper  = string(monitoring.Whisper)
	ModeBarge    = string(monitoring.Barge)
	ModeTakeover = string(monitoring.Takeover)
)

// The tones monitoring plays (generated patterns, see the README).
const (
	ToneEntry  = "entry"  // the sides hear a supervisor barge in
	ToneNotice = "notice" // the monitored party hears monitoring start
)

// Monitoring is a supervisor on the call, or ringing to join it.
type Monitoring struct {
	By      string // the supervisor
	Target  string // the monitored party's leg
	Leg     string // the supervisor's leg once it is up
	Ringing []string
	Mode    string
	Since   time.Time
	Grant   monitoring.Grant
}

// Monitor asks to monitor the call in Mode, or to switch to Mode while
// monitoring it: from REST (the supervisor's Contacts ring), from a phone
// (*1/*2/*3<ext>: the INVITE is Leg) or from the supervisor's DTMF.
type Monitor struct {
	By   string
	Mode string
	// Of is the party asked for (*1<ext>: ext's user); "" takes the side
	// that answered, else the caller's.
	Of string
	// Grants holds the rule's answer for each user on the call's sides
	// that By may monitor; a user missing from it may not be monitored.
	Grants   map[string]monitoring.Grant
	Party    Party // By as a party
	Leg      string
	NodeID   string
	NodeAddr string
	Contacts []Contact
	// PartySRTP: By's policy requires SRTP; OfferSRTP: Leg's offer is SRTP.
	PartySRTP bool
	OfferSRTP bool
	Draining  bool // Leg arrived at a node that drains
}

// Unmonitor ends monitoring (DELETE …/monitor): By must be the supervisor
// unless Admin.
type Unmonitor struct {
	By    string
	Admin bool
}

// monitor starts monitoring, or switches the mode of the supervisor's
// monitoring.
func (c *Call) monitor(in Monitor, now time.Time) ([]Effect, error) {
	if !monitoring.Mode(in.Mode).Valid() {
		return nil, &Refusal{Status: 400, Code: "invalid_field", Message: "mode: must be one of listen, whisper, barge, takeover"}
	}
	if m := c.Monitor; m != nil && m.By == in.By && in.Leg == "" {
		return c.switchMode(in.Mode)
	}
	if in.Leg != "" && in.Draining {
		return nil, &Refusal{Status: 503, Code: "draining", Message: "this node is draining and takes no new calls"}
	}
	// A call not answered yet has no party to monitor: not_active comes
	// before the rule.
	target, grant, ok := c.monitored(in)
	switch {
	case c.State != Active:
		return nil, &Refusal{Status: 409, Code: "not_active", Message: "only an active call can be monitored"}
	case !ok:
		return nil, &Refusal{Status: 403, Code: "not_allowed", Message: "you may not monitor the parties of this call"}
	case c.Locked:
		return nil, &Refusal{Status: 409, Code: "call_locked", Message: "the line's owner has locked this call"}
	case c.Monitor != nil:
		return nil, &Refusal{Status: 409, Code: "already_monitored", Message: "another supervisor is monitoring this call"}
	case in.Mode == ModeTakeover:
		return nil, &Refusal{Status: 409, Code: "not_monitoring", Message: "a takeover is made while listening, whispering or barging"}
	case !grant.Allows(monitoring.Mode(in.Mode)):
		return nil, &Refusal{Status: 403, Code: "mode_not_allowed", Message: "your monitoring group does not allow " + in.Mode}
	case in.Leg == "" && len(in.Contacts) == 0:
		return nil, &Refusal{Status: 409, Code: "no_devices", Message: "the supervisor has no registered device to ring"}
	case in.Leg != "" && plainRefused(in.PartySRTP, in.OfferSRTP):
		return nil, &Refusal{Status: 488, Code: "srtp_required", Message: srtpWarning}
	}
	c.Monitor = &Monitoring{By: in.By, Target: target.ID, Mode: in.Mode, Grant: grant}
	slot := PersistMonitor{By: in.By, Mode: in.Mode}
	party := in.Party
	if party.UserID == "" {
		party.UserID = in.By
	}
	peer := c.other(target.ID).ID
	if in.Leg != "" {
		l := &Leg{ID: in.Leg, Role: Supervisor, Party: party, State: LegAnswered, NodeID: in.NodeID, NodeAddr: in.NodeAddr}
		c.Legs = append(c.Legs, l)
		return append([]Effect{slot}, c.monitorUp(l, Adopt{Leg: l.ID, Peer: peer}, now)...), nil
	}
	effs := []Effect{slot}
	for _, ct := range in.Contacts {
		l := &Leg{ID: c.nextLegID(), Role: Supervisor, Party: party, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
		c.Legs = append(c.Legs, l)
		c.Monitor.Ringing = append(c.Monitor.Ringing, l.ID)
		o := Originate{Leg: l.ID, Contact: ct, FromUser: c.peerOf(target.Party), Display: "Monitor " + c.name(target.Party.Label()), ToUser: party.Number, Peer: peer}
		if o.ToUser == "" {
			o.ToUser = party.UserID
		}
		effs = append(effs, o)
	}
	return append(effs, Event{Type: "call.updated"}), nil
}

// monitored picks the party to monitor: the one asked for, else the side
// that answered, else the caller's; ok is false when By may monitor none.
func (c *Call) monitored(in Monitor) (*Leg, monitoring.Grant, bool) {
	for _, id := range []string{c.side(1), c.side(0)} {
		l := c.Leg(id)
		if l == nil || l.Party.UserID == "" || (in.Of != "" && l.Party.UserID != in.Of) {
			continue
		}
		if g, ok := in.Grants[l.Party.UserID]; ok {
			return l, g, true
		}
	}
	return nil, monitoring.Grant{}, false
}

// monitorUp: the supervisor's leg is up (media: AcceptAnswer for a device
// we rang, Adopt for an INVITE). Their other devices stop, they take part
// in their mode, the monitored party hears the notice when the group asks.
func (c *Call) monitorUp(l *Leg, media Effect, now time.Time) []Effect {
	m := c.Monitor
	l.State = LegAnswered
	m.Leg, m.Since = l.ID, now
	effs := append(c.stopLegs(m.Ringing, l.ID), media)
	m.Ringing = nil
	c.add(m.participant())
	effs = append(effs, c.hear())
	if m.Mode == ModeBarge && m.Grant.BargeTone {
		effs = append(effs, c.entryTone())
	}
	if m.Grant.NotifyAgent {
		effs = append(effs, Tone{Name: ToneNotice, Legs: []string{m.Target}})
	}
	return append(effs, c.monitorEvent("call.monitor_started"))
}

// participant is the supervisor as their mode makes them take part.
func (m *Monitoring) participant() Participant {
	switch m.Mode {
	case ModeWhisper:
		return Participant{Leg: m.Leg, Mode: Whisper, To: m.Target}
	case ModeBarge:
		return Participant{Leg: m.Leg, Mode: Talk}
	}
	return Participant{Leg: m.Leg, Mode: Listen}
}

// switchMode changes the supervisor's mode at once; a takeover ends the
// monitored party's leg and leaves the supervisor talking in their place,
// for good.
func (c *Call) switchMode(mode string) ([]Effect, error) {
	m := c.Monitor
	switch {
	case m.Mode == ModeTakeover:
		return nil, &Refusal{Status: 409, Code: "taken_over", Message: "the call has been taken over; monitoring is over"}
	case !m.Grant.Allows(monitoring.Mode(mode)):
		return nil, &Refusal{Status: 403, Code: "mode_not_allowed", Message: "your monitoring group does not allow " + mode}
	case mode == ModeTakeover && m.Leg == "":
		return nil, &Refusal{Status: 409, Code: "not_monitoring", Message: "a takeover is made while listening, whispering or barging"}
	case mode == m.Mode:
		return nil, nil
	}
	m.Mode = mode
	slot := PersistMonitor{By: m.By, Mode: mode}
	if m.Leg == "" {
		return []Effect{slot, c.monitorEvent("call.monitor_changed")}, nil // the supervisor's phones still ring
	}
	if mode == ModeTakeover {
		return append([]Effect{slot}, c.takeover()...), nil
	}
	c.drop(m.Leg)
	c.add(m.participant())
	effs := []Effect{slot, c.hear()}
	if mode == ModeBarge && m.Grant.BargeTone {
		effs = append(effs, c.entryTone())
	}
	return append(effs, c.monitorEvent("call.monitor_changed")), nil
}

// takeover: the monitored party's leg ends and the supervisor talks with
// the other side in their place; the call's answerer is the supervisor now.
func (c *Call) takeover() []Effect {
	m := c.Monitor
	c.drop(m.Leg)
	c.replaceSide(m.Target, m.Leg)
	var effs []Effect
	if g := c.Leg(m.Target); g != nil && g.State != LegEnded {
		g.State = LegEnded
		effs = append(effs, EndLeg{Leg: g.ID})
	}
	if c.HeldBy == m.Target {
		c.State, c.HeldBy = Active, ""
	}
	return append(effs, c.hear(), c.monitorEvent("call.monitor_changed"))
}

// entryTone: both sides hear that a supervisor barged in.
func (c *Call) entryTone() Tone {
	return Tone{Name: ToneEntry, Legs: []string{c.side(0), c.side(1)}}
}

// unmonitor ends monitoring from REST: the supervisor's leg gets a BYE.
func (c *Call) unmonitor(in Unmonitor) ([]Effect, error) {
	m := c.Monitor
	switch {
	case m == nil || (!in.Admin && m.By != in.By):
		return nil, &Refusal{Status: 409, Code: "not_monitoring", Message: "you are not monitoring this call"}
	case m.Mode == ModeTakeover:
		return nil, &Refusal{Status: 409, Code: "taken_over", Message: "the call has been taken over; monitoring is over"}
	}
	return c.monitorEnded(), nil
}

// monitorEnded stops monitoring: the supervisor's phones stop or their leg
// ends, and the sides hear each other as before.
func (c *Call) monitorEnded() []Effect {
	m := c.Monitor
	c.Monitor = nil
	effs := append([]Effect{PersistMonitor{}}, c.stopLegs(m.Ringing, "")...)
	if m.Leg != "" {
		effs = append(effs, c.stopLegs([]string{m.Leg}, "")...)
		c.drop(m.Leg)
		if c.State != Ended {
			effs = append(effs, c.hear())
		}
		return append(effs, c.monitorEventOf(m, "call.monitor_ended"))
	}
	return append(effs, Event{Type: "call.updated"})
}

// monitorLost undoes monitoring whose slot could not be written: the
// supervisor's phones stop, or their leg ends (486: the slot is taken). A
// takeover whose slot was lost had already ended the monitored party's
// leg: with neither of them left, the call ends.
func (c *Call) monitorLost(now time.Time) []Effect {
	m := c.Monitor
	if m == nil {
		return nil
	}
	c.Monitor = nil
	if m.Mode == ModeTakeover {
		return c.hangupAll("failed", now)
	}
	var effs []Effect
	for _, id := range append(m.Ringing, m.Leg) {
		if l := c.Leg(id); l != nil && l.State != LegEnded {
			l.State = LegEnded
			effs = append(effs, EndLeg{Leg: id, Code: 486})
		}
	}
	if c.takesPart(m.Leg) {
		c.drop(m.Leg)
		effs = append(effs, c.hear())
	}
	return append(effs, Event{Type: "call.updated"})
}

// supervisorGone: a leg of the supervisor failed or hung up. A device that
// lost the race is nothing; the last ringing device, or the supervisor's
// leg, ends monitoring.
func (c *Call) supervisorGone(l *Leg) []Effect {
	m := c.Monitor
	switch {
	case m == nil:
		return nil
	case l.ID == m.Leg:
		return c.monitorEnded()
	case m.Leg == "" && slices.Contains(m.Ringing, l.ID) && !c.anyUp(m.Ringing):
		return c.monitorEnded()
	}
	return nil
}

// monitoredLeft ends monitoring once the monitored party is no longer on
// the call (it ran after every step that changes the call).
func (c *Call) monitoredLeft() []Effect {
	m := c.Monitor
	if m == nil || m.Mode == ModeTakeover || c.State == Ended {
		return nil
	}
	if g := c.Leg(m.Target); g != nil && g.State != LegEnded && c.takesPart(g.ID) {
		return nil
	}
	return c.monitorEnded()
}

// monitorDigit: the supervisor's DTMF 1-4 switch the mode.
func (c *Call) monitorDigit(digit string) []Effect {
	if len(digit) != 1 || digit[0] < '1' || int(digit[0]-'1') >= len(monitoring.Modes) {
		return nil
	}
	i := int(digit[0] - '1')
	effs, err := c.switchMode(string(monitoring.Modes[i]))
	if err != nil {
		return nil // a mode the group does not allow, or after a takeover: the digit is just audio
	}
	return effs
}

// monitorEvent is a monitoring event: the supervisor gets it besides those
// who see the call, the monitored party only when the group notifies them.
func (c *Call) monitorEvent(typ string) Event { return c.monitorEventOf(c.Monitor, typ) }

func (c *Call) monitorEventOf(m *Monitoring, typ string) Event {
	e := Event{Type: typ, Also: []string{m.By}}
	if g := c.monitoredUser(m); !m.Grant.NotifyAgent && g != "" {
		e.Hide = []string{g}
	}
	return e
}

// monitoredUser is the user m monitors (or monitored, after a takeover).
func (c *Call) monitoredUser(m *Monitoring) string {
	if g := c.Leg(m.Target); g != nil {
		return g.Party.UserID
	}
	return ""
}

// Monitors is how the call shows its supervisor (none, or one).
func (c *Call) Monitors() []Monitoring {
	if c.Monitor == nil || c.Monitor.Leg == "" {
		return nil
	}
	return []Monitoring{*c.Monitor}
}
