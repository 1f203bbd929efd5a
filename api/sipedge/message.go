package sipedge

import (
	"context"
	"mime"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/api/sipedge/txn"
	pb "github.com/switchboard/switchboard/proto"
)

// Text messages (RFC 3428): a MESSAGE out of any dialog from a user's
// phone or a trunk is checked here and handed to Config.Messages, which
// answers once it is stored; the node's SMS service sends MESSAGEs out
// through SmsOut.

// MaxMessageText is the longest text a MESSAGE may carry, in bytes.
const MaxMessageText = 1600

// Messages routes a text message the edge received; it answers once the
// message is stored (202), or why not.
type Messages interface {
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

// messageTimeout bounds how long a MESSAGE waits for its storing.
const messageTimeout = 5 * time.Second

// onMessage takes a MESSAGE on a goroutine of its own (storing it waits
// for etcd and a grain).
func (e *Edge) onMessage(req *sip.Request, tx *txn.ServerTx) {
	if req.To() != nil && req.To().Params.Has("tag") {
		// RFC 3428 page-mode only: no dialog of ours carries MESSAGEs.
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if !textPlain(req) {
		e.respond(req, tx, 415, "Unsupported Media Type", nil, sip.NewHeader("Accept", "text/plain"))
		return
	}
	body := req.Body()
	switch {
	case len(body) > MaxMessageText:
		e.respond(req, tx, 413, "Request Entity Too Large", nil)
		return
	case len(body) == 0:
		e.respond(req, tx, 400, "Bad Request", nil, sip.NewHeader("Warning", `399 `+e.cfg.Host+` "a MESSAGE needs a text"`))
		return
	}
	from, ok := e.authenticate(req, tx, true)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), messageTimeout)
	defer cancel()
	code, reason := e.cfg.Messages.Receive(ctx, InboundMessage{From: from, To: req.Recipient.User, Text: string(body)})
	if ctx.Err() != nil && code >= 500 {
		e.respond(req, tx, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return
	}
	e.respond(req, tx, code, reason, nil)
}

// textPlain: the MESSAGE's body is text/plain (parameters allowed).
func textPlain(req *sip.Request) bool {
	h := req.ContentType()
	if h == nil {
		return false
	}
	mt, _, err := mime.ParseMediaType(h.Value())
	return err == nil && strings.EqualFold(mt, "text/plain")
}

// SendMessage sends a MESSAGE out of any dialog, as m says, off the
// caller's goroutine; its answer is only logged.
func (e *Edge) SendMessage(m *pb.SmsOut) {
	var uri sip.Uri
	if err := sip.ParseUri(m.RequestUri, &uri); err != nil {
		e.cfg.Log.Warn("sip: message not sent: bad request uri", "uri", m.RequestUri, "err", err)
		return
	}
	req := sip.NewRequest(sip.MESSAGE, uri)
	from := &sip.FromHeader{DisplayName: quoteDisplay(m.FromDisplay), Address: sip.Uri{Scheme: "sip", User: userPart(m.FromUser), Host: e.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: userPart(m.ToUser), Host: e.cfg.Domain}})
	callID := sip.CallIDHeader(newID() + newID())
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.MESSAGE})
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain;charset=UTF-8"))
	req.SetBody([]byte(m.Text))
	if m.Destination != "" {
		req.SetDestination(m.Destination)
	}
	if m.Transport != "" {
		req.SetTransport(strings.ToUpper(m.Transport))
	}
	send := func() {
		e.pinDestination(req)
		msgsOut.method(sip.MESSAGE)
		if _, err := e.layer.Request(req, func(res *sip.Response) {
			msgsIn.code(res.StatusCode)
			if res.StatusCode >= 300 {
				e.cfg.Log.Info("sip: message refused", "to", m.RequestUri, "code", res.StatusCode)
			}
		}); err != nil {
			e.cfg.Log.Warn("sip: message not sent", "to", m.RequestUri, "err", err)
		}
	}
	go send()
}
