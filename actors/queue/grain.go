package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// KindName is the cluster kind of queue grains; the identity is the queue id.
const KindName = "queue"

// claimGrace is how long past an offer's ring time the member's claim
// holds when nobody lets it go.
const claimGrace = 10 * time.Second

// Settings are a queue's settings as the grain needs them: the core's
// Config, and who sees its real-time numbers (admins, queue admins,
// members).
type Settings struct {
	Config  Config
	Viewers []string
}

// Publisher delivers domain events to SSE clients of the whole cluster.
type Publisher interface {
	Publish(events.Event)
	Listening(typ string) bool
}

// Deps is what every queue grain on a node shares.
type Deps struct {
	Store store.Store
	// Settings reads a queue's settings from the directory; false: the
	// queue does not exist (any more).
	Settings func(id string) (Settings, bool)
	// Claim asks a member's line grain to take, serve, release or wrap up
	// the member (actors/line agent.go); ok is whether a "ring" holds.
	Claim func(*pb.AgentClaim) (bool, error)
	// ToCall sends a waiting call the queue's word (fire and forget).
	ToCall func(ctx actor.Context, m *pb.QueueOffer)
	Events Publisher
	Now    func() time.Time
	Log    *slog.Logger
}

// NewKind returns the cluster kind for queue grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

// Key is where a queue's state lives: its waiting callers, members' state
// and counters, rewritten whole, fenced on the grain's last revision.
func Key(id string) string { return store.Key("queue-state", id) }

type grain struct {
	d       *Deps
	id      string
	q       *Queue
	cfg     Config
	viewers []string
	wakeGen int
	timer   *time.Timer
	// Writes of the state go one at a time off the mailbox, the latest
	// state each time: under load they coalesce rather than queue.
	rev      int64 // ModRevision of the stored state: the fence
	writing  bool
	dirty    bool
	arrivals map[string]*pb.QueueArriveResult // the answer of the Arrive being stepped
}

type (
	wake    struct{ gen int }
	written struct {
		rev int64
		err error
	}
)

func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.id = m.Identity.Identity
		metrics.Actors.WithLabelValues(KindName).Inc()
		return
	case *actor.Stopped:
		if g.timer != nil {
			g.timer.Stop()
		}
		metrics.Actors.WithLabelValues(KindName).Dec()
		return
	case *actor.Started, *actor.Stopping, *actor.Restarting:
		return
	}
	if !g.ready(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *pb.QueueArrive:
		g.arrivals = map[string]*pb.QueueArriveResult{}
		g.step(ctx, Arrive{Call: m.CallId})
		res := g.arrivals[m.CallId]
		if res == nil {
			res = &pb.QueueArriveResult{Found: true}
		}
		res.Name = g.cfg.Name
		g.arrivals = nil
		ctx.Respond(res)
	case *pb.QueueReport:
		switch m.Kind {
		case "answered":
			g.step(ctx, Answered{Call: m.CallId, User: m.User})
		case "declined":
			g.step(ctx, Declined{Call: m.CallId, User: m.User})
		case "left":
			g.step(ctx, Left{Call: m.CallId})
		case "ended":
			g.step(ctx, Ended{Call: m.CallId})
		}
	case *pb.AgentPresence:
		in := Presence{User: m.User, Registered: m.Registered, OnCall: m.OnCall, Elsewhere: m.Elsewhere}
		if m.WrapUntilUnixNano > 0 {
			in.WrapUntil = time.Unix(0, m.WrapUntilUnixNano)
		}
		g.step(ctx, in)
	case *pb.QueueMember:
		ctx.Respond(g.member(ctx, m))
	case *pb.QueueStats:
		b, err := json.Marshal(g.q.Stats(g.d.Now()))
		if err != nil {
			ctx.Respond(&pb.QueueResult{Status: 500, Code: "internal", Message: err.Error()})
			return
		}
		ctx.Respond(&pb.QueueResult{Status: 200, Json: b})
	case wake:
		if m.gen == g.wakeGen {
			g.step(ctx, Tick{})
		}
	case written:
		g.wrote(ctx, m)
	}
}

// ready loads the queue on its first message and follows its settings on
// every one; false (and an answer) for a queue that does not exist.
func (g *grain) ready(ctx actor.Context) bool {
	s, ok := g.d.Settings(g.id)
	if !ok {
		switch ctx.Message().(type) {
		case *pb.QueueArrive:
			ctx.Respond(&pb.QueueArriveResult{})
		case *pb.QueueMember, *pb.QueueStats:
			ctx.Respond(&pb.QueueResult{Status: 404, Code: "not_found", Message: "no such queue"})
		}
		ctx.Stop(ctx.Self())
		return false
	}
	g.viewers = s.Viewers
	if g.q == nil {
		if err := g.load(ctx, s.Config); err != nil {
			g.d.Log.Error("queue: state unreadable; starting afresh", "queue", g.id, "err", err)
			g.q = New(s.Config, g.d.Now())
		}
		g.cfg = s.Config
		g.step(ctx, Configure{Config: s.Config})
		g.askPresence(s.Config.Members)
		return true
	}
	if !reflect.DeepEqual(s.Config, g.cfg) {
		added := newMembers(g.cfg.Members, s.Config.Members)
		g.cfg = s.Config
		g.step(ctx, Configure{Config: s.Config})
		g.askPresence(added)
	}
	return true
}

// load reads the stored state (none: a new queue).
func (g *grain) load(_ actor.Context, cfg Config) error {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := g.d.Store.Get(c, Key(g.id))
	if errors.Is(err, store.ErrNotFound) {
		g.q = New(cfg, g.d.Now())
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue %s: load: %w", g.id, err)
	}
	var q Queue
	if err := json.Unmarshal(kv.Value, &q); err != nil {
		g.rev = kv.ModRevision // overwrite the unreadable state
		return fmt.Errorf("queue %s: decode: %w", g.id, err)
	}
	g.q, g.rev = &q, kv.ModRevision
	return nil
}

// askPresence has each member's line grain tell the queue how they stand.
func (g *grain) askPresence(members []Member) {
	for _, m := range members {
		if _, err := g.d.Claim(&pb.AgentClaim{User: m.User, QueueId: g.id, Kind: "presence"}); err != nil {
			g.d.Log.Warn("queue: member's presence unavailable", "queue", g.id, "user", m.User, "err", err)
		}
	}
}

func newMembers(old, cur []Member) []Member {
	var out []Member
	for _, m := range cur {
		found := false
		for _, o := range old {
			found = found || o.User == m.User
		}
		if !found {
			out = append(out, m)
		}
	}
	return out
}

// member opts a member in or out and answers the member entry.
func (g *grain) member(ctx actor.Context, m *pb.QueueMember) *pb.QueueResult {
	if !g.q.MayOpt(m.By, m.Admin, m.User) {
		return &pb.QueueResult{Status: 403, Code: "not_allowed", Message: "Only the member, the admin or one of the queue's admins may opt a member in or out."}
	}
	if _, ok := g.q.Member(m.User); !ok {
		return &pb.QueueResult{Status: 404, Code: "not_found", Message: "user: not a member of this queue"}
	}
	if m.OptIn {
		g.step(ctx, OptIn{User: m.User})
	} else {
		g.step(ctx, OptOut{User: m.User, Reason: m.Reason})
	}
	e, _ := g.q.Member(m.User)
	b, err := json.Marshal(e)
	if err != nil {
		return &pb.QueueResult{Status: 500, Code: "internal", Message: err.Error()}
	}
	return &pb.QueueResult{Status: 200, Json: b}
}

// step feeds the core and carries out its effects; a refused claim is fed
// back at once, so the call moves on within the same message.
func (g *grain) step(ctx actor.Context, in any) {
	for inputs := []any{in}; len(inputs) > 0; {
		in, inputs = inputs[0], inputs[1:]
		for _, e := range g.q.Step(in, g.d.Now()) {
			if next := g.apply(ctx, e); next != nil {
				inputs = append(inputs, next)
			}
		}
	}
}

// apply carries out one effect; it returns an input for the core when the
// effect could not be carried out.
func (g *grain) apply(ctx actor.Context, e any) any {
	switch e := e.(type) {
	case Arrived:
		res := &pb.QueueArriveResult{Found: true}
		if e.Overflow != nil {
			res.Overflow = &pb.QueueTarget{Kind: e.Overflow.Kind, Id: e.Overflow.ID}
		}
		if g.arrivals != nil {
			g.arrivals[e.Call] = res
		}
	case Ring:
		// The claim lapses a little after the offer's end, in case the
		// call that should let it go is lost.
		until := g.d.Now().Add(g.cfg.Ring + claimGrace).UnixNano()
		ok, err := g.d.Claim(&pb.AgentClaim{User: e.User, QueueId: g.id, CallId: e.Call, Kind: "ring", AllowOnCall: g.cfg.ReceiveWhileOnCall, UntilUnixNano: until})
		if err != nil || !ok {
			if err != nil {
				g.d.Log.Warn("queue: member could not be claimed", "queue", g.id, "user", e.User, "err", err)
			}
			return Refused{Call: e.Call, User: e.User}
		}
		g.d.ToCall(ctx, &pb.QueueOffer{CallId: e.Call, QueueId: g.id, User: e.User})
	case Withdraw:
		// The call lets the member go once their phones have stopped: an
		// offer of the next call must not ring a phone still ringing.
		g.d.ToCall(ctx, &pb.QueueOffer{CallId: e.Call, QueueId: g.id, User: e.User, Withdraw: true})
	case Serve:
		g.claim(&pb.AgentClaim{User: e.User, QueueId: g.id, CallId: e.Call, Kind: "serve"})
	case WrapUp:
		m := &pb.AgentClaim{User: e.User, QueueId: g.id, CallId: e.Call, Kind: "wrap_up"}
		if !e.Until.IsZero() {
			m.UntilUnixNano = e.Until.UnixNano()
		}
		g.claim(m)
	case Overflow:
		g.d.ToCall(ctx, &pb.QueueOffer{CallId: e.Call, QueueId: g.id, Overflow: &pb.QueueTarget{Kind: e.Target.Kind, Id: e.Target.ID}})
	case WakeAt:
		g.wakeAt(ctx, e.At)
	case Changed:
		g.persist(ctx)
		g.publish()
	}
	return nil
}

// claim tells a member's line grain what became of a claim; a failure is
// logged (the line grain's own state is what counts for other queues).
func (g *grain) claim(m *pb.AgentClaim) {
	if _, err := g.d.Claim(m); err != nil {
		g.d.Log.Warn("queue: member's line not told", "queue", g.id, "user", m.User, "kind", m.Kind, "err", err)
	}
}

func (g *grain) wakeAt(ctx actor.Context, at time.Time) {
	g.wakeGen++
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if !at.IsZero() {
		gen, self, sys := g.wakeGen, ctx.Self(), ctx.ActorSystem()
		g.timer = time.AfterFunc(at.Sub(g.d.Now()), func() { sys.Root.Send(self, wake{gen: gen}) })
	}
}

// persist writes the state off the mailbox; a write under way is followed
// by one more with the latest state.
func (g *grain) persist(ctx actor.Context) {
	if g.writing {
		g.dirty = true
		return
	}
	b, err := json.Marshal(g.q)
	if err != nil {
		g.d.Log.Error("queue: state not encodable", "queue", g.id, "err", err)
		return
	}
	g.writing, g.dirty = true, false
	st, key, rev, self, root := g.d.Store, Key(g.id), g.rev, ctx.Self(), ctx.ActorSystem().Root
	go func() {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := st.Txn(c, []store.Cond{{Key: key, ModRevision: rev}}, []store.Op{{Key: key, Value: b}})
		root.Send(self, written{rev: r, err: err})
	}()
}

// wrote: a write finished. A fenced write means another activation of the
// queue holds it: this one stops.
func (g *grain) wrote(ctx actor.Context, w written) {
	g.writing = false
	switch {
	case errors.Is(w.err, store.ErrConflict):
		g.d.Log.Error("queue: another activation holds this queue; stopping", "queue", g.id)
		ctx.Stop(ctx.Self())
		return
	case w.err != nil:
		g.d.Log.Warn("queue: state not stored; retrying with the next change", "queue", g.id, "err", w.err)
		g.dirty = true
	default:
		g.rev = w.rev
	}
	if g.dirty {
		g.persist(ctx)
	}
}

// publish sends queue.updated with the stats to those who may read them.
func (g *grain) publish() {
	if g.d.Events == nil || !g.d.Events.Listening("queue.updated") {
		return
	}
	g.d.Events.Publish(events.Event{Type: "queue.updated", Subject: g.id, Users: g.viewers, Time: g.d.Now(), Data: g.q.Stats(g.d.Now())})
}
