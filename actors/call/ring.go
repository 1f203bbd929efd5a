package call

import (
	"time"

	"github.com/switchboard/switchboard/actors/delegator"
)

// Ring stepping: who rings, stage after stage, until someone answers or the
// no-answer time runs out. A call to a user and a transfer step the same
// Ringer; what rings is said as offers, and a driver outside the call (a
// queue offering a call to one member at a time) says the same with the
// Offer and Withdraw inputs.

// RingPlan is who rings, in what order, for how long: the delegator's
// plan, rung as it is.
type RingPlan = delegator.Plan

// RingStage is users who ring together for Seconds (0: until NoAnswer).
type RingStage = delegator.Stage

// Offer is one party to ring, on each of its contacts.
type Offer struct {
	Party    Party
	Contacts []Contact
}

// Ringer steps a ring plan. Stage rings until StageUntil; the last stage
// rings until Until, the no-answer time counted from the first stage.
type Ringer struct {
	Plan       RingPlan
	Stage      int // -1 before the first stage
	StageUntil time.Time
	Until      time.Time
	start      time.Time
	contacts   map[string][]Contact
	parties    map[string]Party
}

// newRinger is a ringer for plan whose users are parties, ringing on
// contacts; it has not rung yet.
func newRinger(plan RingPlan, contacts map[string][]Contact, parties map[string]Party, now time.Time) Ringer {
	return Ringer{Plan: plan, Stage: -1, start: now, contacts: contacts, parties: parties}
}

// alone is the ringer of one party on its contacts.
func alone(p Party, contacts []Contact, now time.Time) Ringer {
	who := p.Label()
	return newRinger(RingPlan{Stages: []RingStage{{Users: []string{who}}}},
		map[string][]Contact{who: contacts}, map[string]Party{who: p}, now)
}

// more: a stage after the ringing one has somebody to ring.
func (r *Ringer) more() bool { return r.after(r.Stage) < len(r.Plan.Stages) }

// after is the first stage after i with somebody to ring on contacts, or
// len(Stages) when there is none.
func (r *Ringer) after(i int) int {
	for j := i + 1; j < len(r.Plan.Stages); j++ {
		for _, u := range r.Plan.Stages[j].Users {
			if len(r.contacts[u]) > 0 {
				return j
			}
		}
	}
	return len(r.Plan.Stages)
}

// next moves to the next stage with somebody to ring and says who rings
// (nil: nobody is left). Every stage but the last lasts its Seconds; the
// last rings until the no-answer time, and at least its Seconds.
func (r *Ringer) next(now time.Time, noAnswer time.Duration) []Offer {
	if r.Stage = r.after(r.Stage); r.Stage == len(r.Plan.Stages) {
		return nil
	}
	var offers []Offer
	for _, u := range r.Plan.Stages[r.Stage].Users {
		if cts := r.contacts[u]; len(cts) > 0 {
			offers = append(offers, Offer{Party: r.parties[u], Contacts: cts})
		}
	}
	ring := time.Duration(r.Plan.Stages[r.Stage].Seconds) * time.Second
	if ring > 0 && r.more() {
		r.StageUntil, r.Until = now.Add(ring), time.Time{}
		return offers
	}
	r.StageUntil, r.Until = time.Time{}, r.start.Add(noAnswer)
	if end := now.Add(ring); end.After(r.Until) {
		r.Until = end
	}
	return offers
}

// due says what a tick at now means: the ringing stage is over, or all
// ringing is.
func (r *Ringer) due(now time.Time) (stageOver, over bool) {
	return !r.StageUntil.IsZero() && !now.Before(r.StageUntil), !r.Until.IsZero() && !now.Before(r.Until)
}

// stop: nothing rings any more.
func (r *Ringer) stop() { r.StageUntil, r.Until = time.Time{}, time.Time{} }

// wake is the next wake-up: the stage's end or the ringing's, whichever
// comes first (zero: none).
func (r *Ringer) wake() WakeAt {
	if !r.StageUntil.IsZero() && (r.Until.IsZero() || r.StageUntil.Before(r.Until)) {
		return WakeAt{At: r.StageUntil}
	}
	return WakeAt{At: r.Until}
}

// ---- the call's own ringing -----------------------------------------------------

// ringOffers rings each offer's contacts as callee legs of the call.
func (c *Call) ringOffers(offers []Offer) []Effect {
	var effs []Effect
	for _, o := range offers {
		for _, ct := range o.Contacts {
			effs = append(effs, c.addCallee(ct, o.Party, false))
		}
	}
	return effs
}

// nextStage rings the next stage of the plan that has somebody to ring.
func (c *Call) nextStage(now time.Time, s Settings) []Effect {
	return c.ringOffers(c.Ring.next(now, c.noAnswer(s)))
}

// advance stops the ringing stage and rings the next, or gives up.
func (c *Call) advance(now time.Time, s Settings) []Effect {
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded && !c.picking(o.ID) {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	if !c.Ring.more() {
		return append(effs, c.unanswered(480, "Temporarily Unavailable", "missed", now, s)...)
	}
	effs = append(effs, c.nextStage(now, s)...)
	return append(effs, c.Ring.wake())
}

// ring: the call rings what effs originate until the no-answer time (a
// carrier, a click-to-call's devices: no plan to step).
func (c *Call) ring(effs []Effect, now time.Time, s Settings) []Effect {
	c.State = Ringing
	c.Ring.Until = now.Add(c.noAnswer(s))
	return append(effs, WakeAt{At: c.Ring.Until}, Event{Type: "call.ringing"})
}

// offer rings more contacts for a ringing call, as a driver outside the
// call asks (a queue offering the call to a member): they ring beside
// whoever rings already, within the call's no-answer time.
func (c *Call) offer(in Offer) []Effect {
	if c.State != Ringing || c.Callback != nil {
		return nil
	}
	return c.ringOffers([]Offer{in})
}

// withdraw stops a user's ringing legs, as a driver outside the call asks
// (a queue moving on to the next member). The call rings on if any other
// leg does; with none left it is unanswered.
func (c *Call) withdraw(in Withdraw, now time.Time, s Settings) []Effect {
	if c.State != Ringing {
		return nil
	}
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded && o.Party.UserID == in.User && !c.picking(o.ID) {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	if len(effs) == 0 || c.anyCalleeUp() || c.Ring.more() {
		return effs
	}
	return append(effs, c.unanswered(480, "Temporarily Unavailable", "missed", now, s)...)
}

// anyCalleeUp: a callee leg still rings.
func (c *Call) anyCalleeUp() bool {
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded {
			return true
		}
	}
	return false
}
