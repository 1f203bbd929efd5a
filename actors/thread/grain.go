package thread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// KindName is the cluster kind of thread grains; the identity is the
// thread id (ID).
const KindName = "thread"

// storeTimeout bounds each read and write of the state, so that a command
// is answered (503 when etcd does not answer) before the asker gives up.
const storeTimeout = 2 * time.Second

// retryAfter is when a release that could not be stored is tried again.
const retryAfter = time.Second

// Publisher delivers domain events to SSE clients of the whole cluster.
type Publisher interface{ Publish(events.Event) }

// Deps is what every thread grain on a node shares.
type Deps struct {
	Store store.Store
	// Out sends a message to a thread's peer, from the owner's number:
	// through the outbound trunk, or to a user's phones.
	Out    func(ctx actor.Context, from, to, text string)
	Events Publisher
	Now    func() time.Time
	Log    *slog.Logger
}

// NewKind returns the cluster kind for thread grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

type grain struct {
	d       *Deps
	id      string
	key     string
	t       *Thread // nil until the first command loads it
	rev     int64   // ModRevision of the stored state, the fence; 0: never stored
	wakeGen int
	timer   *time.Timer
}

type wake struct{ gen int }

// IdleAfter is how long a thread grain stays without a command before it
// stops: its state is in etcd, and a node's sweep wakes a claimed thread
// again before its claim is due (a node holds no grain per thread ever
// touched).
var IdleAfter = time.Minute

func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.id = m.Identity.Identity
		metrics.Actors.WithLabelValues(KindName).Inc()
	case *actor.Stopped:
		if g.timer != nil {
			g.timer.Stop()
		}
		metrics.Actors.WithLabelValues(KindName).Dec()
	case *pb.ThreadCommand:
		ctx.SetReceiveTimeout(IdleAfter)
		ctx.Respond(g.command(ctx, m))
	case *actor.ReceiveTimeout:
		ctx.Stop(ctx.Self())
	case wake:
		if m.gen == g.wakeGen && g.t != nil {
			g.step(ctx, Tick{})
		}
	}
}

// command carries out one command and answers it: the thread as REST shows
// it, or a refusal.
func (g *grain) command(ctx actor.Context, m *pb.ThreadCommand) *pb.ThreadResult {
	if ID(m.Owner, m.Peer) != g.id {
		return &pb.ThreadResult{Status: 400, Code: "invalid_field", Message: fmt.Sprintf("thread_id: %q is not the thread of %q and %q.", g.id, m.Owner, m.Peer)}
	}
	if err := g.load(m); err != nil {
		g.d.Log.Error("thread: state unreadable; stopping", "thread", g.id, "err", err)
		ctx.Stop(ctx.Self())
		return unavailable()
	}
	in, res := input(m)
	if res != nil {
		return res
	}
	// Only a message starts a thread.
	if g.rev == 0 && m.Action != "inbound" && m.Action != "send" {
		ctx.Stop(ctx.Self())
		return &pb.ThreadResult{Status: 404, Code: "not_found", Message: "No such thread."}
	}
	if res := g.step(ctx, in); res != nil {
		return res
	}
	b, err := json.Marshal(g.t.View())
	if err != nil {
		return &pb.ThreadResult{Status: 500, Code: "internal", Message: err.Error()}
	}
	return &pb.ThreadResult{Status: 200, Json: b}
}

func unavailable() *pb.ThreadResult {
	return &pb.ThreadResult{Status: 503, Code: "unavailable", Message: "The thread's state could not be stored or read; try again."}
}

// input is the core's input for m, or the answer to an unknown action.
func input(m *pb.ThreadCommand) (any, *pb.ThreadResult) {
	release := time.Duration(m.ClaimReleaseNano)
	switch m.Action {
	case "inbound":
		in := Inbound{Text: m.Text, Internal: m.Internal, Number: m.OwnerNumber, Members: m.Members, Admins: m.Admins, ClaimRelease: release}
		if m.UnixNano > 0 {
			in.At = time.Unix(0, m.UnixNano)
		}
		return in, nil
	case "send":
		// POST /v1/sms: the member chose the number it goes out from.
		return Reply{By: m.By, Text: m.Text, Number: m.OwnerNumber, Members: m.Members, Admins: m.Admins, ClaimRelease: release}, nil
	case "reply":
		// From the thread's own number, whatever number the node names.
		return Reply{By: m.By, Text: m.Text, Members: m.Members, Admins: m.Admins, ClaimRelease: release}, nil
	case "release":
		return Release{By: m.By, Admin: m.Admin, Members: m.Members, Admins: m.Admins, ClaimRelease: release}, nil
	case "transfer":
		return Transfer{By: m.By, To: m.To, Members: m.Members, Admins: m.Admins, ClaimRelease: release}, nil
	case "get":
		return Get{Members: m.Members, Admins: m.Admins, ClaimRelease: release}, nil
	}
	return nil, &pb.ThreadResult{Status: 400, Code: "invalid_field", Message: fmt.Sprintf("action: %q is not one of inbound, send, reply, release, transfer, get.", m.Action)}
}

// load reads the stored thread on the first command (none: a new thread
// of the command's owner and peer).
func (g *grain) load(m *pb.ThreadCommand) error {
	if g.t != nil {
		return nil
	}
	g.key = Key(m.Owner, m.Peer)
	c, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	kv, err := g.d.Store.Get(c, g.key)
	if errors.Is(err, store.ErrNotFound) {
		g.t, g.rev = New(g.id, m.Owner, m.OwnerKind, m.Peer, m.OwnerNumber), 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("thread %s: load: %w", g.id, err)
	}
	var t Thread
	if err := json.Unmarshal(kv.Value, &t); err != nil {
		return fmt.Errorf("thread %s: decode: %w", g.id, err)
	}
	g.t, g.rev = &t, kv.ModRevision
	return nil
}

// step feeds the core a copy of the thread and keeps it once stored: the
// write is fenced on the revision this activation read, and comes before
// anything is sent, announced or answered (a claim is durable before its
// 200). It returns the answer when the input is refused or the write
// failed; a fenced write means a twin holds the thread: this one stops.
func (g *grain) step(ctx actor.Context, in any) *pb.ThreadResult {
	next := g.t.clone()
	effects, err := next.Step(in, g.d.Now())
	if len(effects) > 0 {
		if _, ok := effects[0].(Persist); ok {
			if werr := g.persist(next); werr != nil {
				if errors.Is(werr, store.ErrConflict) {
					g.d.Log.Error("thread: another activation holds this thread; stopping", "thread", g.id)
					ctx.Stop(ctx.Self())
				} else {
					g.d.Log.Warn("thread: state not stored; nothing done", "thread", g.id, "err", werr)
					if _, ok := in.(Tick); ok {
						g.wakeAt(ctx, g.d.Now().Add(retryAfter))
					}
				}
				return unavailable()
			}
		}
	}
	g.t = next
	for _, e := range effects {
		switch e := e.(type) {
		case Send:
			g.d.Out(ctx, e.From, e.To, e.Text)
		case Notify:
			g.publish(e)
		case WakeAt:
			g.wakeAt(ctx, e.At)
		}
	}
	var r *Refusal
	if errors.As(err, &r) {
		return &pb.ThreadResult{Status: int32(r.Status), Code: r.Code, Message: r.Message, Holder: r.Holder}
	}
	return nil
}

func (g *grain) persist(t *Thread) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("thread %s: encode: %w", g.id, err)
	}
	c, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	rev, err := g.d.Store.Txn(c, []store.Cond{{Key: g.key, ModRevision: g.rev}}, []store.Op{{Key: g.key, Value: b}})
	if err != nil {
		return fmt.Errorf("thread %s: store: %w", g.id, err)
	}
	g.rev = rev
	return nil
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

// Notice is an SMS event's data: the thread without its messages, with the
// release's reason (sms.released) or the message (sms.received).
type Notice struct {
	Summary
	Reason  string   `json:"reason,omitempty"`
	Message *Message `json:"message,omitempty"`
}

func (g *grain) publish(n Notify) {
	if g.d.Events == nil {
		return
	}
	g.d.Events.Publish(events.Event{Type: n.Type, Subject: g.id, Users: n.Users, Time: g.d.Now(),
		Data: Notice{Summary: n.Thread, Reason: n.Reason, Message: n.Message}})
}
