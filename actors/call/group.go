package call

import (
	"strings"
	"time"
)

// Calls to a shared line group (002): every free member rings at once on
// the group's line for the group's ring time, then the call overflows
// (Lookup.Then); members see the line, pick up its held calls and, under
// the group's lock policy, lock them. And group call pickup: a pickup
// group's other members ring when a call to one of them has rung
// unanswered for the group's delay.

// GroupLinePrefix names a shared line group's line ("group:<id>"): the
// line grain, line views and BLF key it so, apart from users' lines.
const GroupLinePrefix = "group:"

// IsGroupLine: line is a shared line group's.
func IsGroupLine(line string) bool { return strings.HasPrefix(line, GroupLinePrefix) }

// GroupRoute is a shared line group the caller dialed. The Lookup's Plan
// rings its free members, RingFor long; Then is its overflow.
type GroupRoute struct {
	ID, Name, Extension, Number string
	Members                     []string
}

// Line is the group's line id.
func (g GroupRoute) Line() string { return GroupLinePrefix + g.ID }

// Party is the group as the party a call reaches or calls for.
func (g GroupRoute) Party() Party {
	return Party{UserID: g.Line(), Number: g.Extension, External: g.Number, Display: g.Name}
}

// PickupRing is a pickup group's ring of a call to one of its members:
// after Delay unanswered, Offers ring too.
type PickupRing struct {
	Delay  time.Duration
	Offers []Offer
}

// pickupRing is a pickup ring under way: Offers ring at At.
type pickupRing struct {
	At     time.Time
	Offers []Offer
}

// routeGroup puts the call on the group's line, ringing its plan.
func (c *Call) routeGroup(lk Lookup, now time.Time, s Settings) []Effect {
	g := lk.Group
	target := g.Party()
	lk.Target = &target
	lk.Group = nil
	if lk.Plan != nil {
		lk.Plan.Viewers = g.Members
	}
	c.names[target.UserID] = g.Name
	return c.route(lk, now, s)
}

// noAnswer is how long the callees ring: the route's own time (a group's
// ring_seconds) or the node's.
func (c *Call) noAnswer(s Settings) time.Duration {
	if c.ringFor > 0 {
		return c.ringFor
	}
	return s.NoAnswer
}

// Target is where a call overflows: Kind user | queue | number | message
// | disconnect, ID naming the user, queue or number.
type Target struct{ Kind, ID string }

// RouteTo asks the adapter to route Target now (a group's overflow); it
// answers with Routed.
type RouteTo struct{ Target Target }

// Routed is the lookup of a RouteTo's target.
type Routed struct{ Route Lookup }

// unanswered: nobody answered in time, or every phone declined. A route
// with an overflow goes there (the phones still ringing stop, the caller
// waits unanswered while it is looked up); else the caller hears code.
func (c *Call) unanswered(code int, reason, outcome string, now time.Time, _ Settings) []Effect {
	then := c.then
	if then == nil || c.CalledBack {
		return c.endUnanswered(code, reason, outcome, now)
	}
	c.then, c.ringFor, c.pickupAt = nil, 0, nil
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role != Caller && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	c.Ring.stop()
	c.State = Routing
	return append(effs, RouteTo{Target: *then}, WakeAt{})
}

// startPickup arms a pickup group's ring for the call just routed to a
// member.
func (c *Call) startPickup(p *PickupRing, now time.Time) {
	if p == nil || len(p.Offers) == 0 {
		return
	}
	c.pickupAt = &pickupRing{At: now.Add(p.Delay), Offers: p.Offers}
	if t := c.To; c.names[t.UserID] == "" && t.Display != "" {
		c.names[t.UserID] = t.Display // their phones show "<caller> for <member's name>"
	}
}

// pickupTick rings the pickup group once its delay has passed.
func (c *Call) pickupTick(now time.Time) []Effect {
	p := c.pickupAt
	if p == nil || c.State != Ringing || now.Before(p.At) {
		return nil
	}
	c.pickupAt = nil
	return append(c.ringOffers(p.Offers), c.Ring.wake())
}

// pickupWake brings the step's wake-up forward to the pickup ring's time.
func (c *Call) pickupWake(r *Ready) {
	p := c.pickupAt
	if p == nil || c.State != Ringing || r.Wake == nil {
		return
	}
	if r.Wake.At.IsZero() || p.At.Before(r.Wake.At) {
		r.Wake = &WakeAt{At: p.At}
	}
}

// mayLockGroupCall: on a shared line group's line, a member locks a call
// they are on, and only under the group's lock policy (002 L10462).
func (c *Call) mayLockGroupCall(in Control) *Refusal {
	if !IsGroupLine(c.Line) || in.Admin {
		return nil
	}
	switch {
	case in.Access.Role != "member":
		return &Refusal{Status: 403, Code: "forbidden", Message: "only the group's members may lock its calls"}
	case !in.Access.LockPolicy:
		return &Refusal{Status: 422, Code: "lock_not_allowed", Message: "this shared line group's lock policy does not let members lock calls"}
	case c.partyLeg(in.ByUser) == nil:
		return &Refusal{Status: 403, Code: "forbidden", Message: "a member locks a group call they are on"}
	}
	return nil
}
