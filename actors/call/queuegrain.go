package call

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/switchboard/switchboard/proto"
)

// The adapter's side of queues: asking a queue to take the caller in,
// following its overflow, and carrying out its offers.

// maxQueueHops bounds an overflow chain at run time (queue A full,
// overflowing to B, full, to C ...); the settings refuse a loop when saved.
const maxQueueHops = 5

// queue is the queue dialed names, for a caller's INVITE. (A click-to-call
// or a transfer to a queue is not offered yet: both would put a call in
// the queue that is not the caller's own.)
func (g *grain) queue(dialed string) (QueueRoute, bool) {
	if g.d.Queues == nil {
		return QueueRoute{}, false
	}
	return g.d.Queues.Find(dialed)
}

// arrive asks queue q to take the caller in; when it overflows at once, the
// overflow target is routed instead.
func (g *grain) arrive(ctx actor.Context, q QueueRoute, from Party, hops int) Lookup {
	to, err := g.d.Queues.Arrive(ctx, q.ID, g.call.ID)
	if err != nil {
		g.d.Log.Warn("call: queue unavailable", "call", g.call.ID, "queue", q.ID, "err", err)
		return Lookup{Finale: FinaleDisconnect}
	}
	if to == nil {
		return Lookup{Queue: &q}
	}
	return g.overflowRoute(ctx, Target{Kind: to.Kind, ID: to.Id}, from, hops+1)
}

// overflowRoute routes an overflow target (a queue's, a group's) for the
// caller from.
func (g *grain) overflowRoute(ctx actor.Context, to Target, from Party, hops int) Lookup {
	switch to.Kind {
	case "queue":
		q, ok := g.queue(to.ID)
		if !ok || hops > maxQueueHops {
			g.d.Log.Warn("call: overflow to a queue goes nowhere", "call", g.call.ID, "queue", to.ID, "hops", hops)
			return Lookup{Finale: FinaleDisconnect}
		}
		return g.arrive(ctx, q, from, hops)
	case "user", "number":
		// Routed as if the caller had dialled it, and forwarded by the
		// system: a trunk's caller may go out through the trunk.
		lk, srtp := g.route(ctx, to.ID, from)
		lk.Forward = true
		if t := lk.OutboundTrunk; t != nil {
			t.NodeID, t.NodeAddr = g.mediaID, g.mediaNode
		}
		if lk.Target != nil {
			g.calleeSRTP = srtp
		}
		return lk
	case "message":
		return Lookup{Finale: FinaleMessage}
	}
	return Lookup{Finale: FinaleDisconnect}
}

// queueOffer carries out a queue's word on its waiting caller: ring a
// member, stop ringing them, or leave for the overflow target.
func (g *grain) queueOffer(ctx actor.Context, m *pb.QueueOffer) {
	switch {
	case m.Overflow != nil:
		lk := g.overflowRoute(ctx, Target{Kind: m.Overflow.Kind, ID: m.Overflow.Id}, g.call.From, 1)
		g.step(ctx, Overflow{Route: lk})
	case m.Withdraw:
		g.step(ctx, Withdraw{User: m.User})
	default:
		if g.offered == nil {
			g.offered = map[string]string{}
		}
		g.offered[m.User] = m.QueueId
		party := Party{UserID: m.User}
		if p, _, _, _ := g.d.Router.Lookup(m.User, false); p != nil {
			party = *p
		}
		cts, err := g.d.LineContacts(ctx, m.User)
		if err != nil {
			g.d.Log.Warn("call: queue member's phones not found", "call", g.call.ID, "user", m.User, "err", err)
		}
		g.step(ctx, Offer{Party: party, Contacts: cts})
	}
}

// unsettle marks a queue member's new leg: until the phone has finished
// its INVITE (answered, refused, or, when we ended the leg, the edge's
// SETTLED: the 487 after our CANCEL, which the edge sends only once the
// phone has said it rings, or our BYE of a late answer), the member still
// rings for this call.
func (g *grain) unsettle(leg string) {
	l := g.call.Leg(leg)
	if l == nil || g.offered[l.Party.UserID] == "" || !g.call.isQueueLeg(l) {
		return
	}
	if g.unsettled == nil {
		g.unsettled = map[string]string{}
	}
	g.unsettled[leg] = l.Party.UserID
}

// releaseOffered lets go the members the queue offered the call to whose
// phones no longer ring for it (declined, withdrawn, or the call ended):
// each of their INVITEs finished, so the next offer never rings a phone
// still ringing for this one. The member who took the call stays the
// queue's until its wrap-up.
func (g *grain) releaseOffered(ctx actor.Context) {
	for user, queue := range g.offered {
		if q := g.call.Queued; q != nil && q.Member == user && g.call.State != Ended {
			continue
		}
		if len(g.call.memberLegs(user)) > 0 || g.ringsStill(user) {
			continue
		}
		delete(g.offered, user)
		if q := g.call.Queued; q != nil && q.Member == user {
			continue // served: the queue's wrap-up lets them go
		}
		g.d.Queues.Release(ctx, queue, g.call.ID, user)
	}
	if g.lingering && len(g.offered) == 0 {
		g.lingering = false
		ctx.Stop(ctx.Self())
	}
}

// settleTimeout: phones that never finished their INVITE after the call
// ended are not waited for any longer.
type settleTimeout struct{}

// settleWait bounds how long an ended call waits for its offered members'
// phones to finish their INVITEs before letting them go anyway.
const settleWait = 5 * time.Second

// stopSettled stops an ended call's grain, once the members a queue
// offered it to are let go; a phone still finishing its INVITE is waited
// for, up to settleWait.
func (g *grain) stopSettled(ctx actor.Context) {
	if len(g.offered) == 0 {
		ctx.Stop(ctx.Self())
		return
	}
	g.lingering = true
	self, sys := ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(settleWait, func() { sys.Root.Send(self, settleTimeout{}) })
}

// answerSettled: a member's phone answered. Taken, it is settled; too late
// (another phone won, or the offer was withdrawn), the core hung it up, and
// the edge reports SETTLED once the BYE has left, so the next offer does not
// reach the phone before it.
func (g *grain) answerSettled(leg string) {
	if l := g.call.Leg(leg); l != nil && l.State != LegEnded {
		delete(g.unsettled, leg)
	}
}

// ringsStill: one of user's phones has not finished an INVITE of this call.
func (g *grain) ringsStill(user string) bool {
	for _, u := range g.unsettled {
		if u == user {
			return true
		}
	}
	return false
}

// wait answers the caller alone (unless already answered) and plays the
// prompt; a failure ends the caller's leg.
func (g *grain) wait(ctx actor.Context, e Wait) bool {
	var ops []*pb.MediaOp
	if !e.Answered {
		ops = append(ops, &pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: e.Leg, Peer: e.Leg})
	}
	res := g.media(ctx, append(ops, &pb.MediaOp{Kind: pb.MediaOp_PROMPT, Leg: e.Leg, Tone: e.Prompt})...)
	if res.Code != 0 {
		if !e.Answered {
			g.toEdge(ctx, e.Leg, &pb.LegRespond{CallId: g.call.ID, LegId: e.Leg, Code: res.Code, Reason: "Service Unavailable"})
		}
		g.later(ctx, Failed{Leg: e.Leg, Code: int(res.Code)})
		return false
	}
	if !e.Answered {
		g.answerSDP = res.Sdp
	}
	return true
}
