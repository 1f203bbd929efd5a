package txn

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

type clientState uint8

const (
	calling  clientState = iota // sent, nothing heard
	ringing                     // a provisional response heard
	finished                    // an INVITE's non-2xx final: the ACK answers its retransmissions
	gone
)

// ClientTx is a client transaction: a request we sent and its responses.
type ClientTx struct {
	l      *Layer
	key    string
	invite bool
	req    *sip.Request
	to     peer
	wire   []byte // the request, to retransmit (UDP only)
	// onResponse gets each provisional and the final response, on the
	// reading goroutine; a timeout comes as a 408 of our own (RFC 3261
	// 8.1.3.1). A request that cannot be sent at all is Request's error.
	onResponse func(*sip.Response)

	mu         sync.Mutex
	state      clientState
	gen        uint32
	interval   time.Duration
	deadline   time.Time
	cancelWhen bool   // cancel once a provisional response arrives
	cancelled  bool   // CANCEL sent
	ack        []byte // our ACK of a non-2xx final
}

// Request sends req in a new client transaction: a Via of ours with a new
// branch goes on top. req's destination (or Request-URI) names where; a host
// name is looked up first, which blocks. onResponse may be nil.
func (l *Layer) Request(req *sip.Request, onResponse func(*sip.Response)) (*ClientTx, error) {
	p, err := requestPeer(req)
	if err != nil {
		return nil, err
	}
	return l.startTo(req, l.stamp(req, p), p, onResponse)
}

// Send puts on the wire a request that is no transaction of its own: the
// ACK of a 2xx. The first send adds our Via; sending it again resends it.
func (l *Layer) Send(req *sip.Request) error {
	p, err := requestPeer(req)
	if err != nil {
		return err
	}
	if req.Via() == nil {
		l.stamp(req, p)
	}
	_, err = l.send(p, req)
	return err
}

// Stamp puts our Via on a request to be sent with Send, so that sending it
// again does not change it. It does not block: a destination named, not an
// address, gets the configured Host and Port.
func (l *Layer) Stamp(req *sip.Request) {
	p := peer{network: strings.ToUpper(req.Transport())}
	if !p.reliable() {
		p.addr, _ = netip.ParseAddrPort(req.Destination())
	}
	l.stamp(req, p)
}

// stamp puts our Via, with a new branch, on top of req, which goes to p,
// and a Max-Forwards if it has none.
func (l *Layer) stamp(req *sip.Request, p peer) string {
	host, port := l.sentBy(req, p)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: p.network,
		Host: host, Port: port, Params: sip.NewParams()}
	branch := sip.GenerateBranchN(16)
	via.Params.Add("branch", branch)
	via.Params.Add("rport", "")
	req.PrependHeader(via)
	if req.MaxForwards() == nil {
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
	}
	return branch
}

func (l *Layer) startTo(req *sip.Request, branch string, p peer, onResponse func(*sip.Response)) (*ClientTx, error) {
	if onResponse == nil {
		onResponse = func(*sip.Response) {}
	}
	tx := &ClientTx{l: l, key: clientKey(branch, req.Method), invite: req.IsInvite(), req: req, to: p, onResponse: onResponse}
	l.cliMu.Lock()
	l.clients[tx.key] = tx
	l.cliMu.Unlock()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	wire, err := l.send(p, req)
	if err != nil {
		tx.state = gone
		l.dropClient(tx.key, tx)
		return nil, err
	}
	tx.wire = wire
	tx.deadline = l.now().Add(linger) // timer B or F
	if p.reliable() {
		tx.armLocked(linger)
	} else {
		tx.interval = T1
		tx.armLocked(T1) // timer A or E
	}
	return tx, nil
}

func (tx *ClientTx) armLocked(d time.Duration) {
	tx.gen++
	tx.l.timers.after(tx.l.now(), d, tx, tx.gen)
}

// goneLocked ends the transaction. It lets go of the request and the
// user's callback: the wheel may hold the transaction a while yet.
func (tx *ClientTx) goneLocked() {
	tx.state = gone
	tx.gen++
	tx.req, tx.wire, tx.ack, tx.onResponse = nil, nil, nil, nil
	tx.l.dropClient(tx.key, tx)
}

func (tx *ClientTx) expire(gen uint32) {
	tx.mu.Lock()
	if gen != tx.gen || tx.state == gone {
		tx.mu.Unlock()
		return
	}
	now := tx.l.now()
	if tx.state == finished || !now.Before(tx.deadline) {
		var timeout *sip.Response
		cb := tx.onResponse
		if tx.state != finished {
			timeout = sip.NewResponseFromRequest(tx.req, 408, "Request Timeout", nil)
		}
		tx.goneLocked()
		tx.mu.Unlock()
		if timeout != nil {
			cb(timeout)
		}
		return
	}
	if tx.wire != nil && !(tx.invite && tx.state == ringing) {
		_ = tx.l.resend(tx.to, tx.wire)
		if tx.invite {
			tx.interval *= 2 // timer A doubles up to timer B
		} else {
			tx.interval = min(2*tx.interval, T2) // timer E
		}
		if !tx.invite && tx.state == ringing {
			tx.interval = T2
		}
	}
	tx.armLocked(min(tx.interval, tx.deadline.Sub(now)))
	tx.mu.Unlock()
}

func (tx *ClientTx) receive(res *sip.Response) {
	tx.mu.Lock()
	switch tx.state {
	case gone:
		tx.mu.Unlock()
		return
	case finished:
		if res.StatusCode >= 300 && tx.ack != nil {
			_ = tx.l.resend(tx.to, tx.ack) // our ACK was lost
		}
		tx.mu.Unlock()
		return
	}
	code := res.StatusCode
	cb := tx.onResponse
	switch {
	case code < 200:
		if tx.state == calling {
			tx.state = ringing
			if tx.invite {
				// No timer in Proceeding: the user cancels a call that
				// rings too long. A CANCEL asked for before now goes out.
				tx.gen++
				if tx.cancelWhen {
					tx.sendCancelLocked()
				}
			}
		}
	case tx.invite && code < 300:
		// RFC 6026: the dialog acknowledges this 2xx and any
		// retransmission of it (they reach it through OnResponse).
		tx.goneLocked()
	case tx.invite:
		tx.ackLocked(res)
	default:
		tx.goneLocked()
	}
	tx.mu.Unlock()
	cb(res)
}

// ackLocked acknowledges a non-2xx final to our INVITE (RFC 3261 17.1.1.3)
// and keeps the ACK for the response's retransmissions (timer D).
func (tx *ClientTx) ackLocked(res *sip.Response) {
	to := res.To()
	if to == nil {
		to = tx.req.To()
	}
	ack := sameHop(tx.req, sip.ACK, to)
	wire, _ := tx.l.send(tx.to, ack)
	if tx.to.reliable() {
		tx.goneLocked()
		return
	}
	tx.state = finished
	tx.ack = wire
	tx.req, tx.wire, tx.onResponse = nil, nil, nil // only the ACK is needed now
	tx.armLocked(linger)
}

// Cancel gives up a pending INVITE: CANCEL goes out now, or when the first
// provisional response arrives (RFC 3261 9.1). The INVITE's final answer
// (487, or a 2xx that crossed the CANCEL) still comes to onResponse; if none
// comes within 64·T1, a 408 of our own does.
func (tx *ClientTx) Cancel() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if !tx.invite || tx.cancelled || tx.cancelWhen {
		return
	}
	switch tx.state {
	case calling:
		tx.cancelWhen = true
	case ringing:
		tx.sendCancelLocked()
	}
}

func (tx *ClientTx) sendCancelLocked() {
	tx.cancelled = true
	c := sameHop(tx.req, sip.CANCEL, tx.req.To())
	via := c.Via()
	branch, _ := via.Params.Get("branch")
	// To where the INVITE went (RFC 3261 9.1), with no new lookup.
	if _, err := tx.l.startTo(c, branch, tx.to, nil); err != nil {
		tx.l.cfg.Log.Debug("sip: cancel not sent", "err", err)
	}
	// Timer B again: the INVITE's final answer is due within 64·T1.
	tx.deadline = tx.l.now().Add(linger)
	tx.armLocked(linger)
}

// sameHop builds the request that goes where the INVITE inv went, in its
// transaction's branch: the ACK of a non-2xx (RFC 3261 17.1.1.3) or a
// CANCEL (9.1). Its headers are the INVITE's, shared.
func sameHop(inv *sip.Request, method sip.RequestMethod, to *sip.ToHeader) *sip.Request {
	req := sip.NewRequest(method, inv.Recipient)
	req.SipVersion = inv.SipVersion
	if via := inv.Via(); via != nil {
		req.AppendHeader(via)
	}
	for _, h := range inv.GetHeaders("Route") {
		req.AppendHeader(h)
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(inv.From())
	req.AppendHeader(to)
	req.AppendHeader(inv.CallID())
	req.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: method})
	req.SetBody(nil)
	req.SetTransport(inv.Transport())
	req.SetDestination(inv.Destination())
	return req
}
