package call

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/actors/monitoring"
	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/history"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/media/sdp"
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
type Publisher interface {
	Publish(events.Event)
	// Listening is false when nobody anywhere could receive an event of typ.
	Listening(typ string) bool
}

// Deps is what every call grain on a node shares.
type Deps struct {
	Router   Router
	History  HistoryWriter
	Events   Publisher
	Index    *Index
	Settings Settings
	NodeID   string // this node, where its grains run (a call's grain_node)
	Draining func() bool
	Now      func() time.Time
	Log      *slog.Logger
	// LineContacts fetches a user's registrations from the line grain.
	LineContacts func(ctx actor.Context, user string) ([]Contact, error)
	// RingPlan asks the delegator grain of a user who rings for a call.
	RingPlan func(ctx actor.Context, req *pb.RingPlanRequest) (RingPlan, error)
	// MonitorFacts gathers what the monitoring rule (actors/monitoring)
	// needs to answer whether supervisor may monitor party's calls.
	MonitorFacts func(ctx actor.Context, supervisor, party string) (monitoring.Facts, error)
	// Access asks the delegator grain of line what user may do on it.
	Access func(ctx actor.Context, line, user string) (Access, error)
	// LineUpdate tells the line grain how a call on it stands.
	LineUpdate func(ctx actor.Context, u *pb.LineCall)
	// PersistLock writes a call's lock fenced on rev (0: not written yet)
	// and returns the new revision.
	PersistLock func(callID string, locked bool, by string, rev int64) (int64, error)
	// PersistMonitor writes a call's monitoring slot fenced on rev (0: not
	// written yet) and returns the new revision; ErrFenced when another
	// twin of the grain holds it.
	PersistMonitor func(callID, by, mode string, rev int64) (int64, error)
	// ClearLock removes a finished call's fenced records (lock, monitoring
	// slot).
	ClearLock func(callID string)
	// Queues reaches the queue grains (nil: no queues on this node);
	// Groups reads shared line groups and pickup groups (nil: none).
	Queues Queues
	Groups Groups
	// Local is this node, once its media service and SIP edge run: a grain
	// reaches them by call rather than by message, saving a mailbox hop (and
	// for media a future) per operation. Until it is set, messages.
	Local atomic.Pointer[Local]
}

// Queues is what a call needs of call queues: which queue a dialed string
// names, whether it takes the caller in, and telling it what happened.
type Queues interface {
	// Find is the queue the dialed string (an extension or number) or a
	// queue id names.
	Find(dialed string) (QueueRoute, bool)
	// Arrive asks queue to take call in: nil, it waits there; else where
	// it overflows to at once.
	Arrive(ctx actor.Context, queue, call string) (*pb.QueueTarget, error)
	// Report tells queue what happened to call.
	Report(ctx actor.Context, call string, r TellQueue)
	// Release lets a member the queue claimed for call go, once their
	// phones have stopped ringing for it.
	Release(ctx actor.Context, queue, call, user string)
}

// Local is this node's actor address and its in-process handlers.
type Local struct {
	Addr  string
	Media func(*pb.MediaRequest) *pb.MediaResponse
	Edge  func(msg any, grain *actor.PID)
}

// HistoryWriter takes the history entries of a finished call; it writes
// them after the call, batched (history.Writer).
type HistoryWriter interface {
	Append(owner string, e history.Entry) error
}

// NewKind returns the cluster kind for call grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

// ErrFenced is what a fenced write answers when another twin of the grain
// holds the record (ARCHITECTURE rule 5).
var ErrFenced = errors.New("call: fenced record held by another grain")

type grain struct {
	d          *Deps
	cl         *cluster.Cluster
	call       *Call
	mediaNode  string // actor address of the node running the media worker
	mediaID    string // that node's id
	calleeSRTP bool
	callerSRTP bool              // a click-to-call's caller must be offered SRTP
	sdp        map[string][]byte // last SDP seen from each callee leg (answer or early)
	answerSDP  []byte            // our answer to the caller
	wakeGen    int
	timer      *time.Timer
	setupFrom  time.Time
	offers     map[string][]byte // SIP pickups: the picker's offer, until adopted
	lockRev    int64             // etcd revision of the call's lock: its fence
	lockErr    bool              // the last PersistLock failed
	monitorRev int64             // etcd revision of the call's monitoring slot: its fence
	monitorErr error             // why the last PersistMonitor failed
	line       lineView          // what the line grain was last told
	talking    map[string]string // users talking on the call off its line, and what their lines were told
	offered    map[string]string // members a queue offered the call to, by user: their queue
	unsettled  map[string]string // offered members' legs whose INVITE the phone has not finished, by leg: the user
	lingering  bool              // the call ended; the grain waits for offered members' phones to finish
	lineUsers  []string          // and who it was told to show the call to
}

type lineView struct {
	line   string
	state  string
	locked bool
}

type wake struct{ gen int }

func (g *grain) Receive(ctx actor.Context) {
	if g.call == nil && g.noCall(ctx) {
		return
	}
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.cl = m.Cluster
		metrics.Actors.WithLabelValues(KindName).Inc()
	case *actor.Stopped:
		// A pending wake's closure holds our PID, and a PID holds its
		// process: stop it, or it keeps this grain in memory until it fires.
		if g.timer != nil {
			g.timer.Stop()
			g.timer = nil
		}
		metrics.Actors.WithLabelValues(KindName).Dec()
		if g.call != nil && g.call.State != Ended {
			metrics.CallsActive.Dec()
		}
	case *pb.CallStart:
		g.start(ctx, m)
	case *pb.CallDial:
		ctx.Respond(g.dial(ctx, m))
	case *pb.LegEvent:
		g.legEvent(ctx, m)
	case *pb.LegReinvite:
		ctx.Respond(g.reinvite(ctx, m))
	case *pb.CallControl:
		ctx.Respond(g.control(ctx, m))
	case *pb.CallGet:
		ctx.Respond(g.info())
	case *actor.DeadLetterResponse:
		// A leg command sent to another node's edge found no one there (the
		// node is gone or unreachable): the leg it was for is lost with it.
		g.d.Log.Warn("call: leg command undelivered", "grain", ctx.Self().Id, "target", m.Target)
	case *pb.QueueOffer:
		g.queueOffer(ctx, m)
	case *pb.MediaEvent:
		switch m.Kind {
		case "prompt_done":
			g.step(ctx, PromptDone{Leg: m.LegId})
		case "rtp_timeout":
			g.step(ctx, MediaTimeout{})
		case "dtmf":
			g.step(ctx, DTMF{Leg: m.LegId, Digit: m.Digit})
		}
	case *deferred:
		g.step(ctx, m.in)
	case wake:
		if m.gen == g.wakeGen {
			g.step(ctx, Tick{})
		}
	case settleTimeout:
		g.unsettled = nil
		g.releaseOffered(ctx)
	}
}

// noCall answers a message that needs a call when this grain has none:
// its call ended here before, or the grain was activated afresh (on
// another node, say) and never had it. A request gets the answer it gets
// for an unknown call; a leg or media worker still up for the lost call is
// ended, as nothing else would end it; and the grain stops. It is false
// for the messages that create a call and for the actor's lifecycle.
func (g *grain) noCall(ctx actor.Context) bool {
	switch m := ctx.Message().(type) {
	case *pb.LegEvent:
		g.endOrphanLeg(ctx, m.CallId, m.LegId)
	case *pb.LegReinvite:
		ctx.Respond(&pb.LegReinviteResult{Code: 481})
		g.endOrphanLeg(ctx, m.CallId, m.LegId)
	case *pb.CallControl:
		ctx.Respond(&pb.CallControlResult{Status: 404, Code: "not_found", Message: "no such call"})
		if m.LegId != "" {
			// A pickup over SIP: its INVITE waits for our answer.
			g.sendEdge(ctx, m.Node.GetAddress(), &pb.LegEnd{CallId: m.CallId, LegId: m.LegId, Code: 404})
		}
	case *pb.CallGet:
		ctx.Respond(&pb.CallInfo{Id: m.CallId})
	case *pb.MediaEvent:
		g.releaseOrphanWorker(ctx, m.CallId)
	case *pb.QueueOffer:
		// The queue thinks this call waits: it does not (any more), and
		// the member it claimed for it is free.
		if g.d.Queues != nil {
			g.d.Queues.Report(ctx, m.CallId, TellQueue{Queue: m.QueueId, Kind: "left"})
			if m.User != "" {
				g.d.Queues.Release(ctx, m.QueueId, m.CallId, m.User)
			}
		}
	case *deferred, wake, settleTimeout:
		// Left by a call that ended here: nothing to step.
	default:
		return false
	}
	g.d.Log.Debug("call: message for a call this grain does not have", "grain", ctx.Self().Id, "message", fmt.Sprintf("%T", ctx.Message()))
	ctx.Stop(ctx.Self())
	return true
}

// endOrphanLeg ends a leg of a call this grain does not have, on the node
// whose SIP edge reported it (the message's sender).
func (g *grain) endOrphanLeg(ctx actor.Context, callID, legID string) {
	from := ctx.Sender()
	if from == nil {
		g.d.Log.Warn("call: leg of an unknown call reported by nobody; it cannot be ended", "call", callID, "leg", legID)
		return
	}
	g.sendEdge(ctx, from.Address, &pb.LegEnd{CallId: callID, LegId: legID, Code: 481})
}

// releaseOrphanWorker releases the media worker of a call this grain does
// not have, on the node whose media service reported it (the sender).
func (g *grain) releaseOrphanWorker(ctx actor.Context, callID string) {
	from := ctx.Sender()
	if from == nil {
		g.d.Log.Warn("call: media of an unknown call reported by nobody; it cannot be released", "call", callID)
		return
	}
	req := &pb.MediaRequest{CallId: callID, Ops: []*pb.MediaOp{{Kind: pb.MediaOp_RELEASE}}}
	if local := g.d.Local.Load(); local != nil && from.Address == local.Addr {
		local.Media(req)
		return
	}
	// A future takes the answer nobody waits for: the grain is stopping, so
	// an answer sent to it would be a dead letter.
	ctx.RequestFuture(from, req, 5*time.Second)
}

func (g *grain) now() time.Time { return g.d.Now() }

func (g *grain) start(ctx actor.Context, m *pb.CallStart) {
	if g.call != nil {
		return // a retried start for a call already under way
	}
	now := g.now()
	g.call = New(m.CallId, now)
	g.sdp = map[string][]byte{}
	g.offers = map[string][]byte{}
	g.setupFrom = time.Unix(0, m.ReceivedUnixNano)
	g.mediaNode, g.mediaID = m.Node.GetAddress(), m.Node.GetId()
	metrics.CallsActive.Inc()
	from := Party{UserID: m.From.GetUserId(), Number: m.From.GetNumber(), Display: m.From.GetDisplay(), TrunkID: m.From.GetTrunkId()}
	in := Start{CallerLeg: m.LegId, NodeID: m.Node.GetId(), NodeAddr: m.Node.GetAddress(), From: from, Dialed: m.To}
	// Either node draining refuses it: the edge's, which would hold its
	// caller and media, or this grain's.
	if m.Draining || (g.d.Draining != nil && g.d.Draining()) {
		in.Draining = true
	} else {
		res := g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: m.LegId, Sdp: m.Offer})
		if res.Code != 0 {
			in.OfferCode = int(res.Code)
		} else {
			in.OfferSRTP = srtpSDP(m.Offer)
			if q, ok := g.queue(m.To); ok {
				in.Lookup = g.arrive(ctx, q, from, 0)
			} else if gs, ok := g.group(m.To); ok {
				in.Lookup = g.groupLookup(ctx, gs, from)
			} else {
				in.Lookup = g.lookup(ctx, m.To, from)
			}
			if m.OnBehalfOf != "" && from.UserID != "" {
				in.OnBehalf = g.onBehalf(ctx, m.OnBehalfOf, from.UserID)
			}
			if t := in.Lookup.OutboundTrunk; t != nil {
				// Calls out through a trunk leave from the node that holds
				// the caller and the media.
				t.NodeID, t.NodeAddr = m.Node.GetId(), m.Node.GetAddress()
			}
		}
	}
	in.From.External, in.CallerSRTP = g.policy(from)
	g.step(ctx, in)
}

// dial places a click-to-call (REST POST /v1/calls): the caller's own
// devices ring first, then what they dialed. A refusal leaves no call.
func (g *grain) dial(ctx actor.Context, m *pb.CallDial) *pb.CallControlResult {
	if g.call != nil {
		return &pb.CallControlResult{Status: 409, Code: "call_exists", Message: "this call has already been placed"}
	}
	// A refused dial leaves no grain behind.
	abandon := func(err error) *pb.CallControlResult {
		g.call = nil
		ctx.Stop(ctx.Self())
		return refusalResult(err)
	}
	from, srtp, _, _ := g.d.Router.Lookup(m.FromUser, false)
	if from == nil || from.UserID != m.FromUser {
		return abandon(&Refusal{Status: 404, Code: "not_found", Message: "from_user: no such user"})
	}
	g.call = New(m.CallId, g.now())
	g.sdp = map[string][]byte{}
	g.offers = map[string][]byte{}
	g.mediaNode, g.mediaID = m.Node.GetAddress(), m.Node.GetId()
	g.callerSRTP = srtp
	in := Dial{From: *from, Dialed: m.To, FromSRTP: srtp}
	// Either node draining refuses it: this grain's, or the one whose relay
	// would anchor the call.
	if m.Draining || (g.d.Draining != nil && g.d.Draining()) {
		in.Draining = true
	} else {
		in.Lookup = g.dialLookup(ctx, m.To, *from)
		if m.OnBehalfOf != "" {
			in.OnBehalf = g.onBehalf(ctx, m.OnBehalfOf, from.UserID)
		}
		cts, err := g.d.LineContacts(ctx, from.UserID)
		if err != nil {
			// Not "no devices": the phones may be there, we cannot tell.
			g.d.Log.Warn("call: caller's contacts lookup failed", "call", m.CallId, "user", from.UserID, "err", err)
			return abandon(&Refusal{Status: 503, Code: "unavailable", Message: "from_user's phones cannot be looked up now; try again"})
		}
		in.Devices = cts
	}
	if err := g.step(ctx, in); err != nil {
		return abandon(err)
	}
	metrics.CallsActive.Inc()
	return &pb.CallControlResult{Status: 201, Call: g.info()}
}

// onBehalf resolves the line a caller asked to call for (P-Preferred-
// Identity): the delegator as the far end will see them, and the caller's
// rights there. An unknown line gives no rights, so the core refuses.
func (g *grain) onBehalf(ctx actor.Context, line, caller string) *OnBehalf {
	ob := &OnBehalf{Access: Access{Role: "none"}}
	if gs, ok := g.group(line); ok {
		// A member calls out with the group's number (002 L10146).
		ob.Line, ob.Viewers = gs.Route.Party(), gs.Route.Members
		if a, err := g.d.Access(ctx, gs.Route.Line(), caller); err == nil {
			ob.Access = a
		}
		return ob
	}
	p, _, _, _ := g.d.Router.Lookup(line, false)
	if p == nil {
		return ob
	}
	if p.UserID == caller {
		return nil // calling as yourself
	}
	ob.Line = *p
	if a, err := g.d.Access(ctx, p.UserID, caller); err == nil {
		ob.Access = a
	}
	if plan, err := g.d.RingPlan(ctx, &pb.RingPlanRequest{Delegator: p.UserID}); err == nil {
		ob.Viewers, ob.Names = plan.Viewers, plan.Names
	}
	return ob
}

// policy is what a calling user's settings say of their calls: the E.164
// number they show to carriers, and whether they require SRTP.
func (g *grain) policy(p Party) (external string, srtp bool) {
	if p.UserID == "" {
		return "", false
	}
	if u, srtp, _, _ := g.d.Router.Lookup(p.UserID, false); u != nil {
		return u.External, srtp
	}
	return "", false
}

// srtpSDP says whether an SDP's audio stream is SRTP, the fact the core's
// SRTP policy is given; an SDP that does not parse is not.
func srtpSDP(b []byte) bool {
	s, err := sdp.Parse(b)
	if err != nil {
		return false
	}
	a := s.Audio()
	return a != nil && a.SRTP()
}

// lookup gathers what routing needs: the target, its ring plan from the
// delegator grain with every named user's contacts, and who sees the
// caller's own line.
func (g *grain) lookup(ctx actor.Context, dialed string, from Party) Lookup {
	lk, srtp := g.route(ctx, dialed, from)
	g.calleeSRTP = srtp
	return lk
}

// route gathers what the core needs to route dialed from from, and whether
// the target's policy requires SRTP.
func (g *grain) route(ctx actor.Context, dialed string, from Party) (Lookup, bool) {
	target, srtp, isE164, trunk := g.d.Router.Lookup(dialed, from.TrunkID != "")
	lk := Lookup{Target: target, IsE164: isE164, OutboundTrunk: trunk}
	if from.UserID != "" {
		if plan, err := g.d.RingPlan(ctx, &pb.RingPlanRequest{Delegator: from.UserID}); err == nil {
			lk.CallerViewers, lk.CallerNames = plan.Viewers, plan.Names
		}
	}
	if target == nil {
		return lk, srtp
	}
	plan, err := g.d.RingPlan(ctx, &pb.RingPlanRequest{Delegator: target.UserID, CallerUser: from.UserID, CallerNumber: from.Number})
	if err != nil {
		g.d.Log.Warn("call: ring plan unavailable, ringing the target alone", "call", g.call.ID, "user", target.UserID, "err", err)
		plan = RingPlan{Stages: []RingStage{{Users: []string{target.UserID}}}}
	}
	lk.Plan, lk.Parties, lk.UserContacts = g.ringPlan(ctx, *target, plan)
	lk.Contacts = lk.UserContacts[target.UserID]
	lk.Pickup = g.pickupRing(ctx, target.UserID)
	return lk, srtp
}

// ringPlan is the delegator grain's plan for target with what the core
// needs besides: every user it names as a party (target among them), and
// each one's registrations from the line grain.
func (g *grain) ringPlan(ctx actor.Context, target Party, plan RingPlan) (*RingPlan, map[string]Party, map[string][]Contact) {
	parties, contacts := map[string]Party{target.UserID: target}, map[string][]Contact{}
	for _, st := range plan.Stages {
		for _, u := range st.Users {
			if _, done := contacts[u]; done {
				continue
			}
			if _, ok := parties[u]; !ok {
				if p, _, _, _ := g.d.Router.Lookup(u, false); p != nil {
					parties[u] = *p
				}
			}
			cts, err := g.d.LineContacts(ctx, u)
			if err != nil {
				g.d.Log.Warn("call: contacts lookup failed", "call", g.call.ID, "user", u, "err", err)
			}
			contacts[u] = cts
		}
	}
	return &plan, parties, contacts
}

func (g *grain) legEvent(ctx actor.Context, m *pb.LegEvent) {
	switch m.Kind {
	case pb.LegEvent_FAILED, pb.LegEvent_CANCELLED, pb.LegEvent_BYE:
		delete(g.unsettled, m.LegId) // the phone is done with that INVITE
	case pb.LegEvent_SETTLED:
		delete(g.unsettled, m.LegId)
		g.releaseOffered(ctx)
		return
	case pb.LegEvent_ANSWERED:
		defer g.answerSettled(m.LegId)
	}
	switch m.Kind {
	case pb.LegEvent_RINGING:
		g.step(ctx, Rang{Leg: m.LegId})
	case pb.LegEvent_EARLY:
		g.sdp[m.LegId] = m.Sdp
		g.step(ctx, Rang{Leg: m.LegId})
	case pb.LegEvent_ANSWERED:
		g.sdp[m.LegId] = m.Sdp
		in := Answered{Leg: m.LegId}
		if l := g.call.Leg(m.LegId); l != nil && l.Role == Device && g.call.Callback != nil {
			lk := g.dialLookup(ctx, g.call.Dialed, g.call.From)
			in.Lookup, in.SRTP = &lk, srtpSDP(m.Sdp)
		}
		g.step(ctx, in)
	case pb.LegEvent_FAILED:
		g.step(ctx, Failed{Leg: m.LegId, Code: int(m.Code)})
	case pb.LegEvent_CANCELLED:
		g.step(ctx, Cancelled{Leg: m.LegId})
	case pb.LegEvent_BYE:
		g.step(ctx, Bye{Leg: m.LegId})
	}
}

func (g *grain) reinvite(ctx actor.Context, m *pb.LegReinvite) *pb.LegReinviteResult {
	l := g.call.Leg(m.LegId)
	if l == nil || g.call.State == Ended {
		return &pb.LegReinviteResult{Code: 481}
	}
	if _, required := g.policy(l.Party); plainRefused(required, srtpSDP(m.Sdp)) {
		return &pb.LegReinviteResult{Code: 488} // the session goes on as it was (RFC 3261 14.2)
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
	in := Control{Action: m.Action, ByUser: m.ByUser, Admin: m.Admin, Leg: m.LegId, NodeID: m.Node.GetId(), NodeAddr: m.Node.GetAddress(), Draining: m.Draining}
	switch m.Action {
	case "pickup", "join", "lock", "unlock":
		if m.ByUser != "" && g.call.Line != "" {
			a, err := g.d.Access(ctx, g.call.Line, m.ByUser)
			if err != nil {
				return g.refuseLeg(ctx, m, &Refusal{Status: 503, Code: "unavailable", Message: "the line's delegation settings are unavailable"})
			}
			in.Access = a
		}
		j := g.joiner(ctx, m, m.Action == "pickup" || m.Action == "join")
		in.Party, in.Contacts, in.PartySRTP, in.OfferSRTP = j.party, j.contacts, j.partySRTP, j.offerSRTP
	case "transfer":
		g.transferTarget(ctx, m, &in)
	case "monitor", "unmonitor":
		return g.monitor(ctx, m)
	}
	g.lockErr = false
	if err := g.step(ctx, in); err != nil {
		return g.refuseLeg(ctx, m, err)
	}
	if g.lockErr {
		return &pb.CallControlResult{Status: 503, Code: "unavailable", Message: "the lock could not be stored; try again"}
	}
	return &pb.CallControlResult{Status: 200}
}

// transferTarget routes a transfer's target as if the transferor had
// dialled it; the core decides what of that rings.
func (g *grain) transferTarget(ctx actor.Context, m *pb.CallControl, in *Control) {
	from := Party{UserID: m.ByUser}
	if p, _, _, _ := g.d.Router.Lookup(m.ByUser, false); p != nil {
		from = *p
	}
	lk, _ := g.route(ctx, m.Target, from)
	if t := lk.OutboundTrunk; t != nil {
		t.NodeID, t.NodeAddr = g.mediaID, g.mediaNode
	}
	if lk.Target != nil || lk.OutboundTrunk != nil {
		in.Route = &lk
	}
	in.To = m.Target
}

func (g *grain) refuseLeg(ctx actor.Context, m *pb.CallControl, err error) *pb.CallControlResult {
	res := refusalResult(err)
	if m.LegId != "" {
		delete(g.offers, m.LegId)
		r := asRefusal(err)
		code, reason := r.SIP()
		resp := &pb.LegRespond{CallId: g.call.ID, LegId: m.LegId, Code: int32(code), Reason: reason}
		if code == 488 {
			resp.Headers = []string{warning(r.Message)}
		}
		g.sendEdge(ctx, m.Node.GetAddress(), resp)
	}
	return res
}

// refusalResult is the REST answer to a refusal (500 for any other error).
func refusalResult(err error) *pb.CallControlResult {
	r := asRefusal(err)
	return &pb.CallControlResult{Status: int32(r.Status), Code: r.Code, Message: r.Message}
}

// step feeds the core and carries out what it asks.
func (g *grain) step(ctx actor.Context, in any) error {
	effs, err := g.call.Step(in, g.now(), g.d.Settings)
	if err != nil {
		return err
	}
	// The index (GET /v1/calls) shows the new state before the effects
	// reach the phones: a client that sees the 200 finds the call active.
	if g.call.State != Ended {
		g.d.Index.Put(g.info())
	}
	g.apply(ctx, effs)
	g.tellLine(ctx)
	g.releaseOffered(ctx)
	return nil
}

// dialLookup routes a click-to-call's target: at the request, to refuse
// what cannot ring, and again when the caller answers.
func (g *grain) dialLookup(ctx actor.Context, dialed string, from Party) Lookup {
	lk := g.lookup(ctx, dialed, from)
	if t := lk.OutboundTrunk; t != nil {
		t.NodeID, t.NodeAddr = g.mediaID, g.mediaNode
	}
	return lk
}

// tellLine reports the call's line state to the line grain when it changed.
func (g *grain) tellLine(ctx actor.Context) {
	c := g.call
	if g.d.LineUpdate == nil {
		return
	}
	g.tellTalking(ctx)
	if c.Line == "" {
		return
	}
	state, locked := c.LineState()
	view := lineView{c.Line, state, locked}
	if view == g.line {
		return
	}
	if old := g.line.line; old != "" && old != c.Line {
		// A click-to-call rang the caller's line first and now rings the
		// target's: the caller's line, and the delegates who saw the call
		// on it, no longer show it.
		g.d.LineUpdate(ctx, &pb.LineCall{Line: old, CallId: c.ID, State: string(Ended), Viewers: g.lineUsers})
	}
	g.line, g.lineUsers = view, c.Viewers()
	g.d.LineUpdate(ctx, &pb.LineCall{Line: c.Line, CallId: c.ID, State: state, Peer: c.peerOf(c.Shown), Locked: locked,
		Viewers: g.lineUsers, SinceUnixNano: c.CreatedAt.UnixNano()})
}

// tellTalking tells the lines of the users talking on the call, when it is
// not on their own line (a caller, a group's member, a queue's member),
// that they are on it, answered or held, or no longer: a line knows its
// user is on a call wherever the call is (a group rings only its free
// members; a queue offers calls to members not on one).
func (g *grain) tellTalking(ctx actor.Context) {
	c := g.call
	up := c.State == Active || c.State == Held
	if !up && len(g.talking) == 0 {
		return // ringing: nobody talks yet, and nobody was told (no map on each step)
	}
	now := map[string]string{}
	if up {
		for _, u := range c.sideUsers() {
			if u != c.Line && !IsGroupLine(u) {
				now[u] = string(c.State)
			}
		}
	}
	for u, st := range now {
		if g.talking[u] != st {
			g.d.LineUpdate(ctx, &pb.LineCall{Line: u, CallId: c.ID, State: st, Talking: true})
		}
	}
	for u := range g.talking {
		if _, ok := now[u]; !ok {
			g.d.LineUpdate(ctx, &pb.LineCall{Line: u, CallId: c.ID, State: string(Ended), Talking: true})
		}
	}
	g.talking = now
}

// apply carries out one step's Ready, obligation by obligation.
func (g *grain) apply(ctx actor.Context, r Ready) {
	mediaOK := true
	for _, e := range r.Persist {
		mediaOK = g.persist(ctx, e) && mediaOK
	}
	for _, e := range r.Media {
		if !mediaOK {
			break
		}
		if !g.applyMedia(ctx, e) {
			// What the step built on this media change (the 200 that
			// carries its SDP, the next INVITEs) must not happen; the core
			// learns of the failure through the mailbox and ends what it must.
			mediaOK = false
			break
		}
	}
	for _, e := range r.End {
		_, settle := g.unsettled[e.Leg]
		g.toEdge(ctx, e.Leg, &pb.LegEnd{CallId: g.call.ID, LegId: e.Leg, Code: int32(e.Code), Settle: settle})
		if g.call.State != Ended {
			g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_REMOVE_LEG, Leg: e.Leg})
		}
	}
	if !mediaOK {
		return
	}
	for _, e := range r.Send {
		switch e := e.(type) {
		case Respond:
			g.respond(ctx, e)
		case Originate:
			g.originate(ctx, e)
		case TellQueue:
			if g.d.Queues != nil {
				g.d.Queues.Report(ctx, g.call.ID, e)
			}
		case RouteTo:
			g.later(ctx, Routed{Route: g.overflowRoute(ctx, e.Target, g.call.From, 0)})
		}
	}
	if r.Wake != nil {
		g.wakeAt(ctx, r.Wake.At)
	}
	for _, e := range r.Events {
		g.publish(e)
	}
	if r.Finished != nil {
		g.finish(ctx, *r.Finished)
	}
}

func (g *grain) respond(ctx actor.Context, e Respond) {
	r := &pb.LegRespond{CallId: g.call.ID, LegId: e.Leg, Code: int32(e.Code), Reason: e.Reason}
	if e.WithSDP {
		r.Sdp = g.answerSDP
	}
	if e.Warning != "" {
		r.Headers = []string{warning(e.Warning)}
	}
	if e.Code < 300 && !g.setupFrom.IsZero() {
		metrics.CallSetupSeconds.Observe(time.Since(g.setupFrom).Seconds())
		g.setupFrom = time.Time{}
	}
	g.toEdge(ctx, e.Leg, r)
}

// warning is a SIP Warning header saying why. A pseudonym is the
// warn-agent (RFC 3261 20.43): the grain does not know which host name the
// phone reached.
func warning(text string) string { return `Warning: 399 switchboard "` + text + `"` }

// originate has the relay offer for a new leg and sends its INVITE; a leg
// the relay cannot offer for fails alone.
func (g *grain) originate(ctx actor.Context, e Originate) {
	peer, srtp := e.Peer, g.calleeSRTP
	if l := g.call.Leg(e.Leg); l != nil && l.Party.UserID != "" && l.Party.UserID != g.call.To.UserID && !IsGroupLine(l.Party.UserID) {
		// Someone rung for the target (a delegate, a queue's or group's
		// member, a pickup group's): offered as their own policy says.
		_, srtp = g.policy(l.Party)
	}
	if peer == "" {
		if cl := g.call.caller(); cl != nil {
			peer = cl.ID
		} else {
			// A click-to-call rings the caller's own devices before there
			// is any other leg: the relay offers its codecs.
			srtp = g.callerSRTP
		}
	}
	res := g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_OFFER, Leg: e.Leg, Peer: peer, Srtp: srtp})
	if res.Code != 0 {
		g.later(ctx, Failed{Leg: e.Leg, Code: int(res.Code)})
		return
	}
	g.unsettle(e.Leg)
	g.toEdge(ctx, e.Leg, &pb.LegOriginate{
		CallId: g.call.ID, LegId: e.Leg, RequestUri: e.Contact.URI, Destination: e.Contact.Destination,
		Transport: e.Contact.Transport, FromUser: e.FromUser, FromDisplay: e.Display, ToUser: e.ToUser,
		AssertedIdentity: e.PAI, Sdp: res.Sdp,
	})
}

// applyMedia carries out one media change; false when it failed (the
// failure is already on its way back to the core).
func (g *grain) applyMedia(ctx actor.Context, e Effect) bool {
	switch e := e.(type) {
	case Connect:
		var ops []*pb.MediaOp
		if !e.Adopted {
			ops = append(ops, &pb.MediaOp{Kind: pb.MediaOp_ACCEPT_ANSWER, Leg: e.Callee, Sdp: g.sdp[e.Callee]})
		}
		if !e.CallerUp {
			ops = append(ops, &pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: e.Caller, Peer: e.Callee})
		}
		res := g.media(ctx, append(ops, &pb.MediaOp{Kind: pb.MediaOp_BRIDGE, Leg: e.Caller, Peer: e.Callee})...)
		if res.Code != 0 {
			g.later(ctx, Failed{Leg: e.Callee, Code: int(res.Code)}) // the callee's answer is unusable
			return false
		}
		g.answerSDP = res.Sdp
	case AcceptAnswer:
		if res := g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_ACCEPT_ANSWER, Leg: e.Leg, Sdp: g.sdp[e.Leg]}); res.Code != 0 {
			g.later(ctx, Failed{Leg: e.Leg, Code: int(res.Code)})
			return false
		}
	case Adopt:
		res := g.media(ctx,
			&pb.MediaOp{Kind: pb.MediaOp_ACCEPT_OFFER, Leg: e.Leg, Sdp: g.offers[e.Leg]},
			&pb.MediaOp{Kind: pb.MediaOp_ANSWER, Leg: e.Leg, Peer: e.Peer})
		delete(g.offers, e.Leg)
		if res.Code != 0 {
			g.toEdge(ctx, e.Leg, &pb.LegRespond{CallId: g.call.ID, LegId: e.Leg, Code: res.Code, Reason: "Not Acceptable Here"})
			g.later(ctx, Failed{Leg: e.Leg, Code: int(res.Code)}) // the core undoes the pickup
			return false
		}
		g.toEdge(ctx, e.Leg, &pb.LegRespond{CallId: g.call.ID, LegId: e.Leg, Code: 200, Reason: "OK", Sdp: res.Sdp})
	case HoldMedia:
		g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_TONE, Leg: e.Held}, &pb.MediaOp{Kind: pb.MediaOp_SILENCE, Leg: e.Holder})
	case Hear:
		g.media(ctx, hearOps(e.Routes)...)
	case Chime:
		g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_CHIME, Legs: e.Legs})
	case Tone:
		g.media(ctx, &pb.MediaOp{Kind: pb.MediaOp_CHIME, Legs: e.Legs, Tone: e.Name})
	case Wait:
		return g.wait(ctx, e)
	}
	return true
}

// hearOps are the media worker's ops for routes: two legs that hear only
// each other are a bridge (the relay forwards packets as they come); any
// other shape is mixed per leg.
func hearOps(routes []Route) []*pb.MediaOp {
	if len(routes) == 2 && slices.Equal(routes[0].Hears, []string{routes[1].Leg}) && slices.Equal(routes[1].Hears, []string{routes[0].Leg}) {
		return []*pb.MediaOp{{Kind: pb.MediaOp_BRIDGE, Leg: routes[0].Leg, Peer: routes[1].Leg}}
	}
	ops := make([]*pb.MediaOp, 0, len(routes))
	for _, r := range routes {
		ops = append(ops, &pb.MediaOp{Kind: pb.MediaOp_MIX, Leg: r.Leg, Legs: r.Hears})
	}
	return ops
}

// persist writes a fenced fact: the call's lock or its monitoring slot.
// When it cannot, the core hears so and undoes what rests on it.
func (g *grain) persist(ctx actor.Context, e Effect) bool {
	switch e := e.(type) {
	case PersistLock:
		rev, err := g.d.PersistLock(g.call.ID, e.Locked, g.call.Line, g.lockRev)
		if err != nil {
			g.d.Log.Warn("call: lock not stored", "call", g.call.ID, "err", err)
			g.lockErr = true
			g.later(ctx, LockLost{})
			return false
		}
		g.lockRev = rev
	case PersistMonitor:
		if g.d.PersistMonitor == nil {
			return true
		}
		rev, err := g.d.PersistMonitor(g.call.ID, e.By, e.Mode, g.monitorRev)
		if err != nil {
			g.d.Log.Warn("call: monitoring slot not stored", "call", g.call.ID, "err", err)
			g.monitorErr = err
			g.later(ctx, MonitorLost{})
			return false
		}
		g.monitorRev = rev
	}
	return true
}

// wakeAt schedules the core's next Tick (zero: none).
func (g *grain) wakeAt(ctx actor.Context, at time.Time) {
	g.wakeGen++
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	if !at.IsZero() {
		gen, self, sys := g.wakeGen, ctx.Self(), ctx.ActorSystem()
		g.timer = time.AfterFunc(at.Sub(g.now()), func() { sys.Root.Send(self, wake{gen: gen}) })
	}
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
	if (g.lockRev != 0 || g.monitorRev != 0) && g.d.ClearLock != nil {
		go g.d.ClearLock(c.ID)
	}
	// History is written after the call, batched with other calls' entries:
	// nobody waits on it, and a slow etcd must not hold the grain.
	for i, e := range entries {
		if err := g.d.History.Append(f.History[i].Owner, e); err != nil {
			g.d.Log.Warn("call: history not written", "call", e.CallID, "owner", f.History[i].Owner, "err", err)
		}
	}
	g.stopSettled(ctx)
}

func (g *grain) publish(e Event) {
	if g.d.Events == nil || !g.d.Events.Listening(e.Type) {
		return
	}
	users := append([]string{}, g.call.Viewers()...)
	for _, u := range append([]string{g.call.From.UserID, g.call.To.UserID, g.call.AnsweredBy}, e.Also...) {
		if u != "" {
			users = append(users, u)
		}
	}
	users = slices.DeleteFunc(users, func(u string) bool { return slices.Contains(e.Hide, u) })
	g.d.Events.Publish(events.Event{Type: e.Type, Subject: g.call.ID, Users: users, Data: callJSON(g.info())})
}

func (g *grain) toEdge(ctx actor.Context, legID string, msg any) {
	l := g.call.Leg(legID)
	if l == nil {
		return
	}
	g.sendEdge(ctx, l.NodeAddr, msg)
}

func (g *grain) sendEdge(ctx actor.Context, addr string, msg any) {
	if local := g.d.Local.Load(); local != nil && addr == local.Addr {
		local.Edge(msg, ctx.Self())
		return
	}
	ctx.Request(actor.NewPID(addr, EdgeActor), msg) // a request, so the edge learns the grain's PID
}

// media runs ops on the call's media worker. It returns the first failure,
// or else the first result that carries SDP (the one the caller sends on),
// or else the last result.
func (g *grain) media(ctx actor.Context, ops ...*pb.MediaOp) *pb.MediaResult {
	req := &pb.MediaRequest{CallId: g.call.ID, Ops: ops}
	var resp *pb.MediaResponse
	if local := g.d.Local.Load(); local != nil && g.mediaNode == local.Addr {
		resp = local.Media(req)
	} else {
		r, err := ctx.RequestFuture(actor.NewPID(g.mediaNode, MediaActor), req, 5*time.Second).Result()
		if err != nil {
			g.d.Log.Error("call: media request failed", "call", g.call.ID, "err", err)
			return &pb.MediaResult{Code: 503, Error: err.Error()}
		}
		resp, _ = r.(*pb.MediaResponse)
	}
	if resp == nil || len(resp.Results) == 0 {
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
	state, locked := c.LineState()
	ci := &pb.CallInfo{Id: c.ID, State: state, Line: c.Line, Node: g.mediaID, GrainNode: g.d.NodeID, CreatedUnixNano: c.CreatedAt.UnixNano(), Found: true, Locked: locked}
	for _, m := range c.Monitors() {
		ci.Monitors = append(ci.Monitors, &pb.MonitorInfo{User: m.By, Mode: m.Mode, SinceUnixNano: m.Since.UnixNano()})
	}
	if l := c.Leg(c.side(1)); l != nil {
		ci.AnsweredBy = l.Party.UserID // who talks to the caller now, a picker after a pickup
	}
	if !c.AnsweredAt.IsZero() {
		ci.AnsweredUnixNano = c.AnsweredAt.UnixNano()
	}
	for _, l := range c.Legs {
		ci.Legs = append(ci.Legs, &pb.LegInfo{Id: l.ID, Party: l.Party.Label(), State: string(l.State), Node: l.NodeID})
	}
	return ci
}

// joining is what the core needs of a user who joins the call on a new
// leg (a picker, a joiner, a supervisor): who they are, and either their
// phones to ring (from REST) or their INVITE's offer against their SRTP
// policy (from a phone).
type joining struct {
	party                Party
	contacts             []Contact
	partySRTP, offerSRTP bool
}

// joiner gathers it for m's user; ring: look their phones up when there is
// no INVITE. The INVITE's offer is kept for Adopt.
func (g *grain) joiner(ctx actor.Context, m *pb.CallControl, ring bool) joining {
	var j joining
	if p, _, _, _ := g.d.Router.Lookup(m.ByUser, false); p != nil {
		j.party = *p
	}
	switch {
	case m.LegId != "":
		g.offers[m.LegId] = m.Offer
		_, j.partySRTP = g.policy(j.party)
		j.offerSRTP = srtpSDP(m.Offer)
	case ring && m.ByUser != "":
		cts, err := g.d.LineContacts(ctx, m.ByUser)
		if err != nil {
			g.d.Log.Warn("call: phones of a user joining the call not found", "call", g.call.ID, "user", m.ByUser, "action", m.Action, "err", err)
		}
		j.contacts = cts
	}
	return j
}

// monitor starts, switches or ends a supervisor's monitoring. The rule of
// who may monitor whom is asked for each user on the call's sides (and the
// party a *1-*3 code names); the core picks and decides. A start answers
// 202, a switch 200, both with the call.
func (g *grain) monitor(ctx actor.Context, m *pb.CallControl) *pb.CallControlResult {
	c := g.call
	if m.Action == "unmonitor" {
		if err := g.step(ctx, Unmonitor{By: m.ByUser, Admin: m.Admin}); err != nil {
			return refusalResult(err)
		}
		return &pb.CallControlResult{Status: 200, Call: g.info()}
	}
	starting := c.Monitor == nil || c.Monitor.By != m.ByUser || m.LegId != ""
	j := g.joiner(ctx, m, starting)
	in := Monitor{By: m.ByUser, Mode: m.Mode, Leg: m.LegId, NodeID: m.Node.GetId(), NodeAddr: m.Node.GetAddress(), Draining: m.Draining,
		Grants: map[string]monitoring.Grant{}, Party: j.party, Contacts: j.contacts, PartySRTP: j.partySRTP, OfferSRTP: j.offerSRTP}
	if m.Target != "" {
		if p, _, _, _ := g.d.Router.Lookup(m.Target, false); p != nil {
			in.Of = p.UserID
		}
	}
	if starting && g.d.MonitorFacts != nil {
		for _, id := range []string{c.side(0), c.side(1)} {
			l := c.Leg(id)
			if l == nil || l.Party.UserID == "" || l.Party.UserID == m.ByUser {
				continue
			}
			f, err := g.d.MonitorFacts(ctx, m.ByUser, l.Party.UserID)
			if err != nil {
				g.d.Log.Warn("call: monitoring facts unavailable", "call", c.ID, "supervisor", m.ByUser, "err", err)
				return g.refuseLeg(ctx, m, &Refusal{Status: 503, Code: "unavailable", Message: "the monitoring rules cannot be read now; try again"})
			}
			// A queue's admins monitor its members on that queue's calls.
			if q := c.Queued; q != nil && q.Member == l.Party.UserID && slices.Contains(q.Admins, m.ByUser) {
				f.QueueAdmin = true
			}
			if grant, r := monitoring.May(m.ByUser, l.Party.UserID, f); r == nil {
				in.Grants[l.Party.UserID] = grant
			}
		}
	}
	g.monitorErr = nil
	if err := g.step(ctx, in); err != nil {
		return g.refuseLeg(ctx, m, err)
	}
	if err := g.monitorErr; err != nil {
		if errors.Is(err, ErrFenced) {
			return &pb.CallControlResult{Status: 409, Code: "already_monitored", Message: "another supervisor is monitoring this call"}
		}
		return &pb.CallControlResult{Status: 503, Code: "unavailable", Message: "the monitoring slot could not be stored; try again"}
	}
	status := int32(200)
	if starting {
		status = 202
	}
	return &pb.CallControlResult{Status: status, Call: g.info()}
}
