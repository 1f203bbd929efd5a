package call

import (
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// The adapter's side of shared line groups and pickup groups: the group's
// settings and its members' state, gathered for the core to route.

// Groups is what a call needs of shared line groups and pickup groups.
type Groups interface {
	// Group is the shared line group the dialed string (its extension or
	// number) names, with its settings now.
	Group(dialed string) (GroupSettings, bool)
	// PickupGroups are the pickup groups user is in.
	PickupGroups(user string) []PickupGroup
	// OnCall: user is on a call (their line has one up).
	OnCall(ctx actor.Context, user string) bool
}

// GroupSettings are a shared line group's settings as a call needs them.
type GroupSettings struct {
	Route            GroupRoute
	RingFor          time.Duration
	Open             bool // within business hours, not a holiday, now
	Business, Closed Target
}

// PickupGroup rings its other members after Delay.
type PickupGroup struct {
	Delay   time.Duration
	Members []string
}

// group is the shared line group dialed names, for a caller's INVITE.
func (g *grain) group(dialed string) (GroupSettings, bool) {
	if g.d.Groups == nil {
		return GroupSettings{}, false
	}
	return g.d.Groups.Group(dialed)
}

// groupLookup routes a call to a shared line group: closed, its closed
// overflow; else every member who is registered and not on a call rings,
// and with nobody free the call overflows at once (no queue, no music).
func (g *grain) groupLookup(ctx actor.Context, gs GroupSettings, from Party) Lookup {
	if !gs.Open {
		return g.overflowRoute(ctx, gs.Closed, from, 0)
	}
	parties, contacts := map[string]Party{}, map[string][]Contact{}
	var free []string
	for _, u := range gs.Route.Members {
		cts, err := g.d.LineContacts(ctx, u)
		if err != nil {
			g.d.Log.Warn("call: group member's phones not found", "call", g.call.ID, "user", u, "err", err)
		}
		if len(cts) == 0 || g.d.Groups.OnCall(ctx, u) {
			continue
		}
		p := Party{UserID: u}
		if found, _, _, _ := g.d.Router.Lookup(u, false); found != nil {
			p = *found
		}
		free, parties[u], contacts[u] = append(free, u), p, cts
	}
	if len(free) == 0 {
		return g.overflowRoute(ctx, gs.Business, from, 0)
	}
	then := gs.Business
	route := gs.Route
	return Lookup{Group: &route, RingFor: gs.RingFor, Then: &then,
		Plan: &RingPlan{Stages: []RingStage{{Users: free}}}, Parties: parties, UserContacts: contacts}
}

// pickupRing is the ring of user's pickup groups: their other members,
// after the shortest delay.
func (g *grain) pickupRing(ctx actor.Context, user string) *PickupRing {
	if g.d.Groups == nil {
		return nil
	}
	var ring *PickupRing
	var seen []string
	for _, pg := range g.d.Groups.PickupGroups(user) {
		if ring == nil || pg.Delay < ring.Delay {
			if ring == nil {
				ring = &PickupRing{}
			}
			ring.Delay = pg.Delay
		}
		for _, u := range pg.Members {
			if u == user || slices.Contains(seen, u) {
				continue
			}
			seen = append(seen, u)
			cts, err := g.d.LineContacts(ctx, u)
			if err != nil || len(cts) == 0 {
				continue
			}
			p := Party{UserID: u}
			if found, _, _, _ := g.d.Router.Lookup(u, false); found != nil {
				p = *found
			}
			ring.Offers = append(ring.Offers, Offer{Party: p, Contacts: cts})
		}
	}
	return ring
}
