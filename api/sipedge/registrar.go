package sipedge

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/api/sipedge/txn"
	pb "github.com/switchboard/switchboard/proto"
)

// defaultExpires applies when a REGISTER names none (RFC 3261 10.2.1.1
// leaves it to the registrar).
const defaultExpires = 3600

// maxUserAgent bounds the User-Agent a binding keeps: it is stored in etcd
// with every binding and shown over REST, and a phone chooses its length.
const maxUserAgent = 256

// userAgent is the REGISTER's User-Agent as a binding keeps it, for REST
// only (it is never written into SIP): valid UTF-8 without control
// characters, cut to maxUserAgent bytes at a character's end.
func userAgent(req *sip.Request) string {
	h := req.GetHeader("User-Agent")
	if h == nil {
		return ""
	}
	v := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(h.Value(), ""))
	v = strings.TrimSpace(v)
	if len(v) <= maxUserAgent {
		return v
	}
	cut := 0
	for i, r := range v {
		if i+utf8.RuneLen(r) > maxUserAgent {
			break
		}
		cut = i + utf8.RuneLen(r)
	}
	return strings.TrimSpace(v[:cut])
}

func (e *Edge) onRegister(req *sip.Request, tx *txn.ServerTx) {
	to := req.To()
	if to == nil {
		e.warn(req, tx, 400, "Bad Request", "missing To")
		return
	}
	// Challenge before anything else, so an unknown user looks like a known one.
	id, ok := e.authenticate(req, tx, false)
	if !ok {
		return
	}
	if id.TrunkID != "" {
		e.warn(req, tx, 403, "Forbidden", "trunks do not register")
		return
	}
	owner, ok := e.cfg.Dir.Resolve(to.Address.User)
	if !ok || owner != id.UserID {
		e.warn(req, tx, 403, "Forbidden", "credentials do not match the To user")
		return
	}
	expires := defaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || v < 0 {
			e.warn(req, tx, 400, "Bad Request", "bad Expires")
			return
		}
		expires = v
	}
	var last *pb.RegisterResult
	ask := func(m *pb.Register) bool {
		res, err := e.cfg.Lines.Register(m)
		if err != nil {
			e.cfg.Log.Warn("sip: register failed", "user", id.UserID, "err", err)
			e.respond(req, tx, 500, "Server Internal Error", nil, sip.NewHeader("Retry-After", "5"))
			return false
		}
		if res.Status != 200 {
			var hdrs []sip.Header
			if res.Status == 423 {
				hdrs = append(hdrs, sip.NewHeader("Min-Expires", "60"))
			}
			e.respond(req, tx, int(res.Status), res.Reason, nil, hdrs...)
			return false
		}
		last = res
		return true
	}
	seq := uint32(0)
	if c := req.CSeq(); c != nil {
		seq = c.SeqNo
	}
	callID := ""
	if c := req.CallID(); c != nil {
		callID = c.Value()
	}
	ua := userAgent(req)
	contacts := req.GetHeaders("Contact")
	for _, h := range contacts {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if ch.Address.Wildcard {
			if len(contacts) > 1 {
				e.warn(req, tx, 400, "Bad Request", "Contact: * must stand alone")
				return
			}
			b := &pb.Binding{Node: e.node(), Source: req.Source(), RegCallId: callID, Cseq: seq}
			if !ask(&pb.Register{UserId: id.UserID, Binding: b, Expires: int32(expires), RemoveAll: true}) {
				return
			}
			continue
		}
		exp := expires
		if v, ok := ch.Params.Get("expires"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				e.warn(req, tx, 400, "Bad Request", "bad expires parameter")
				return
			}
			exp = n
		}
		b := &pb.Binding{Contact: ch.Address.String(), Node: e.node(), Source: req.Source(), Transport: req.Transport(), RegCallId: callID, Cseq: seq,
			UserAgent: ua}
		if !ask(&pb.Register{UserId: id.UserID, Binding: b, Expires: int32(exp)}) {
			return
		}
	}
	if last == nil {
		// A query (no Contact): list the bindings.
		bindings, err := e.cfg.Lines.Contacts(id.UserID)
		if err != nil {
			e.cfg.Log.Warn("sip: registration query failed", "user", id.UserID, "err", err)
			e.respond(req, tx, 500, "Server Internal Error", nil)
			return
		}
		last = &pb.RegisterResult{Bindings: bindings}
	}
	now := time.Now().Unix()
	hdrs := []sip.Header{sip.NewHeader("Date", time.Now().UTC().Format(time.RFC1123))}
	for _, b := range last.Bindings {
		hdrs = append(hdrs, sip.NewHeader("Contact", fmt.Sprintf("<%s>;expires=%d", b.Contact, max(b.ExpiresUnix-now, 0))))
	}
	e.respond(req, tx, 200, "OK", nil, hdrs...)
}
