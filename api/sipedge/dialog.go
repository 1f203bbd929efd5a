package sipedge

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// dialog is what a leg needs to send requests in its dialog (RFC 3261
// 12.1): the remote target, the route set and the two tagged parties. Its
// headers are shared by every request built from it: nothing changes them
// once made.
type dialog struct {
	callID    sip.CallIDHeader
	local     *sip.FromHeader // our party, with our tag
	remote    *sip.ToHeader   // theirs, with their tag
	target    sip.Uri
	routes    []sip.Header // Route headers, in the order they are sent
	cseq      uint32       // the last CSeq we sent
	transport string
}

// dialogKey names a dialog by Call-ID and the local and remote tags.
func dialogKey(callID, localTag, remoteTag string) string {
	return callID + "\x00" + localTag + "\x00" + remoteTag
}

func (d *dialog) key() string {
	lt, _ := d.local.Params.Get("tag")
	rt, _ := d.remote.Params.Get("tag")
	return dialogKey(string(d.callID), lt, rt)
}

// requestKey is the dialog a received request belongs to: its To tag is
// ours.
func requestKey(req *sip.Request) (string, bool) {
	callID, from, to := req.CallID(), req.From(), req.To()
	if callID == nil || from == nil || to == nil {
		return "", false
	}
	lt, ok := to.Params.Get("tag")
	if !ok {
		return "", false
	}
	rt, _ := from.Params.Get("tag")
	return dialogKey(callID.Value(), lt, rt), true
}

// responseKey is the dialog a response to our request belongs to: its From
// tag is ours.
func responseKey(res *sip.Response) (string, bool) {
	callID, from, to := res.CallID(), res.From(), res.To()
	if callID == nil || from == nil || to == nil {
		return "", false
	}
	rt, ok := to.Params.Get("tag")
	if !ok {
		return "", false
	}
	lt, _ := from.Params.Get("tag")
	return dialogKey(callID.Value(), lt, rt), true
}

// uasDialog is the dialog an INVITE we answer with tag creates: its route
// set is the INVITE's Record-Route in order.
func uasDialog(req *sip.Request, tag string) *dialog {
	to := req.To()
	local := &sip.FromHeader{DisplayName: requoteDisplay(to.DisplayName), Address: to.Address, Params: sip.NewParams()}
	local.Params.Add("tag", tag)
	from := req.From()
	remote := &sip.ToHeader{DisplayName: requoteDisplay(from.DisplayName), Address: from.Address, Params: from.Params}
	d := &dialog{callID: sip.CallIDHeader(req.CallID().Value()), local: local, remote: remote,
		target: req.Recipient, transport: req.Transport(), cseq: 1}
	if c := req.Contact(); c != nil {
		d.target = c.Address
	}
	d.routes = routeSet(req.GetHeaders("Record-Route"), false)
	return d
}

// uacDialog is the dialog a 2xx to our INVITE creates: its route set is the
// 2xx's Record-Route reversed.
func uacDialog(inv *sip.Request, res *sip.Response) *dialog {
	to := res.To()
	remote := &sip.ToHeader{DisplayName: requoteDisplay(to.DisplayName), Address: to.Address, Params: to.Params}
	d := &dialog{callID: sip.CallIDHeader(inv.CallID().Value()), local: inv.From(), remote: remote,
		target: inv.Recipient, transport: inv.Transport(), cseq: inv.CSeq().SeqNo}
	if c := res.Contact(); c != nil {
		d.target = c.Address
	}
	d.routes = routeSet(res.GetHeaders("Record-Route"), true)
	return d
}

func routeSet(rr []sip.Header, reverse bool) []sip.Header {
	var out []sip.Header
	for _, h := range rr {
		var uri sip.Uri
		if r, ok := h.(*sip.RecordRouteHeader); ok {
			uri = r.Address
		} else if err := sip.ParseUri(strings.Trim(strings.TrimSpace(h.Value()), "<>"), &uri); err != nil {
			continue
		}
		out = append(out, &sip.RouteHeader{Address: uri})
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// request builds a request in the dialog; an ACK takes the CSeq number of
// the INVITE it acknowledges (the last sent), anything else the next.
func (d *dialog) request(method sip.RequestMethod, contact *sip.ContactHeader) *sip.Request {
	req := sip.NewRequest(method, d.target)
	for _, r := range d.routes {
		req.AppendHeader(r)
	}
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(d.local)
	req.AppendHeader(d.remote)
	req.AppendHeader(&d.callID)
	if method != sip.ACK {
		d.cseq++
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: method})
	if contact != nil && method != sip.BYE {
		req.AppendHeader(contact)
	}
	req.SetBody(nil)
	req.SetTransport(d.transport)
	return req
}
