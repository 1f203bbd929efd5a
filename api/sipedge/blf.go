package sipedge

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/api/sipedge/txn"
)

// Busy lamp fields: SUBSCRIBE with Event: dialog (RFC 6665, RFC 4235) to a
// line by extension or user id. The line grain knows the line's calls; the
// edge keeps the subscription dialogs it accepted and sends their NOTIFYs.
// Any user of the system may watch any line (a receptionist's lamps), as
// desk phones expect.

// BLF subscription limits.
const (
	blfDefaultExpires = 3600
	blfMinExpires     = 60
	blfMaxExpires     = 3600
)

// LineCall is one call on a line as a lamp shows it.
type LineCall struct {
	ID     string
	State  string // ringing | active | held
	Peer   string
	Locked bool
}

// LineUpdate is a line's calls after a change.
type LineUpdate struct {
	Line  string
	Calls []LineCall
}

type subscription struct {
	mu        sync.Mutex
	id        string // dialog key
	line      string
	entity    string
	callID    string
	localTag  string
	remoteTag string
	local     sip.Uri // the SUBSCRIBE's To: our From
	remote    sip.Uri // the SUBSCRIBE's From: our To
	target    sip.Uri // the subscriber's Contact
	dest      string  // where its SUBSCRIBE came from
	transport string
	contact   *sip.ContactHeader // ours on the SUBSCRIBE's flow
	cseq      uint32
	version   int
	expires   time.Time
	sending   bool       // a NOTIFY is out, not yet answered
	next      *lampState // the newest state waiting for it
}

func eventPackage(req *sip.Request) string {
	h := req.GetHeader("Event")
	if h == nil {
		return ""
	}
	pkg, _, _ := strings.Cut(h.Value(), ";")
	return strings.ToLower(strings.TrimSpace(pkg))
}

func (e *Edge) onSubscribe(req *sip.Request, tx *txn.ServerTx) {
	if eventPackage(req) != "dialog" {
		e.respond(req, tx, 489, "Bad Event", nil, sip.NewHeader("Allow-Events", "dialog"))
		return
	}
	expires := blfDefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.Atoi(strings.TrimSpace(h.Value()))
		if err != nil || n < 0 {
			e.warn(req, tx, 400, "Bad Request", "Expires must be a whole number of seconds")
			return
		}
		expires = n
	}
	if expires > 0 && expires < blfMinExpires {
		e.respond(req, tx, 423, "Interval Too Brief", nil, sip.NewHeader("Min-Expires", strconv.Itoa(blfMinExpires)))
		return
	}
	expires = min(expires, blfMaxExpires)
	if req.To().Params.Has("tag") {
		e.refreshSubscription(req, tx, expires)
		return
	}
	who, ok := e.authenticate(req, tx, true)
	if !ok {
		return
	}
	if who.UserID == "" {
		e.respond(req, tx, 403, "Forbidden", nil)
		return
	}
	lineID, ok := e.cfg.Dir.Line(req.Recipient.User)
	if !ok {
		e.respond(req, tx, 404, "Not Found", nil)
		return
	}
	if !line.MayWatch(who.UserID, lineID) {
		e.respond(req, tx, 403, "Forbidden", nil)
		return
	}
	contact := req.Contact()
	if contact == nil {
		e.warn(req, tx, 400, "Bad Request", "a SUBSCRIBE needs a Contact")
		return
	}
	tag, _ := req.From().Params.Get("tag")
	s := &subscription{
		line: lineID, entity: fmt.Sprintf("sip:%s@%s", req.Recipient.User, e.cfg.Domain), callID: req.CallID().Value(),
		localTag: sip.GenerateTagN(16), remoteTag: tag, local: req.To().Address, remote: req.From().Address,
		target: contact.Address, dest: req.Source(), transport: req.Transport(), cseq: 1, contact: e.contactFor(req),
		expires: time.Now().Add(time.Duration(expires) * time.Second),
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.To().Params.Add("tag", s.localTag)
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res.AppendHeader(s.contact)
	if expires > 0 {
		s.id = dialogKey(s.callID, s.localTag, s.remoteTag)
		e.mu.Lock()
		e.subs[s.id] = s
		e.mu.Unlock()
	}
	if err := tx.Respond(res); err != nil {
		e.dropSubscription(s)
		return
	}
	msgsOut.code(200)
	// RFC 6665: the subscription's first NOTIFY follows the 2xx at once;
	// Expires: 0 is a fetch, answered with one final NOTIFY.
	go e.notifyCurrent(s, expires == 0)
}

func (e *Edge) refreshSubscription(req *sip.Request, tx *txn.ServerTx, expires int) {
	var s *subscription
	if key, ok := requestKey(req); ok {
		e.mu.RLock()
		s = e.subs[key]
		e.mu.RUnlock()
	}
	if s == nil {
		e.respond(req, tx, 481, "Subscription Does Not Exist", nil)
		return
	}
	s.mu.Lock()
	s.expires = time.Now().Add(time.Duration(expires) * time.Second)
	s.mu.Unlock()
	e.respond(req, tx, 200, "OK", nil, sip.NewHeader("Expires", strconv.Itoa(expires)), e.contactFor(req))
	if expires == 0 {
		e.dropSubscription(s)
	}
	go e.notifyCurrent(s, expires == 0)
}

func (e *Edge) dropSubscription(s *subscription) {
	e.mu.Lock()
	if e.subs[s.id] == s {
		delete(e.subs, s.id)
	}
	e.mu.Unlock()
}

// notifyCurrent sends the line's state as the line grain has it.
func (e *Edge) notifyCurrent(s *subscription, final bool) {
	var calls []LineCall
	if e.cfg.LineState != nil {
		var err error
		if calls, err = e.cfg.LineState(s.line); err != nil {
			e.cfg.Log.Warn("sip: line state for a lamp", "line", s.line, "err", err)
		}
	}
	e.notify(s, calls, final)
}

// followLines sends a NOTIFY to every subscription of a line that changed,
// and ends subscriptions that ran out, until ctx ends.
func (e *Edge) followLines(ctx context.Context) {
	var updates <-chan LineUpdate
	if e.cfg.LineUpdates != nil {
		var stop func()
		updates, stop = e.cfg.LineUpdates()
		defer stop()
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			for _, s := range e.subscriptions(u.Line) {
				go e.notify(s, u.Calls, false)
			}
		case now := <-tick.C:
			for _, s := range e.subscriptions("") {
				s.mu.Lock()
				gone := now.After(s.expires)
				s.mu.Unlock()
				if gone {
					e.dropSubscription(s)
					go e.notifyCurrent(s, true)
				}
			}
		}
	}
}

// subscriptions of line ("" for all).
func (e *Edge) subscriptions(line string) []*subscription {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var out []*subscription
	for _, s := range e.subs {
		if line == "" || s.line == line {
			out = append(out, s)
		}
	}
	return out
}

// notify sends the line's state to the subscriber: at once when no NOTIFY
// of the subscription is pending, else after the pending one is answered
// (RFC 6665 4.1.2.1: a subscriber may refuse a NOTIFY that overtakes an
// earlier one). States that queue meanwhile collapse into the newest, which
// holds the full state anyway.
func (e *Edge) notify(s *subscription, calls []LineCall, final bool) {
	s.mu.Lock()
	if s.sending {
		final = final || s.next != nil && s.next.final
		s.next = &lampState{calls: calls, final: final}
		s.mu.Unlock()
		return
	}
	s.sending = true
	s.mu.Unlock()
	e.sendNotify(s, lampState{calls: calls, final: final})
}

// lampState is a NOTIFY waiting for the one before it.
type lampState struct {
	calls []LineCall
	final bool
}

// sendNotify sends one NOTIFY with the full dialog state of the line. A
// subscriber that answers 481, 5xx or not at all loses the subscription.
func (e *Edge) sendNotify(s *subscription, st lampState) {
	s.mu.Lock()
	s.cseq++
	s.version++
	req := sip.NewRequest(sip.NOTIFY, s.target)
	from := &sip.FromHeader{Address: s.local, Params: sip.NewParams()}
	from.Params.Add("tag", s.localTag)
	to := &sip.ToHeader{Address: s.remote, Params: sip.NewParams()}
	to.Params.Add("tag", s.remoteTag)
	callID := sip.CallIDHeader(s.callID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: s.cseq, MethodName: sip.NOTIFY})
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	state := fmt.Sprintf("active;expires=%d", max(int(time.Until(s.expires).Seconds()), 0))
	if st.final {
		state = "terminated;reason=timeout"
	}
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(s.contact)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/dialog-info+xml"))
	req.SetBody(DialogInfo(s.entity, s.version, st.calls))
	req.SetDestination(s.dest)
	req.SetTransport(s.transport)
	s.mu.Unlock()
	msgsOut.method(sip.NOTIFY)
	_, err := e.layer.Request(req, func(res *sip.Response) {
		if res.StatusCode < 200 {
			return
		}
		msgsIn.code(res.StatusCode)
		if res.StatusCode == 481 || res.StatusCode >= 500 || res.StatusCode == 408 {
			e.dropSubscription(s)
		}
		// The answer came on the reader: the next NOTIFY may have to
		// open a connection.
		go e.notifyNext(s)
	})
	if err != nil {
		e.cfg.Log.Debug("sip: notify not sent", "line", s.line, "err", err)
		e.dropSubscription(s)
		e.notifyNext(s)
	}
}

// notifyNext sends the state that waited for the last NOTIFY, if any.
func (e *Edge) notifyNext(s *subscription) {
	s.mu.Lock()
	next := s.next
	s.next = nil
	s.sending = next != nil
	s.mu.Unlock()
	if next != nil {
		e.sendNotify(s, *next)
	}
}

// dialog-info (RFC 4235) as lamps read it. A held call carries the local
// target's +sip.rendering="no" (RFC 4235 section 4.1.6.2 and common phone
// practice); a locked one our own <sb:locked/> element, which other
// readers skip. The dialog id is the call's id: pickups name it.
type dialogInfo struct {
	XMLName xml.Name     `xml:"urn:ietf:params:xml:ns:dialog-info dialog-info"`
	SB      string       `xml:"xmlns:sb,attr"`
	Version int          `xml:"version,attr"`
	State   string       `xml:"state,attr"`
	Entity  string       `xml:"entity,attr"`
	Dialogs []dialogElem `xml:"dialog"`
}

type dialogElem struct {
	ID        string      `xml:"id,attr"`
	CallID    string      `xml:"call-id,attr"`
	Direction string      `xml:"direction,attr"`
	State     string      `xml:"state"`
	Remote    *party      `xml:"remote"`
	Local     *localParty `xml:"local,omitempty"`
	Locked    *struct{}   `xml:"sb:locked,omitempty"`
}

type party struct {
	Identity string `xml:"identity"`
}

type localParty struct {
	Target target `xml:"target"`
}

type target struct {
	URI   string `xml:"uri,attr"`
	Param param  `xml:"param"`
}

type param struct {
	Name  string `xml:"pname,attr"`
	Value string `xml:"pval,attr"`
}

// DialogInfo renders a line's calls as a full dialog-info document.
func DialogInfo(entity string, version int, calls []LineCall) []byte {
	doc := dialogInfo{SB: "urn:switchboard:dialog", Version: version, State: "full", Entity: entity}
	_, domain, _ := strings.Cut(entity, "@")
	for _, c := range calls {
		d := dialogElem{ID: c.ID, CallID: c.ID, Direction: "recipient", State: "confirmed", Remote: &party{Identity: "sip:" + userPart(c.Peer) + "@" + domain}}
		switch c.State {
		case "ringing":
			d.State = "early"
		case "held":
			d.Local = &localParty{Target: target{URI: entity, Param: param{Name: "+sip.rendering", Value: "no"}}}
		}
		if c.Locked {
			d.Locked = &struct{}{}
		}
		doc.Dialogs = append(doc.Dialogs, d)
	}
	b, _ := xml.Marshal(doc)
	return append([]byte(xml.Header), b...)
}
