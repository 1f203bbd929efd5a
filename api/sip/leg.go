package sipedge

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/api/metrics"
	pb "github.com/switchboard/switchboard/proto"
)

// leg is one SIP dialog of a call held by this node. Commands from the call
// grain are queued and carried out in order by the goroutine that carries
// the leg (an inbound leg's is its INVITE's handler), so a 2xx that waits for
// its ACK never blocks the edge actor.
type leg struct {
	e        *Edge
	id       string
	callID   string
	srv      *sipgo.DialogServerSession // inbound leg
	cli      *sipgo.DialogClientSession // outbound leg; written under mu once the INVITE is sent
	cmds     chan any
	done     chan struct{}
	dialogID string
	grain    atomic.Pointer[actor.PID] // the call grain, once looked up

	mu          sync.Mutex
	established bool
	ended       bool
	ringCancel  context.CancelFunc
	reAcks      chan uint32 // CSeq of ACKs to our re-INVITE 2xx
	doneOnce    sync.Once
}

func (e *Edge) newLeg(id, callID string) *leg {
	return &leg{e: e, id: id, callID: callID, cmds: make(chan any, 8), done: make(chan struct{}), reAcks: make(chan uint32, 4)}
}

func (l *leg) push(m any) {
	select {
	case l.cmds <- m:
	case <-l.done:
	}
}

// end marks the leg as ending now: a ringing outbound INVITE is cancelled at
// once, everything else goes through the queue.
func (l *leg) end(m *pb.LegEnd) {
	l.mu.Lock()
	l.ended = true
	cancel := l.ringCancel
	ringing := l.cli != nil && !l.established
	l.mu.Unlock()
	if ringing && cancel != nil {
		cancel()
	}
	l.push(m)
}

func (l *leg) isEnded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

func (l *leg) finish() {
	l.doneOnce.Do(func() {
		l.e.admit.routed(l.callID)
		l.mu.Lock()
		l.ended = true
		l.mu.Unlock()
		close(l.done)
		// sipgo keeps the leg (through its transactions' callbacks) for
		// 64·T1 after the call; a cached PID holds its grain and all the
		// call's state that long.
		l.grain.Store(nil)
		l.e.dropLeg(l)
	})
}

func (l *leg) report(kind pb.LegEvent_Kind, code int, body []byte) {
	l.toGrain(&pb.LegEvent{CallId: l.callID, LegId: l.id, Kind: kind, Code: int32(code), Sdp: body})
}

// ---- inbound ------------------------------------------------------------------

func (e *Edge) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil && req.To().Params.Has("tag") {
		e.onReinvite(req, tx)
		return
	}
	start := time.Now()
	if e.cfg.Draining != nil && e.cfg.Draining() {
		e.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "30"))
		return
	}
	from, ok := e.authenticate(req, tx, true)
	if !ok {
		return
	}
	if len(req.Body()) == 0 {
		// Offerless INVITEs (offer in the ACK) are not supported.
		e.warn(req, tx, 488, "Not Acceptable Here", "an SDP offer is required")
		return
	}
	callID, legID := newID(), ""
	// *8<ext>: pick up the held (or ringing) call on ext's line; *7<ext>:
	// join its active call. The INVITE becomes a leg of that call; its
	// grain decides whether the caller may.
	action, target, find := e.featureCode(req.Recipient.User)
	if action != "" && target != "" && from.UserID != "" {
		id, ok := "", false
		if find != nil {
			id, ok = find(target)
		}
		if !ok {
			reason := "Nothing To Pick Up"
			if action == "join" {
				reason = "Nothing To Join"
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
	dtx, err := e.dua.ReadInvite(req, tx)
	if err != nil {
		e.admit.routed(callID)
		e.warn(req, tx, 400, "Bad Request", err.Error())
		return
	}
	if legID == "" {
		legID = callID + "-a"
	}
	l := e.newLeg(legID, callID)
	l.srv = dtx
	e.addLeg(l)
	e.bindDialog(dtx.ID, l)
	// The callback finds the leg by id rather than holding it: sipgo keeps
	// the transaction, and its callbacks, for 64·T1 after the call.
	tx.OnCancel(func(*sip.Request) {
		e.admit.routed(callID)
		if l := e.leg(legID); l != nil {
			l.report(pb.LegEvent_CANCELLED, 487, nil)
			l.finish()
		}
	})
	if action != "" && legID != callID+"-a" {
		l.toGrain(&pb.CallControl{CallId: callID, Action: action, ByUser: from.UserID, LegId: l.id, Node: e.node(), Offer: req.Body()})
	} else {
		l.toGrain(&pb.CallStart{
			CallId: callID, LegId: l.id, Node: e.node(),
			From: &pb.Party{UserId: from.UserID, Number: from.Number, Display: from.Display, TrunkId: from.TrunkID},
			To:   req.Recipient.User, Offer: req.Body(), ReceivedUnixNano: start.UnixNano(),
			OnBehalfOf: preferredIdentity(req, from),
		})
	}
	// The leg runs on the INVITE's handler: sipgo ends the transaction when
	// the handler returns, so the handler waits for the final response (or
	// the caller's CANCEL) anyway, and a goroutine per call would cost its
	// start and a second stack grown as deep.
	l.runInbound()
}

func (l *leg) runInbound() {
	for {
		select {
		case <-l.done:
			return
		case cmd := <-l.cmds:
			switch m := cmd.(type) {
			case *pb.LegRespond:
				if l.respond(m) {
					return
				}
			case *pb.LegEnd:
				l.mu.Lock()
				est := l.established
				l.mu.Unlock()
				if !est {
					code := int(m.Code)
					if code < 300 {
						code = 480
					}
					_ = l.srv.Respond(code, reasonFor(code), nil)
				} else {
					ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
					if err := l.srv.Bye(ctx); err != nil {
						l.e.cfg.Log.Debug("sip: bye failed", "leg", l.id, "err", err)
					}
					cancel()
				}
				msgsOut.method(sip.BYE)
				l.finish()
				return
			}
		}
	}
}

// sdpType is the Content-Type of every SDP body sent. sipgo never changes a
// ContentTypeHeader (its clones share it), so one serves every message.
var (
	sdpType = sip.ContentTypeHeader("application/sdp")
	withSDP = []sip.Header{&sdpType}
)

// respond sends a response on the inbound INVITE; true when the leg is over.
func (l *leg) respond(m *pb.LegRespond) bool {
	code := int(m.Code)
	msgsOut.code(code)
	reason := m.Reason
	if reason == "" {
		reason = reasonFor(code)
	}
	var hdrs []sip.Header
	if len(m.Sdp) > 0 {
		hdrs = withSDP
	}
	switch {
	case code < 200:
		_ = l.srv.Respond(code, reason, m.Sdp, hdrs...)
		return false
	case code < 300:
		l.mu.Lock()
		l.established = true
		l.mu.Unlock()
		err := l.srv.Respond(code, reason, m.Sdp, hdrs...) // retransmits until the ACK (or a BYE) arrives
		if err != nil && !l.isEnded() {
			// No ACK: the call cannot go on (RFC 3261 13.3.1.4).
			l.e.cfg.Log.Info("sip: no ACK for 2xx", "leg", l.id, "err", err)
			l.report(pb.LegEvent_FAILED, 408, nil)
		}
		return false
	default:
		_ = l.srv.Respond(code, reason, nil, hdrs...)
		l.finish()
		return true
	}
}

func (e *Edge) onAck(req *sip.Request, tx sip.ServerTransaction) {
	l := e.inDialog(req)
	if l == nil {
		return // ACK to a non-2xx is absorbed by the transaction layer
	}
	if l.srv != nil {
		if err := l.srv.ReadAck(req, tx); err == nil {
			return
		}
	}
	if c := req.CSeq(); c != nil {
		select {
		case l.reAcks <- c.SeqNo:
		default:
		}
	}
}

func (e *Edge) onBye(req *sip.Request, tx sip.ServerTransaction) {
	l := e.inDialog(req)
	if l == nil {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	// A BYE can overtake the ACK of our 2xx: it confirms the dialog all the
	// same (the ACK is implied), so it is taken whatever the dialog state.
	// Mark the leg ended first so the 2xx sender does not report a lost ACK.
	l.mu.Lock()
	l.ended = true
	l.mu.Unlock()
	var err error
	if l.srv != nil {
		err = l.srv.ReadBye(req, tx)
	} else {
		err = l.cli.ReadBye(req, tx)
	}
	if err != nil {
		e.respond(req, tx, 200, "OK", nil)
	} else {
		msgsOut.code(200)
	}
	l.report(pb.LegEvent_BYE, 0, nil)
	l.finish()
}

func (e *Edge) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	l := e.inDialog(req)
	if l == nil {
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	r, err := e.cfg.Cluster().Request(l.callID, "call", &pb.LegReinvite{CallId: l.callID, LegId: l.id, Sdp: req.Body()})
	res, _ := r.(*pb.LegReinviteResult)
	if err != nil || res == nil {
		e.respond(req, tx, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", "1"))
		return
	}
	if res.Code != 200 {
		e.respond(req, tx, int(res.Code), reasonFor(int(res.Code)), nil)
		return
	}
	resp := sip.NewResponseFromRequest(req, 200, "OK", res.Sdp)
	resp.AppendHeader(&sdpType)
	resp.AppendHeader(&e.contact)
	msgsOut.code(200)
	if err := tx.Respond(resp); err != nil {
		return
	}
	if req.Transport() != "UDP" {
		return
	}
	// Over UDP the 2xx is ours to retransmit until its ACK (RFC 6026).
	seq := req.CSeq().SeqNo
	wait := sip.T1
	deadline := time.Now().Add(64 * sip.T1)
	for time.Now().Before(deadline) {
		select {
		case got := <-l.reAcks:
			if got == seq {
				return
			}
		case <-l.done:
			return
		case <-time.After(wait):
			_ = tx.Respond(resp)
			wait = min(2*wait, sip.T2)
		}
	}
}

// ---- outbound -------------------------------------------------------------------

func (e *Edge) originate(m *pb.LegOriginate, grain *actor.PID) {
	l := e.newLeg(m.LegId, m.CallId)
	if grain != nil {
		l.grain.Store(grain)
	}
	e.addLeg(l)
	go l.runOutbound(m)
}

// newInvite builds the INVITE of an outbound leg.
func (e *Edge) newInvite(m *pb.LegOriginate) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(m.RequestUri, &uri); err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.INVITE, uri)
	from := &sip.FromHeader{DisplayName: m.FromDisplay, Address: sip.Uri{Scheme: "sip", User: m.FromUser, Host: e.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: m.ToUser, Host: e.cfg.Domain}})
	if m.AssertedIdentity != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+m.AssertedIdentity+"@"+e.cfg.Domain+">"))
	}
	for _, h := range m.Headers {
		if name, val, ok := strings.Cut(h, ":"); ok {
			req.AppendHeader(sip.NewHeader(strings.TrimSpace(name), strings.TrimSpace(val)))
		}
	}
	req.AppendHeader(&sdpType)
	req.SetBody(m.Sdp)
	if m.Destination != "" {
		req.SetDestination(m.Destination)
	}
	if m.Transport != "" {
		req.SetTransport(strings.ToUpper(m.Transport))
	}
	// sipgo copies the source into the ACK and BYE it builds and into
	// every clone; unset, each copy formats it anew from the Via.
	req.SetSource(e.addr)
	return req, nil
}

func (l *leg) runOutbound(m *pb.LegOriginate) {
	e := l.e
	req, err := e.newInvite(m)
	if err != nil {
		l.report(pb.LegEvent_FAILED, 404, nil)
		l.finish()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		cancel()
		l.finish()
		return
	}
	l.ringCancel = cancel
	l.mu.Unlock()
	defer cancel()

	msgsOut.method(sip.INVITE)
	dtx, err := e.dua.WriteInvite(ctx, req)
	if err != nil {
		e.cfg.Log.Info("sip: invite not sent", "leg", l.id, "err", err)
		l.report(pb.LegEvent_FAILED, 503, nil)
		l.finish()
		return
	}
	l.mu.Lock() // end reads it from the grain's goroutine
	l.cli = dtx
	l.mu.Unlock()
	err = dtx.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		msgsIn.code(r.StatusCode)
		switch {
		case r.StatusCode == 183 && len(r.Body()) > 0:
			l.report(pb.LegEvent_EARLY, 183, r.Body())
		case r.StatusCode > 100 && r.StatusCode < 200:
			l.report(pb.LegEvent_RINGING, r.StatusCode, nil)
		}
		return nil
	}})
	if err != nil {
		var de *sipgo.ErrDialogResponse
		switch {
		case ctx.Err() != nil:
			// We cancelled: the grain already knows.
		case errors.As(err, &de):
			l.report(pb.LegEvent_FAILED, de.Res.StatusCode, nil)
		default:
			l.report(pb.LegEvent_FAILED, 408, nil)
		}
		l.finish()
		return
	}
	e.bindDialog(dtx.ID, l)
	// WriteAck takes a context but uses none (the transport dials with its
	// own): a deadline would only cost a timer.
	_ = dtx.WriteAck(context.Background(), dialogRequest(dtx, sip.ACK))
	l.mu.Lock()
	l.established = true
	ended := l.ended
	l.mu.Unlock()
	if ended {
		// The call no longer wants this branch (another one answered first).
		l.bye()
		return
	}
	l.report(pb.LegEvent_ANSWERED, 200, dtx.InviteResponse.Body())
	for {
		select {
		case <-l.done:
			return
		case cmd := <-l.cmds:
			if _, ok := cmd.(*pb.LegEnd); ok {
				l.bye()
				return
			}
		}
	}
}

// dialogRequest builds an ACK or BYE in the answered dialog dtx: the
// request DialogClientSession.Ack or Bye would build, header for header and
// in the same order, without their copies of every header of the INVITE
// and its 2xx, and of the destination formatted with fmt by each layer the
// request passes. Those headers are shared instead: nothing changes them
// once sent. WriteAck and WriteBye add the route set, Contact (BYE), Via
// and CSeq number as Ack and Bye have them.
func dialogRequest(dtx *sipgo.DialogClientSession, method sip.RequestMethod) *sip.Request {
	inv, res := dtx.InviteRequest, dtx.InviteResponse
	target := inv.Recipient
	if c := res.Contact(); c != nil {
		target = c.Address
	}
	req := sip.NewRequest(method, target)
	req.SipVersion = inv.SipVersion
	maxFwd := sip.MaxForwardsHeader(70)
	if method == sip.BYE {
		req.AppendHeader(&maxFwd)
	}
	req.AppendHeader(inv.From())
	req.AppendHeader(res.To())
	req.AppendHeader(inv.CallID())
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: method})
	if method == sip.ACK {
		req.AppendHeader(&maxFwd)
		req.AppendHeader(inv.Contact())
		req.Laddr = inv.Laddr
	}
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	req.SetSource(inv.Source())
	if res.GetHeader("Record-Route") == nil {
		// Without a route set the request goes to its Request-URI.
		port := target.Port
		if port == 0 {
			port = sip.DefaultPort(req.Transport())
		}
		req.SetDestination(target.Host + ":" + strconv.Itoa(port))
	}
	return req
}

func (l *leg) bye() {
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	msgsOut.method(sip.BYE)
	if err := l.cli.WriteBye(ctx, dialogRequest(l.cli, sip.BYE)); err != nil {
		l.e.cfg.Log.Debug("sip: bye failed", "leg", l.id, "err", err)
	}
	l.finish()
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

// featureCode reads a feature code dialed as the Request-URI user part:
// the call control it asks for, its target extension, and how the line's
// call is found ("" when user is no feature code).
func (e *Edge) featureCode(user string) (action, target string, find func(string) (string, bool)) {
	if t, ok := strings.CutPrefix(user, "*8"); ok {
		return "pickup", t, e.cfg.Pickup
	}
	if t, ok := strings.CutPrefix(user, "*7"); ok {
		return "join", t, e.cfg.Join
	}
	return "", "", nil
}

// preferredIdentity is the user part of a user's P-Preferred-Identity
// (RFC 3325): the line a delegate asks to call for. Trunks assert their own.
func preferredIdentity(req *sip.Request, from Identity) string {
	h := req.GetHeader("P-Preferred-Identity")
	if h == nil || from.UserID == "" {
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
