package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

const carrierSDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// header returns the value of the first header called name in a raw message.
func header(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// carrierToBob starts a node where bob (1002, +14155550102) is registered
// with a phone set up by mod, and a trunk's carrier on 127.0.0.2 whose raw
// socket is conn: to is the node's SIP address, from the carrier's.
func carrierToBob(t *testing.T, mod func(*sipphone.Config)) (s *sys, bob *sipphone.Phone, conn *net.UDPConn, to, from *net.UDPAddr) {
	t.Helper()
	return carrierToBobOn(t, nil, mod)
}

// carrierToBobOn is carrierToBob with the node's configuration changed by
// nodeMod.
func carrierToBobOn(t *testing.T, nodeMod func(*nodeConfig), mod func(*sipphone.Config)) (s *sys, bob *sipphone.Phone, conn *net.UDPConn, to, from *net.UDPAddr) {
	t.Helper()
	s = startNode(t, nodeMod)
	s.user("bob", "1002", "bob-secret", "+14155550102")
	if code := s.api("POST", "/v1/trunks", "", map[string]any{"id": "c", "address": "127.0.0.2:5999", "inbound_cidrs": []string{"127.0.0.2/32"}}, nil); code != 201 {
		t.Fatalf("trunk: %d", code)
	}
	bob = s.phone("bob", "bob-secret", mod)
	s.registered(bob)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	to, _ = net.ResolveUDPAddr("udp", s.n.SIPAddr())
	return s, bob, conn, to, conn.LocalAddr().(*net.UDPAddr)
}

// The 200 to an INVITE is retransmitted until the ACK comes; a BYE that
// overtakes the ACK is taken all the same and ends the call.
func TestRetransmitted2xxAndByeBeforeAck(t *testing.T) {
	_, bob, conn, to, from := carrierToBob(t, func(c *sipphone.Config) { c.AutoAnswerOn = true })
	invite := rawInvite(to, from, "+14155550102", carrierSDP)
	if _, err := conn.WriteToUDP([]byte(invite), to); err != nil {
		t.Fatal(err)
	}
	var oks []string
	buf := make([]byte, 65535)
	deadline := time.Now().Add(5 * time.Second)
	for len(oks) < 2 && time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, "SIP/2.0 200") {
			oks = append(oks, msg)
		}
	}
	if len(oks) < 2 {
		t.Fatalf("want the 200 retransmitted while no ACK comes, got %d", len(oks))
	}
	b := recvCall(t, bob)
	ok := oks[0]
	bye := fmt.Sprintf("BYE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-bye-%d\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
		strings.Trim(header(ok, "Contact"), "<>"), from, time.Now().UnixNano(), header(ok, "From"), header(ok, "To"), header(ok, "Call-ID"))
	if _, err := conn.WriteToUDP([]byte(bye), to); err != nil {
		t.Fatal(err)
	}
	for {
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatal("no answer to a BYE that overtook the ACK")
		}
		msg := string(buf[:n])
		if strings.Contains(header(msg, "CSeq"), "BYE") {
			if !strings.HasPrefix(msg, "SIP/2.0 200") {
				t.Fatalf("BYE before ACK: want 200, got %q", firstLine(msg))
			}
			break
		}
	}
	select {
	case <-b.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the callee was not hung up")
	}
}

// A call whose media goes silent is ended with a BYE to both sides.
func TestRTPTimeoutEndsCall(t *testing.T) {
	s := startNode(t, func(c *nodeConfig) { c.RTPTimeout = time.Second })
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	alice := s.phone("alice", "alice-secret", nil)
	bob := s.phone("bob", "bob-secret", func(c *sipphone.Config) { c.AutoAnswerOn = true })
	s.registered(alice)
	s.registered(bob)
	a, err := alice.Dial(ctxT(t, 10*time.Second), "1002", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := recvCall(t, bob)
	for _, c := range []*sipphone.Call{a, b} {
		select {
		case <-c.Ended():
		case <-time.After(8 * time.Second):
			t.Fatal("a silent call was not ended")
		}
	}
}

// A callee who hangs up while the caller has not acknowledged our 200 gets
// the call ended, but the caller's BYE waits for the ACK (RFC 3261 section
// 15): the 200 may have been lost, and the caller is owed it. The 200 keeps
// coming until then.
func TestByeWaitsForAck(t *testing.T) {
	_, bob, conn, to, from := carrierToBob(t, func(c *sipphone.Config) { c.AutoAnswerOn = true })
	if _, err := conn.WriteToUDP([]byte(rawInvite(to, from, "+14155550102", carrierSDP)), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	read := func(d time.Duration) (string, bool) {
		_ = conn.SetReadDeadline(time.Now().Add(d))
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return "", false
		}
		return string(buf[:n]), true
	}
	var ok string
	for ok == "" {
		msg, got := read(5 * time.Second)
		if !got {
			t.Fatal("no 200 to the INVITE")
		}
		if strings.HasPrefix(msg, "SIP/2.0 200") {
			ok = msg
		}
	}
	b := recvCall(t, bob)
	if err := b.Hangup(ctxT(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Two seconds without an ACK: 200s (T1, 2T1, 4T1 apart), no BYE.
	oks, until := 0, time.Now().Add(2*time.Second)
	for time.Now().Before(until) {
		msg, got := read(time.Until(until))
		if !got {
			break
		}
		if strings.HasPrefix(msg, "BYE ") {
			t.Fatal("BYE sent before the 200 was acknowledged")
		}
		if strings.HasPrefix(msg, "SIP/2.0 200") {
			oks++
		}
	}
	if oks == 0 {
		t.Fatal("the 200 was not retransmitted while its ACK was missing")
	}
	ack := fmt.Sprintf("ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-ack-%d\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		strings.Trim(header(ok, "Contact"), "<>"), from, time.Now().UnixNano(), header(ok, "From"), header(ok, "To"), header(ok, "Call-ID"))
	if _, err := conn.WriteToUDP([]byte(ack), to); err != nil {
		t.Fatal(err)
	}
	for {
		msg, got := read(3 * time.Second)
		if !got {
			t.Fatal("no BYE after the ACK")
		}
		if strings.HasPrefix(msg, "BYE ") {
			if header(msg, "Call-ID") != header(ok, "Call-ID") {
				t.Fatalf("BYE of another dialog: %q", header(msg, "Call-ID"))
			}
			return
		}
	}
}

// When our INVITE forks and two branches answer, the call takes the first
// answer; the second is acknowledged and hung up at once (RFC 3261
// 13.2.2.4), so that nobody sits on a dead line.
func TestSecondForkAnswerIsHungUp(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret", "+14155550101")
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	carrier := conn.LocalAddr().(*net.UDPAddr)
	if code := s.api("POST", "/v1/trunks", "", map[string]any{"id": "c", "address": carrier.String(), "inbound_cidrs": []string{"127.0.0.2/32"}, "outbound": true}, nil); code != 201 {
		t.Fatalf("trunk: %d", code)
	}
	alice := s.phone("alice", "alice-secret", nil)
	s.registered(alice)
	go func() { _, _ = alice.Dial(ctxT(t, 10*time.Second), "+14155559999", nil) }()

	buf := make([]byte, 65535)
	read := func(d time.Duration) (string, *net.UDPAddr) {
		_ = conn.SetReadDeadline(time.Now().Add(d))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return "", nil
		}
		return string(buf[:n]), from
	}
	var invite string
	var node *net.UDPAddr
	for invite == "" {
		msg, from := read(5 * time.Second)
		if from == nil {
			t.Fatal("no INVITE at the carrier")
		}
		if strings.HasPrefix(msg, "INVITE ") {
			invite, node = msg, from
		}
	}
	answer := func(tag string) {
		ok := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=%s\r\nCall-ID: %s\r\nCSeq: %s\r\nContact: <sip:%s@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			header(invite, "Via"), header(invite, "From"), header(invite, "To"), tag, header(invite, "Call-ID"), header(invite, "CSeq"), tag, carrier, len(carrierSDP), carrierSDP)
		if _, err := conn.WriteToUDP([]byte(ok), node); err != nil {
			t.Fatal(err)
		}
	}
	// One socket to one socket on loopback keeps the order, and the node
	// reads its UDP on one goroutine: fork1's answer is the first.
	answer("fork1")
	answer("fork2")

	acked, byes := map[string]bool{}, map[string]bool{}
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) && !(acked["fork1"] && acked["fork2"] && byes["fork2"]) {
		msg, _ := read(time.Until(until))
		tag := ""
		if _, after, ok := strings.Cut(header(msg, "To"), "tag="); ok {
			tag, _, _ = strings.Cut(after, ";")
		}
		switch {
		case strings.HasPrefix(msg, "ACK "):
			acked[tag] = true
		case strings.HasPrefix(msg, "BYE "):
			byes[tag] = true
			resp := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
				header(msg, "Via"), header(msg, "From"), header(msg, "To"), header(msg, "Call-ID"), header(msg, "CSeq"))
			_, _ = conn.WriteToUDP([]byte(resp), node)
		}
	}
	if !acked["fork1"] || !acked["fork2"] {
		t.Errorf("ACKs to %v, want both answers acknowledged", acked)
	}
	if !byes["fork2"] {
		t.Error("the second fork's answer was not hung up")
	}
	if byes["fork1"] {
		t.Error("the answer that took the call was hung up")
	}
}

// readStream reads one SIP message from a stream: headers to the blank
// line, then Content-Length bytes of body.
func readStream(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var head strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (after %q)", err, head.String())
		}
		if line == "\r\n" && head.Len() == 0 {
			continue // a keepalive
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	msg := head.String()
	n, _ := strconv.Atoi(header(msg, "Content-Length"))
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return msg + string(body)
}

// A carrier that speaks SIP over TCP: its INVITE is answered on its
// connection, and its ACK and BYE on the same connection end the call.
func TestCallOverTCP(t *testing.T) {
	_, bob, _, to, _ := carrierToBob(t, func(c *sipphone.Config) { c.AutoAnswerOn = true })
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	conn, err := d.Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	la := conn.LocalAddr().(*net.TCPAddr)
	invite := strings.Replace(rawInvite(to, &net.UDPAddr{IP: la.IP, Port: la.Port}, "+14155550102", carrierSDP), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := io.WriteString(conn, invite); err != nil {
		t.Fatal(err)
	}
	var ok string
	for ok == "" {
		msg := readStream(t, r)
		if strings.HasPrefix(msg, "SIP/2.0 200") {
			ok = msg
		} else if !strings.HasPrefix(msg, "SIP/2.0 1") {
			t.Fatalf("INVITE over TCP: %q", firstLine(msg))
		}
	}
	if c := header(ok, "Contact"); !strings.Contains(c, ";transport=tcp") {
		t.Fatalf("the 200's Contact %q does not say TCP: the ACK and BYE would come over UDP", c)
	}
	b := recvCall(t, bob)
	for _, m := range []string{"ACK", "BYE"} {
		cseq := "1 ACK"
		if m == "BYE" {
			cseq = "2 BYE"
		}
		req := fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%s-%d\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\nContent-Length: 0\r\n\r\n",
			m, strings.Trim(header(ok, "Contact"), "<>"), conn.LocalAddr(), strings.ToLower(m), time.Now().UnixNano(), header(ok, "From"), header(ok, "To"), header(ok, "Call-ID"), cseq)
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
	}
	for {
		msg := readStream(t, r)
		if strings.Contains(header(msg, "CSeq"), "BYE") {
			if !strings.HasPrefix(msg, "SIP/2.0 200") {
				t.Fatalf("BYE over TCP: %q", firstLine(msg))
			}
			break
		}
	}
	select {
	case <-b.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the callee was not hung up")
	}
}

// A node listening on every address answers a carrier on the address the
// carrier reached (127.0.0.3 here), from that address, and names it in the
// Contact of its 200, over UDP and over TCP (with ;transport=tcp).
func TestContactNamesTheAddressReached(t *testing.T) {
	s, bob, conn, _, from := carrierToBobOn(t, func(c *nodeConfig) {
		c.SIPAddr = "0.0.0.0:0"
		c.MediaIP = "127.0.0.9" // what Contact and Via used to name, whoever asked
	}, func(c *sipphone.Config) { c.AutoAnswerOn = true })
	port := s.sipPort()
	to := &net.UDPAddr{IP: net.ParseIP("127.0.0.3"), Port: port}
	if _, err := conn.WriteToUDP([]byte(rawInvite(to, from, "+14155550102", carrierSDP)), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, src, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no 200 over UDP: %v", err)
		}
		msg := string(buf[:n])
		if !src.IP.Equal(to.IP) {
			t.Fatalf("%q came from %v, not from the address the INVITE reached (%v)", firstLine(msg), src, to)
		}
		if strings.HasPrefix(msg, "SIP/2.0 200") {
			want := fmt.Sprintf("<sip:switchboard@127.0.0.3:%d>", port)
			if c := header(msg, "Contact"); c != want {
				t.Fatalf("UDP: Contact %q, want %q", c, want)
			}
			break
		}
	}
	// The INVITE to Bob, who registered over 127.0.0.1, names 127.0.0.1.
	inv := recvCall(t, bob).Request
	if c := inv.Contact(); c == nil || c.Address.Host != "127.0.0.1" || c.Address.Port != port {
		t.Fatalf("the INVITE to Bob has Contact %v, want 127.0.0.1:%d", c, port)
	}
	if v := inv.Via(); v == nil || v.Host != "127.0.0.1" || v.Port != port {
		t.Fatalf("the INVITE to Bob has Via %v, want 127.0.0.1:%d", v, port)
	}

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 2 * time.Second}
	tc, err := d.Dial("tcp", fmt.Sprintf("127.0.0.4:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	la := tc.LocalAddr().(*net.TCPAddr)
	tcpTo := &net.UDPAddr{IP: net.ParseIP("127.0.0.4"), Port: port}
	invite := strings.Replace(rawInvite(tcpTo, &net.UDPAddr{IP: la.IP, Port: la.Port}, "+14155550102", carrierSDP), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	if _, err := io.WriteString(tc, invite); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(tc)
	for {
		msg := readStream(t, r)
		if strings.HasPrefix(msg, "SIP/2.0 200") {
			want := fmt.Sprintf("<sip:switchboard@127.0.0.4:%d;transport=tcp>", port)
			if c := header(msg, "Contact"); c != want {
				t.Fatalf("TCP: Contact %q, want %q", c, want)
			}
			return
		}
		if !strings.HasPrefix(msg, "SIP/2.0 1") {
			t.Fatalf("INVITE over TCP: %q", firstLine(msg))
		}
	}
}

// Behind a NAT the advertised address replaces the local one in Contact
// and Via, with the listener's port.
func TestAdvertisedAddress(t *testing.T) {
	_, bob, conn, to, from := carrierToBobOn(t, func(c *nodeConfig) { c.SIPAdvertise = "192.0.2.7" },
		func(c *sipphone.Config) { c.AutoAnswerOn = true })
	if _, err := conn.WriteToUDP([]byte(rawInvite(to, from, "+14155550102", carrierSDP)), to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no 200: %v", err)
		}
		if msg := string(buf[:n]); strings.HasPrefix(msg, "SIP/2.0 200") {
			if c, want := header(msg, "Contact"), fmt.Sprintf("<sip:switchboard@192.0.2.7:%d>", to.Port); c != want {
				t.Fatalf("Contact %q, want %q", c, want)
			}
			break
		}
	}
	inv := recvCall(t, bob).Request
	if v := inv.Via(); v == nil || v.Host != "192.0.2.7" || v.Port != to.Port {
		t.Fatalf("the INVITE to Bob has Via %v, want 192.0.2.7:%d", v, to.Port)
	}
}

// A carrier named by host name: the INVITE goes to the address the name
// resolves to, and its Contact names the local address toward it (here
// 127.0.0.1), as its Via does, not the media IP.
func TestTrunkByNameContact(t *testing.T) {
	s := startNode(t, func(c *nodeConfig) {
		c.SIPAddr = "0.0.0.0:0"
		c.MediaIP = "127.0.0.9"
	})
	port := s.sipPort()
	s.user("alice", "1001", "alice-secret", "+14155550101")
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.1" })
	_, cport, _ := net.SplitHostPort(carrier.Addr())
	if code := s.api("POST", "/v1/trunks", "", map[string]any{
		"id": "carrier", "address": "localhost:" + cport, "outbound": true,
	}, nil); code != 201 {
		t.Fatalf("create trunk: %d", code)
	}
	alice := s.phone("alice", "alice-secret", nil)
	s.registered(alice)
	ctx := ctxT(t, 10*time.Second)
	go func() { _, _ = alice.Dial(ctx, "+14155559999", nil) }()
	inv := recvCall(t, carrier).Request
	if c := inv.Contact(); c == nil || c.Address.Host != "127.0.0.1" || c.Address.Port != port {
		t.Fatalf("INVITE to a carrier named localhost: Contact %v, want 127.0.0.1:%d", c, port)
	}
	if v := inv.Via(); v == nil || v.Host != "127.0.0.1" {
		t.Fatalf("INVITE to a carrier named localhost: Via %v", v)
	}
}
