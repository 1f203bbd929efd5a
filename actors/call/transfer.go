package call

import (
	"slices"
	"time"
)

// Transfer: the other side hears music while the target's ring plan rings;
// the transferor leaves on answer, or has the call back when nobody answers.

// Transfer is a transfer of this call under way: Keep stays on the call and
// hears music while the target rings; Drop (the transferor) leaves once the
// target answers.
type Transfer struct {
	Keep, Drop string
	Legs       []string // the target's ringing legs
	WasHeld    bool     // the call was on hold (by Drop) before the transfer
	// Ring steps the target's ring plan as a call to the target would; at
	// its end the transferor gets the call back.
	Ring Ringer
}

// transfer hands the call to another line: the party who stays hears music
// while the target's ring plan rings, stage by stage within the no-answer
// time as a call to the target would; when one answers it is bridged and
// the transferor's leg ends. The plan was computed with the transferor as
// the caller, so a delegate reaches a delegator who routes everybody else
// away only from the VIP list (001 L18).
func (c *Call) transfer(in Control, now time.Time, s Settings) ([]Effect, error) {
	var from *Leg
	if in.Admin {
		from = c.Leg(c.side(1))
	} else if l := c.partyLeg(in.ByUser); l != nil && c.isSide(l.ID) {
		from = l
	}
	ring, r := transferRinger(in, now)
	switch {
	case r != nil:
		return nil, r
	case c.State != Active && c.State != Held:
		return nil, &Refusal{Status: 409, Code: "call_not_active", Message: "only an answered call can be transferred"}
	case from == nil:
		return nil, &Refusal{Status: 403, Code: "forbidden", Message: "only a party to the call or an admin may transfer it"}
	case c.Pickup != nil || c.Transfer != nil || c.joined() != "":
		return nil, &Refusal{Status: 409, Code: "already_picked_up", Message: "the call is already being picked up or transferred"}
	case !ring.more():
		return nil, &Refusal{Status: 409, Code: "unreachable", Message: "nobody the transfer target's ring plan names can be rung now"}
	}
	keep := c.other(from.ID)
	c.Transfer = &Transfer{Keep: keep.ID, Drop: from.ID, WasHeld: c.State == Held, Ring: ring}
	var effs []Effect
	if c.State == Active || c.HeldBy != from.ID {
		effs = append(effs, HoldMedia{Holder: from.ID, Held: keep.ID})
	}
	c.State, c.HeldBy = Held, from.ID
	effs = append(effs, c.transferStage(now, s)...)
	return append(effs, c.Transfer.Ring.wake(), Event{Type: "call.transferring"}), nil
}

// transferRinger rings what the transfer's target routes to: a user's ring
// plan (or the user alone), else an outside number through the outbound
// trunk.
func transferRinger(in Control, now time.Time) (Ringer, *Refusal) {
	lk := in.Route
	switch {
	case lk == nil:
		return Ringer{}, &Refusal{Status: 404, Code: "not_found", Message: "the transfer target " + in.To + " is not known"}
	case lk.Target != nil && lk.Plan != nil:
		return newRinger(*lk.Plan, lk.UserContacts, lk.Parties, now), nil
	case lk.Target != nil:
		return alone(*lk.Target, lk.Contacts, now), nil
	case lk.IsE164 && lk.OutboundTrunk != nil:
		return alone(Party{Number: in.To}, []Contact{*lk.OutboundTrunk}, now), nil
	}
	return Ringer{}, &Refusal{Status: 404, Code: "not_found", Message: "the transfer target " + in.To + " is not known"}
}

// transferStage rings the next stage of the transfer target's plan that
// has somebody to ring, offering the codecs of the party who stays.
func (c *Call) transferStage(now time.Time, s Settings) []Effect {
	t := c.Transfer
	keep := c.Leg(t.Keep)
	var effs []Effect
	for _, o := range t.Ring.next(now, s.NoAnswer) {
		party := o.Party
		for _, ct := range o.Contacts {
			l := &Leg{ID: c.nextLegID(), Role: Callee, Party: party, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
			c.Legs = append(c.Legs, l)
			t.Legs = append(t.Legs, l.ID)
			o := Originate{Leg: l.ID, Contact: ct, FromUser: keep.Party.Number, Display: keep.Party.Display, ToUser: party.Number, Peer: keep.ID}
			if o.FromUser == "" {
				o.FromUser = keep.Party.UserID
			}
			if o.ToUser == "" {
				o.ToUser = party.UserID
			}
			effs = append(effs, o)
		}
	}
	return effs
}

// transferTick: the transfer's ringing stage is over (its phones stop and
// the next stage rings), or its no-answer time has passed (the phones stop
// and the transferor gets the call back).
func (c *Call) transferTick(now time.Time, s Settings) []Effect {
	t := c.Transfer
	stageOver, over := t.Ring.due(now)
	if !stageOver && !over {
		return nil
	}
	effs := c.stopLegs(t.Legs, "")
	if stageOver && !over {
		effs = append(effs, c.transferStage(now, s)...)
		return append(effs, t.Ring.wake())
	}
	return append(effs, c.transferFailed(now)...)
}

// transferRings: leg is one of the transfer target's phones.
func (c *Call) transferRings(leg string) bool {
	return c.Transfer != nil && slices.Contains(c.Transfer.Legs, leg)
}

// transferred: one of the target's phones answered. Its other phones stop,
// it talks with the party who stays, and the transferor's leg ends.
func (c *Call) transferred(l *Leg) []Effect {
	t := c.Transfer
	c.Transfer = nil
	l.State = LegAnswered
	effs := append(c.stopLegs(t.Legs, l.ID), AcceptAnswer{Leg: l.ID})
	c.setSides(t.Keep, l.ID)
	c.State, c.HeldBy = Active, ""
	effs = append(effs, c.hear())
	if d := c.Leg(t.Drop); d != nil && d.State != LegEnded {
		d.State = LegEnded
		effs = append(effs, EndLeg{Leg: d.ID})
	}
	return append(effs, WakeAt{}, Event{Type: "call.transferred"})
}

// transferLegGone: one of the target's phones failed. Once all of its stage
// have declined, the next stage rings now, or the transferor has the call
// back.
func (c *Call) transferLegGone(now time.Time, s Settings) []Effect {
	t := c.Transfer
	switch {
	case c.anyUp(t.Legs):
		return nil
	case t.Ring.more():
		return append(c.transferStage(now, s), t.Ring.wake())
	}
	return c.transferFailed(now)
}

// transferFailed: nobody took the transfer (no answer in time, or every
// phone declined). The transferor has the call back as it was before the
// transfer: talking again, or holding it (the other side still hears
// music) for them to resume; if they already hung up, the call is over.
func (c *Call) transferFailed(now time.Time) []Effect {
	t := c.Transfer
	c.Transfer = nil
	if d := c.Leg(t.Drop); d == nil || d.State == LegEnded {
		return c.hangupAll("answered", now)
	}
	if t.WasHeld {
		return []Effect{WakeAt{}, Event{Type: "call.transfer_failed"}}
	}
	c.State, c.HeldBy = Active, ""
	return []Effect{c.hear(), WakeAt{}, Event{Type: "call.transfer_failed"}}
}
