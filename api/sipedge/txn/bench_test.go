package txn

import (
	"bytes"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// benchLayer is a layer on the real clock whose UDP socket sends to a sink
// nobody reads (the kernel drops what overflows it).
func benchLayer(b *testing.B, onRequest func(*sip.Request, *ServerTx)) (*Layer, *net.UDPConn) {
	b.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	l := New(Config{Host: "127.0.0.1", Port: conn.LocalAddr().(*net.UDPAddr).Port, OnRequest: onRequest})
	l.UseUDP(conn)
	b.Cleanup(func() { l.Close(); conn.Close(); sink.Close() })
	return l, sink
}

func parsed(b *testing.B, p *sip.Parser, raw string, src string) sip.Message {
	m, err := p.ParseSIP([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	m.SetTransport("UDP")
	m.SetSource(src)
	return m
}

// An answered INVITE as the server sees it: the INVITE parsed and matched,
// 180 and 200 formatted and sent, the 2xx's retransmission armed and
// stopped by the ACK, and a retransmitted INVITE absorbed.
func BenchmarkServerInvite(b *testing.B) {
	var tx *ServerTx
	var req *sip.Request
	l, sink := benchLayer(b, func(r *sip.Request, t *ServerTx) { req, tx = r, t })
	src := sink.LocalAddr().String()
	p := sip.NewParser()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		inv := fmt.Sprintf("INVITE sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d;rport\r\nFrom: <sip:1001@example.com>;tag=a%d\r\nTo: <sip:1002@example.com>\r\nCall-ID: c%d\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", src, i, i, i, src)
		m := parsed(b, p, inv, src)
		l.handle(m)
		ringing := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
		ringing.To().Params.Add("tag", "b")
		_ = tx.Respond(ringing)
		ok := sip.NewResponseFromRequest(req, 200, "OK", nil)
		ok.To().Params.Add("tag", "b")
		_ = tx.Respond(ok)
		l.handle(m) // a retransmission, absorbed
		tx.Acked()
	}
}

// A request we send and its answer: Via stamped, formatted, sent, the
// response parsed and matched, the transaction gone.
func BenchmarkClientRequest(b *testing.B) {
	l, sink := benchLayer(b, func(*sip.Request, *ServerTx) {})
	dst := sink.LocalAddr().String()
	p := sip.NewParser()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		req := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", User: "1002", Host: "127.0.0.1"})
		callID := sip.CallIDHeader(fmt.Sprintf("c%d", i))
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "example.com"}, Params: sip.HeaderParams{{K: "tag", V: "a"}}})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "example.com"}, Params: sip.HeaderParams{{K: "tag", V: "b"}}})
		req.AppendHeader(&callID)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: 2, MethodName: sip.BYE})
		req.SetDestination(dst)
		done := false
		if _, err := l.Request(req, func(*sip.Response) { done = true }); err != nil {
			b.Fatal(err)
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		l.handle(parsed(b, p, res.String(), dst))
		if !done {
			b.Fatal("the response did not reach its transaction")
		}
	}
}

// ServeUDP's round trip: an OPTIONS datagram read, parsed, matched and
// answered 200 through the socket, to a peer that waits for the answer
// before sending the next. The layer's socket is bound to the wildcard
// address, as the node's is.
func BenchmarkServeUDP(b *testing.B) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		b.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	l := New(Config{Host: "127.0.0.1", Port: port, OnRequest: func(req *sip.Request, tx *ServerTx) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}})
	done := make(chan error, 1)
	go func() { done <- l.ServeUDP(conn) }()
	peer, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		<-done
		l.Close()
		peer.Close()
	})
	// A fixed-width counter in the branch keeps each request new without
	// formatting one per iteration.
	raw := []byte(fmt.Sprintf("OPTIONS sip:1002@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-0000000000;rport\r\nFrom: <sip:1001@example.com>;tag=a\r\nTo: <sip:1002@example.com>\r\nCall-ID: bench\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", peer.LocalAddr()))
	counter := bytes.Index(raw, []byte("0000000000"))
	buf := make([]byte, 65535)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		n := i
		for k := counter + 9; k >= counter; k-- {
			raw[k] = byte('0' + n%10)
			n /= 10
		}
		if _, err := peer.Write(raw); err != nil {
			b.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(buf); err != nil {
			b.Fatalf("no answer: %v", err)
		}
	}
}
