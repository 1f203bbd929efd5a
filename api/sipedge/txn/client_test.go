package txn

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// got records what a client transaction hands its onResponse, and when.
type got struct {
	mu    sync.Mutex
	clock *fakeClock
	codes []int
	at    []time.Time
}

func (g *got) onResponse(res *sip.Response) {
	g.mu.Lock()
	g.codes = append(g.codes, res.StatusCode)
	g.at = append(g.at, g.clock.Now())
	g.mu.Unlock()
}

func (g *got) list() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.codes)
}

func (g *got) when(i int) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.at[i]
}

// newRequest is a request of the TU to the peer, as Request takes it.
func (h *harness) newRequest(method sip.RequestMethod) *sip.Request {
	peer := addrOf(h.peer)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: int(peer.Port())})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", "alice-1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}, Params: sip.NewParams()})
	cid := sip.CallIDHeader("call-out-1")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	req.SetDestination(peer.String())
	return req
}

// start sends a request of method in a new client transaction and returns
// it, what its onResponse got, and the request as the peer read it.
func (h *harness) start(method sip.RequestMethod) (*ClientTx, *got, *sip.Request) {
	h.t.Helper()
	g := &got{clock: h.clock}
	tx, err := h.l.Request(h.newRequest(method), g.onResponse)
	if err != nil {
		h.t.Fatalf("Request %s: %v", method, err)
	}
	return tx, g, h.expectRequest(method)
}

// answer sends the peer's response to req (as the peer read it).
func (h *harness) answer(req *sip.Request, code int, toTag string) {
	h.t.Helper()
	h.send(wire(response(req, code, fmt.Sprintf("Status %d", code), toTag)))
}

// TestClientRequestVia: Request puts a Via of ours on top, with a new RFC
// 3261 branch and rport, and a Max-Forwards.
func TestClientRequestVia(t *testing.T) {
	h := newHarness(t)
	branches := map[string]bool{}
	for _, method := range []sip.RequestMethod{sip.INVITE, sip.OPTIONS, sip.BYE} {
		_, _, req := h.start(method)
		via := req.Via()
		if via == nil {
			t.Fatalf("%s: no Via", method)
		}
		if via.Transport != "UDP" || via.Host != "127.0.0.1" || via.Port != int(h.addr.Port()) {
			t.Errorf("%s: Via %s, want UDP 127.0.0.1:%d", method, via.Value(), h.addr.Port())
		}
		branch, _ := via.Params.Get("branch")
		if !strings.HasPrefix(branch, magicCookie) || len(branch) <= len(magicCookie)+8 {
			t.Errorf("%s: branch %q is no RFC 3261 branch", method, branch)
		}
		if branches[branch] {
			t.Errorf("%s: branch %q used twice", method, branch)
		}
		branches[branch] = true
		if !via.Params.Has("rport") {
			t.Errorf("%s: Via %s has no rport", method, via.Value())
		}
		if n := len(req.GetHeaders("Via")); n != 1 {
			t.Errorf("%s: %d Vias, want 1", method, n)
		}
		if mf := req.MaxForwards(); mf == nil || *mf != 70 {
			t.Errorf("%s: Max-Forwards %v, want 70", method, mf)
		}
	}
	if _, c := h.pending(); c != 3 {
		t.Errorf("Pending clients = %d, want 3", c)
	}
}

// TestClientRetransmissions: over UDP a request is resent on timer A
// (INVITE: doubling) or E (others: doubling up to T2) until, at 64·T1, a 408
// of the layer's own reaches onResponse exactly once.
func TestClientRetransmissions(t *testing.T) {
	for _, tc := range []struct {
		method sip.RequestMethod
		want   []int
	}{
		{sip.INVITE, doubling},
		{sip.OPTIONS, capped},
		{sip.BYE, capped},
		{sip.REGISTER, capped},
	} {
		t.Run(string(tc.method), func(t *testing.T) {
			h := newHarness(t)
			base := h.clock.Now()
			_, g, first := h.start(tc.method)
			var resent []int
			h.walk(base, 1, 80, func(k int, msgs []sip.Message) {
				for _, m := range msgs {
					req, ok := m.(*sip.Request)
					if !ok || req.Method != tc.method || branchOf(req) != branchOf(first) {
						t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
						continue
					}
					resent = append(resent, k)
				}
				want := []int(nil)
				if k >= 64 {
					want = []int{408}
				}
				if codes := g.list(); !slices.Equal(codes, want) {
					t.Fatalf("at %d·T1: onResponse got %v, want %v", k, codes, want)
				}
				wantKept := 1
				if k >= 64 {
					wantKept = 0
				}
				if _, c := h.pending(); c != wantKept {
					t.Fatalf("at %d·T1: Pending clients = %d, want %d", k, c, wantKept)
				}
			})
			if !slices.Equal(resent, tc.want) {
				t.Errorf("resent at %v·T1, want %v", resent, tc.want)
			}
			if at := g.when(0); !at.Equal(base.Add(linger)) {
				t.Errorf("408 at %v, want at 64·T1", at.Sub(base))
			}
		})
	}
}

// TestClientProvisional: a provisional stops an INVITE's retransmissions
// (and, Proceeding having no timer, no 408 comes); a non-INVITE goes on
// being resent every T2 until its 408.
func TestClientProvisional(t *testing.T) {
	for _, tc := range []struct {
		method    sip.RequestMethod
		wantSent  []int
		wantCodes []int
	}{
		{sip.INVITE, nil, []int{180}},
		{sip.OPTIONS, []int{1, 9, 17, 25, 33, 41, 49, 57}, []int{180, 408}},
	} {
		t.Run(string(tc.method), func(t *testing.T) {
			h := newHarness(t)
			base := h.clock.Now()
			_, g, req := h.start(tc.method)
			h.answer(req, 180, "uas-1")
			h.quiet()
			if codes := g.list(); !slices.Equal(codes, []int{180}) {
				t.Fatalf("onResponse got %v, want [180]", codes)
			}
			sent := h.timeline(base, 1, 80, isRequest(tc.method))
			if !slices.Equal(sent, tc.wantSent) {
				t.Errorf("resent at %v·T1, want %v", sent, tc.wantSent)
			}
			if codes := g.list(); !slices.Equal(codes, tc.wantCodes) {
				t.Errorf("onResponse got %v, want %v", codes, tc.wantCodes)
			}
		})
	}
}

// TestClientNonInviteFinal: a final response ends a non-INVITE at once:
// it reaches onResponse once, nothing is resent, the 408 never comes.
func TestClientNonInviteFinal(t *testing.T) {
	h := newHarness(t)
	base := h.clock.Now()
	_, g, req := h.start(sip.OPTIONS)
	h.answer(req, 200, "uas-1")
	h.quiet()
	if _, c := h.pending(); c != 0 {
		t.Errorf("Pending clients = %d after the final, want 0", c)
	}
	h.answer(req, 200, "uas-1") // retransmitted: nobody's
	h.quiet()
	if sent := h.timeline(base, 1, 70, isRequest(sip.OPTIONS)); sent != nil {
		t.Errorf("resent at %v·T1 after the final", sent)
	}
	if codes := g.list(); !slices.Equal(codes, []int{200}) {
		t.Errorf("onResponse got %v, want [200]", codes)
	}
	if len(h.strays) != 0 {
		t.Errorf("a non-INVITE response went to Config.OnResponse")
	}
}

// checkAck: ack is the layer's ACK of a non-2xx to inv (RFC 3261 17.1.1.3):
// the INVITE's Request-URI, Call-ID, From and top Via (so its branch), the
// response's To (so its tag), CSeq number with method ACK.
func checkAck(t *testing.T, ack, inv *sip.Request, toTag string) {
	t.Helper()
	if ack.Recipient.String() != inv.Recipient.String() {
		t.Errorf("ACK Request-URI %s, want %s", ack.Recipient.String(), inv.Recipient.String())
	}
	if branchOf(ack) != branchOf(inv) || ack.Via().Value() != inv.Via().Value() {
		t.Errorf("ACK Via %q, want the INVITE's %q", ack.Via().Value(), inv.Via().Value())
	}
	if n := len(ack.GetHeaders("Via")); n != 1 {
		t.Errorf("ACK has %d Vias, want 1", n)
	}
	if c := ack.CSeq(); c == nil || c.MethodName != sip.ACK || c.SeqNo != inv.CSeq().SeqNo {
		t.Errorf("ACK CSeq %v, want %d ACK", c, inv.CSeq().SeqNo)
	}
	if ack.CallID().Value() != inv.CallID().Value() || ack.From().Value() != inv.From().Value() {
		t.Errorf("ACK Call-ID/From %s / %s differ from the INVITE's", ack.CallID().Value(), ack.From().Value())
	}
	if got, _ := ack.To().Params.Get("tag"); got != toTag {
		t.Errorf("ACK To tag %q, want the response's %q", got, toTag)
	}
}

// TestClientInviteRejected: the layer ACKs a non-2xx final; the final
// reaches onResponse once, and its retransmissions get the ACK again (timer
// D, 64·T1 over UDP) without reaching onResponse.
func TestClientInviteRejected(t *testing.T) {
	for _, code := range []int{486, 603, 302} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			h := newHarness(t)
			_, g, inv := h.start(sip.INVITE)
			h.answer(inv, 180, "uas-1")
			h.quiet()
			base := h.clock.Now()
			h.answer(inv, code, "uas-1")
			checkAck(t, h.expectRequest(sip.ACK), inv, "uas-1")
			h.quiet()
			for range 2 {
				h.answer(inv, code, "uas-1") // our ACK was lost
				checkAck(t, h.expectRequest(sip.ACK), inv, "uas-1")
			}
			h.quiet()
			if codes := g.list(); !slices.Equal(codes, []int{180, code}) {
				t.Errorf("onResponse got %v, want [180 %d]", codes, code)
			}

			// Nothing is resent meanwhile; the tx lasts until timer D.
			h.walk(base, 1, 64, func(k int, msgs []sip.Message) {
				for _, m := range msgs {
					t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
				}
				want := 1
				if k >= 64 {
					want = 0
				}
				if _, c := h.pending(); c != want {
					t.Fatalf("at %d·T1: Pending clients = %d, want %d", k, c, want)
				}
			})
			// Past timer D a late final gets no ACK and is dropped.
			h.answer(inv, code, "uas-1")
			h.quiet()
			if d := h.dropped(); !slices.Equal(d, []string{"stray_response"}) {
				t.Errorf("drops %v, want [stray_response]", d)
			}
			if codes := g.list(); len(codes) != 2 {
				t.Errorf("onResponse got %v, want [180 %d] (no 408)", codes, code)
			}
		})
	}
}

// TestClientInviteRejectedWithoutProvisional: a final in Calling stops timer
// A as well.
func TestClientInviteRejectedWithoutProvisional(t *testing.T) {
	h := newHarness(t)
	base := h.clock.Now()
	_, g, inv := h.start(sip.INVITE)
	h.answer(inv, 486, "uas-1")
	checkAck(t, h.expectRequest(sip.ACK), inv, "uas-1")
	if sent := h.timeline(base, 1, 70, isRequest(sip.INVITE)); sent != nil {
		t.Errorf("INVITE resent at %v·T1 after its final", sent)
	}
	if codes := g.list(); !slices.Equal(codes, []int{486}) {
		t.Errorf("onResponse got %v, want [486]", codes)
	}
}

// TestClientInviteAccepted: a 2xx reaches onResponse and ends the
// transaction (RFC 6026: the TU ACKs it, the layer does not); its
// retransmissions go to Config.OnResponse, each of them.
func TestClientInviteAccepted(t *testing.T) {
	h := newHarness(t)
	base := h.clock.Now()
	_, g, inv := h.start(sip.INVITE)
	h.answer(inv, 200, "uas-1")
	h.quiet() // no ACK from the layer
	if _, c := h.pending(); c != 0 {
		t.Errorf("Pending clients = %d after a 2xx, want 0", c)
	}
	for range 2 {
		h.answer(inv, 200, "uas-1")
		select {
		case res := <-h.strays:
			if res.StatusCode != 200 || toTag(res) != "uas-1" {
				t.Errorf("Config.OnResponse got %d tag %q", res.StatusCode, toTag(res))
			}
		case <-time.After(expectWait):
			t.Fatal("a retransmitted 2xx did not reach Config.OnResponse")
		}
	}
	h.quiet()
	if sent := h.timeline(base, 1, 70, isRequest(sip.INVITE)); sent != nil {
		t.Errorf("INVITE resent at %v·T1 after its 2xx", sent)
	}
	if codes := g.list(); !slices.Equal(codes, []int{200}) {
		t.Errorf("onResponse got %v, want [200] (no 408, no retransmission)", codes)
	}
	if len(h.strays) != 0 {
		t.Errorf("Config.OnResponse got more")
	}
}

// checkCancel: c is a CANCEL of inv (RFC 3261 9.1): same Request-URI, Call-ID,
// From, To and top Via (branch), CSeq number with method CANCEL.
func checkCancel(t *testing.T, c, inv *sip.Request) {
	t.Helper()
	if c.Recipient.String() != inv.Recipient.String() {
		t.Errorf("CANCEL Request-URI %s, want %s", c.Recipient.String(), inv.Recipient.String())
	}
	if branchOf(c) != branchOf(inv) || c.Via().Value() != inv.Via().Value() {
		t.Errorf("CANCEL Via %q, want the INVITE's %q", c.Via().Value(), inv.Via().Value())
	}
	if cs := c.CSeq(); cs == nil || cs.MethodName != sip.CANCEL || cs.SeqNo != inv.CSeq().SeqNo {
		t.Errorf("CANCEL CSeq %v, want %d CANCEL", cs, inv.CSeq().SeqNo)
	}
	if c.CallID().Value() != inv.CallID().Value() || c.From().Value() != inv.From().Value() || c.To().Value() != inv.To().Value() {
		t.Errorf("CANCEL Call-ID/From/To differ from the INVITE's")
	}
}

// TestClientCancel: Cancel before any provisional waits for one (the INVITE
// goes on being resent meanwhile) and sends the CANCEL when it comes; Cancel
// after one sends it at once. Either way it goes once, its 200 stays with its
// own transaction, and the INVITE's 487 reaches onResponse and is ACKed.
func TestClientCancel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool // Cancel before the first provisional
	}{
		{"before a provisional", true},
		{"after a provisional", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			base := h.clock.Now()
			tx, g, inv := h.start(sip.INVITE)
			if tc.before {
				tx.Cancel()
				h.quiet() // no CANCEL before a provisional (RFC 3261 9.1)
				// Timer A runs on.
				if sent := h.timeline(base, 1, 3, isRequest(sip.INVITE)); !slices.Equal(sent, []int{1, 3}) {
					t.Errorf("INVITE resent at %v·T1 while the CANCEL waits, want [1 3]", sent)
				}
				h.answer(inv, 180, "uas-1")
			} else {
				h.answer(inv, 180, "uas-1")
				h.quiet()
				tx.Cancel()
			}
			c := h.expectRequest(sip.CANCEL)
			checkCancel(t, c, inv)
			tx.Cancel() // again: nothing more
			h.quiet()
			if _, n := h.pending(); n != 2 {
				t.Errorf("Pending clients = %d, want 2 (INVITE and CANCEL)", n)
			}

			h.answer(c, 200, "uas-1")
			h.quiet()
			if _, n := h.pending(); n != 1 {
				t.Errorf("Pending clients = %d after the CANCEL's 200, want 1", n)
			}
			h.answer(inv, 487, "uas-1")
			checkAck(t, h.expectRequest(sip.ACK), inv, "uas-1")
			h.quiet()
			if codes := g.list(); !slices.Equal(codes, []int{180, 487}) {
				t.Errorf("onResponse got %v, want [180 487]", codes)
			}
		})
	}
}

// TestClientCancelUnanswered: when the INVITE's final does not come within
// 64·T1 of the CANCEL, onResponse gets a 408 once; the CANCEL itself is
// resent on timer E meanwhile.
func TestClientCancelUnanswered(t *testing.T) {
	h := newHarness(t)
	tx, g, inv := h.start(sip.INVITE)
	h.answer(inv, 180, "uas-1")
	h.quiet()
	h.elapseTo(h.clock.Now().Add(10 * T1)) // ringing for a while
	base := h.clock.Now()
	tx.Cancel()
	checkCancel(t, h.expectRequest(sip.CANCEL), inv)
	var resent []int
	h.walk(base, 1, 80, func(k int, msgs []sip.Message) {
		for _, m := range msgs {
			if isRequest(sip.CANCEL)(m) {
				resent = append(resent, k)
			} else {
				t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
			}
		}
		want := []int{180}
		if k >= 64 {
			want = []int{180, 408}
		}
		if codes := g.list(); !slices.Equal(codes, want) {
			t.Fatalf("at %d·T1: onResponse got %v, want %v", k, codes, want)
		}
	})
	if !slices.Equal(resent, capped) {
		t.Errorf("CANCEL resent at %v·T1, want %v", resent, capped)
	}
	if _, n := h.pending(); n != 0 {
		t.Errorf("Pending clients = %d at the end, want 0", n)
	}
}

// TestClientCancelNoop: Cancel does nothing to a non-INVITE, nor to an
// INVITE that has its final.
func TestClientCancelNoop(t *testing.T) {
	h := newHarness(t)
	tx, _, _ := h.start(sip.OPTIONS)
	tx.Cancel()
	h.quiet()

	tx, _, inv := h.start(sip.INVITE)
	h.answer(inv, 486, "uas-1")
	h.expectRequest(sip.ACK)
	tx.Cancel()
	h.quiet()

	tx, _, inv = h.start(sip.INVITE)
	h.answer(inv, 200, "uas-1")
	h.quiet()
	tx.Cancel()
	h.quiet()
}

// TestLayerSend: Send puts a request on the wire outside any transaction
// (the ACK of a 2xx): the first time with a Via of ours, then unchanged; it
// is never resent and no transaction is kept.
func TestLayerSend(t *testing.T) {
	h := newHarness(t)
	base := h.clock.Now()
	ack := h.newRequest(sip.ACK)
	if err := h.l.Send(ack); err != nil {
		t.Fatalf("Send: %v", err)
	}
	first := h.expectRequest(sip.ACK)
	via := first.Via()
	if via == nil || via.Host != "127.0.0.1" || via.Port != int(h.addr.Port()) ||
		!strings.HasPrefix(branchOf(first), magicCookie) || !via.Params.Has("rport") {
		t.Fatalf("Via %v, want ours with a branch and rport", via)
	}
	if err := h.l.Send(ack); err != nil {
		t.Fatalf("Send again: %v", err)
	}
	again := h.expectRequest(sip.ACK)
	if n := len(again.GetHeaders("Via")); n != 1 || again.Via().Value() != via.Value() {
		t.Errorf("resent with Vias %v, want the first one only", again.GetHeaders("Via"))
	}
	if _, c := h.pending(); c != 0 {
		t.Errorf("Pending clients = %d, want 0", c)
	}
	if sent := h.timeline(base, 1, 70, isRequest(sip.ACK)); sent != nil {
		t.Errorf("resent by the layer at %v·T1", sent)
	}
}

// TestLayerRealClock: without Config.Now the layer runs its own wheel: a
// request to a silent peer is resent after about T1.
func TestLayerRealClock(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Now = nil })
	start := time.Now()
	_, _, first := h.start(sip.OPTIONS)
	again, ok := h.readFrom(h.peer, 2*time.Second).(*sip.Request)
	if !ok || branchOf(again) != branchOf(first) {
		t.Fatalf("no retransmission within 2 s")
	}
	if d := time.Since(start); d < T1-wheelTick {
		t.Errorf("resent after %v, before T1", d)
	}
}
