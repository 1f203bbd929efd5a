package txn

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A node listens on the wildcard address, and a phone may reach it on any
// of the host's addresses: what we write as ours (Via here, Contact and
// Record-Route in the edge) is the local address of the flow at hand, not
// one address for all.

const (
	// routeTTL is how long the kernel's choice of source address toward a
	// peer is trusted: long enough to spare a socket per request, short
	// enough to follow an address change.
	routeTTL = time.Minute
	// maxRoutes bounds the routes kept (one per peer IP).
	maxRoutes = 4096
	// maxSourceOOBs bounds the control messages kept (one per local IP).
	maxSourceOOBs = 64
)

// flows is what the layer knows of the local ends of its flows.
type flows struct {
	advertise netip.AddrPort
	advHost   string // advertise's IP as text

	mu        sync.Mutex
	routes    map[netip.Addr]route
	listeners map[string]netip.AddrPort // TCP, TLS: the address listened on

	oobMu sync.Mutex
	oobs  atomic.Pointer[map[netip.Addr][]byte] // copied on write: read per response
}

// route is the source address the kernel picked toward a peer.
type route struct {
	src  netip.Addr
	host string
	at   time.Time
}

// localEnd is one flow's local end: its address, and its IP as text.
type localEnd struct {
	addr netip.AddrPort
	host string
}

func (f *flows) init(advertise netip.AddrPort) {
	f.advertise = advertise
	if advertise.IsValid() {
		f.advHost = advertise.Addr().String()
	}
	f.routes = map[netip.Addr]route{}
	f.listeners = map[string]netip.AddrPort{}
	f.oobs.Store(&map[netip.Addr][]byte{})
}

// Local is our end of the flow toward remote ("ip:port") over network
// (UDP, TCP or TLS): the local IP a message to remote leaves from, and the
// port we take that transport on. Over TCP and TLS an open connection with
// remote decides the IP; without one, and over UDP, the kernel's route to
// remote does (its preferred source), unless the socket is bound to one
// address. False when remote is not an address or no socket serves network.
// It does not block.
func (l *Layer) Local(network, remote string) (netip.AddrPort, bool) {
	if n := strings.ToUpper(network); n == "TCP" || n == "TLS" {
		lc, ok := l.localStream(n, remote)
		return lc.addr, ok
	}
	ra, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.AddrPort{}, false
	}
	lc, ok := l.localUDP(ra)
	return lc.addr, ok
}

func (l *Layer) localUDP(remote netip.AddrPort) (localEnd, bool) {
	s := l.udp.Load()
	if s == nil || !remote.IsValid() {
		return localEnd{}, false
	}
	if !s.wildcard() {
		return localEnd{s.addr, s.host}, true
	}
	src, host, ok := l.flows.route(remote, l.now())
	return localEnd{netip.AddrPortFrom(src, s.addr.Port()), host}, ok
}

func (l *Layer) localStream(network, remote string) (localEnd, bool) {
	if c := l.streams.get(network, remote); c != nil {
		return c.local, true // accepted: its local end is the listener's
	}
	ln, listening := l.flows.listener(network)
	if conn, err := l.tp.GetConnection(network, remote); err == nil {
		// One we opened: its local IP, and the port we listen on, where
		// the peer may open one of its own.
		la, _ := conn.LocalAddr().(*net.TCPAddr)
		_, _ = conn.TryClose() // GetConnection took a reference
		if la != nil {
			ap := la.AddrPort()
			ip := ap.Addr().Unmap()
			port := ap.Port()
			if listening {
				port = ln.Port()
			}
			return localEnd{netip.AddrPortFrom(ip, port), ip.WithZone("").String()}, true
		}
	}
	if !listening {
		return localEnd{}, false
	}
	if !ln.Addr().IsUnspecified() {
		return localEnd{ln, ln.Addr().String()}, true
	}
	ra, err := netip.ParseAddrPort(remote)
	if err != nil {
		return localEnd{}, false
	}
	src, host, ok := l.flows.route(ra, l.now())
	return localEnd{netip.AddrPortFrom(src, ln.Port()), host}, ok
}

// route is the source address the kernel gives a socket connected to
// remote: what it sends from toward remote when not told otherwise. A UDP
// connect sends nothing.
func (f *flows) route(remote netip.AddrPort, now time.Time) (netip.Addr, string, bool) {
	dst := remote.Addr().Unmap()
	f.mu.Lock()
	r, ok := f.routes[dst]
	f.mu.Unlock()
	if ok && now.Sub(r.at) < routeTTL {
		return r.src, r.host, true
	}
	port := remote.Port()
	if port == 0 {
		port = 5060
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, port)))
	if err != nil {
		return netip.Addr{}, "", false // no route
	}
	src := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	_ = c.Close()
	r = route{src: src, host: src.WithZone("").String(), at: now}
	f.mu.Lock()
	if len(f.routes) >= maxRoutes {
		// The stale ones go, and others at random until there is room.
		for k, old := range f.routes {
			if now.Sub(old.at) >= routeTTL || len(f.routes) >= maxRoutes {
				delete(f.routes, k)
			}
		}
	}
	f.routes[dst] = r
	f.mu.Unlock()
	return r.src, r.host, true
}

// listener is the address network (TCP, TLS) is served on.
func (f *flows) listener(network string) (netip.AddrPort, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ap, ok := f.listeners[network]
	return ap, ok
}

func (f *flows) listening(network string, addr net.Addr) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return
	}
	ap := ta.AddrPort()
	f.mu.Lock()
	f.listeners[network] = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	f.mu.Unlock()
}

// sourceOOB is the control message that sends a datagram from src (nil
// when src cannot be named so), made once per local address.
func (f *flows) sourceOOB(src netip.Addr) []byte {
	if b, ok := (*f.oobs.Load())[src]; ok {
		return b
	}
	b := sourceOOB(src)
	f.oobMu.Lock()
	defer f.oobMu.Unlock()
	old := *f.oobs.Load()
	if len(old) >= maxSourceOOBs {
		return b // not a local address we will see again, most likely
	}
	m := make(map[netip.Addr][]byte, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[src] = b
	f.oobs.Store(&m)
	return b
}

// sentBy is the address our Via names on req, which goes to p: the
// advertised address if set, else the flow's local address, else the
// configured Host and Port.
func (l *Layer) sentBy(req *sip.Request, p peer) (string, int) {
	adv := l.flows.advertise
	if adv.IsValid() && adv.Port() != 0 {
		return l.flows.advHost, int(adv.Port())
	}
	host, port := l.cfg.Host, l.cfg.Port
	var lc localEnd
	var ok bool
	if p.reliable() {
		lc, ok = l.localStream(p.network, req.Destination())
	} else {
		lc, ok = l.localUDP(p.addr)
	}
	if ok {
		host, port = lc.host, int(lc.addr.Port())
	}
	if adv.IsValid() {
		host = l.flows.advHost
	}
	return host, port
}
