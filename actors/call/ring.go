package call

import (
	"time"

	"github.com/switchboard/switchboard/actors/delegator"
)

// Ring stepping: who rings, stage after stage, until someone answers or the
// no-answer time runs out. A normal call and a transfer step the same way.

// RingPlan is who rings, in what order, for how long: the delegator's
// plan, rung as it is.
type RingPlan = delegator.Plan

// RingStage is users who ring together for Seconds (0: until NoAnswer).
type RingStage = delegator.Stage

// stageAfter is the first stage after i with somebody to ring on
// contacts, or len(p.Stages) when there is none.
func stageAfter(p RingPlan, i int, contacts map[string][]Contact) int {
	for j := i + 1; j < len(p.Stages); j++ {
		for _, u := range p.Stages[j].Users {
			if len(contacts[u]) > 0 {
				return j
			}
		}
	}
	return len(p.Stages)
}

// stageEnd is when stage i, ringing from now, stops. Every stage but the
// last lasts its Seconds (stage); the last rings until the no-answer time
// counted from ringStart, and at least its Seconds (until).
func stageEnd(p RingPlan, i int, contacts map[string][]Contact, now, ringStart time.Time, noAnswer time.Duration) (stage, until time.Time) {
	ring := time.Duration(p.Stages[i].Seconds) * time.Second
	if ring > 0 && stageAfter(p, i, contacts) < len(p.Stages) {
		return now.Add(ring), time.Time{}
	}
	until = ringStart.Add(noAnswer)
	if end := now.Add(ring); end.After(until) {
		until = end
	}
	return time.Time{}, until
}

// hasStageAfter: a stage after i has somebody to ring.
func (c *Call) hasStageAfter(i int) bool {
	return stageAfter(c.Plan, i, c.contacts) < len(c.Plan.Stages)
}

// nextStage rings the next stage of the plan that has somebody to ring.
func (c *Call) nextStage(now time.Time, s Settings) []Effect {
	if c.Stage = stageAfter(c.Plan, c.Stage, c.contacts); c.Stage == len(c.Plan.Stages) {
		return nil
	}
	var effs []Effect
	for _, u := range c.Plan.Stages[c.Stage].Users {
		for _, ct := range c.contacts[u] {
			effs = append(effs, c.addCallee(ct, c.parties[u], false))
		}
	}
	c.StageUntil, c.RingUntil = stageEnd(c.Plan, c.Stage, c.contacts, now, c.ringStart, s.NoAnswer)
	return effs
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
	if !c.hasStageAfter(c.Stage) {
		return append(effs, c.endUnanswered(480, "Temporarily Unavailable", "missed", now)...)
	}
	effs = append(effs, c.nextStage(now, s)...)
	return append(effs, c.wake())
}

// wake is the next wake-up: the stage's end or the call's, whichever first.
func (c *Call) wake() WakeAt { return wakeAt(c.StageUntil, c.RingUntil) }

// wakeAt is the earlier of a stage's end and the ringing's end (zero: none).
func wakeAt(stage, until time.Time) WakeAt {
	if !stage.IsZero() && (until.IsZero() || stage.Before(until)) {
		return WakeAt{At: stage}
	}
	return WakeAt{At: until}
}

func (c *Call) ring(effs []Effect, now time.Time, s Settings) []Effect {
	c.State = Ringing
	c.RingUntil = now.Add(s.NoAnswer)
	return append(effs, WakeAt{At: c.RingUntil}, Event{Type: "call.ringing"})
}
