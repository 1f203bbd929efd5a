package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/actors/hours"
	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/actors/queue"
	"github.com/switchboard/switchboard/api/rest"
	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

// The node's wiring of call queues: settings from the directory, calls
// and lines reaching queue grains and back, REST reaching them through the
// queue client.

// queueSettings is a queue's settings as its grain reads them.
func (n *Node) queueSettings(id string) (queue.Settings, bool) {
	q, ok := n.dir.QueueByID(id)
	if !ok {
		return queue.Settings{}, false
	}
	return queue.Settings{Config: queueConfig(q), Viewers: queueViewers(q)}, true
}

func queueConfig(q directory.Queue) queue.Config {
	cfg := queue.Config{
		ID: q.ID, Name: q.Name, Distribution: q.Distribution,
		Ring: seconds(q.RingSeconds), MaxWait: seconds(q.MaxWaitSeconds), MaxCalls: q.MaxCalls, WrapUp: seconds(q.WrapUpSeconds),
		ReceiveWhileOnCall: q.ReceiveWhileOnCall, ServiceLevel: seconds(q.ServiceLevelSeconds),
		Hours: hours.Schedule{TimeZone: q.Timezone, Business: q.BusinessHours, Holidays: q.Holidays}, Admins: q.Admins,
		Business: queue.Target{Kind: q.Overflow.Business.Kind, ID: q.Overflow.Business.ID},
		Closed:   queue.Target{Kind: q.Overflow.Closed.Kind, ID: q.Overflow.Closed.ID},
	}
	for _, m := range q.Members {
		cfg.Members = append(cfg.Members, queue.Member{User: m.User, Order: m.Order})
	}
	return cfg
}

// queueViewers may read a queue's real-time numbers (the admin token reads
// everything without being named).
func queueViewers(q directory.Queue) []string {
	out := append([]string{}, q.Admins...)
	for _, m := range q.Members {
		out = append(out, m.User)
	}
	return out
}

func seconds(s int) time.Duration { return time.Duration(s) * time.Second }

// callQueues implements call.Queues.
type callQueues struct{ n *Node }

// Find is the queue dialed names: its extension or number, or its id when
// no user has that id (an overflow names a queue by id).
func (c callQueues) Find(dialed string) (call.QueueRoute, bool) {
	id := dialed
	if d, ok := c.n.dir.Destination(dialed); ok {
		if d.Kind != "queue" {
			return call.QueueRoute{}, false
		}
		id = d.ID
	}
	q, ok := c.n.dir.QueueByID(id)
	if !ok {
		return call.QueueRoute{}, false
	}
	r := call.QueueRoute{ID: q.ID, Name: q.Name, Admins: q.Admins, Names: map[string]string{}}
	for _, u := range queueViewers(q) {
		if p, ok := c.n.dir.UserByID(u); ok {
			r.Names[u] = p.Name
		}
	}
	return r, true
}

func (c callQueues) Arrive(_ actor.Context, q, callID string) (*pb.QueueTarget, error) {
	res, err := c.n.queues.Arrive(q, callID)
	if err != nil {
		return nil, err
	}
	if !res.Found {
		return nil, fmt.Errorf("queue %s: not found", q)
	}
	return res.Overflow, nil
}

// Report is fire-and-forget: the queue learns what became of its call.
func (c callQueues) Report(ctx actor.Context, callID string, r call.TellQueue) {
	c.n.toGrain(ctx, queue.KindName, r.Queue, &pb.QueueReport{QueueId: r.Queue, CallId: callID, Kind: r.Kind, User: r.User})
}

// Release is fire-and-forget: the member's line frees them.
func (c callQueues) Release(ctx actor.Context, q, callID, user string) {
	c.n.toGrain(ctx, line.KindName, user, &pb.AgentClaim{User: user, QueueId: q, CallId: callID, Kind: "release"})
}

// toGrain sends msg to a grain without waiting (from an actor: ctx; else
// the root context).
func (n *Node) toGrain(ctx actor.Context, kind, id string, msg any) {
	pid := n.linePIDs.Get(id, kind)
	if pid == nil {
		n.log.Warn("node: no activation for a message", "kind", kind, "id", id, "message", fmt.Sprintf("%T", msg))
		return
	}
	if ctx != nil {
		ctx.Send(pid, msg)
		return
	}
	n.system.Root.Send(pid, msg)
}

// queueDeps are the queue grains' dependencies.
func (n *Node) queueDeps() *queue.Deps {
	return &queue.Deps{
		Store: n.store, Settings: n.queueSettings, Events: fanout{n}, Now: time.Now, Log: n.log,
		Claim: func(m *pb.AgentClaim) (bool, error) { return n.lines.Claim(m) },
		ToCall: func(ctx actor.Context, m *pb.QueueOffer) {
			n.toGrain(ctx, call.KindName, m.CallId, m)
		},
	}
}

// lineQueues wires a line grain to the queues its user is a member of.
func (n *Node) lineQueues(d *line.Deps) {
	d.QueuesOf = n.dir.QueuesOf
	d.Presence = func(p *pb.AgentPresence) { n.toGrain(nil, queue.KindName, p.QueueId, p) }
}

// restQueues implements rest.Queues over the queue client.
type restQueues struct{ n *Node }

func (r restQueues) SetOptIn(_ context.Context, by rest.Principal, q, user string, in bool, reason string) (json.RawMessage, error) {
	res, err := r.n.queues.Member(&pb.QueueMember{QueueId: q, User: user, OptIn: in, Reason: reason, By: by.UserID, Admin: by.Admin})
	return queueAnswer(res, err)
}

func (r restQueues) Stats(_ context.Context, q string) (json.RawMessage, error) {
	res, err := r.n.queues.Stats(q)
	return queueAnswer(res, err)
}

func queueAnswer(res *pb.QueueResult, err error) (json.RawMessage, error) {
	switch {
	case err != nil:
		return nil, fmt.Errorf("queue: %w", err)
	case res.Status == 404:
		return nil, rest.ErrNotFound
	case res.Status >= 400 && res.Status < 500:
		return nil, &rest.ControlError{Status: int(res.Status), Code: res.Code, Message: res.Message}
	case res.Status != 200:
		return nil, fmt.Errorf("queue: %s: %s", res.Code, res.Message)
	}
	return res.Json, nil
}
