package sipedge

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/api/sipedge/txn"
	"github.com/switchboard/switchboard/cluster/metrics"
	pb "github.com/switchboard/switchboard/proto"
)

// leg is one SIP dialog of a call held by this node. It has no goroutine:
// the call grain's commands run on the grain's goroutine, SIP on the one
// that read it, each under the leg's lock.
type leg struct {
	e      *Edge
	id     string
	callID string
	grain  atomic.Pointer[actor.PID] // the call grain, once looked up

	mu          sync.Mutex
	inv         *txn.ServerTx // inbound: the INVITE, until its final response
	invReq      *sip.Request
	tag         string             // inbound: our To tag
	contact     *sip.ContactHeader // inbound: ours on the INVITE's flow
	out         *txn.ClientTx      // outbound: the INVITE, until answered
	invite      *sip.Request       // outbound: the INVITE (its answer makes the dialog; other forks' are hung up)
	dlg         *dialog
	ack         *sip.Request  // outbound: our ACK, again for each retransmitted 2xx
	awaitAck    *txn.ServerTx // a 2xx of ours not yet acknowledged
	awaitSeq    uint32
	established bool
	ended       bool
	byeOnAck    bool // the grain ended the call while our 2xx awaits its ACK
	settle      bool // the grain wants SETTLED once the far end is done with the leg
	done        bool
	dialogID    string // under the edge's lock
	forkKey     string // under the edge's lock
}

func (e *Edge) newLeg(id, callID string) *leg {
	return &leg{e: e, id: id, callID: callID}
}

func (l *leg) isEnded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

// finish forgets the leg; safe to call more than once.
func (l *leg) finish() {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done, l.ended = true, true
	l.inv, l.invReq, l.out, l.invite = nil, nil, nil, nil
	l.mu.Unlock()
	// A cached PID holds its grain and all the call's state; a transaction
	// may hold the leg a while after the call.
	l.grain.Store(nil)
	l.e.admit.routed(l.callID)
	l.e.dropLeg(l)
}

func (l *leg) report(kind pb.LegEvent_Kind, code int, body []byte) {
	l.toGrain(&pb.LegEvent{CallId: l.callID, LegId: l.id, Kind: kind, Code: int32(code), Sdp: body})
}

// end carries out the grain's LegEnd: a final response to an INVITE not yet
// answered, a CANCEL of ours not yet answered, else a BYE.
func (l *leg) end(m *pb.LegEnd) {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.ended = true
	l.settle = l.settle || m.Settle
	switch {
	case l.inv != nil:
		code := int(m.Code)
		if code < 300 {
			code = 480
		}
		res := sip.NewResponseFromRequest(l.invReq, code, reasonFor(code), nil)
		res.To().Params.Add("tag", l.tag)
		tx := l.inv
		l.mu.Unlock()
		_ = l.e.send(tx, res)
		l.finish()
	case l.out != nil && !l.established:
		// The INVITE's answer (487, or a 2xx that crossed the CANCEL)
		// finishes the leg.
		tx := l.out
		l.mu.Unlock()
		tx.Cancel()
	case l.invite != nil && !l.established:
		// The INVITE is on its way out (dial): dial cancels it.
		l.mu.Unlock()
	case l.dlg != nil:
		settle := l.settle
		l.mu.Unlock()
		l.byeSettled(settle)
	default:
		l.mu.Unlock()
		l.finish()
	}
}

// byeSettled ends the dialog and, when the grain asked, tells it so once
// the BYE has left (bye forgets the grain's PID, so it is taken first).
func (l *leg) byeSettled(settle bool) {
	grain := l.grain.Load()
	l.bye()
	if settle && grain != nil {
		l.e.cfg.Cluster().ActorSystem.Root.RequestWithCustomSender(grain,
			&pb.LegEvent{CallId: l.callID, LegId: l.id, Kind: pb.LegEvent_SETTLED}, l.e.self.Load())
	}
}

// bye ends the established dialog and the leg. While a 2xx of ours awaits
// its ACK, the BYE waits for it (RFC 3261 section 15): the 2xx may have been
// lost, and its caller is owed it.
func (l *leg) bye() {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	if l.awaitAck != nil {
		l.byeOnAck = true
		l.mu.Unlock()
		return
	}
	var req *sip.Request
	if l.dlg != nil {
		req = l.dlg.request(sip.BYE, nil)
	}
	l.mu.Unlock()
	if req != nil {
		msgsOut.method(sip.BYE)
		l.e.offReader(req, func() {
			if _, err := l.e.layer.Request(req, func(res *sip.Response) { msgsIn.code(res.StatusCode) }); err != nil {
				l.e.cfg.Log.Debug("sip: bye not sent", "leg", l.id, "err", err)
			}
		})
	}
	l.finish()
}

// ---- inbound ------------------------------------------------------------------

func (e *Edge) onInvite(req *sip.Request, tx *txn.ServerTx) {
	start := time.Now()
	from, ok := e.authenticate(req, tx, true)
	if !ok {
		return
	}
	if len(req.Body()) == 0 {
		// Offerless INVITEs (offer in the ACK) are not supported.
		e.warn(req, tx, 488, "Not Acceptable Here", "an SDP offer is required")
		return
	}
	if req.Contact() == nil {
		e.warn(req, tx, 400, "Bad Request", "an INVITE needs a Contact")
		return
	}
	callID, legID := newID(), ""
	// *8<ext>: pick up the held (or ringing) call on ext's line; *7<ext>:
	// join its active call. The INVITE becomes a leg of that call; its
	// grain decides whether the caller may.
	feat, feature := call.FeatureCode(req.Recipient.User)
	action := feat.Action
	if feature && from.UserID != "" {
		find := e.cfg.Pickup
		if action != call.FeaturePickup {
			find = e.cfg.Join // the line's active call
		}
		id, ok := "", false
		if find != nil {
			id, ok = find(feat.Line)
		}
		if !ok {
			reason := "Nothing To Pick Up"
			switch action {
			case call.FeatureJoin:
				reason = "Nothing To Join"
			case call.FeatureMonitor:
				reason = "Nothing To Monitor"
			}
			e.respond(req, tx, 404, reason, nil)
			return
		}
		callID, legID = id, id+"-p"+newID()[:8]
	}
	if legID == "" && !e.admit.admit(callID) {
		metrics.SIPDropped.WithLabelValues("overload").Inc()
		e.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return
	}
	if legID == "" {
		legID = callerLeg(callID)
	}
	l := e.newLeg(legID, callID)
	l.inv, l.invReq, l.tag, l.contact = tx, req, sip.GenerateTagN(16), e.contactFor(req)
	tx.SetTag(l.tag)
	l.dlg = uasDialog(req, l.tag)
	e.addLeg(l)
	e.bindDialog(l.dlg.key(), l)
	// The grain refuses what a draining node takes in; the edge says so.
	var sent bool
	if action != "" && legID != callerLeg(callID) {
		sent = l.toGrain(&pb.CallControl{CallId: callID, Action: action, Mode: feat.Mode, Target: feat.Line, ByUser: from.UserID, LegId: l.id, Node: e.node(), Offer: req.Body(), Draining: e.draining()})
	} else {
		sent = l.toGrain(&pb.CallStart{
			CallId: callID, LegId: l.id, Node: e.node(),
			From: &pb.Party{UserId: from.UserID, Number: from.Number, Display: from.Display, TrunkId: from.TrunkID},
			To:   req.Recipient.User, Offer: req.Body(), ReceivedUnixNano: start.UnixNano(),
			OnBehalfOf: preferredIdentity(req), Draining: e.draining(),
		})
	}
	if !sent {
		l.refuseUnrouted("no_grain")
		return
	}
	// Set after the grain has the call, so that a CANCEL already taken
	// reaches it second.
	tx.OnCancel(func() {
		l.report(pb.LegEvent_CANCELLED, 487, nil)
		l.finish()
	})
}

// callerLeg is the id of the leg a new call's INVITE makes.
func callerLeg(callID string) string { return callID + "-a" }

// routeLimit is how long a new call waits for its grain's first word (a
// ring, or an answer to its caller) before the edge answers the INVITE
// itself: twice the cluster's request timeout (5 s), which is as long as a
// grain's start waits on any one lookup. Past it the grain was lost on its
// way (its activation, its first message) or in its start, and the caller,
// who has had only a 100 Trying, would wait for good.
const routeLimit = 10 * time.Second

// watchRouting answers, once a second until ctx ends, the INVITEs of new
// calls that waited for their grain past routeLimit.
func (e *Edge) watchRouting(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			e.answerUnrouted()
		}
	}
}

// answerUnrouted refuses each new call no grain acted for within
// routeLimit.
func (e *Edge) answerUnrouted() {
	for _, id := range e.admit.overdue(routeLimit) {
		if l := e.leg(callerLeg(id)); l != nil {
			l.refuseUnrouted("unrouted")
		}
	}
}

// refuseUnrouted answers the INVITE of a leg whose call no grain took up
// (none could be placed, or it never acted) with 503 and Retry-After,
// counted under reason: the caller may try again, or another node, rather
// than wait for an answer that will not come. A grain that has the call
// hears that the leg failed, and ends what it started.
func (l *leg) refuseUnrouted(reason string) {
	l.mu.Lock()
	tx, req := l.inv, l.invReq
	if tx == nil || l.done {
		l.mu.Unlock()
		return
	}
	l.inv, l.invReq, l.ended = nil, nil, true
	l.mu.Unlock()
	metrics.SIPDropped.WithLabelValues(reason).Inc()
	l.e.cfg.Log.Warn("sip: call not taken up by its grain; refused", "call", l.callID, "reason", reason)
	res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
	res.To().Params.Add("tag", l.tag)
	res.AppendHeader(sip.NewHeader("Retry-After", "5"))
	_ = l.e.send(tx, res)
	if l.grain.Load() != nil {
		l.report(pb.LegEvent_FAILED, 503, nil)
	}
	l.finish()
}

// grainRetryAfter is the Retry-After of a grain's 503 that names none, in
// seconds: as long as a drain lets calls finish by default.
const grainRetryAfter = "30"

// draining says whether this node drains, for the grain to refuse what it
// would take in.
func (e *Edge) draining() bool { return e.cfg.Draining != nil && e.cfg.Draining() }

// sdpType is the Content-Type of every SDP body sent. Nothing changes a
// header once sent, so one serves every message.
var sdpType = sip.ContentTypeHeader("application/sdp")

// respond sends the grain's response on the inbound INVITE.
func (l *leg) respond(m *pb.LegRespond) {
	code := int(m.Code)
	reason := m.Reason
	if reason == "" {
		reason = reasonFor(code)
	}
	l.mu.Lock()
	tx, req := l.inv, l.invReq
	if tx == nil || l.done {
		l.mu.Unlock()
		return
	}
	body := m.Sdp
	if code >= 300 {
		body = nil
	}
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.To().Params.Add("tag", l.tag)
	if code < 300 && code > 100 {
		res.AppendHeader(l.contact)
	}
	if len(body) > 0 {
		res.AppendHeader(&sdpType)
	}
	retry := false
	for _, h := range m.Headers {
		if name, val, ok := headerLine(h); ok {
			res.AppendHeader(sip.NewHeader(name, val))
			retry = retry || strings.EqualFold(name, "Retry-After")
		}
	}
	if code == 503 && !retry {
		// A phone takes a 503 without Retry-After for a 500 (RFC 3261
		// 21.5.4); the grain's 503s (a draining node's, above all) mean
		// "not here for now".
		res.AppendHeader(sip.NewHeader("Retry-After", grainRetryAfter))
	}
	switch {
	case code < 200:
		l.mu.Unlock()
		// A provisional lost is no loss: the final may yet get through.
		_ = l.e.send(tx, res)
	case code < 300:
		l.established = true
		l.inv, l.invReq = nil, nil
		l.awaitAck, l.awaitSeq = tx, req.CSeq().SeqNo
		l.mu.Unlock()
		tx.OnNoAck(l.noAck)
		if l.e.send(tx, res) != nil {
			// The caller cannot be reached (its connection is gone): the
			// call cannot go on.
			l.report(pb.LegEvent_FAILED, 408, nil)
			l.finish()
		}
	default:
		l.mu.Unlock()
		_ = l.e.send(tx, res)
		l.finish()
	}
}

// noAck: our 2xx went unacknowledged for 64·T1 (RFC 3261 13.3.1.4). The
// session ends with a BYE: at once if the grain asked for it, else once
// the grain hears the call failed and ends the leg.
func (l *leg) noAck() {
	l.mu.Lock()
	l.awaitAck = nil
	bye, ended := l.byeOnAck, l.ended
	l.mu.Unlock()
	if bye {
		l.bye()
		return
	}
	if !ended {
		l.e.cfg.Log.Info("sip: no ACK for 2xx", "leg", l.id)
		l.report(pb.LegEvent_FAILED, 408, nil)
	}
}

// acked takes the ACK (or a request that implies it) of our 2xx with CSeq
// seq; any seq when seq is 0.
func (l *leg) acked(seq uint32) {
	l.mu.Lock()
	tx := l.awaitAck
	if tx == nil || (seq != 0 && seq != l.awaitSeq) {
		l.mu.Unlock()
		return
	}
	l.awaitAck = nil
	bye := l.byeOnAck
	l.mu.Unlock()
	tx.Acked()
	if bye {
		l.bye()
	}
}

func (e *Edge) onAck(req *sip.Request) {
	l := e.inDialog(req)
	if l == nil {
		if !ackOfStateless(req) {
			metrics.SIPDropped.WithLabelValues("stray_ack").Inc()
		}
		return
	}
	if c := req.CSeq(); c != nil {
		l.acked(c.SeqNo)
	}
}

func (e *Edge) onBye(req *sip.Request, tx *txn.ServerTx) {
	l := e.inDialog(req)
	if l == nil {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	// A BYE can overtake the ACK of our 2xx: it confirms the dialog all the
	// same (the ACK is implied).
	l.mu.Lock()
	l.ended = true
	l.byeOnAck = false // their BYE ends the dialog: ours is not needed
	inv, invReq := l.inv, l.invReq
	l.mu.Unlock()
	l.acked(0)
	e.respond(req, tx, 200, "OK", nil)
	if inv != nil {
		// A BYE in an early dialog: the INVITE ends too.
		res := sip.NewResponseFromRequest(invReq, 487, "Request Terminated", nil)
		res.To().Params.Add("tag", l.tag)
		_ = e.send(inv, res)
	}
	l.report(pb.LegEvent_BYE, 0, nil)
	l.finish()
}

func (e *Edge) onReinvite(req *sip.Request, tx *txn.ServerTx) {
	l := e.inDialog(req)
	if l == nil {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	// A new INVITE in the dialog means its sender had our last 2xx (and a
	// BYE that waited for its ACK may end the dialog now).
	l.acked(0)
	l.mu.Lock()
	done := l.done
	l.mu.Unlock()
	if done {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	res, err := e.cfg.Calls.Reinvite(&pb.LegReinvite{CallId: l.callID, LegId: l.id, Sdp: req.Body()})
	if err != nil {
		e.cfg.Log.Warn("sip: re-INVITE not taken by its call", "call", l.callID, "err", err)
		e.respond(req, tx, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", "1"))
		return
	}
	if res.Code != 200 {
		e.respond(req, tx, int(res.Code), reasonFor(int(res.Code)), nil)
		return
	}
	resp := sip.NewResponseFromRequest(req, 200, "OK", res.Sdp)
	resp.AppendHeader(&sdpType)
	resp.AppendHeader(e.contactFor(req))
	l.mu.Lock()
	l.awaitAck, l.awaitSeq = tx, req.CSeq().SeqNo
	l.mu.Unlock()
	tx.OnNoAck(func() {
		l.mu.Lock()
		if l.awaitAck == tx {
			l.awaitAck = nil
		}
		l.mu.Unlock()
	})
	_ = e.send(tx, resp)
}

// ---- outbound -------------------------------------------------------------------

func (e *Edge) originate(m *pb.LegOriginate, grain *actor.PID) {
	l := e.newLeg(m.LegId, m.CallId)
	if grain != nil {
		l.grain.Store(grain)
	}
	e.addLeg(l)
	req, err := e.newInvite(m)
	if err != nil {
		l.report(pb.LegEvent_FAILED, 404, nil)
		l.finish()
		return
	}
	l.mu.Lock()
	l.invite = req
	l.mu.Unlock()
	e.bindFork(req.CallID().Value()+"\x00"+req.From().Params.GetOr("tag", ""), l)
	e.offReader(req, func() { l.dial(req) })
}

// newInvite builds the INVITE of an outbound leg.
func (e *Edge) newInvite(m *pb.LegOriginate) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(m.RequestUri, &uri); err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.INVITE, uri)
	from := &sip.FromHeader{DisplayName: quoteDisplay(m.FromDisplay), Address: sip.Uri{Scheme: "sip", User: userPart(m.FromUser), Host: e.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: userPart(m.ToUser), Host: e.cfg.Domain}})
	callID := sip.CallIDHeader(newID() + newID())
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	req.AppendHeader(e.contactTo(m.Transport, m.Destination))
	if m.AssertedIdentity != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+userPart(m.AssertedIdentity)+"@"+e.cfg.Domain+">"))
	}
	for _, h := range m.Headers {
		name, val, ok := headerLine(h)
		if !ok {
			e.cfg.Log.Warn("sip: header not written", "leg", m.LegId, "header", h)
			continue
		}
		req.AppendHeader(sip.NewHeader(name, val))
	}
	req.AppendHeader(&sdpType)
	req.SetBody(m.Sdp)
	if m.Destination != "" {
		req.SetDestination(m.Destination)
	}
	if m.Transport != "" {
		req.SetTransport(strings.ToUpper(m.Transport))
	}
	return req, nil
}

// dial sends the INVITE. A LegEnd that came while it went out cancels it.
func (l *leg) dial(req *sip.Request) {
	if l.isEnded() {
		l.finish()
		return
	}
	l.e.pinDestination(req)
	msgsOut.method(sip.INVITE)
	tx, err := l.e.layer.Request(req, l.onResponse)
	if err != nil {
		l.e.cfg.Log.Info("sip: invite not sent", "leg", l.id, "err", err)
		l.report(pb.LegEvent_FAILED, 503, nil)
		l.finish()
		return
	}
	l.mu.Lock()
	cancel := l.ended && !l.established
	if !l.established && !l.done {
		l.out = tx
	}
	l.mu.Unlock()
	if cancel {
		tx.Cancel()
	}
}

// onResponse takes each response to the outbound INVITE.
func (l *leg) onResponse(res *sip.Response) {
	msgsIn.code(res.StatusCode)
	code := res.StatusCode
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	switch {
	case code < 200:
		ended := l.ended
		l.mu.Unlock()
		switch {
		case ended:
		case code == 183 && len(res.Body()) > 0:
			l.report(pb.LegEvent_EARLY, 183, res.Body())
		case code > 100:
			l.report(pb.LegEvent_RINGING, code, nil)
		}
	case code < 300:
		if l.established || l.invite == nil {
			first := l.dlg
			l.mu.Unlock()
			if key, ok := responseKey(res); ok && first != nil && key != first.key() {
				l.otherFork(res)
			}
			return
		}
		l.established = true
		l.dlg = uacDialog(l.invite, res)
		l.out = nil
		l.ack = l.dlg.request(sip.ACK, nil)
		l.e.layer.Stamp(l.ack) // its Via now: a retransmitted 2xx resends it as is
		// Bound before the lock goes, so that a LegEnd now finds the
		// dialog to end and unbinds it.
		l.e.bindDialog(l.dlg.key(), l)
		ack, ended := l.ack, l.ended
		// The ACK leaves before anything else in the dialog (a BYE of a
		// LegEnd waits for the lock).
		msgsOut.method(sip.ACK)
		l.e.offReader(ack, func() {
			if err := l.e.layer.Send(ack); err != nil {
				l.e.cfg.Log.Debug("sip: ack not sent", "leg", l.id, "err", err)
			}
		})
		settle := l.settle
		l.mu.Unlock()
		if ended {
			// The call no longer wants this branch (another one answered
			// first, or the caller left).
			l.byeSettled(settle)
			return
		}
		l.report(pb.LegEvent_ANSWERED, 200, res.Body())
	default:
		ended, settle := l.ended, l.settle
		l.mu.Unlock()
		switch {
		case !ended:
			l.report(pb.LegEvent_FAILED, code, nil)
		case settle:
			l.report(pb.LegEvent_SETTLED, code, nil)
		}
		l.finish()
	}
}

// onStray2xx acknowledges again a 2xx whose ACK was lost.
func (e *Edge) onStray2xx(res *sip.Response) {
	msgsIn.code(res.StatusCode)
	key, ok := responseKey(res)
	if !ok {
		return
	}
	e.mu.RLock()
	l := e.dialogs[key]
	fork := e.forks[res.CallID().Value()+"\x00"+res.From().Params.GetOr("tag", "")]
	e.mu.RUnlock()
	if l == nil {
		if fork != nil {
			fork.otherFork(res)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ack != nil {
		msgsOut.method(sip.ACK)
		ack := l.ack
		e.offReader(ack, func() { _ = e.layer.Send(ack) })
	}
}

// otherFork ends the dialog a second fork of our INVITE answered, after
// the first answer took the call: ACK, then BYE (RFC 3261 13.2.2.4).
func (l *leg) otherFork(res *sip.Response) {
	l.mu.Lock()
	inv := l.invite
	l.mu.Unlock()
	if inv == nil {
		return
	}
	d := uacDialog(inv, res)
	ack, bye := d.request(sip.ACK, nil), d.request(sip.BYE, nil)
	msgsOut.method(sip.ACK)
	msgsOut.method(sip.BYE)
	l.e.offReader(ack, func() {
		if err := l.e.layer.Send(ack); err != nil {
			l.e.cfg.Log.Debug("sip: ack of another fork not sent", "leg", l.id, "err", err)
		}
		if _, err := l.e.layer.Request(bye, nil); err != nil {
			l.e.cfg.Log.Debug("sip: bye of another fork not sent", "leg", l.id, "err", err)
		}
	})
}

// offReader runs send, which puts req on the wire, at once when that
// cannot block, else on a goroutine, so that neither the reader nor a grain
// waits on a name to look up or a connection to open.
func (e *Edge) offReader(req *sip.Request, send func()) {
	if txn.MayBlock(req) {
		go send()
		return
	}
	send()
}

func reasonFor(code int) string {
	switch code {
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 481:
		return "Call/Transaction Does Not Exist"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}

// preferredIdentity is the user part of a P-Preferred-Identity (RFC 3325):
// the line the caller asks to call for. Whether it may (a trunk asserts its
// own identity; a user needs the line's place_calls) is the call's to say.
func preferredIdentity(req *sip.Request) string {
	h := req.GetHeader("P-Preferred-Identity")
	if h == nil {
		return ""
	}
	var uri sip.Uri
	v := strings.TrimSpace(h.Value())
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	if err := sip.ParseUri(v, &uri); err != nil {
		return ""
	}
	return uri.User
}
