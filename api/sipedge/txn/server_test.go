package txn

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/emiago/sipgo/sip"
)

const branch1 = "z9hG4bK-srv-1"

// invite is the harness's INVITE with branch1.
func (h *harness) invite() []byte {
	return h.raw(request{method: "INVITE", branch: branch1})
}

// newInvite sends an INVITE and returns its server transaction.
func (h *harness) newInvite() received {
	h.t.Helper()
	h.send(h.invite())
	r := h.nextRequest()
	if r.req.Method != sip.INVITE || r.tx == nil {
		h.t.Fatalf("OnRequest got %s with tx %v, want the INVITE with its tx", r.req.StartLine(), r.tx)
	}
	return r
}

// TestServerNewRequest: a new request reaches OnRequest once with its
// transaction; its retransmission does not, and gets a 100 Trying if it is an
// INVITE nothing answered yet (absorbed otherwise).
func TestServerNewRequest(t *testing.T) {
	for _, tc := range []struct {
		method     string
		wantRetran int // what answers the retransmission; 0: nothing
	}{
		{"INVITE", 100},
		{"OPTIONS", 0},
		{"BYE", 0},
		{"REGISTER", 0},
	} {
		t.Run(tc.method, func(t *testing.T) {
			h := newHarness(t)
			msg := h.raw(request{method: tc.method, branch: branch1})
			h.send(msg)
			r := h.nextRequest()
			if string(r.req.Method) != tc.method || r.tx == nil {
				t.Fatalf("OnRequest got %s (tx %v)", r.req.StartLine(), r.tx != nil)
			}
			if s, _ := h.pending(); s != 1 {
				t.Errorf("Pending servers = %d, want 1", s)
			}
			h.send(msg)
			got := h.sync()
			h.noRequest()
			var codes []int
			for _, m := range got {
				res, ok := m.(*sip.Response)
				if !ok {
					t.Fatalf("peer got %s", firstLine(m))
				}
				codes = append(codes, res.StatusCode)
			}
			var want []int
			if tc.wantRetran != 0 {
				want = []int{tc.wantRetran}
			}
			if !slices.Equal(codes, want) {
				t.Errorf("retransmission answered with %v, want %v", codes, want)
			}
		})
	}
}

// TestServerRetransmissionGetsLastProvisional: once the TU has sent a
// provisional, a retransmitted request gets the last one again (with its To
// tag), for INVITE and other requests alike.
func TestServerRetransmissionGetsLastProvisional(t *testing.T) {
	for _, tc := range []struct {
		method string
		sent   []int
	}{
		{"INVITE", []int{100}},
		{"INVITE", []int{180}},
		{"INVITE", []int{100, 180, 183}},
		{"OPTIONS", []int{100}},
	} {
		t.Run(fmt.Sprint(tc.method, tc.sent), func(t *testing.T) {
			h := newHarness(t)
			msg := h.raw(request{method: tc.method, branch: branch1})
			h.send(msg)
			r := h.nextRequest()
			for _, code := range tc.sent {
				tag := "uas-1"
				if code == 100 {
					tag = ""
				}
				respond(t, r.tx, r.req, code, tag)
				h.expectResponse(code)
			}
			last := tc.sent[len(tc.sent)-1]
			for range 2 {
				h.send(msg)
				res := h.expectResponse(last)
				if last != 100 && toTag(res) != "uas-1" {
					t.Errorf("resent %d has To tag %q, want uas-1", last, toTag(res))
				}
			}
			h.quiet()
		})
	}
}

// TestServerInviteRejected: a non-2xx final to an INVITE answers its
// retransmissions and is resent on timer G (T1, 2T1, 4T1… capped at T2)
// until the ACK; the ACK stops it and timer I (T4) forgets the key; with no
// ACK, timer H (64·T1) ends it.
func TestServerInviteRejected(t *testing.T) {
	const t4 = int(T4 / T1) // timer I in multiples of T1
	for _, tc := range []struct {
		name       string
		ackAt      int // the ACK comes at ackAt·T1; -1: never
		wantResent []int
	}{
		{"no ACK", -1, capped},
		{"ACK at once", 0, nil},
		{"ACK after 3·T1", 3, []int{1, 3}},
		{"ACK after 20·T1", 20, []int{1, 3, 7, 15}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.newInvite()
			base := h.clock.Now()
			respond(t, r.tx, r.req, 486, "uas-1")
			h.expectResponse(486)

			// A retransmitted INVITE gets the 486 again, the TU nothing.
			h.send(h.invite())
			if res := h.expectResponse(486); toTag(res) != "uas-1" {
				t.Errorf("resent 486 has To tag %q", toTag(res))
			}
			h.quiet()
			if err := r.tx.Respond(response(r.req, 200, "OK", "")); !errors.Is(err, ErrFinal) {
				t.Errorf("Respond after the final: %v, want ErrFinal", err)
			}

			ack := h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK", toTag: "uas-1"})
			sendAck := func() {
				h.send(ack)
				h.quiet() // the ACK reaches nobody and answers nothing
			}
			if tc.ackAt == 0 {
				sendAck()
			}
			// The key goes with timer I after the ACK, or timer H without.
			goneAt := 64
			if tc.ackAt >= 0 {
				goneAt = tc.ackAt + t4
			}
			var resent []int
			h.walk(base, 1, 64+t4, func(k int, got []sip.Message) {
				for _, m := range got {
					if isResponse(486)(m) {
						resent = append(resent, k)
					} else {
						t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
					}
				}
				if k == tc.ackAt {
					sendAck()
				}
				want := 1
				if k >= goneAt {
					want = 0
				}
				if s, _ := h.pending(); s != want {
					t.Fatalf("at %d·T1: Pending servers = %d, want %d", k, s, want)
				}
			})
			if !slices.Equal(resent, tc.wantResent) {
				t.Errorf("486 resent at %v·T1, want %v", resent, tc.wantResent)
			}
		})
	}
}

// TestServerInviteConfirmedAbsorbs: after the ACK of a non-2xx (Confirmed,
// RFC 3261 17.2.1) retransmissions of the INVITE and of the ACK are absorbed:
// no response, nothing for the TU.
func TestServerInviteConfirmedAbsorbs(t *testing.T) {
	h := newHarness(t)
	r := h.newInvite()
	respond(t, r.tx, r.req, 486, "uas-1")
	h.expectResponse(486)
	ack := h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK", toTag: "uas-1"})
	h.send(ack)
	h.quiet()

	h.send(h.invite())
	h.quiet()

	// "Any ACK received in this state is absorbed" (17.2.1): this one is
	// the same ACK again, for a 486 that made no dialog.
	h.send(ack)
	h.quiet()
}

// TestServerInviteAccepted: a 2xx to an INVITE is resent (T1 doubling to
// T2) until Acked; the INVITE's retransmissions are absorbed meanwhile (RFC
// 6026); unacknowledged for 64·T1, OnNoAck runs once. Either way the key
// goes at 64·T1 after the 2xx (timer L).
func TestServerInviteAccepted(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ackedAt    int // tx.Acked() at ackedAt·T1; 0: never
		wantResent []int
		wantNoAck  int
	}{
		{"never acked", 0, capped, 1},
		{"acked after 7·T1", 7, []int{1, 3, 7}, 0},
		{"acked after 40·T1", 40, []int{1, 3, 7, 15, 23, 31, 39}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.newInvite()
			var noAck atomic.Int32
			r.tx.OnNoAck(func() { noAck.Add(1) })
			base := h.clock.Now()
			respond(t, r.tx, r.req, 200, "uas-1")
			h.expectResponse(200)

			h.send(h.invite())
			h.quiet() // absorbed: the 2xx goes on its own timer only

			var resent []int
			h.walk(base, 1, 80, func(k int, got []sip.Message) {
				for _, m := range got {
					if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 && toTag(res) == "uas-1" {
						resent = append(resent, k)
					} else {
						t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
					}
				}
				if k == tc.ackedAt {
					r.tx.Acked()
					r.tx.Acked() // twice is harmless
				}
				wantNoAck := int32(0)
				if k >= 64 {
					wantNoAck = int32(tc.wantNoAck)
				}
				if n := noAck.Load(); n != wantNoAck {
					t.Fatalf("at %d·T1: OnNoAck ran %d times, want %d", k, n, wantNoAck)
				}
				wantKept := 1
				if k >= 64 {
					wantKept = 0
				}
				if s, _ := h.pending(); s != wantKept {
					t.Fatalf("at %d·T1: Pending servers = %d, want %d", k, s, wantKept)
				}
			})
			if !slices.Equal(resent, tc.wantResent) {
				t.Errorf("2xx resent at %v·T1, want %v", resent, tc.wantResent)
			}
		})
	}
}

// TestServerAckWithoutTransaction: an ACK no transaction takes (a 2xx's,
// with its own branch) reaches OnRequest with a nil tx; so does one reusing
// the INVITE's branch once the 2xx is sent; an ACK that cannot be matched
// (no Via) is dropped.
func TestServerAckWithoutTransaction(t *testing.T) {
	t.Run("new branch", func(t *testing.T) {
		h := newHarness(t)
		h.send(h.raw(request{method: "ACK", branch: "z9hG4bK-ack-2xx", toTag: "uas-1"}))
		r := h.nextRequest()
		if r.req.Method != sip.ACK || r.tx != nil {
			t.Fatalf("OnRequest got %s with tx %v, want the ACK with a nil tx", r.req.StartLine(), r.tx)
		}
		h.quiet()
		if s, _ := h.pending(); s != 0 {
			t.Errorf("an ACK left %d server transactions", s)
		}
	})
	t.Run("the accepted INVITE's branch", func(t *testing.T) {
		h := newHarness(t)
		r := h.newInvite()
		respond(t, r.tx, r.req, 200, "uas-1")
		h.expectResponse(200)
		h.send(h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK", toTag: "uas-1"}))
		ack := h.nextRequest()
		if ack.req.Method != sip.ACK || ack.tx != nil {
			t.Fatalf("OnRequest got %s with tx %v, want the ACK with a nil tx", ack.req.StartLine(), ack.tx)
		}
	})
	t.Run("the INVITE's branch after Acked is absorbed", func(t *testing.T) {
		h := newHarness(t)
		r := h.newInvite()
		respond(t, r.tx, r.req, 200, "uas-1")
		h.expectResponse(200)
		r.tx.Acked() // the dialog has its ACK: a retransmission is nobody's
		h.send(h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK", toTag: "uas-1"}))
		h.quiet()
	})
	t.Run("ACK before any final is dropped", func(t *testing.T) {
		h := newHarness(t)
		h.newInvite()
		h.send(h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK"}))
		h.quiet()
	})
	t.Run("no Via", func(t *testing.T) {
		h := newHarness(t)
		h.send(h.raw(request{method: "ACK", noVia: true}))
		h.quiet()
		if d := h.dropped(); !slices.Equal(d, []string{"invalid_ack"}) {
			t.Errorf("drops %v, want [invalid_ack]", d)
		}
	})
}

// TestServerRespondStateless: an INVITE challenged statelessly gets one
// 407 and nothing more over 64·T1 (no timer G, no 100 Trying), and the
// layer keeps nothing of it: the INVITE sent again is a new request, which
// the user challenges anew with one fresh 407; the 407's ACK finds no
// transaction and reaches the user as a dialog's would.
func TestServerRespondStateless(t *testing.T) {
	h := newHarness(t)
	challenge := func() *sip.Response {
		t.Helper()
		r := h.newInvite()
		if err := r.tx.RespondStateless(response(r.req, 407, "Proxy Authentication Required", "uas-1")); err != nil {
			t.Fatalf("RespondStateless: %v", err)
		}
		if err := r.tx.Respond(response(r.req, 500, "Server Error", "uas-1")); !errors.Is(err, ErrFinal) {
			t.Errorf("Respond after RespondStateless: %v, want ErrFinal", err)
		}
		if s, c := h.pending(); s != 0 || c != 0 {
			t.Errorf("Pending = %d servers, %d clients after the stateless 407, want none", s, c)
		}
		return h.expectResponse(407)
	}
	base := h.clock.Now()
	if res := challenge(); toTag(res) != "uas-1" || branchOf(res) != branch1 {
		t.Errorf("407 with To tag %q and branch %q", toTag(res), branchOf(res))
	}
	if resent := h.timeline(base, 1, 64, isResponse(407)); resent != nil {
		t.Errorf("407 resent at %v·T1, want never", resent)
	}

	challenge() // the INVITE again: a new request, one new 407
	h.quiet()

	h.send(h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK", toTag: "uas-1"}))
	if r := h.nextRequest(); r.req.Method != sip.ACK || r.tx != nil {
		t.Errorf("OnRequest got %s with tx %v, want the ACK without one", r.req.StartLine(), r.tx != nil)
	}
	h.quiet()
	if s, c := h.pending(); s != 0 || c != 0 {
		t.Errorf("Pending = %d servers, %d clients at the end, want none", s, c)
	}
}

// TestServerNonInviteFinal: a final response to a non-INVITE request is
// never resent on its own; it answers the request's retransmissions for
// 64·T1 (timer J), and then the key is forgotten, so the same request is new
// again.
func TestServerNonInviteFinal(t *testing.T) {
	for _, method := range []string{"OPTIONS", "BYE", "CANCEL"} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t)
			msg := h.raw(request{method: method, branch: branch1})
			h.send(msg)
			r := h.nextRequest() // a CANCEL matching nothing goes to the TU too
			base := h.clock.Now()
			respond(t, r.tx, r.req, 200, "uas-1")
			h.expectResponse(200)
			h.send(msg)
			h.expectResponse(200)
			h.noRequest()

			h.walk(base, 1, 63, func(k int, got []sip.Message) {
				for _, m := range got {
					t.Errorf("at %d·T1: unexpected %s", k, firstLine(m))
				}
			})
			h.send(msg) // still within timer J
			h.expectResponse(200)
			h.noRequest()
			if s, _ := h.pending(); s != 1 {
				t.Fatalf("Pending servers = %d before timer J, want 1", s)
			}
			h.walk(base, 64, 64, nil)
			if s, _ := h.pending(); s != 0 {
				t.Fatalf("Pending servers = %d after timer J, want 0", s)
			}
			h.send(msg)
			if again := h.nextRequest(); again.tx == nil || again.tx == r.tx {
				t.Errorf("after timer J the request did not make a new transaction")
			}
		})
	}
}

// TestServerCancel: a CANCEL of a pending INVITE gets 200, the INVITE gets
// 487 (with the To tag of a provisional sent before), and OnCancel runs
// once, whether set before the CANCEL or after it. The TU sees no CANCEL.
func TestServerCancel(t *testing.T) {
	for _, tc := range []struct {
		name          string
		provisional   int // sent before the CANCEL; 0: none
		onCancelFirst bool
	}{
		{"no provisional, OnCancel set before", 0, true},
		{"no provisional, OnCancel set after", 0, false},
		{"after 100, OnCancel set before", 100, true},
		{"after 180, OnCancel set before", 180, true},
		{"after 180, OnCancel set after", 180, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			r := h.newInvite()
			wantTag := ""
			if tc.provisional != 0 {
				if tc.provisional != 100 {
					wantTag = "uas-1"
				}
				respond(t, r.tx, r.req, tc.provisional, wantTag)
				h.expectResponse(tc.provisional)
			}
			var cancels atomic.Int32
			onCancel := func() { cancels.Add(1) }
			if tc.onCancelFirst {
				r.tx.OnCancel(onCancel)
			}

			cancel := h.raw(request{method: "CANCEL", branch: branch1})
			h.send(cancel)
			ok := h.expectResponse(200)
			if c := ok.CSeq(); c == nil || c.MethodName != sip.CANCEL {
				t.Errorf("the 200 is not the CANCEL's: CSeq %v", c)
			}
			terminated := h.expectResponse(487)
			if c := terminated.CSeq(); c == nil || c.MethodName != sip.INVITE {
				t.Errorf("the 487 is not the INVITE's: CSeq %v", c)
			}
			if got := toTag(terminated); wantTag != "" && got != wantTag || got == "" {
				t.Errorf("487 has To tag %q, want %q (any if none was sent)", got, wantTag)
			}
			h.quiet() // the CANCEL did not reach the TU

			if !tc.onCancelFirst {
				r.tx.OnCancel(onCancel) // runs at once: the CANCEL came already
			}
			if n := cancels.Load(); n != 1 {
				t.Errorf("OnCancel ran %d times, want once", n)
			}
			if err := r.tx.Respond(response(r.req, 200, "OK", "")); !errors.Is(err, ErrFinal) {
				t.Errorf("Respond after the 487: %v, want ErrFinal", err)
			}

			// The CANCEL's retransmission gets its 200; the INVITE's, the 487.
			h.send(cancel)
			h.expectResponse(200)
			h.send(h.invite())
			h.expectResponse(487)
			h.quiet()

			// The 487 waits for its ACK like any non-2xx.
			h.send(h.raw(request{method: "ACK", branch: branch1, cseqMethod: "ACK", toTag: toTag(terminated)}))
			h.quiet()
			h.walk(h.clock.Now(), 1, 64, func(k int, got []sip.Message) {
				for _, m := range got {
					t.Errorf("at %d·T1 after the ACK: unexpected %s", k, firstLine(m))
				}
			})
			if s, _ := h.pending(); s != 0 {
				t.Errorf("Pending servers = %d at the end, want 0", s)
			}
			if n := cancels.Load(); n != 1 {
				t.Errorf("OnCancel ran %d times in all, want once", n)
			}
		})
	}
}

// TestServerCancelAfterFinal: a CANCEL that comes after the INVITE's final
// response gets its 200 and changes nothing (RFC 3261 9.2).
func TestServerCancelAfterFinal(t *testing.T) {
	h := newHarness(t)
	r := h.newInvite()
	var cancels atomic.Int32
	r.tx.OnCancel(func() { cancels.Add(1) })
	respond(t, r.tx, r.req, 200, "uas-1")
	h.expectResponse(200)
	h.send(h.raw(request{method: "CANCEL", branch: branch1}))
	h.expectResponse(200)
	h.quiet()
	if n := cancels.Load(); n != 0 {
		t.Errorf("OnCancel ran %d times after a final, want never", n)
	}
}

// TestServerCancelUnmatched: a CANCEL that matches no INVITE reaches the TU
// with its own transaction (to answer 481).
func TestServerCancelUnmatched(t *testing.T) {
	h := newHarness(t)
	cancel := h.raw(request{method: "CANCEL", branch: "z9hG4bK-nothing"})
	h.send(cancel)
	r := h.nextRequest()
	if r.req.Method != sip.CANCEL || r.tx == nil {
		t.Fatalf("OnRequest got %s with tx %v, want the CANCEL with a tx", r.req.StartLine(), r.tx)
	}
	respond(t, r.tx, r.req, 481, "")
	h.expectResponse(481)
	h.send(cancel)
	h.expectResponse(481)
	h.quiet()
}

// TestServerResponseRouting: over UDP a response goes to the request's
// source IP and its Via's port; with rport (RFC 3581), to the source port.
func TestServerResponseRouting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rport bool
	}{
		{"Via port", false},
		{"rport", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			// The request leaves from h.peer but its Via names other's port.
			other := listenUDP(t)
			defer other.Close()
			h.send(h.raw(request{method: "OPTIONS", branch: branch1, rport: tc.rport, viaPort: int(addrOf(other).Port())}))
			r := h.nextRequest()
			respond(t, r.tx, r.req, 200, "uas-1")

			at, not := other, h.peer
			if tc.rport {
				at, not = h.peer, other
			}
			res, ok := h.readFrom(at, expectWait).(*sip.Response)
			if !ok || res.StatusCode != 200 {
				t.Fatalf("the 200 did not arrive where it should")
			}
			// A probe from the other socket shows nothing reached it.
			for _, m := range h.syncFrom(not) {
				t.Errorf("the wrong socket got %s", firstLine(m))
			}
			if tc.rport {
				// RFC 3581: the Via says where the request came from.
				via := res.Via()
				rport, _ := via.Params.Get("rport")
				if rport != strconv.Itoa(int(addrOf(h.peer).Port())) {
					t.Errorf("response Via rport = %q, want the source port %d", rport, addrOf(h.peer).Port())
				}
			}
		})
	}
}

// TestResponsePeer: where responses go, from the request's source, Via and
// transport; a Via port that is no UDP port is refused rather than folded
// into 16 bits.
func TestResponsePeer(t *testing.T) {
	src := "192.0.2.7:40000"
	for _, tc := range []struct {
		name    string
		via     string // the Via's value; "" for none
		want    string
		wantErr bool
	}{
		{"Via port", "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1", "192.0.2.7:5070", false},
		{"Via host ignored", "SIP/2.0/UDP 198.51.100.1:5070;branch=z9hG4bK1", "192.0.2.7:5070", false},
		{"no port is 5060", "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1", "192.0.2.7:5060", false},
		{"rport", "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1;rport", src, false},
		{"no Via", "", src, false},
		{"port 65536", "SIP/2.0/UDP 192.0.2.7:65536;branch=z9hG4bK1", "", true},
		{"port 70000", "SIP/2.0/UDP 192.0.2.7:70000;branch=z9hG4bK1", "", true},
		{"negative port", "SIP/2.0/UDP 192.0.2.7:-1;branch=z9hG4bK1", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "OPTIONS sip:bob@192.0.2.1 SIP/2.0\r\n"
			if tc.via != "" {
				raw += "Via: " + tc.via + "\r\n"
			}
			raw += "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
			m, err := sip.ParseMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			req := m.(*sip.Request)
			req.SetTransport("UDP")
			req.SetSource(src)
			p, err := responsePeer(req)
			if tc.wantErr {
				if err == nil {
					t.Errorf("responsePeer = %v, want an error for a port outside 1–65535", p.addr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.network != "UDP" || p.addr != netip.MustParseAddrPort(tc.want) {
				t.Errorf("responsePeer = %s %v, want UDP %s", p.network, p.addr, tc.want)
			}
		})
	}
}

// TestServerDrops: what the layer drops, and why; a keepalive is not a drop.
func TestServerDrops(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		want []string
	}{
		{"keepalive", "\r\n\r\n", nil},
		{"garbage", "hello\r\n\r\n", []string{"unparseable"}},
		{"stray response", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-none\r\n" +
			"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			[]string{"stray_response"}},
		{"response without CSeq", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK-none\r\n" +
			"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n",
			[]string{"invalid_response"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.send([]byte(tc.msg))
			h.quiet()
			if d := h.dropped(); !slices.Equal(d, tc.want) {
				t.Errorf("drops %v, want %v", d, tc.want)
			}
		})
	}
}

// TestServerUnkeyedRequest: a request with no Via cannot be matched; the TU
// still gets it (to refuse it) and the layer keeps nothing. (The harness's
// probes rely on this.)
func TestServerUnkeyedRequest(t *testing.T) {
	h := newHarness(t)
	h.send(h.raw(request{method: "INVITE", noVia: true}))
	r := h.nextRequest()
	if r.tx == nil {
		t.Fatal("no tx for an unkeyed request")
	}
	respond(t, r.tx, r.req, 400, "")
	h.expectResponse(400)
	if s, _ := h.pending(); s != 0 {
		t.Errorf("Pending servers = %d, want 0", s)
	}
}

// TestServerRFC2543Key: requests without the magic cookie match on
// Call-ID, From tag, CSeq and sent-by.
func TestServerRFC2543Key(t *testing.T) {
	h := newHarness(t)
	old := h.raw(request{method: "INVITE", branch: "1234"})
	h.send(old)
	r := h.nextRequest()
	h.send(old)
	h.expectResponse(100)
	// Same everything but the CSeq: another transaction.
	h.send(h.raw(request{method: "INVITE", branch: "1234", cseq: 2}))
	if next := h.nextRequest(); next.tx == r.tx {
		t.Error("a new CSeq matched the old transaction")
	}
	h.quiet()
}

// TestServerRespondSendFailure: when a final response cannot be sent, the
// transaction must not stay forever (RFC 3261 17.2.4: on a transport error
// the server transaction informs the TU and MUST move to Terminated). Here
// the layer has no UDP socket, so every send fails; the TU learns it from
// Respond's error, and nothing else will ever end the transaction.
func TestServerRespondSendFailure(t *testing.T) {
	for _, tc := range []struct {
		method string
		code   int
	}{
		{"OPTIONS", 200},
		{"INVITE", 486},
		{"INVITE", 200},
	} {
		t.Run(fmt.Sprint(tc.method, " ", tc.code), func(t *testing.T) {
			clock := newFakeClock()
			var got received
			l := New(Config{Host: "127.0.0.1", Port: 5060, Now: clock.Now,
				OnRequest: func(req *sip.Request, tx *ServerTx) { got = received{req, tx} }})
			defer l.Close()
			// No ServeUDP: feed the datagram as its reader would.
			feedUDP(l, []byte(tc.method+" sip:bob@127.0.0.1 SIP/2.0\r\n"+
				"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-fail\r\n"+
				"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 "+tc.method+"\r\n"+
				"Content-Length: 0\r\n\r\n"), netip.MustParseAddrPort("127.0.0.1:5070"))
			if got.tx == nil {
				t.Fatal("OnRequest got nothing")
			}
			if err := got.tx.Respond(response(got.req, tc.code, "x", "uas-1")); err == nil {
				t.Fatal("Respond succeeded with no socket")
			}
			for range int(2 * linger / wheelTick) {
				clock.add(wheelTick)
				l.advance()
			}
			if s, _ := l.Pending(); s != 0 {
				t.Errorf("Pending servers = %d 128·T1 after a final that could not be sent, want 0", s)
			}
		})
	}
}

// TestServerTrying: an INVITE the user has not answered within 200 ms gets a
// 100 Trying from the layer (RFC 3261 17.2.1); one answered sooner does not.
func TestServerTrying(t *testing.T) {
	for _, answered := range []bool{false, true} {
		t.Run(fmt.Sprint("answered before 200 ms: ", answered), func(t *testing.T) {
			h := newHarness(t)
			r := h.newInvite()
			base := h.clock.Now()
			if answered {
				respond(t, r.tx, r.req, 180, "uas-1")
				h.expectResponse(180)
			}
			h.elapseTo(base.Add(trying - wheelTick))
			h.quiet()
			h.elapseTo(base.Add(trying + wheelTick))
			if answered {
				h.quiet()
				return
			}
			h.expectResponse(100)
			h.elapseTo(base.Add(2 * trying))
			h.quiet() // once
		})
	}
}

// TestServerCancelTag: the To tag the user named with SetTag is the one the
// CANCEL's 200 and the INVITE's 487 carry, though no response was sent yet.
func TestServerCancelTag(t *testing.T) {
	h := newHarness(t)
	r := h.newInvite()
	r.tx.SetTag("leg-tag")
	h.send(h.raw(request{method: "CANCEL", branch: branch1}))
	if got := toTag(h.expectResponse(200)); got != "leg-tag" {
		t.Errorf("the CANCEL's 200 has To tag %q, want the INVITE's", got)
	}
	if got := toTag(h.expectResponse(487)); got != "leg-tag" {
		t.Errorf("the 487 has To tag %q, want leg-tag", got)
	}
}

// TestServerProvisionalSendFailure: a provisional that cannot be sent leaves
// the INVITE's transaction in place (its retransmissions must not start a
// second call); the final that cannot be sent ends it.
func TestServerProvisionalSendFailure(t *testing.T) {
	clock := newFakeClock()
	var reqs int
	var got received
	l := New(Config{Host: "127.0.0.1", Port: 5060, Now: clock.Now,
		OnRequest: func(req *sip.Request, tx *ServerTx) { reqs++; got = received{req, tx} }})
	defer l.Close()
	invite := []byte("INVITE sip:bob@127.0.0.1 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-prov\r\n" +
		"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n" +
		"Content-Length: 0\r\n\r\n")
	src := netip.MustParseAddrPort("127.0.0.1:5070")
	feedUDP(l, invite, src)
	if err := got.tx.Respond(response(got.req, 180, "Ringing", "uas-1")); err == nil {
		t.Fatal("Respond succeeded with no socket")
	}
	feedUDP(l, invite, src)
	if reqs != 1 {
		t.Fatalf("the INVITE reached the user %d times, want once", reqs)
	}
	if err := got.tx.Respond(response(got.req, 486, "Busy Here", "uas-1")); err == nil {
		t.Fatal("Respond succeeded with no socket")
	}
	if s, _ := l.Pending(); s != 0 {
		t.Errorf("Pending servers = %d after a final that could not be sent, want 0", s)
	}
}
