package call

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/actors/history"
	"github.com/switchboard/switchboard/api/metrics"
	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// KindName is the cluster kind of call grains.
const KindName = "call"

// Well-known names of the node-local actors the grain commands.
const (
	EdgeActor  = "sip"
	MediaActor = "media"
)

// Router answers the routing facts a call needs; the directory implements it.
type Router interface {
	Lookup(dialed string, fromTrunk bool) (target *Party, srtp bool, isE164 bool, trunk *Contact)
}

// Publisher delivers domain events to SSE clients of the whole cluster.
type Publisher interface{ Publish(events.Event) }

// Deps is what every call grain on a node shares.
type Deps struct {
	Router   Router
	Store    store.Store
	Events   Publisher
	Index    *Index
	Settings Settings
	Draining func() bool
	Now      func() time.Time
	Log      *slog.Logger
	// LineContacts fetches a user's registrations from the line grain.
	LineContacts func(ctx actor.Context, user string) ([]Contact, error)
}

// NewKind returns the cluster kind for call grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

type grain struct {
	d          *Deps
	cl         *cluster.Cluster
	call       *Call
	mediaNode  string // actor address of the node running the media worker
	mediaID    string // that node's id
	calleeSRTP bool
	sdp        map[string][]byte // last SDP seen from each callee leg (answer or early)
	answerSDP  []byte            // our answer to the caller
	wakeGen    int
	timer      *time.Timer
	setupFrom  time.Time
}

type wake struct{ gen int }

func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.cl = m.Cluster
		metrics.Actors.WithLabelValues(KindName).Inc()
	case *actor.Stopped:
		metrics.Actors.WithLabelValues(KindName).Dec()
		if g.call != nil && g.call.State != Ended {
			metrics.CallsActive.Dec()
		}
	case *pb.CallStart:
		g.start(ctx, m)
	case *pb.LegEvent:
		g.legEvent(ctx, m)
	case *pb.LegReinvite:
		ctx.Respond(g.reinvite(ctx, m))
	case *pb.CallControl:
		ctx.Respond(g.control(ctx, m))
	case *pb.CallGet:
		if g.call == nil {
			ctx.Respond(&pb.CallInfo{Id: m.CallId})
			ctx.Stop(ctx.Self())
			return
		}
		ctx.Respond(g.info())
	case *pb.MediaEvent:
		if m.Kind == "rtp_timeout" {
			g.step(ctx, MediaTimeout{})
		}
	case *deferred:
		g.step(ctx, m.in)
	case wake:
		if m.gen == g.wakeGen {
			g.step(ctx, Tick{})
		}
	}
}

func (g *grain) now() time.Time { return g.d.Now() }

func (g *grain) start(ctx actor.Context, m *pb.CallStart) {
	if g.call != nil {
		return // a retried start for a call already under way
	}
	now := g.now()
	g.call = New(m.CallId, now)
	g.sdp = map[string][]byte{}
	g.setupFrom = time.Unix(0, m.ReceivedUnixNano)
	g.mediaNode, g.mediaID = m.Node.GetAddress(), m.Node.GetId()
	metrics.CallsActive.Inc()
	from := Party{UserID: m.From.GetUserId(), Number: m.From.GetNumber(), Display: m.From.GetDisplay(), TrunkID: m.From.GetTrunkId()}
	in := Start{CallerLeg: m.LegId, NodeID: m.Node.GetId(), NodeAddr: m.Node.GetAddress(), From: from, Dialed: m.To}
	if g.d.Draining != nil && g.d.Draining() {
		in.Draining = true
	} else {
		res := g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: m.LegId, Sdp: m.Offer})
		if res.Code != 0 {
			in.OfferCode = int(res.Code)
		} else {
			in.Lookup = g.lookup(ctx, m.To, from.TrunkID != "")
			if t := in.Lookup.OutboundTrunk; t != nil {
				// Calls out through a trunk leave from the node that holds
				// the caller and the media.
				t.NodeID, t.NodeAddr = m.Node.GetId(), m.Node.GetAddress()
			}
		}
	}
	in.From.External = g.external(from)
	g.step(ctx, in)
}

// external is the E.164 number a user shows to carriers.
func (g *grain) external(p Party) string {
	if p.UserID == "" {
		return ""
	}
	if u, _, _, _ := g.d.Router.Lookup(p.UserID, false); u != nil {
		return u.External
	}
	return ""
}

func (g *grain) lookup(ctx actor.Context, dialed string, fromTrunk bool) Lookup {
	target, srtp, isE164, trunk := g.d.Router.Lookup(dialed, fromTrunk)
	lk := Lookup{Target: target, IsE164: isE164, OutboundTrunk: trunk}
	g.calleeSRTP = srtp
	if target != nil {
		cts, err := g.d.LineContacts(ctx, target.UserID)
		if err != nil {
			g.d.Log.Warn("call: contacts lookup failed", "call", g.call.ID, "user", target.UserID, "err", err)
		}
		lk.Contacts = cts
	}
	return lk
}

func (g *grain) legEvent(ctx actor.Context, m *pb.LegEvent) {
	if g.call == nil {
		// A late event for a call that ended here before: nothing to do.
		ctx.Stop(ctx.Self())
		return
	}
	switch m.Kind {
	case pb.LegEvent_RINGING:
		g.step(ctx, Rang{Leg: m.LegId})
	case pb.LegEvent_EARLY:
		g.sdp[m.LegId] = m.Sdp
		g.step(ctx, Rang{Leg: m.LegId})
	case pb.LegEvent_ANSWERED:
		g.sdp[m.LegId] = m.Sdp
		g.step(ctx, Answered{Leg: m.LegId})
	case pb.LegEvent_FAILED:
		g.step(ctx, Failed{Leg: m.LegId, Code: int(m.Code)})
	case pb.LegEvent_CANCELLED:
		g.step(ctx, Cancelled{Leg: m.LegId})
	case pb.LegEvent_BYE:
		g.step(ctx, Bye{Leg: m.LegId})
	}
}

func (g *grain) reinvite(ctx actor.Context, m *pb.LegReinvite) *pb.LegReinviteResult {
	if g.call == nil || g.call.Leg(m.LegId) == nil || g.call.State == Ended {
		return &pb.LegReinviteResult{Code: 481}
	}
	// The answer keeps to what the other side agreed on; before an answer
	// there is no other side and the offer's own codecs stand.
	peer := m.LegId
	if o := g.call.other(m.LegId); o != nil {
		peer = o.ID
	}
	res := g.media(ctx,
		&pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: m.LegId, Sdp: m.Sdp},
		&pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: m.LegId, Peer: peer})
	if res.Code != 0 {
		return &pb.LegReinviteResult{Code: res.Code}
	}
	g.step(ctx, Reinvite{Leg: m.LegId, Direction: res.Direction})
	return &pb.LegReinviteResult{Code: 200, Sdp: res.Sdp}
}

func (g *grain) control(ctx actor.Context, m *pb.CallControl) *pb.CallControlResult {
	if g.call == nil {
		ctx.Stop(ctx.Self())
		return &pb.CallControlResult{Status: 404, Code: "not_found", Message: "no such call"}
	}
	if err := g.step(ctx, Control{Action: m.Action, ByUser: m.ByUser, Admin: m.Admin}); err != nil {
		if r, ok := err.(*Refusal); ok {
			return &pb.CallControlResult{Status: int32(r.Status), Code: r.Code, Message: r.Message}
		}
		return &pb.CallControlResult{Status: 500, Code: "internal", Message: err.Error()}
	}
	return &pb.CallControlResult{Status: 200}
}

// step feeds the core and carries out its effects in order.
func (g *grain) step(ctx actor.Context, in any) error {
	effs, err := g.call.Step(in, g.now(), g.d.Settings)
	if err != nil {
		return err
	}
	g.apply(ctx, effs)
	if g.call.State != Ended {
		g.d.Index.Put(g.info())
	}
	return nil
}

func (g *grain) apply(ctx actor.Context, effs []Effect) {
	for i, e := range effs {
		switch e := e.(type) {
		case Respond:
			r := &pb.LegRespond{CallId: g.call.ID, LegId: e.Leg, Code: int32(e.Code), Reason: e.Reason}
			if e.WithSDP {
				r.Sdp = g.answerSDP
			}
			if e.Code < 300 && !g.setupFrom.IsZero() {
				metrics.CallSetupSeconds.Observe(time.Since(g.setupFrom).Seconds())
				g.setupFrom = time.Time{}
			}
			g.toEdge(ctx, e.Leg, r)
		case Originate:
			res := g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_OFFER, Leg: e.Leg, Peer: g.call.caller().ID, Srtp: g.calleeSRTP})
			if res.Code != 0 {
				g.later(ctx, Failed{Leg: e.Leg, Code: int(res.Code)})
				continue
			}
			g.toEdge(ctx, e.Leg, &pb.LegOriginate{
				CallId: g.call.ID, LegId: e.Leg, RequestUri: e.Contact.URI, Destination: e.Contact.Destination,
				Transport: e.Contact.Transport, FromUser: e.FromUser, FromDisplay: e.Display, ToUser: e.ToUser,
				AssertedIdentity: e.PAI, Sdp: res.Sdp,
			})
		case EndLeg:
			g.toEdge(ctx, e.Leg, &pb.LegEnd{CallId: g.call.ID, LegId: e.Leg, Code: int32(e.Code)})
			if g.call.State != Ended {
				g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_REMOVE_LEG, Leg: e.Leg})
			}
		case Connect:
			res := g.media(ctx,
				&pb.MediaOp{Kind: pb.MediaOp_ACCEPT_ANSWER, Leg: e.Callee, Sdp: g.sdp[e.Callee]},
				&pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: e.Caller, Peer: e.Callee},
				&pb.MediaOp{Kind: pb.MediaOp_BRIDGE, Leg: e.Caller, Peer: e.Callee})
			if res.Code != 0 {
				// The callee's answer is unusable: the rest of this batch
				// (200 to the caller) must not happen; the core ends the call.
				g.later(ctx, Failed{Leg: e.Callee, Code: int(res.Code)})
				g.applyOnly(ctx, effs[i+1:], func(e Effect) bool { _, ok := e.(EndLeg); return ok })
				return
			}
			g.answerSDP = res.Sdp
		case HoldMedia:
			g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_TONE, Leg: e.Held}, &pb.MediaOp{Kind: pb.MediaOp_SILENCE, Leg: e.Holder})
		case BridgeMedia:
			g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_BRIDGE, Leg: e.A, Peer: e.B})
		case WakeAt:
			g.wakeGen++
			if g.timer != nil {
				g.timer.Stop()
				g.timer = nil
			}
			if !e.At.IsZero() {
				gen, self, sys := g.wakeGen, ctx.Self(), ctx.ActorSystem()
				g.timer = time.AfterFunc(e.At.Sub(g.now()), func() { sys.Root.Send(self, wake{gen: gen}) })
			}
		case Event:
			g.publish(e.Type)
		case Finished:
			g.finish(ctx, e)
		}
	}
}

func (g *grain) applyOnly(ctx actor.Context, effs []Effect, keep func(Effect) bool) {
	var kept []Effect
	for _, e := range effs {
		if keep(e) {
			kept = append(kept, e)
		}
	}
	g.apply(ctx, kept)
}

// later feeds an input after the current batch, through the mailbox, so
// effects are never interleaved.
func (g *grain) later(ctx actor.Context, in any) {
	ctx.Send(ctx.Self(), &deferred{in: in})
}

type deferred struct{ in any }

func (g *grain) finish(ctx actor.Context, f Finished) {
	g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_RELEASE})
	metrics.CallsActive.Dec()
	metrics.CallsTotal.WithLabelValues(f.Outcome).Inc()
	g.d.Index.Delete(g.call.ID)
	c := g.call
	entries := make([]history.Entry, 0, len(f.History))
	for _, h := range f.History {
		e := history.Entry{CallID: c.ID, Direction: h.Direction, Peer: h.Peer, Line: h.Line, Label: h.Label,
			StartedAt: c.CreatedAt, EndedAt: c.EndedAt, Outcome: h.Outcome}
		if !c.AnsweredAt.IsZero() {
			at := c.AnsweredAt
			e.AnsweredAt = &at
		}
		entries = append(entries, e)
	}
	owners := f.History
	st, log := g.d.Store, g.d.Log
	// History is written after the call: nobody waits on it, and a slow etcd
	// must not hold the grain's mailbox.
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, e := range entries {
			if _, err := history.Append(cctx, st, owners[i].Owner, e); err != nil {
				log.Warn("call: history write failed", "call", e.CallID, "owner", owners[i].Owner, "err", err)
			}
		}
	}()
	ctx.Stop(ctx.Self())
}

func (g *grain) publish(typ string) {
	if g.d.Events == nil {
		return
	}
	var users []string
	for _, p := range []Party{g.call.From, g.call.To} {
		if p.UserID != "" {
			users = append(users, p.UserID)
		}
	}
	g.d.Events.Publish(events.Event{Type: typ, Subject: g.call.ID, Users: users, Data: callJSON(g.info())})
}

func (g *grain) toEdge(ctx actor.Context, legID string, msg any) {
	l := g.call.Leg(legID)
	if l == nil {
		return
	}
	ctx.Send(actor.NewPID(l.NodeAddr, EdgeActor), msg)
}

// media runs ops on the call's media worker. It returns the first failure,
// or else the first result that carries SDP (the one the caller sends on),
// or else the last result.
func (g *grain) media(ctx actor.Context, ops ...*pb.MediaOp) *pb.MediaResult {
	req := &pb.MediaRequest{CallId: g.call.ID, Ops: ops}
	r, err := ctx.RequestFuture(actor.NewPID(g.mediaNode, MediaActor), req, 5*time.Second).Result()
	if err != nil {
		g.d.Log.Error("call: media request failed", "call", g.call.ID, "err", err)
		return &pb.MediaResult{Code: 503, Error: err.Error()}
	}
	resp, ok := r.(*pb.MediaResponse)
	if !ok || len(resp.Results) == 0 {
		return &pb.MediaResult{Code: 500, Error: "media: empty response"}
	}
	var withSDP *pb.MediaResult
	for _, res := range resp.Results {
		if res.Code != 0 {
			return res
		}
		if withSDP == nil && len(res.Sdp) > 0 {
			withSDP = res
		}
	}
	if withSDP != nil {
		return withSDP
	}
	return resp.Results[len(resp.Results)-1]
}

func (g *grain) info() *pb.CallInfo {
	c := g.call
	ci := &pb.CallInfo{Id: c.ID, State: string(c.State), Line: c.Line, Node: g.mediaID, CreatedUnixNano: c.CreatedAt.UnixNano(), Found: true, Monitors: []string{}}
	if c.State == Routing {
		ci.State = string(Ringing)
	}
	if !c.AnsweredAt.IsZero() {
		ci.AnsweredUnixNano = c.AnsweredAt.UnixNano()
	}
	for _, l := range c.Legs {
		ci.Legs = append(ci.Legs, &pb.LegInfo{Id: l.ID, Party: l.Party.Label(), State: string(l.State), Node: l.NodeID})
	}
	return ci
}
