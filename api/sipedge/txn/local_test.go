package txn

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A node listens on the wildcard address; these tests reach it on other
// loopback addresses than 127.0.0.1 (all of 127/8 is local on Linux), as a
// phone reaches a multi-homed host on one of its addresses.

// wildcard is a layer on a fake clock serving UDP on the wildcard address
// of network ("udp4": 0.0.0.0, "udp": the dual-stack [::]).
type wildcard struct {
	t     *testing.T
	clock *fakeClock
	l     *Layer
	port  uint16
	reqs  chan received
}

func serveWildcard(t *testing.T, network string, tweak ...func(*Config)) *wildcard {
	t.Helper()
	w, conn := newWildcard(t, network, tweak...)
	w.serve(conn)
	return w
}

// newWildcard binds the socket and builds the layer; serve starts reading.
func newWildcard(t *testing.T, network string, tweak ...func(*Config)) (*wildcard, *net.UDPConn) {
	t.Helper()
	conn, err := net.ListenUDP(network, &net.UDPAddr{})
	if err != nil {
		t.Skipf("listen %s on the wildcard address: %v", network, err)
	}
	w := &wildcard{t: t, clock: newFakeClock(), reqs: make(chan received, 16),
		port: uint16(conn.LocalAddr().(*net.UDPAddr).Port)}
	cfg := Config{Host: "192.0.2.1", Port: 5060, Now: w.clock.Now,
		OnRequest: func(req *sip.Request, tx *ServerTx) { w.reqs <- received{req, tx} }}
	for _, f := range tweak {
		f(&cfg)
	}
	w.l = New(cfg)
	w.l.UseUDP(conn) // before a test asks Local
	t.Cleanup(func() { conn.Close(); w.l.Close() })
	return w, conn
}

func (w *wildcard) serve(conn *net.UDPConn) {
	done := make(chan error, 1)
	go func() { done <- w.l.ServeUDP(conn) }()
	w.t.Cleanup(func() {
		conn.Close()
		if err := <-done; err != nil {
			w.t.Errorf("ServeUDP: %v", err)
		}
	})
}

func (w *wildcard) next() received {
	w.t.Helper()
	select {
	case r := <-w.reqs:
		return r
	case <-time.After(expectWait):
		w.t.Fatalf("OnRequest: nothing in %v", expectWait)
		return received{}
	}
}

// peerAt is a UDP socket of the far end, bound to ip.
func peerAt(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Skipf("bind %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// udpRequest is a request from c, as its UA writes it.
func udpRequest(c *net.UDPConn, method, branch string) []byte {
	return []byte(fmt.Sprintf("%s sip:bob@example.com SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=%s;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 %s\r\nContent-Length: 0\r\n\r\n",
		method, c.LocalAddr(), branch, branch, method))
}

// readFrom is the next datagram on c and its source address.
func readFrom(t *testing.T, c *net.UDPConn) (sip.Message, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(expectWait))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatalf("unparseable %q: %v", buf[:n], err)
	}
	return m, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

// TestUDPLocalAddress: a request that reached the wildcard socket on
// 127.0.0.2 says so in its Destination, and its responses (the first, and
// a retransmission on timer G) leave from 127.0.0.2; one that reached
// 127.0.0.3 at the same time is answered from 127.0.0.3. On an IPv4 and
// on a dual-stack socket alike, where an IPv6 flow is answered from its
// address too.
func TestUDPLocalAddress(t *testing.T) {
	for _, tc := range []struct {
		network string
		flows   [][2]string // the peer's address, and ours it sends to
	}{
		{"udp4", [][2]string{{"127.0.0.1", "127.0.0.2"}, {"127.0.0.1", "127.0.0.3"}}},
		{"udp", [][2]string{{"127.0.0.1", "127.0.0.2"}, {"127.0.0.1", "127.0.0.3"}, {"::1", "::1"}}},
	} {
		t.Run(tc.network, func(t *testing.T) {
			w := serveWildcard(t, tc.network)
			for i, flow := range tc.flows {
				peer := peerAt(t, flow[0])
				to := netip.AddrPortFrom(netip.MustParseAddr(flow[1]), w.port)
				if _, err := peer.WriteToUDPAddrPort(udpRequest(peer, "INVITE", fmt.Sprintf("z9hG4bK-local-%d", i)), to); err != nil {
					t.Fatal(err)
				}
				r := w.next()
				if got := r.req.MessageData.Destination(); got != to.String() {
					t.Errorf("Destination = %q, want %q", got, to)
				}
				base := w.clock.Now()
				respond(t, r.tx, r.req, 486, "uas")
				for k, at := range []time.Duration{0, T1} {
					w.elapseTo(base.Add(at))
					m, from := readFrom(t, peer)
					if res, ok := m.(*sip.Response); !ok || res.StatusCode != 486 {
						t.Fatalf("got %s, want the 486", firstLine(m))
					}
					if from != to {
						t.Errorf("486 #%d came from %s, want %s (where the INVITE went)", k+1, from, to)
					}
				}
			}
		})
	}
}

// TestUDPLocalAddressQueuedEarly: a datagram that arrived after the
// socket was bound but before ServeUDP asked for local addresses (the edge
// binds, then serves) still names the address it was sent to.
func TestUDPLocalAddressQueuedEarly(t *testing.T) {
	w, conn := newWildcard(t, "udp4")
	peer := peerAt(t, "127.0.0.1")
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), w.port)
	if _, err := peer.WriteToUDPAddrPort(udpRequest(peer, "OPTIONS", "z9hG4bK-early"), to); err != nil {
		t.Fatal(err)
	}
	w.serve(conn)
	r := w.next()
	if got := r.req.MessageData.Destination(); got != to.String() {
		t.Errorf("Destination = %q, want %q", got, to)
	}
	respond(t, r.tx, r.req, 200, "uas")
	if _, from := readFrom(t, peer); from != to {
		t.Errorf("200 came from %s, want %s", from, to)
	}
}

func (w *wildcard) elapseTo(t time.Time) {
	for w.clock.Now().Before(t) {
		w.clock.add(wheelTick)
		w.l.advance()
	}
}

// connectedSource is the source address the kernel picks toward remote,
// as a connected socket reports it.
func connectedSource(t *testing.T, remote netip.AddrPort) netip.Addr {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(remote))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// TestLocalUDP: toward a peer, the wildcard socket's local address is the
// kernel's source for that route, with our port; a socket bound to one
// address has that one; no address, no answer.
func TestLocalUDP(t *testing.T) {
	w := serveWildcard(t, "udp4")
	remote := netip.MustParseAddrPort("127.0.0.3:5070")
	got, ok := w.l.Local("udp", remote.String())
	want := netip.AddrPortFrom(connectedSource(t, remote), w.port)
	if !ok || got != want {
		t.Errorf("Local(udp, %s) = %v, %v, want %v", remote, got, ok, want)
	}
	for _, bad := range []string{"carrier.example.com:5060", "", "127.0.0.3"} {
		if got, ok := w.l.Local("UDP", bad); ok {
			t.Errorf("Local(UDP, %q) = %v, want none", bad, got)
		}
	}

	h := newHarness(t) // bound to 127.0.0.1
	if got, ok := h.l.Local("UDP", remote.String()); !ok || got != h.addr {
		t.Errorf("bound: Local = %v, %v, want %v", got, ok, h.addr)
	}
	if got, ok := New(Config{}).Local("UDP", remote.String()); ok {
		t.Errorf("no socket: Local = %v, want none", got)
	}
}

// TestStampVia: our Via names the advertised address if there is one (its
// port too when it has one), else the local address toward the request's
// destination, else (a destination named, not an address) Host and Port.
func TestStampVia(t *testing.T) {
	dest := netip.MustParseAddrPort("127.0.0.3:5070")
	src := connectedSource(t, dest)
	for _, tc := range []struct {
		name      string
		advertise netip.AddrPort
		dest      string
		want      func(port uint16) string
	}{
		{"per flow", netip.AddrPort{}, dest.String(), func(p uint16) string { return fmt.Sprintf("%s:%d", src, p) }},
		{"a name", netip.AddrPort{}, "carrier.example.com:5060", func(uint16) string { return "192.0.2.1:5060" }},
		{"advertised host", netip.MustParseAddrPort("203.0.113.9:0"), dest.String(), func(p uint16) string { return fmt.Sprintf("203.0.113.9:%d", p) }},
		{"advertised host and port", netip.MustParseAddrPort("203.0.113.9:15060"), dest.String(), func(uint16) string { return "203.0.113.9:15060" }},
		{"advertised IPv6", netip.MustParseAddrPort("[2001:db8::9]:5062"), dest.String(), func(uint16) string { return "[2001:db8::9]:5062" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serveWildcard(t, "udp4", func(c *Config) { c.Advertise = tc.advertise })
			req := sip.NewRequest(sip.ACK, sip.Uri{Scheme: "sip", User: "bob", Host: "example.com"})
			req.SetTransport("UDP")
			req.SetDestination(tc.dest)
			w.l.Stamp(req)
			via := req.Via()
			if got, want := strings.SplitN(via.Value(), " ", 2)[1], tc.want(w.port); !strings.HasPrefix(got, want+";") {
				t.Errorf("Via %s, want sent-by %s", via.Value(), want)
			}
		})
	}
}

// TestTCPLocalAddress: a request over a connection the peer opened to
// 127.0.0.2 of a wildcard listener carries 127.0.0.2 and the listener's
// port as its Destination, and Local gives the same toward that peer; with
// no connection, Local toward a peer is the route's source with the
// listener's port.
func TestTCPLocalAddress(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = h.l.ServeTCP(ln); close(done) }()
	t.Cleanup(func() { ln.Close(); <-done })
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)

	c, err := net.Dial("tcp4", to.String())
	if err != nil {
		t.Fatal(err)
	}
	s := h.stream(c)
	s.write(tcpRequest(c, "OPTIONS", "z9hG4bK-tcp-local", "", ""))
	r := h.nextRequest()
	if got := r.req.MessageData.Destination(); got != to.String() {
		t.Errorf("Destination = %q, want %q", got, to)
	}
	if got, ok := h.l.Local("TCP", c.LocalAddr().String()); !ok || got != to {
		t.Errorf("Local(TCP, the peer) = %v, %v, want %v", got, ok, to)
	}
	respond(t, r.tx, r.req, 200, "uas")
	if res, ok := s.read(expectWait).(*sip.Response); !ok || res.StatusCode != 200 {
		t.Fatalf("no 200 on the connection")
	}

	other := netip.MustParseAddrPort("127.0.0.3:5070")
	want := netip.AddrPortFrom(connectedSource(t, other), port)
	if got, ok := h.l.Local("tcp", other.String()); !ok || got != want {
		t.Errorf("Local(tcp, %s) with no connection = %v, %v, want %v", other, got, ok, want)
	}
	if got, ok := h.l.Local("TLS", other.String()); ok {
		t.Errorf("Local(TLS) with no TLS listener = %v, want none", got)
	}
}
