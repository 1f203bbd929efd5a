package txn

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// The fuzz target's client transactions use these branches, so that a
// fuzzed response can match one.
const (
	fuzzInviteBranch  = "z9hG4bK.fuzz-invite"
	fuzzOptionsBranch = "z9hG4bK.fuzz-options"
)

// feedUDP is what ServeUDP does with a datagram from src, minus the socket.
func feedUDP(l *Layer, data []byte, src netip.AddrPort) {
	if len(bytes.Trim(data, "\r\n\x00")) == 0 {
		return
	}
	msg, err := l.parser.ParseSIP(data)
	if err != nil {
		return
	}
	msg.SetTransport("UDP")
	msg.SetSource(src.String())
	l.handle(msg)
}

// fuzzClient starts a client transaction with a known branch (what Request
// does, but for the random branch) towards dest.
func fuzzClient(t *testing.T, l *Layer, method sip.RequestMethod, branch string, dest netip.AddrPort, onResponse func(*sip.Response)) *ClientTx {
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: int(dest.Port())})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", "alice-1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}, Params: sip.NewParams()})
	cid := sip.CallIDHeader("fuzz-call")
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: method})
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "127.0.0.1", Port: 5060, Params: sip.NewParams()}
	via.Params.Add("branch", branch)
	via.Params.Add("rport", "")
	req.PrependHeader(via)
	req.SetDestination(dest.String())
	p, err := requestPeer(req)
	if err != nil {
		t.Fatalf("peer of %s: %v", method, err)
	}
	tx, err := l.startTo(req, branch, p, onResponse)
	if err != nil {
		t.Fatalf("start %s: %v", method, err)
	}
	return tx
}

func fuzzSeeds() [][2]string {
	req := func(method, branch, cseqMethod, extra string) string {
		return fmt.Sprintf("%s sip:bob@127.0.0.1 SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>%s\r\n"+
			"Call-ID: c1\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n", method, branch, extra, cseqMethod)
	}
	res := func(code int, branch, method string) string {
		return fmt.Sprintf("SIP/2.0 %d Whatever\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=%s;rport=5060;received=127.0.0.1\r\n"+
			"From: <sip:alice@127.0.0.1>;tag=alice-1\r\nTo: <sip:bob@127.0.0.1>;tag=b\r\n"+
			"Call-ID: fuzz-call\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n", code, branch, method)
	}
	return [][2]string{
		{req("INVITE", "z9hG4bK1", "INVITE", ""), req("CANCEL", "z9hG4bK1", "CANCEL", "")},
		{req("INVITE", "z9hG4bK1", "INVITE", ""), req("ACK", "z9hG4bK1", "ACK", ";tag=b")},
		{req("ACK", "z9hG4bK2", "ACK", ";tag=b"), req("BYE", "z9hG4bK3", "BYE", ";tag=b")},
		{req("OPTIONS", "old-branch", "OPTIONS", ""), req("CANCEL", "old-branch", "CANCEL", "")},
		{req("INVITE", "", "INVITE", ""), "\r\n\r\n"},
		{res(180, fuzzInviteBranch, "INVITE"), res(486, fuzzInviteBranch, "INVITE")},
		{res(100, fuzzInviteBranch, "INVITE"), res(200, fuzzInviteBranch, "INVITE")},
		{res(200, fuzzOptionsBranch, "OPTIONS"), res(200, fuzzInviteBranch, "CANCEL")},
		{res(183, fuzzOptionsBranch, "OPTIONS"), "SIP/2.0 200 OK\r\n\r\n"},
		{"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h:99999;branch=z9hG4bK\r\n\r\n", "SIP/2.0 99 x\r\nCSeq: x\r\n\r\n"},
		{"", "\x00garbage"},
	}
}

// FuzzHandle feeds two arbitrary datagrams, each twice (the second time is a
// retransmission), through the reader's path into a layer with a server TU
// and two client transactions waiting, then runs every timer out. Beyond
// not panicking: every server transaction the TU answered is forgotten, and
// each client transaction hands onResponse exactly one final response.
func FuzzHandle(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	// The layer's socket, and the sink that stands for every peer (whatever
	// reaches it is never read).
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close(); sink.Close() })
	src := addrOf(sink)

	f.Fuzz(func(t *testing.T, a, b []byte) {
		clock := newFakeClock()
		var (
			mu        sync.Mutex
			txs       []*ServerTx
			reqs      []*sip.Request
			unsent    bool // a response the TU could not send
			finals    = map[string]int{}
			provision = map[string]int{}
		)
		l := New(Config{
			Host: "127.0.0.1",
			Port: int(addrOf(conn).Port()),
			Now:  clock.Now,
			OnRequest: func(req *sip.Request, tx *ServerTx) {
				if tx == nil {
					return // an ACK for the dialogs
				}
				tx.OnCancel(func() {})
				tx.OnNoAck(func() {})
				code := 200
				if req.IsInvite() {
					code = 180 // left pending: a CANCEL may find it
				}
				if err := tx.Respond(sip.NewResponseFromRequest(req, code, "Fuzz", nil)); err != nil {
					mu.Lock()
					unsent = true
					mu.Unlock()
				}
				mu.Lock()
				txs = append(txs, tx)
				reqs = append(reqs, req)
				mu.Unlock()
			},
			OnResponse: func(*sip.Response) {},
		})
		defer l.Close()
		l.udp.Store(newUDPSocket(conn))
		count := func(name string) func(*sip.Response) {
			return func(res *sip.Response) {
				mu.Lock()
				defer mu.Unlock()
				if res.StatusCode >= 200 {
					finals[name]++
				} else {
					provision[name]++
				}
			}
		}
		inv := fuzzClient(t, l, sip.INVITE, fuzzInviteBranch, src, count("INVITE"))
		fuzzClient(t, l, sip.OPTIONS, fuzzOptionsBranch, src, count("OPTIONS"))

		for _, d := range [][]byte{a, b, a, b} {
			feedUDP(l, d, src)
		}

		// The TU ends what it left pending, and gives up the INVITE it sent
		// (which a provisional may have left with no timer).
		mu.Lock()
		pending, pendingReqs := txs, reqs
		mu.Unlock()
		for i, tx := range pending {
			if req := pendingReqs[i]; req.IsInvite() {
				err := tx.Respond(sip.NewResponseFromRequest(req, 486, "Fuzz", nil))
				if err != nil && !errors.Is(err, ErrFinal) {
					unsent = true
				}
			}
		}
		inv.Cancel()
		// Every timer started by now: 64·T1 is the longest (H, J, L, D, B,
		// and the INVITE's after its CANCEL); T4 (timer I) is shorter.
		for range int((linger + T1) / wheelTick) {
			clock.add(wheelTick)
			l.advance()
		}

		mu.Lock()
		defer mu.Unlock()
		servers, clients := l.Pending()
		if servers != 0 && !unsent {
			t.Errorf("%d server transactions left after every timer ran", servers)
		}
		if clients != 0 {
			t.Errorf("%d client transactions left after every timer ran", clients)
		}
		for _, name := range []string{"INVITE", "OPTIONS"} {
			if finals[name] != 1 {
				t.Errorf("the %s's onResponse got %d finals, want 1", name, finals[name])
			}
		}
	})
}
