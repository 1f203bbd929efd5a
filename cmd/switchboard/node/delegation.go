package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/actors/delegator"
	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/api/rest"
	sipedge "github.com/switchboard/switchboard/api/sipedge"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// The call grain's questions to the delegator and line grains, and the
// REST edge's commands to them, carried over the cluster.

func (n *Node) person(id string) (delegator.Person, bool) {
	u, ok := n.dir.UserByID(id)
	if !ok {
		return delegator.Person{}, false
	}
	return delegator.Person{ID: u.ID, Name: u.Name, Numbers: u.Numbers, Extension: u.Extension, Timezone: u.Timezone,
		Hours: u.BusinessHours, PowerPack: u.PowerPack, VoicemailEnabled: u.VoicemailEnabled}, true
}

func (n *Node) ringPlan(_ actor.Context, req *pb.RingPlanRequest) (delegator.Plan, error) {
	return n.delegators.RingPlan(req)
}

func (n *Node) access(_ actor.Context, lineID, user string) (call.Access, error) {
	if call.IsGroupLine(lineID) {
		return n.groupAccess(lineID, user), nil
	}
	a, err := n.delegators.Access(lineID, user)
	if err != nil {
		return call.Access{}, err
	}
	return call.Access{Role: a.Role, Privileges: a.Privileges, JoinChime: a.JoinChime}, nil
}

// lineUpdate is fire-and-forget: the line shows what the call last said.
// The PID comes from linePIDs, which keeps only a local activation that is
// still running: when a member joins, disthash moves line grains, and a send
// to a PID kept past that would be lost without a word.
func (n *Node) lineUpdate(ctx actor.Context, u *pb.LineCall) {
	pid := n.linePIDs.Get(u.Line, line.KindName)
	if pid == nil {
		n.log.Warn("line: no activation for update", "line", u.Line, "call", u.CallId)
		return
	}
	ctx.Send(pid, u)
}

// persistLock writes calls/<id>/lock fenced on the revision the call grain
// last wrote (rule 5: a stale twin's write fails).
func (n *Node) persistLock(callID string, locked bool, lineID string, rev int64) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, _ := json.Marshal(map[string]any{"locked": locked, "line": lineID, "at": time.Now().UTC()})
	return n.store.Txn(ctx, []store.Cond{{Key: store.Key("calls", callID, "lock"), ModRevision: rev}},
		[]store.Op{{Key: store.Key("calls", callID, "lock"), Value: v}})
}

// persistMonitor writes a call's monitoring slot, fenced on the grain's
// revision: a stale twin of the grain (rev 0 or old) loses with
// call.ErrFenced.
func (n *Node) persistMonitor(callID, by, mode string, rev int64) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, _ := json.Marshal(map[string]any{"supervisor": by, "mode": mode, "at": time.Now().UTC()})
	key := store.Key("calls", callID, "monitor")
	r, err := n.store.Txn(ctx, []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{{Key: key, Value: v}})
	if errors.Is(err, store.ErrConflict) {
		return 0, fmt.Errorf("%w: %w", call.ErrFenced, err)
	}
	return r, err
}

// clearLock deletes a finished call's fenced records: its lock and its
// monitoring slot.
func (n *Node) clearLock(callID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, rec := range []string{"lock", "monitor"} {
		if err := n.store.Delete(ctx, store.Key("calls", callID, rec)); err != nil {
			n.log.Warn("call: record not removed", "call", callID, "record", rec, "err", err)
		}
	}
}

// pickupTarget is the call a *8<ext> pickup takes on ext's line.
func (n *Node) pickupTarget(ext string) (string, bool) { return n.lineCall(ext, false) }

// joinTarget is the call a *7<ext> join takes on ext's line.
func (n *Node) joinTarget(ext string) (string, bool) { return n.lineCall(ext, true) }

// lineCall asks ext's line grain which call a pickup (or join) takes.
func (n *Node) lineCall(ext string, join bool) (string, bool) {
	lineID, ok := n.lineOf(ext)
	if !ok {
		return "", false
	}
	c, ok, err := n.lines.CallToTake(lineID, join)
	if err != nil {
		n.log.Warn("pickup or join: line lookup failed", "line", lineID, "err", err)
		return "", false
	}
	if !ok {
		return "", false
	}
	return c.CallId, true
}

// delegators implements rest.Delegation over the cluster.
type delegators struct{ n *Node }

func (d delegators) Command(_ context.Context, cmd *pb.DelegatorCommand) (*pb.DelegatorResult, error) {
	return d.n.delegators.Command(cmd)
}

// Shared is the delegators' lines user accepted to share, and the lines of
// the shared line groups they are in.
func (d delegators) Shared(ctx context.Context, user string) ([]string, error) {
	prefix := store.Key("delegates", user) + "/"
	kvs, err := d.n.store.List(ctx, prefix, "", 0)
	if err != nil {
		return nil, fmt.Errorf("lines shared with %s: %w", user, err)
	}
	var ids []string
	for _, kv := range kvs {
		if string(kv.Value) == string(delegator.Accepted) {
			ids = append(ids, kv.Key[len(prefix):])
		}
	}
	// A shared line group's members share its line.
	for _, g := range d.n.dir.SharedLineGroupsOf(user) {
		ids = append(ids, call.GroupLinePrefix+g)
	}
	return ids, nil
}

// Lines is the user's own line, every line they accepted to share, and
// their shared line groups' lines.
func (d delegators) Lines(ctx context.Context, user string) ([]rest.Line, error) {
	shared, err := d.Shared(ctx, user)
	if err != nil {
		return nil, err
	}
	ids := append([]string{user}, shared...)
	var out []rest.Line
	for _, id := range ids {
		u, ok := d.n.dir.UserByID(id)
		if !ok {
			continue
		}
		v := rest.Line{ID: id, Owner: id, Extension: u.Extension, Kind: "own", Calls: []rest.LineCall{}}
		if id != user {
			v.Kind = "delegator"
		}
		if len(u.Numbers) > 0 {
			v.Number = u.Numbers[0]
		}
		calls, err := d.n.lines.Calls(id)
		if err != nil {
			return nil, err
		}
		for _, c := range calls {
			v.Calls = append(v.Calls, rest.LineCall{ID: c.CallId, State: c.State, Peer: c.Peer, Locked: c.Locked})
		}
		out = append(out, v)
	}
	groups, err := d.n.groupLines(ctx, user)
	if err != nil {
		return nil, err
	}
	return append(out, groups...), nil
}

// lineState is a line's calls for a busy lamp.
func (n *Node) lineState(lineID string) ([]sipedge.LineCall, error) {
	calls, err := n.lines.Calls(lineID)
	if err != nil {
		return nil, err
	}
	out := make([]sipedge.LineCall, 0, len(calls))
	for _, c := range calls {
		out = append(out, sipedge.LineCall{ID: c.CallId, State: c.State, Peer: c.Peer, Locked: c.Locked})
	}
	return out, nil
}

// lineUpdateOf reads a line.updated event: the line grain's Update when it
// is local (no JSON round trip on every call's way), else the raw JSON
// another node sent.
func lineUpdateOf(data any) (sipedge.LineUpdate, bool) {
	var u line.Update
	switch d := data.(type) {
	case line.Update:
		u = d
	case json.RawMessage:
		if json.Unmarshal(d, &u) != nil {
			return sipedge.LineUpdate{}, false
		}
	default:
		return sipedge.LineUpdate{}, false
	}
	out := sipedge.LineUpdate{Line: u.Line, Calls: make([]sipedge.LineCall, len(u.Calls))}
	for i, v := range u.Calls {
		out.Calls[i] = sipedge.LineCall{ID: v.ID, State: v.State, Peer: v.Peer, Locked: v.Locked}
	}
	return out, true
}

// lineUpdates turns the cluster's line.updated events into lamp updates.
func (n *Node) lineUpdates() (<-chan sipedge.LineUpdate, func()) {
	sub := n.events.Subscribe(256, "line.updated")
	out := make(chan sipedge.LineUpdate, 64)
	go func() {
		defer close(out)
		for ev := range sub.C {
			u, ok := lineUpdateOf(ev.Data)
			if !ok {
				continue
			}
			select {
			case out <- u:
			default: // a lamp misses a state; the next change carries the full state again
			}
		}
	}()
	return out, sub.Close
}
