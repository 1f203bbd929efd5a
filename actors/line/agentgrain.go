package line

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pb "github.com/switchboard/switchboard/proto"
)

// The grain's side of Agent: queues claim the member, and learn how the
// member stands whenever that changes.

// claim carries out a queue's claim, serve, release or wrap-up of the
// member. A refused claim tells that queue how the member stands, so it
// does not wait on a member it cannot have.
func (g *grain) claim(ctx actor.Context, m *pb.AgentClaim) *pb.AgentClaimResult {
	now := g.d.Now()
	ok := true
	switch m.Kind {
	case "ring":
		if err := g.load(); err != nil {
			g.d.Log.Warn("line: load failed", "user", g.line.User, "err", err)
		}
		f := AgentFacts{Registered: len(g.line.Contacts(now)) > 0, OnCall: g.onCall(), AllowOnCall: m.AllowOnCall}
		var until time.Time
		if m.UntilUnixNano > 0 {
			until = time.Unix(0, m.UntilUnixNano)
		}
		if ok = g.agent.Claim(m.QueueId, m.CallId, f, until, now); !ok {
			g.sent[m.QueueId] = nil // tell it again, even if unchanged
		} else if !until.IsZero() {
			g.lapseAt(ctx, until)
		}
	case "serve":
		g.agent.Serve(m.QueueId, m.CallId)
	case "release":
		ok = g.agent.Release(m.QueueId, m.CallId)
	case "wrap_up":
		var until time.Time
		if m.UntilUnixNano > 0 {
			until = time.Unix(0, m.UntilUnixNano)
		}
		g.agent.WrapUp(m.QueueId, m.CallId, until)
	case "presence":
		g.sent[m.QueueId] = nil
	}
	g.tellQueues()
	return &pb.AgentClaimResult{Ok: ok}
}

// lapseCheck: a ring claim's time is up; if it was never released, the
// queues learn the member is free.
type lapseCheck struct{}

// lapseAt wakes the grain when the claim would lapse.
func (g *grain) lapseAt(ctx actor.Context, at time.Time) {
	if g.lapse != nil {
		g.lapse.Stop()
	}
	self, sys := ctx.Self(), ctx.ActorSystem()
	g.lapse = time.AfterFunc(at.Sub(g.d.Now()), func() { sys.Root.Send(self, lapseCheck{}) })
}

// tellQueues sends each of the member's queues how the member stands now,
// when that differs from what it was last told.
func (g *grain) tellQueues() {
	if g.d.QueuesOf == nil || g.d.Presence == nil {
		return
	}
	now := g.d.Now()
	if err := g.load(); err != nil {
		g.d.Log.Warn("line: load failed", "user", g.line.User, "err", err)
	}
	registered, onCall := len(g.line.Contacts(now)) > 0, g.onCall()
	elsewhere, wrap := g.agent.Presence(now)
	for _, q := range g.d.QueuesOf(g.line.User) {
		p := &pb.AgentPresence{QueueId: q, User: g.line.User, Registered: registered, OnCall: onCall, Elsewhere: elsewhere}
		if !wrap.IsZero() {
			p.WrapUntilUnixNano = wrap.UnixNano()
		}
		if last := g.sent[q]; last != nil && last.Registered == p.Registered && last.OnCall == p.OnCall &&
			last.Elsewhere == p.Elsewhere && last.WrapUntilUnixNano == p.WrapUntilUnixNano {
			continue
		}
		g.sent[q] = p
		g.d.Presence(p)
	}
}

// talk follows a call on another line the user talks on: up while answered
// or held, gone otherwise.
func (g *grain) talk(callID, state string) {
	was := g.onCall()
	if state == "active" || state == "held" {
		g.talking[callID] = true
	} else {
		delete(g.talking, callID)
	}
	if g.onCall() != was {
		g.tellQueues()
	}
}

// onCall: the user talks on a call, on their line or another.
func (g *grain) onCall() bool { return len(g.talking) > 0 || g.calls.OnCall() }
