package sipedge

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/api/sipedge/txn"
	"github.com/switchboard/switchboard/api/sipedge/validate"
	pb "github.com/switchboard/switchboard/proto"
)

// Text messages (RFC 3428, page mode): a MESSAGE out of any dialog from a
// user's phone or a trunk is checked here and handed to Config.Messages,
// which answers once it is stored; the node's SMS service sends MESSAGEs
// out through SmsOut.

// MaxMessageText is the longest text a MESSAGE may carry, in bytes.
const MaxMessageText = 1600

// Messages routes a text message the edge received; it answers once the
// message is stored.
type Messages interface {
	// Receive answers 202 once m is stored, or a 4xx/5xx and its reason.
	// It gives up when ctx ends.
	Receive(ctx context.Context, m InboundMessage) (code int, reason string)
}

// InboundMessage is a MESSAGE from an authenticated sender: From is who
// sent it (a user, or a trunk's caller with the From user part as Number);
// To is the Request-URI's user part; Text the body.
type InboundMessage struct {
	From Identity
	To   string
	Text string
}

// messageTimeout bounds how long a MESSAGE waits to be stored (an etcd
// write and a grain's answer): a UDP sender retransmits meanwhile and gives
// up at 32 s, so it learns to come back later well before.
const messageTimeout = 5 * time.Second

// retryAfter is what a 503 to a MESSAGE asks the sender to wait, in seconds.
const retryAfter = "5"

// onMessage answers a MESSAGE, on a goroutine of its own: storing it waits.
func (e *Edge) onMessage(req *sip.Request, tx *txn.ServerTx) {
	if req.To().Params.Has("tag") {
		// No dialog of ours carries MESSAGEs: page mode only.
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	// Only users and trunks may send: a stranger's text is not even measured.
	from, ok := e.authenticate(req, tx, true)
	if !ok {
		return
	}
	if r := messageRefusal(req.Body()); r != nil {
		e.refuse(req, tx, r)
		return
	}
	code, reason, ok := e.receive(InboundMessage{From: from, To: req.Recipient.User, Text: string(req.Body())})
	if !ok {
		e.cfg.Log.Warn("sip: message not stored in time", "call_id", req.CallID().Value(), "to", req.Recipient.User)
		code, reason = 503, "Service Unavailable"
	}
	if code == 503 {
		e.respond(req, tx, code, reason, nil, sip.NewHeader("Retry-After", retryAfter))
		return
	}
	e.respond(req, tx, code, reason, nil)
}

// receive hands m to the service and waits at most msgTimeout for its
// answer (ok=false: none came in time). An answer that is no final SIP
// code is a 500.
func (e *Edge) receive(m InboundMessage) (code int, reason string, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), e.msgTimeout)
	defer cancel()
	type answer struct {
		code   int
		reason string
	}
	done := make(chan answer, 1) // the service may answer after we gave up
	go func() {
		code, reason := e.cfg.Messages.Receive(ctx, m)
		done <- answer{code, reason}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		// An answer that came with the deadline wins: the message may be stored.
		select {
		case a = <-done:
		default:
			return 0, "", false
		}
	}
	if a.code < 200 || a.code > 699 {
		e.cfg.Log.Warn("sip: message service answered no final code", "code", a.code, "reason", a.reason)
		return 500, "Server Internal Error", true
	}
	return a.code, statusReason(a.code, a.reason), true
}

// statusReason is the service's reason as a status line may carry it: one
// line (it may come from an error's text), a generic one when empty.
func statusReason(code int, reason string) string {
	reason = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, reason))
	switch {
	case reason != "":
		return reason
	case code == 202:
		return "Accepted"
	}
	return reasonFor(code)
}

// messageRefusal says why a MESSAGE's text is refused (nil: it is taken):
// it holds 1..MaxMessageText bytes. Its type, text/plain with any
// parameters, validate.Request has checked (415 and Accept otherwise).
func messageRefusal(body []byte) *validate.Refusal {
	switch {
	case len(body) == 0:
		return &validate.Refusal{Code: 400, Reason: "Bad Request", Warning: "a MESSAGE needs a text"}
	case len(body) > MaxMessageText:
		return &validate.Refusal{Code: 413, Reason: "Request Entity Too Large", Warning: "a MESSAGE carries at most 1600 bytes"}
	}
	return nil
}

// SendMessage sends a MESSAGE out of any dialog, as m says, off the
// caller's goroutine; its answer is only logged.
func (e *Edge) SendMessage(m *pb.SmsOut) {
	req, err := e.newMessage(m)
	if err != nil {
		e.cfg.Log.Warn("sip: message not sent", "to", m.RequestUri, "err", err)
		return
	}
	go e.sendMessage(req)
}

// newMessage builds the MESSAGE m asks for: a new Call-ID and From tag,
// our domain in From and To, the text as text/plain. Max-Forwards and Via
// are the transaction layer's.
func (e *Edge) newMessage(m *pb.SmsOut) (*sip.Request, error) {
	var uri sip.Uri
	if err := sip.ParseUri(m.RequestUri, &uri); err != nil {
		return nil, err
	}
	domain := e.cfg.Domain
	if domain == "" {
		domain = e.cfg.Host
	}
	req := sip.NewRequest(sip.MESSAGE, uri)
	from := &sip.FromHeader{DisplayName: quoteDisplay(m.FromDisplay), Address: sip.Uri{Scheme: "sip", User: userPart(m.FromUser), Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: userPart(m.ToUser), Host: domain}})
	callID := sip.CallIDHeader(newID() + newID())
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.SetBody([]byte(m.Text))
	// A phone on TCP or TLS is reached over the flow it registered on: its
	// source address, which the layer finds among its connections.
	if m.Destination != "" {
		req.SetDestination(m.Destination)
	}
	if m.Transport != "" {
		req.SetTransport(strings.ToUpper(m.Transport))
	}
	return req, nil
}

// sendMessage sends req in a transaction of its own and logs its final
// answer. A challenge (a trunk's 401/407) is not answered: the edge holds
// no credentials to send messages with.
func (e *Edge) sendMessage(req *sip.Request) {
	e.pinDestination(req)
	to := req.Recipient.String()
	msgsOut.method(sip.MESSAGE)
	_, err := e.layer.Request(req, func(res *sip.Response) {
		msgsIn.code(res.StatusCode)
		switch {
		case res.StatusCode < 200:
		case res.StatusCode < 300:
			e.cfg.Log.Debug("sip: message delivered", "to", to, "code", res.StatusCode)
		default:
			e.cfg.Log.Warn("sip: message refused", "to", to, "code", res.StatusCode, "reason", res.Reason)
		}
	})
	if err != nil {
		e.cfg.Log.Warn("sip: message not sent", "to", to, "err", err)
	}
}
