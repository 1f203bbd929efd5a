package txn

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sipgo's TCP and TLS transports read the connections we accept; the layer
// wraps the listener it gives them, so that one source cannot hold more
// than ConnsPerSource connections open, and a connection that delivers no
// SIP message within FirstMessageTimeout is closed by its own read
// deadline (no goroutine or timer of ours per connection). After its first
// message a connection may idle as long as its peer likes: phones keep a
// registration's connection open for hours with CRLF keepalives.

// The guards' defaults (Config.ConnsPerSource, FirstMessageTimeout).
const (
	// DefaultConnsPerSource is high enough for an office of TCP or TLS
	// phones behind one NAT address; the first-message deadline, not this
	// cap, is what closes a flood of idle connections.
	DefaultConnsPerSource      = 1024
	DefaultFirstMessageTimeout = 10 * time.Second
)

const (
	// refusalLog is how often connections refused to one source are
	// logged: a flood writes one line a minute, not one per connection.
	refusalLog = time.Minute
	// maxAcceptDelay caps the pause after a failed accept.
	maxAcceptDelay = time.Second
)

// streams are the connections the layer accepted.
type streams struct {
	mu      sync.Mutex
	conns   map[flowKey]*streamConn
	sources map[netip.Addr]*source
}

type flowKey struct{ network, remote string }

// source is what one source address holds.
type source struct {
	open    int
	refused int       // since the last log line
	logged  time.Time // of the last log line
}

func (s *streams) init() {
	s.conns, s.sources = map[flowKey]*streamConn{}, map[netip.Addr]*source{}
}

func (s *streams) get(network, remote string) *streamConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[flowKey{network, remote}]
}

// sourceOf is what the per-source cap counts by: an IPv4 address, or an
// IPv6 one's /64 (what one subscriber gets).
func sourceOf(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// listen wraps ln for sipgo and notes where network is served.
func (l *Layer) listen(network string, ln net.Listener) net.Listener {
	l.flows.listening(network, ln.Addr())
	return &streamListener{Listener: ln, l: l, network: network}
}

type streamListener struct {
	net.Listener
	l       *Layer
	network string
}

// Accept returns the next connection within its source's cap. A failure
// for want of file descriptors or memory is waited out, not returned:
// sipgo stops serving at the first error.
func (ln *streamListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := ln.Listener.Accept()
		if err != nil {
			if !transient(err) {
				return nil, err
			}
			delay = min(max(2*delay, 5*time.Millisecond), maxAcceptDelay)
			ln.l.cfg.Log.Warn("sip: accept failed; retrying", "network", ln.network, "in", delay, "err", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		if sc := ln.l.admit(ln.network, c); sc != nil {
			return sc, nil
		}
	}
}

func transient(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// admit registers c, or closes it when its source holds its cap already.
func (l *Layer) admit(network string, c net.Conn) *streamConn {
	remote := c.RemoteAddr().String()
	var ra, la netip.AddrPort
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ra = a.AddrPort()
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		la = a.AddrPort()
	}
	la = netip.AddrPortFrom(la.Addr().Unmap(), la.Port())
	src := sourceOf(ra.Addr())
	s := &l.streams
	s.mu.Lock()
	n := s.sources[src]
	if n == nil {
		n = &source{}
		s.sources[src] = n
	}
	if n.open >= l.cfg.ConnsPerSource {
		n.refused++
		refused, now := n.refused, l.now()
		log := now.Sub(n.logged) >= refusalLog
		if log {
			n.refused, n.logged = 0, now
		}
		s.mu.Unlock()
		l.cfg.OnDrop("tcp_limit")
		if log {
			l.cfg.Log.Info("sip: connections refused: the source holds its limit", "network", network,
				"source", src, "limit", l.cfg.ConnsPerSource, "refused", refused)
		}
		abort(c)
		return nil
	}
	n.open++
	sc := &streamConn{Conn: c, l: l, key: flowKey{network, remote}, src: src,
		local: localEnd{la, la.Addr().WithZone("").String()}, name: la.String()}
	s.conns[sc.key] = sc
	s.mu.Unlock()
	_ = c.SetReadDeadline(time.Now().Add(l.cfg.FirstMessageTimeout))
	return sc
}

// abort closes a connection refused at accept with a reset, which leaves
// no TIME_WAIT behind on our side: a flood of them costs nothing after.
func abort(c net.Conn) {
	raw := c
	if t, ok := c.(*tls.Conn); ok {
		raw = t.NetConn()
	}
	if t, ok := raw.(*net.TCPConn); ok {
		_ = t.SetLinger(0)
	}
	_ = raw.Close()
}

// streamConn is a connection accepted, as sipgo reads it.
type streamConn struct {
	net.Conn
	l       *Layer
	key     flowKey
	src     netip.Addr
	local   localEnd
	name    string // local as "ip:port": inbound messages' Destination
	valid   atomic.Bool
	closing atomic.Bool
}

func (c *streamConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && !c.valid.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		c.l.cfg.OnDrop("tcp_idle")
		c.l.cfg.Log.Debug("sip: connection closed: no SIP message in time", "network", c.key.network,
			"remote", c.key.remote, "after", c.l.cfg.FirstMessageTimeout)
	}
	return n, err
}

func (c *streamConn) Close() error {
	if c.closing.CompareAndSwap(false, true) {
		s := &c.l.streams
		s.mu.Lock()
		if s.conns[c.key] == c {
			delete(s.conns, c.key)
		}
		if n := s.sources[c.src]; n != nil {
			if n.open--; n.open <= 0 {
				delete(s.sources, c.src)
			}
		}
		s.mu.Unlock()
	}
	return c.Conn.Close()
}

// delivered: a SIP message came on c. Its first lifts the deadline.
func (c *streamConn) delivered() {
	if c.valid.CompareAndSwap(false, true) {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
}

// arrivedOnStream notes a message read from a connection: it names the
// local end as its Destination, and keeps an accepted connection open.
func (l *Layer) arrivedOnStream(msg sip.Message) {
	network := msg.Transport()
	if c := l.streams.get(network, msg.Source()); c != nil {
		c.delivered()
		msg.SetDestination(c.name)
		return
	}
	if lc, ok := l.localStream(network, msg.Source()); ok {
		msg.SetDestination(lc.addr.String()) // a connection we opened
	}
}

// peerFaults lowers to debug what sipgo's stream transports log at error
// level when a read ends a connection: a reset, a read deadline, a TLS
// handshake gone wrong. Each is one peer's (or its path's) doing and ends
// that one connection; at error level a flood of them would be a flood of
// error lines.
type peerFaults struct{ next slog.Handler }

// sipgo's messages for a read that ended a connection and a keepalive's
// answer that could not be written (sip/transport_tcp.go in v1.7.2).
var peerFaultMsgs = map[string]bool{"Read error": true, "Failed to pong keep alive": true}

func (h peerFaults) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h peerFaults) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && peerFaultMsgs[r.Message] {
		q := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
		r.Attrs(func(a slog.Attr) bool { q.AddAttrs(a); return true })
		r = q
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h peerFaults) WithAttrs(as []slog.Attr) slog.Handler { return peerFaults{h.next.WithAttrs(as)} }

func (h peerFaults) WithGroup(name string) slog.Handler { return peerFaults{h.next.WithGroup(name)} }
