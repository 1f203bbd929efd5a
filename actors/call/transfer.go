package call

import "time"

// Transfer: the other side hears music while the target's ring plan rings;
// the transferor leaves on answer, or has the call back when nobody answers.

// transfer hands the call to another line: the party who stays hears music
// while the target's ring plan rings, stage by stage within the no-answer
// time as a call to the target would; when one answers it is bridged and
// the transferor's leg ends. The plan was computed with the transferor as
// the caller, so a delegate reaches a delegator who routes everybody else
// away only from the VIP list (001 L18).
func (c *Call) transfer(in Control, now time.Time, s Settings) ([]Effect, error) {
	var from *Leg
	if in.Admin {
		from = c.Leg(c.Sides[1])
	} else if l := c.partyLeg(in.ByUser); l != nil && c.isSide(l.ID) {
		from = l
	}
	plan, contacts, parties := in.Plan, in.UserContacts, in.Parties
	if plan == nil {
		who := in.Party.Label()
		plan = &RingPlan{Stages: []RingStage{{Users: []string{who}}}}
		contacts, parties = map[string][]Contact{who: in.Contacts}, map[string]Party{who: in.Party}
	}
	switch {
	case c.State != Active && c.State != Held:
		return nil, &Refusal{Status: 409, Code: "call_not_active", Message: "only an answered call can be transferred"}
	case from == nil:
		return nil, &Refusal{Status: 403, Code: "forbidden", Message: "only a party to the call or an admin may transfer it"}
	case c.Pickup != nil || c.Joined != "":
		return nil, &Refusal{Status: 409, Code: "already_picked_up", Message: "the call is already being picked up or transferred"}
	case stageAfter(*plan, -1, contacts) == len(plan.Stages):
		return nil, &Refusal{Status: 409, Code: "unreachable", Message: "nobody the transfer target's ring plan names can be rung now"}
	}
	keep := c.other(from.ID)
	c.Pickup = &Pickup{By: in.ByUser, Transfer: true, Keep: keep.ID, Drop: from.ID, WasHeld: c.State == Held,
		Plan: *plan, Stage: -1, ringStart: now, contacts: contacts, parties: parties}
	var effs []Effect
	if c.State == Active || c.HeldBy != from.ID {
		effs = append(effs, HoldMedia{Holder: from.ID, Held: keep.ID})
	}
	c.State, c.HeldBy = Held, from.ID
	effs = append(effs, c.transferStage(now, s)...)
	return append(effs, wakeAt(c.Pickup.StageUntil, c.Pickup.Until), Event{Type: "call.transferring"}), nil
}

// transferStage rings the next stage of the transfer target's plan that
// has somebody to ring, offering the codecs of the party who stays.
func (c *Call) transferStage(now time.Time, s Settings) []Effect {
	p := c.Pickup
	if p.Stage = stageAfter(p.Plan, p.Stage, p.contacts); p.Stage == len(p.Plan.Stages) {
		return nil
	}
	keep := c.Leg(p.Keep)
	var effs []Effect
	for _, u := range p.Plan.Stages[p.Stage].Users {
		party := p.parties[u]
		for _, ct := range p.contacts[u] {
			l := &Leg{ID: c.nextLegID(), Role: Callee, Party: party, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
			c.Legs = append(c.Legs, l)
			p.Legs = append(p.Legs, l.ID)
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
	p.StageUntil, p.Until = stageEnd(p.Plan, p.Stage, p.contacts, now, p.ringStart, s.NoAnswer)
	return effs
}

// transferTick: the transfer's ringing stage is over (its phones stop and
// the next stage rings), or its no-answer time has passed (the phones stop
// and the transferor gets the call back).
func (c *Call) transferTick(now time.Time, s Settings) []Effect {
	p := c.Pickup
	stageOver := !p.StageUntil.IsZero() && !now.Before(p.StageUntil)
	if !stageOver && (p.Until.IsZero() || now.Before(p.Until)) {
		return nil
	}
	var effs []Effect
	for _, id := range p.Legs {
		if l := c.Leg(id); l.State != LegEnded {
			l.State = LegEnded
			effs = append(effs, EndLeg{Leg: id})
		}
	}
	if stageOver {
		effs = append(effs, c.transferStage(now, s)...)
		return append(effs, wakeAt(p.StageUntil, p.Until))
	}
	return append(effs, c.transferFailed(now)...)
}

// transferFailed: nobody took the transfer (no answer in time, or every
// phone declined). The transferor has the call back as it was before the
// transfer: talking again, or holding it (the other side still hears
// music) for them to resume; if they already hung up, the call is over.
func (c *Call) transferFailed(now time.Time) []Effect {
	p := c.Pickup
	c.Pickup = nil
	if d := c.Leg(p.Drop); d == nil || d.State == LegEnded {
		return c.hangupAll("answered", now)
	}
	if p.WasHeld {
		return []Effect{WakeAt{}, Event{Type: "call.transfer_failed"}}
	}
	c.State, c.HeldBy = Active, ""
	return []Effect{BridgeMedia{A: p.Keep, B: p.Drop}, WakeAt{}, Event{Type: "call.transfer_failed"}}
}
