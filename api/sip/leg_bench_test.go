package sipedge

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	pb "github.com/switchboard/switchboard/proto"
)

// sinkConn stands in for a UDP connection: it serializes every message, as
// the transport would, and drops it.
type sinkConn struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	onMsg func(sip.Message)
}

func (c *sinkConn) LocalAddr() net.Addr { return nil }

func (c *sinkConn) WriteMsg(msg sip.Message) error {
	c.mu.Lock()
	c.buf.Reset()
	msg.StringWrite(&c.buf)
	_ = msg.Destination()
	f := c.onMsg
	c.mu.Unlock()
	if f != nil {
		f(msg)
	}
	return nil
}
func (c *sinkConn) Ref(int) int            { return 1 }
func (c *sinkConn) TryClose() (int, error) { return 0, nil }
func (c *sinkConn) Close() error           { return nil }

func benchEdge(b *testing.B) *Edge {
	e, err := New(Config{NodeID: "n1", Domain: "example.com", Host: "10.0.0.1", Port: 5060, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

const benchInvite = "INVITE sip:1002@10.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.2:5070;branch=z9hG4bK-524287-1---abcdef;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"Contact: <sip:1001@10.0.0.2:5070>\r\n" +
	"To: <sip:1002@example.com>\r\n" +
	"From: \"Alice\" <sip:1001@example.com>;tag=9fxced76sl\r\n" +
	"Call-ID: 3848276298220188511@10.0.0.2\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 0\r\n\r\n"

var benchSDP = []byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")

// BenchmarkInboundRespond is the inbound leg's part of a call: the INVITE's
// dialog, 180 and 200 (with SDP) until its ACK.
func BenchmarkInboundRespond(b *testing.B) {
	e := benchEdge(b)
	msg, err := sip.ParseMessage([]byte(benchInvite))
	if err != nil {
		b.Fatal(err)
	}
	invite := msg.(*sip.Request)
	invite.SetSource("10.0.0.2:5070")
	invite.SetTransport("UDP")
	invite.SetBody(benchSDP)
	ack := sip.NewRequest(sip.ACK, invite.Recipient)
	ack.AppendHeader(invite.CSeq())
	ringing := &pb.LegRespond{Code: 180, Reason: "Ringing"}
	answer := &pb.LegRespond{Code: 200, Reason: "OK", Sdp: benchSDP}
	b.ReportAllocs()
	for b.Loop() {
		conn := &sinkConn{}
		key, _ := sip.ServerTxKeyMake(invite)
		tx := sip.NewServerTx(key, invite, conn, e.cfg.Log)
		if err := tx.Init(); err != nil {
			b.Fatal(err)
		}
		dtx, err := e.dua.ReadInvite(invite, tx)
		if err != nil {
			b.Fatal(err)
		}
		conn.onMsg = func(m sip.Message) {
			if r, ok := m.(*sip.Response); ok && r.IsSuccess() {
				_ = dtx.ReadAck(ack, tx)
			}
		}
		l := e.newLeg("c-a", "c")
		l.srv = dtx
		l.respond(ringing)
		l.respond(answer)
		tx.Terminate()
	}
}

// uas answers the outbound leg's requests as a callee would: 100, 180 and
// 200 to the INVITE, 200 to the BYE. Every request is serialized as the
// transport would and handed to sent, if set.
type uas struct {
	log         *slog.Logger
	contact     *sip.ContactHeader // in the 2xx
	recordRoute []string
	sent        func(req *sip.Request, wire string)
}

func (u *uas) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	// What the transport layer does with every request it sends.
	for range 2 {
		if _, _, err := sip.ParseAddr(req.Destination()); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	req.StringWrite(&buf)
	if u.sent != nil {
		u.sent(req, buf.String())
	}
	if req.IsAck() {
		return nil, nil
	}
	key, err := sip.ClientTxKeyMake(req)
	if err != nil {
		return nil, err
	}
	tx := sip.NewClientTx(key, req, &sinkConn{}, u.log)
	if err := tx.Init(); err != nil {
		return nil, err
	}
	var rs []*sip.Response
	if req.IsInvite() {
		trying := sip.NewResponseFromRequest(req, 100, "Trying", nil)
		ringing := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
		ringing.To().Params.Add("tag", "calleetag")
		ok := sip.NewResponseFromRequest(req, 200, "OK", benchSDP)
		ok.To().Params.Add("tag", "calleetag")
		for _, rr := range u.recordRoute {
			ok.AppendHeader(sip.NewHeader("Record-Route", rr))
		}
		if u.contact != nil {
			ok.AppendHeader(u.contact)
		}
		rs = []*sip.Response{trying, ringing, ok}
	} else {
		rs = []*sip.Response{sip.NewResponseFromRequest(req, 200, "OK", nil)}
	}
	go func() {
		for _, r := range rs {
			tx.Receive(r)
		}
	}()
	return tx, nil
}

var calleeContact = &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "10.0.0.3", Port: 5080}}

var benchOriginate = &pb.LegOriginate{CallId: "c", LegId: "c-b", RequestUri: "sip:1002@10.0.0.3:5080", Destination: "10.0.0.3:5080",
	Transport: "udp", FromUser: "1001", FromDisplay: "Alice", ToUser: "1002", Sdp: benchSDP}

// BenchmarkOutbound is the outbound leg's part of a call: INVITE, its
// answer, ACK and BYE, as runOutbound sends them (less its reports to the
// call grain, which need a cluster).
func BenchmarkOutbound(b *testing.B) {
	e := benchEdge(b)
	e.cli.TxRequester = &uas{log: e.cfg.Log, contact: calleeContact}
	b.ReportAllocs()
	for b.Loop() {
		l := e.newLeg("c-b", "c")
		e.addLeg(l)
		req, err := e.newInvite(benchOriginate)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		msgsOut.method(sip.INVITE)
		dtx, err := e.dua.WriteInvite(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		l.cli = dtx
		if err := dtx.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
			msgsIn.code(r.StatusCode)
			return nil
		}}); err != nil {
			b.Fatal(err)
		}
		e.bindDialog(dtx.ID, l)
		_ = dtx.WriteAck(context.Background(), dialogRequest(dtx, sip.ACK))
		l.bye()
		cancel()
	}
}
