package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// headers returns the values of every header called name in a raw message.
func headers(msg, name string) []string {
	var out []string
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// challengeOf sends an unauthenticated REGISTER and returns the algorithms
// its 401 offers, in order.
func challengeOf(t *testing.T, s *sys) []string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", s.n.SIPAddr())
	reg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-reg-%d\r\nMax-Forwards: 70\r\n"+
		"From: <sip:1001@%s>;tag=r1\r\nTo: <sip:1001@%s>\r\nCall-ID: reg-%d\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:1001@%s>\r\nContent-Length: 0\r\n\r\n", domain, conn.LocalAddr(), time.Now().UnixNano(), domain, domain, time.Now().UnixNano(), conn.LocalAddr())
	res := sendUDP(t, conn, to, []byte(reg))
	if !strings.HasPrefix(res, "SIP/2.0 401") {
		t.Fatalf("unauthenticated REGISTER: %q", firstLine(res))
	}
	var algs []string
	for _, h := range headers(res, "WWW-Authenticate") {
		_, rest, _ := strings.Cut(h, "algorithm=")
		alg, _, _ := strings.Cut(rest, ",")
		algs = append(algs, strings.Trim(alg, `" `))
	}
	return algs
}

// By default a challenge offers MD5 alone: phones that cannot answer a
// SHA-256 challenge give up rather than skip it. The setting offers
// SHA-256 alone, or both strongest first (RFC 8760).
func TestChallengeAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"default", nil, "MD5"},
		{"sha256", []string{"SHA-256"}, "SHA-256"},
		{"both", []string{"SHA-256", "MD5"}, "SHA-256,MD5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startNode(t, func(c *nodeConfig) { c.DigestAlgorithms = tc.set })
			if got := strings.Join(challengeOf(t, s), ","); got != tc.want {
				t.Fatalf("challenge offers %q, want %q", got, tc.want)
			}
		})
	}
}

// An unauthenticated INVITE (from a spoofed source, say) gets one 407 and
// nothing more: a stateful 407 would be resent at 500 ms and 1.5 s (timer
// G), inside the window watched here; the whole 32 s is covered on the
// transaction layer's fake clock (txn's TestServerRespondStateless). Its
// retransmission gets one 407 with the same To tag, and the 407's ACK is
// absorbed, not counted as a stray message.
func TestChallengeIsStateless(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", s.n.SIPAddr())
	from := conn.LocalAddr().(*net.UDPAddr)
	invite := []byte(rawInvite(to, from, "1001", carrierSDP))
	var tags []string
	count := func(window time.Duration) int {
		n := 0
		buf := make([]byte, 65535)
		deadline := time.Now().Add(window)
		for {
			_ = conn.SetReadDeadline(deadline)
			m, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return n
			}
			if msg := string(buf[:m]); strings.HasPrefix(msg, "SIP/2.0 407") {
				n++
				_, tag, _ := strings.Cut(header(msg, "To"), ";tag=")
				tags = append(tags, tag)
			}
		}
	}
	if _, err := conn.WriteToUDP(invite, to); err != nil {
		t.Fatal(err)
	}
	// 1.7 s spans the first two retransmissions of a stateful 407.
	if n := count(1700 * time.Millisecond); n != 1 {
		t.Fatalf("one unauthenticated INVITE got %d 407s, want 1", n)
	}
	if _, err := conn.WriteToUDP(invite, to); err != nil {
		t.Fatal(err)
	}
	if n := count(700 * time.Millisecond); n != 1 {
		t.Fatalf("its retransmission got %d 407s, want 1", n)
	}
	if tags[0] == "" || tags[0] != tags[1] {
		t.Fatalf("the 407s to one INVITE carry To tags %q and %q, want one tag", tags[0], tags[1])
	}
	stray := metric(t, s, `switchboard_sip_messages_dropped_total{reason="stray_ack"}`)
	ack := strings.Replace(strings.Replace(string(invite), "INVITE sip:", "ACK sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
	ack = strings.Replace(ack, "To: <sip:1001@127.0.0.1>", "To: <sip:1001@127.0.0.1>;tag="+tags[0], 1)
	if !strings.Contains(ack, ";tag="+tags[0]) {
		t.Fatalf("test bug: no To header to tag in %q", ack)
	}
	if _, err := conn.WriteToUDP([]byte(ack), to); err != nil {
		t.Fatal(err)
	}
	// The ACK is read and handled before the OPTIONS after it.
	if res := sendUDP(t, conn, to, []byte(fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-o%d\r\nMax-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=o\r\nTo: <sip:%s>\r\nCall-ID: o-%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		to, from, time.Now().UnixNano(), domain, to, time.Now().UnixNano()))); res == "" {
		t.Fatal("no answer to the OPTIONS after the ACK")
	}
	if d := metric(t, s, `switchboard_sip_messages_dropped_total{reason="stray_ack"}`) - stray; d != 0 {
		t.Fatalf("the ACK of a stateless 407 was counted as a stray message")
	}
}
