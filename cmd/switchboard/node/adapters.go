package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/api/rest"
	sipedge "github.com/switchboard/switchboard/api/sipedge"
	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

// edgeDir is the SIP edge's view of the directory.
type edgeDir struct {
	d    *directory.Directory
	line func(part string) (string, bool)
}

func (e edgeDir) Line(part string) (string, bool) { return e.line(part) }

func (e edgeDir) HA1(alg, username string) (string, string, bool) { return e.d.HA1(alg, username) }

func (e edgeDir) User(id string) (sipedge.Identity, bool) {
	u, ok := e.d.UserByID(id)
	if !ok {
		return sipedge.Identity{}, false
	}
	return sipedge.Identity{UserID: u.ID, Number: u.Extension, Display: u.Name}, true
}

func (e edgeDir) Resolve(part string) (string, bool) {
	u, ok := e.d.Resolve(part)
	return u.ID, ok
}

func (e edgeDir) TrunkBySource(ip netip.Addr) (string, bool) {
	t, ok := e.d.TrunkBySource(ip)
	return t.ID, ok
}

// calls implements rest.Calls over the call grains of the whole cluster.
type calls struct{ n *Node }

func (c *calls) List(ctx context.Context) ([]rest.Call, error) {
	var out []rest.Call
	for _, m := range c.n.cluster.MemberList.Members().Members() {
		res, err := call.OnNode(c.n.system.Root, m.Address(), 2*time.Second)
		if err != nil {
			continue // a member going away: its calls are listed by the next one to hold them
		}
		for _, ci := range res.Calls {
			out = append(out, restCall(ci))
		}
	}
	return out, nil
}

func (c *calls) Get(ctx context.Context, id string) (rest.Call, error) {
	ci, err := c.n.calls.Get(id)
	if err != nil {
		return rest.Call{}, err
	}
	if !ci.Found {
		return rest.Call{}, rest.ErrNotFound
	}
	return restCall(ci), nil
}

// Monitor asks the call's grain to start, switch or end a supervisor's
// monitoring.
func (c *calls) Monitor(ctx context.Context, id string, req rest.MonitorRequest, by rest.Principal) (int, rest.Call, error) {
	action := "monitor"
	if req.Stop {
		action = "unmonitor"
	}
	res, err := c.n.calls.Control(&pb.CallControl{CallId: id, Action: action, ByUser: req.Supervisor, Admin: by.Admin, Mode: req.Mode})
	if err != nil {
		return 0, rest.Call{}, err
	}
	if res.Status >= 300 {
		return 0, rest.Call{}, rest.AsControlError(int(res.Status), res.Code, res.Message)
	}
	return int(res.Status), restCall(res.Call), nil
}

func (c *calls) Control(ctx context.Context, id string, cmd rest.Command, by rest.Principal) error {
	res, err := c.n.calls.Control(&pb.CallControl{CallId: id, Action: cmd.Action, ByUser: by.UserID, Admin: by.Admin, Target: cmd.To})
	if err != nil {
		return err
	}
	return rest.AsControlError(int(res.Status), res.Code, res.Message)
}

// Dial asks a new call grain to place a click-to-call; this node's media
// relay anchors it, as the edge that takes an INVITE anchors that call.
func (c *calls) Dial(ctx context.Context, d rest.DialRequest) (rest.Call, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return rest.Call{}, fmt.Errorf("call id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	res, err := c.n.calls.Dial(&pb.CallDial{CallId: id, FromUser: d.From, To: d.To, OnBehalfOf: d.OnBehalfOf,
		Node: &pb.Node{Id: c.n.cfg.NodeID, Address: c.n.system.Address()}, Draining: c.n.draining.Load()})
	if err != nil {
		return rest.Call{}, err
	}
	if res.Status != 201 || res.Call == nil {
		return rest.Call{}, rest.AsControlError(int(res.Status), res.Code, res.Message)
	}
	return restCall(res.Call), nil
}

func restCall(ci *pb.CallInfo) rest.Call {
	c := rest.Call{ID: ci.Id, State: ci.State, Line: ci.Line, Locked: ci.Locked, Monitors: []rest.Monitor{}, AnsweredBy: ci.AnsweredBy,
		Node: ci.Node, GrainNode: ci.GrainNode, CreatedAt: time.Unix(0, ci.CreatedUnixNano).UTC()}
	for _, m := range ci.Monitors {
		c.Monitors = append(c.Monitors, rest.Monitor{User: m.User, Mode: m.Mode, Since: time.Unix(0, m.SinceUnixNano).UTC()})
	}
	if ci.AnsweredUnixNano != 0 {
		t := time.Unix(0, ci.AnsweredUnixNano).UTC()
		c.AnsweredAt = &t
	}
	for _, l := range ci.Legs {
		c.Legs = append(c.Legs, rest.Leg{ID: l.Id, Party: l.Party, State: l.State, Node: l.Node})
	}
	return c
}

// members implements rest.Cluster from the membership provider.
type members struct{ n *Node }

func (m *members) Members() []rest.Member {
	var out []rest.Member
	for _, mb := range m.n.provider.Members() {
		st := "down"
		if mb.Alive {
			st = "alive"
		}
		rm := rest.Member{ID: mb.NodeID, Address: mb.Address, State: st}
		if mb.Alive {
			if res, err := call.OnNode(m.n.system.Root, mb.Address, time.Second); err == nil {
				rm.Calls, rm.Actors = len(res.Calls), int(res.Actors)
			}
		}
		out = append(out, rm)
	}
	return out
}
