// Package txn is the edge's SIP transaction layer (RFC 3261 section 17,
// with the Accepted states of RFC 6026) over sipgo's parser and transports.
//
// Every message is matched on the goroutine that read it: retransmissions
// are absorbed (or answered with the last response) there, and only new
// requests and new responses reach the transaction user. A finished
// transaction keeps just its key and, where the peer may still retransmit,
// the bytes of its last message on the wire; one timer wheel drives every
// retransmission and timeout. Nothing here starts a goroutine per message or
// per transaction.
//
// Each message read names, as its Destination, the local address it
// arrived on, and what we write as ours follows the flow (local.go): a
// node on the wildcard address answers from, and advertises, the address
// the peer used. TCP and TLS connections are capped per source and closed
// when their first SIP message is late (stream.go).
package txn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Timers of RFC 3261 (section 17.1.1.1, table 4).
const (
	T1 = 500 * time.Millisecond
	T2 = 4 * time.Second
	T4 = 5 * time.Second
	// linger is 64·T1: timers B, D, F, H, J, L and M.
	linger = 64 * T1
	// trying is how long an INVITE may wait for its first response before
	// the layer sends 100 Trying (RFC 3261 17.2.1).
	trying = 200 * time.Millisecond
)

// ErrFinal: the transaction has sent its final response already.
var ErrFinal = errors.New("txn: final response already sent")

// Config of a layer.
type Config struct {
	// Host and Port are written in the Via of a request sent when the
	// flow's local address is unknown (a destination named, not an
	// address, or no socket for its transport yet).
	Host string
	Port int
	// Advertise, when valid, is written in our Via instead of the flow's
	// local address: a NAT's public address. A port of 0 keeps the flow's.
	Advertise netip.AddrPort
	// ConnsPerSource caps the TCP and TLS connections one source (an IPv4
	// address, an IPv6 /64) holds open; one more is closed at once. 0: 1024.
	ConnsPerSource int
	// FirstMessageTimeout is how long a TCP or TLS connection accepted has
	// to deliver its first SIP message before it is closed. 0: 10 s.
	FirstMessageTimeout time.Duration
	// OnRequest gets each new request and its server transaction; an ACK
	// that no transaction takes (the ACK of a 2xx) comes with a nil tx. It
	// runs on the reading goroutine: it must not block.
	OnRequest func(req *sip.Request, tx *ServerTx)
	// OnResponse gets the 2xx responses to an INVITE whose transaction has
	// ended: retransmissions, which the dialog acknowledges again, and the
	// answers of other forks. Other stray responses are dropped.
	OnResponse func(res *sip.Response)
	// OnDrop counts a message dropped, by reason.
	OnDrop func(reason string)
	// Log is the layer's logger; the transports' is TransportLog.
	Log          *slog.Logger
	TransportLog *slog.Logger
	// Now, when set, is the clock, and the timers run only when the test
	// calls advance.
	Now func() time.Time
}

// Layer is the transaction layer of one SIP edge.
type Layer struct {
	cfg     Config
	now     func() time.Time
	parser  *sip.Parser
	tp      *sip.TransportLayer // reliable transports
	udp     atomic.Pointer[udpSocket]
	timers  *wheel
	flows   flows
	streams streams
	stop    chan struct{}
	closed  sync.Once

	srvMu   sync.Mutex
	servers map[string]*ServerTx
	cliMu   sync.Mutex
	clients map[string]*ClientTx
}

// New builds a layer; Serve* feed it.
func New(cfg Config) *Layer {
	l := &Layer{cfg: cfg, now: cfg.Now, parser: sip.NewParser(), stop: make(chan struct{}),
		servers: map[string]*ServerTx{}, clients: map[string]*ClientTx{}}
	if cfg.Log == nil {
		l.cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.TransportLog == nil {
		l.cfg.TransportLog = l.cfg.Log
	}
	if l.cfg.OnDrop == nil {
		l.cfg.OnDrop = func(string) {}
	}
	if l.cfg.ConnsPerSource <= 0 {
		l.cfg.ConnsPerSource = DefaultConnsPerSource
	}
	if l.cfg.FirstMessageTimeout <= 0 {
		l.cfg.FirstMessageTimeout = DefaultFirstMessageTimeout
	}
	l.flows.init(l.cfg.Advertise)
	l.streams.init()
	l.tp = sip.NewTransportLayer(net.DefaultResolver, l.parser, nil,
		sip.WithTransportLayerLogger(slog.New(peerFaults{l.cfg.TransportLog.Handler()})))
	l.tp.OnMessage(l.handle)
	if l.now == nil {
		l.now = time.Now
		l.timers = newWheel(time.Now())
		go l.timers.run(l.stop)
	} else {
		l.timers = newWheel(l.now())
	}
	return l
}

// Close stops the timers and the reliable transports.
func (l *Layer) Close() error {
	l.closed.Do(func() { close(l.stop) })
	return l.tp.Close()
}

// advance runs the timers due by the test clock's now.
func (l *Layer) advance() { l.timers.advance(l.now()) }

// udpSocket is the socket messages over UDP leave by.
type udpSocket struct {
	conn *net.UDPConn
	addr netip.AddrPort // as bound: the wildcard address, usually
	host string         // addr's IP as text, when bound to one address
}

func newUDPSocket(conn *net.UDPConn) *udpSocket {
	ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	s := &udpSocket{conn: conn, addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	if !s.wildcard() {
		s.host = s.addr.Addr().String()
	}
	return s
}

// wildcard: bound to every local address, so that which one a datagram
// used is the kernel's to tell (pktinfo.go).
func (s *udpSocket) wildcard() bool { return s.addr.Addr().IsUnspecified() }

// Bound names the socket that messages over UDP leave by, before any is
// served, and the port the edge bound (Config.Port when that was 0). It is
// called once, before anything is sent or served.
func (l *Layer) Bound(conn *net.UDPConn, port int) {
	l.cfg.Port = port
	l.UseUDP(conn)
}

// UseUDP names the socket that messages over UDP leave by, before any is
// served (ServeUDP names its own when none is).
func (l *Layer) UseUDP(conn *net.UDPConn) { l.udp.CompareAndSwap(nil, newUDPSocket(conn)) }

// ServeUDP reads SIP from conn until it is closed; responses and requests
// over UDP leave through it. Each message read carries, as its
// Destination, the local address it arrived on.
func (l *Layer) ServeUDP(conn *net.UDPConn) error {
	sock := newUDPSocket(conn)
	l.udp.CompareAndSwap(nil, sock)
	to := arrivals{port: sock.addr.Port(), names: map[netip.Addr]string{}}
	if sock.wildcard() {
		if err := recvLocal(conn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	} else {
		to.bound = sock.addr.String()
	}
	buf := make([]byte, 65535)
	oob := make([]byte, oobSize)
	for {
		n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("txn: read udp: %w", err)
		}
		data := buf[:n]
		if len(bytes.Trim(data, "\r\n\x00")) == 0 {
			continue // keepalive
		}
		msg, err := l.parser.ParseSIP(data)
		if err != nil {
			l.cfg.OnDrop("unparseable")
			l.cfg.Log.Debug("sip: dropped unparseable message", "from", from, "err", err)
			continue
		}
		msg.SetTransport("UDP")
		msg.SetSource(netip.AddrPortFrom(from.Addr().Unmap(), from.Port()).String())
		msg.SetDestination(to.name(oob[:oobn]))
		l.handle(msg)
	}
}

// arrivals names, as "ip:port", the local address the datagrams of one
// socket arrived on, without formatting one name per datagram.
type arrivals struct {
	port  uint16
	bound string // the socket's address, when bound to one
	names map[netip.Addr]string
}

// maxArrivalNames bounds the names kept: a host has a few addresses.
const maxArrivalNames = 64

func (a *arrivals) name(oob []byte) string {
	if a.bound != "" {
		return a.bound
	}
	local, ok := localOf(oob)
	if !ok {
		return ""
	}
	if s, ok := a.names[local]; ok {
		return s
	}
	if len(a.names) >= maxArrivalNames {
		clear(a.names)
	}
	s := netip.AddrPortFrom(local, a.port).String()
	a.names[local] = s
	return s
}

// ServeTCP serves SIP over TCP connections accepted from ln, at most
// ConnsPerSource per source, each closed unless its first SIP message
// comes within FirstMessageTimeout.
func (l *Layer) ServeTCP(ln net.Listener) error {
	return l.tp.ServeTCP(l.listen("TCP", ln))
}

// ServeTLS serves SIP over TLS connections accepted from ln (a tls
// listener), as ServeTCP does.
func (l *Layer) ServeTLS(ln net.Listener) error {
	return l.tp.ServeTLS(l.listen("TLS", ln))
}

func (l *Layer) handle(msg sip.Message) {
	if msg.Transport() != "UDP" {
		l.arrivedOnStream(msg)
	}
	switch m := msg.(type) {
	case *sip.Request:
		l.onRequest(m)
	case *sip.Response:
		l.onResponse(m)
	}
}

// ---- the wire -----------------------------------------------------------------

// peer is where a transaction's messages go.
type peer struct {
	network string         // UDP, TCP, TLS, WS, WSS
	addr    netip.AddrPort // UDP
	src     []byte         // UDP: the control message naming our source address, or nil
	conn    string         // reliable: the connection's remote address
}

func (p peer) reliable() bool { return p.network != "UDP" }

// responsePeer is where responses to req go (RFC 3261 18.2.2, RFC 3581):
// over UDP to the source address, and to the Via's port unless the client
// asked for rport; over a connection, back on it.
func responsePeer(req *sip.Request) (peer, error) {
	p := peer{network: strings.ToUpper(req.Transport())}
	if p.network == "" {
		p.network = "UDP"
	}
	if p.reliable() {
		p.conn = req.Source()
		return p, nil
	}
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return p, fmt.Errorf("txn: source %q: %w", req.Source(), err)
	}
	p.addr = src
	if via := req.Via(); via != nil && !via.Params.Has("rport") {
		port := via.Port
		if port == 0 {
			port = 5060
		}
		if port < 0 || port > 65535 {
			return p, fmt.Errorf("txn: Via port %d", port)
		}
		p.addr = netip.AddrPortFrom(src.Addr(), uint16(port))
	}
	return p, nil
}

// replyPeer is responsePeer, sent from the local address req arrived on
// when the socket has several (a multi-homed host answers from the address
// the phone used).
func (l *Layer) replyPeer(req *sip.Request) (peer, error) {
	p, err := responsePeer(req)
	if err != nil || p.reliable() {
		return p, err
	}
	if s := l.udp.Load(); s != nil && s.wildcard() {
		if local, err := netip.ParseAddrPort(req.MessageData.Destination()); err == nil {
			p.src = l.flows.sourceOOB(local.Addr())
		}
	}
	return p, nil
}

// MayBlock tells whether sending req may block: over a connection (which
// may have to be opened) or to a host name (to be looked up). Over UDP to an
// address it cannot.
func MayBlock(req *sip.Request) bool {
	if !strings.EqualFold(req.Transport(), "UDP") {
		return true
	}
	host, _, err := net.SplitHostPort(req.Destination())
	if err != nil {
		return false // refused at once by requestPeer
	}
	_, err = netip.ParseAddr(host)
	return err != nil
}

// requestPeer is where req goes: its destination (by default its first
// Route's or its Request-URI's host and port). A name is looked up, which
// blocks.
func requestPeer(req *sip.Request) (peer, error) {
	p := peer{network: strings.ToUpper(req.Transport())}
	if p.reliable() {
		return p, nil // sipgo's transport resolves and dials
	}
	dest := req.Destination()
	host, ps, err := net.SplitHostPort(dest)
	if err != nil {
		return p, fmt.Errorf("txn: destination %q: %w", dest, err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port <= 0 || port > 65535 {
		return p, fmt.Errorf("txn: destination %q: bad port", dest)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if ip, err = Resolve(host); err != nil {
			return p, err
		}
	}
	p.addr = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	return p, nil
}

// Resolve looks up the address a UDP request to host goes to. It blocks
// (see MayBlock).
func Resolve(host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("txn: resolve %q: %w", host, err)
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("txn: resolve %q: no IPv4 address", host)
	}
	return ips[0].Unmap(), nil
}

var wires = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// send puts msg on the wire to p and returns its bytes when they may be
// sent again (over UDP).
func (l *Layer) send(p peer, msg sip.Message) ([]byte, error) {
	if p.reliable() {
		var err error
		switch m := msg.(type) {
		case *sip.Request:
			err = l.tp.WriteMsg(m)
		case *sip.Response:
			err = l.tp.WriteMsgTo(m, p.conn, p.network)
		}
		if err != nil {
			return nil, fmt.Errorf("txn: write %s: %w", p.network, err)
		}
		return nil, nil
	}
	buf := wires.Get().(*bytes.Buffer)
	buf.Reset()
	msg.StringWrite(buf)
	wire := bytes.Clone(buf.Bytes())
	wires.Put(buf)
	return wire, l.resend(p, wire)
}

// resend writes bytes already on the wire once more.
func (l *Layer) resend(p peer, wire []byte) error {
	s := l.udp.Load()
	if s == nil {
		return errors.New("txn: no UDP socket")
	}
	var err error
	if p.src != nil {
		_, _, err = s.conn.WriteMsgUDPAddrPort(wire, p.src, p.addr)
	} else {
		_, err = s.conn.WriteToUDPAddrPort(wire, p.addr)
	}
	if err != nil {
		return fmt.Errorf("txn: write udp %s: %w", p.addr, err)
	}
	return nil
}

// ---- matching -----------------------------------------------------------------

const magicCookie = "z9hG4bK"

// serverKey identifies the server transaction of req (RFC 3261 17.2.3):
// branch, sent-by and method, with an ACK matching its INVITE. Requests of
// RFC 2543 peers (no magic cookie) fall back to the fields that identify a
// transaction there.
func serverKey(req *sip.Request, method sip.RequestMethod) (string, bool) {
	via := req.Via()
	if via == nil {
		return "", false
	}
	branch, _ := via.Params.Get("branch")
	var b strings.Builder
	b.WriteString(string(method))
	b.WriteByte(' ')
	if strings.HasPrefix(branch, magicCookie) && len(branch) > len(magicCookie) {
		b.WriteString(branch)
	} else {
		cseq, callID, from := req.CSeq(), req.CallID(), req.From()
		if cseq == nil || callID == nil || from == nil {
			return "", false
		}
		tag, _ := from.Params.Get("tag")
		b.WriteString(callID.Value())
		b.WriteByte(' ')
		b.WriteString(tag)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatUint(uint64(cseq.SeqNo), 10))
	}
	b.WriteByte(' ')
	b.WriteString(via.Host)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(via.Port))
	return b.String(), true
}

// clientKey identifies the client transaction a response belongs to: the
// branch we put in its top Via and the CSeq method (RFC 3261 17.1.3).
func clientKey(branch string, method sip.RequestMethod) string {
	return string(method) + " " + branch
}

func (l *Layer) onRequest(req *sip.Request) {
	method := req.Method
	if req.IsAck() {
		method = sip.INVITE
	}
	key, ok := serverKey(req, method)
	if !ok {
		// Unmatchable (no Via, say): the transaction user refuses it, and
		// nothing is kept.
		if req.IsAck() {
			l.cfg.OnDrop("invalid_ack")
			return
		}
		p, err := l.replyPeer(req)
		if err != nil {
			l.cfg.OnDrop("unroutable")
			return
		}
		l.cfg.OnRequest(req, &ServerTx{l: l, req: req, to: p, invite: req.IsInvite()})
		return
	}
	l.srvMu.Lock()
	tx := l.servers[key]
	l.srvMu.Unlock()
	if tx != nil {
		if req.IsAck() {
			if tx.ack() {
				return
			}
			// The ACK of a 2xx that reused its INVITE's branch: the
			// dialog's to take.
			l.cfg.OnRequest(req, nil)
			return
		}
		tx.retransmitted()
		return
	}
	if req.IsAck() {
		l.cfg.OnRequest(req, nil)
		return
	}
	p, err := l.replyPeer(req)
	if err != nil {
		l.cfg.OnDrop("unroutable")
		return
	}
	tx = &ServerTx{l: l, key: key, req: req, to: p, invite: req.IsInvite()}
	l.srvMu.Lock()
	if prev := l.servers[key]; prev != nil {
		// Another reader took the same request first.
		l.srvMu.Unlock()
		prev.retransmitted()
		return
	}
	l.servers[key] = tx
	l.srvMu.Unlock()
	if tx.invite {
		tx.mu.Lock()
		tx.armLocked(trying) // a 100 Trying if the user is slow to answer
		tx.mu.Unlock()
	}
	if req.IsCancel() {
		l.onCancel(req, tx)
		return
	}
	l.cfg.OnRequest(req, tx)
}

// onCancel answers a CANCEL of a pending INVITE (200, then 487 to the
// INVITE, RFC 3261 9.2); one that matches nothing goes to the user.
func (l *Layer) onCancel(req *sip.Request, tx *ServerTx) {
	key, ok := serverKey(req, sip.INVITE)
	var inv *ServerTx
	if ok {
		l.srvMu.Lock()
		inv = l.servers[key]
		l.srvMu.Unlock()
	}
	if inv == nil {
		l.cfg.OnRequest(req, tx)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if tag := inv.toTag(); tag != "" {
		res.To().Params.Add("tag", tag) // the INVITE's, as its 487 has (RFC 3261 9.2)
	}
	_ = tx.Respond(res)
	inv.cancel()
}

func (l *Layer) forget(key string, tx *ServerTx) {
	if key == "" {
		return
	}
	l.srvMu.Lock()
	if l.servers[key] == tx {
		delete(l.servers, key)
	}
	l.srvMu.Unlock()
}

func (l *Layer) onResponse(res *sip.Response) {
	via, cseq := res.Via(), res.CSeq()
	if via == nil || cseq == nil {
		l.cfg.OnDrop("invalid_response")
		return
	}
	branch, _ := via.Params.Get("branch")
	key := clientKey(branch, cseq.MethodName)
	l.cliMu.Lock()
	tx := l.clients[key]
	l.cliMu.Unlock()
	if tx != nil {
		tx.receive(res)
		return
	}
	if cseq.MethodName == sip.INVITE && res.IsSuccess() && l.cfg.OnResponse != nil {
		l.cfg.OnResponse(res)
		return
	}
	l.cfg.OnDrop("stray_response")
}

func (l *Layer) dropClient(key string, tx *ClientTx) {
	l.cliMu.Lock()
	if l.clients[key] == tx {
		delete(l.clients, key)
	}
	l.cliMu.Unlock()
}

// Pending is how many transactions the layer holds (server, client).
func (l *Layer) Pending() (servers, clients int) {
	l.srvMu.Lock()
	servers = len(l.servers)
	l.srvMu.Unlock()
	l.cliMu.Lock()
	clients = len(l.clients)
	l.cliMu.Unlock()
	return servers, clients
}
