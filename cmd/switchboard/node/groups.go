package node

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/actors/hours"
	"github.com/switchboard/switchboard/api/rest"
	"github.com/switchboard/switchboard/cluster/directory"
)

// The node's wiring of shared line groups and pickup groups: settings from
// the directory, members' state from their line grains, the group's line
// beside users' lines.

// callGroups implements call.Groups.
type callGroups struct{ n *Node }

func (c callGroups) Group(dialed string) (call.GroupSettings, bool) {
	g, ok := c.n.slgOf(dialed)
	if !ok {
		return call.GroupSettings{}, false
	}
	open := hours.Schedule{TimeZone: g.Timezone, Business: g.BusinessHours, Holidays: g.Holidays}.Open(time.Now())
	return call.GroupSettings{Route: groupRoute(g), RingFor: seconds(g.RingSeconds), Open: open,
		Business: call.Target{Kind: g.Overflow.Business.Kind, ID: g.Overflow.Business.ID},
		Closed:   call.Target{Kind: g.Overflow.Closed.Kind, ID: g.Overflow.Closed.ID}}, true
}

func groupRoute(g directory.SharedLineGroup) call.GroupRoute {
	r := call.GroupRoute{ID: g.ID, Name: g.Name, Extension: g.Extension, Members: g.Members}
	if len(g.Numbers) > 0 {
		r.Number = g.Numbers[0]
	}
	return r
}

func (c callGroups) PickupGroups(user string) []call.PickupGroup {
	var out []call.PickupGroup
	for _, pg := range c.n.dir.PickupGroupsOf(user) {
		out = append(out, call.PickupGroup{Delay: seconds(pg.DelaySeconds), Members: pg.Members})
	}
	return out
}

// OnCall asks the user's line grain; a line that cannot answer counts as
// free (the phones decline if they are not).
func (c callGroups) OnCall(_ actor.Context, user string) bool {
	on, err := c.n.lines.OnCall(user)
	if err != nil {
		c.n.log.Warn("group: member's line unavailable", "user", user, "err", err)
	}
	return on
}

// slgOf is the shared line group a dialed string names: its extension,
// number, line id ("group:<id>"), or id when no user has that id.
func (n *Node) slgOf(dialed string) (directory.SharedLineGroup, bool) {
	if id, ok := strings.CutPrefix(dialed, call.GroupLinePrefix); ok {
		return n.dir.SharedLineGroupByID(id)
	}
	d, ok := n.dir.Destination(dialed)
	switch {
	case !ok:
		return n.dir.SharedLineGroupByID(dialed)
	case d.Kind != "shared_line_group":
		return directory.SharedLineGroup{}, false
	}
	return n.dir.SharedLineGroupByID(d.ID)
}

// groupAccess is what user may do on a group's line: its members pick up
// its calls, and lock them under its lock policy.
func (n *Node) groupAccess(lineID, user string) call.Access {
	g, ok := n.slgOf(lineID)
	if !ok || !slices.Contains(g.Members, user) {
		return call.Access{Role: "none"}
	}
	return call.Access{Role: "member", Privileges: []string{"pickup_hold"}, LockPolicy: g.LockPolicy}
}

// lineOf is the line a dialed string names for a pickup, a join or a busy
// lamp: a user's, or a shared line group's.
func (n *Node) lineOf(part string) (string, bool) {
	if g, ok := n.slgOf(part); ok {
		return call.GroupLinePrefix + g.ID, true
	}
	u, ok := n.dir.Resolve(part)
	return u.ID, ok
}

// groupLines are the lines of user's shared line groups with their calls.
func (n *Node) groupLines(_ context.Context, user string) ([]rest.Line, error) {
	var out []rest.Line
	for _, id := range n.dir.SharedLineGroupsOf(user) {
		g, ok := n.dir.SharedLineGroupByID(id)
		if !ok {
			continue
		}
		v := rest.Line{ID: g.ID, Owner: g.ID, Extension: g.Extension, Kind: "shared_line_group", Calls: []rest.LineCall{}}
		if len(g.Numbers) > 0 {
			v.Number = g.Numbers[0]
		}
		calls, err := n.lines.Calls(call.GroupLinePrefix + g.ID)
		if err != nil {
			return nil, err
		}
		for _, c := range calls {
			v.Calls = append(v.Calls, rest.LineCall{ID: c.CallId, State: c.State, Peer: c.Peer, Locked: c.Locked})
		}
		out = append(out, v)
	}
	return out, nil
}
