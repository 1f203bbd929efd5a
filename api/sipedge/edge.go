// Package sipedge is the SIP edge of a node (folder api/sip): it owns the
// sockets, transactions and dialogs of the legs created here and turns SIP
// into commands for the call and line grains, and their commands back into
// SIP. It holds no business rules: who rings, who may answer, what hold
// means are the grains' to decide.
package sipedge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/api/authguard"
	"github.com/switchboard/switchboard/api/sipedge/digest"
	"github.com/switchboard/switchboard/api/sipedge/txn"
	"github.com/switchboard/switchboard/api/sipedge/validate"
	"github.com/switchboard/switchboard/cluster/metrics"
	pb "github.com/switchboard/switchboard/proto"
)

// Identity is who a request comes from, as the directory knows them.
type Identity struct {
	UserID  string
	Number  string // extension of a user, E.164 of an outside caller
	Display string
	TrunkID string
}

// Directory is what the edge reads of users and trunks.
type Directory interface {
	// HA1 returns the digest HA1 of username (id or extension) and its user id.
	HA1(alg, username string) (ha1, userID string, ok bool)
	// User returns a user's identity.
	User(userID string) (Identity, bool)
	// Resolve maps a REGISTER To user part (id or extension) to a user id.
	Resolve(userPart string) (userID string, ok bool)
	// Line maps a SUBSCRIBE target (a user's id or extension, a shared line
	// group's extension) to the line whose lamp it is.
	Line(userPart string) (lineID string, ok bool)
	// TrunkBySource returns the trunk whose inbound CIDRs hold ip.
	TrunkBySource(ip netip.Addr) (trunkID string, ok bool)
}

// Authenticator checks digest credentials (DigestAuth).
type Authenticator interface {
	// Challenge's nonce is bound to peer, the client's address: only
	// Verify with the same peer accepts it, so that failures count only
	// against an address that received its challenge (not a forged one).
	Challenge(peer netip.Addr, stale bool) []string
	// Verify says how the request is answered; username is set when it
	// is accepted.
	Verify(peer netip.Addr, method, header string, ha1 func(alg, username string) (string, bool)) (username string, a digest.Answer)
}

// Config of the edge.
type Config struct {
	NodeID   string
	NodeAddr string // this node's actor address (grains send commands here)
	Domain   string
	Host     string // address written in Contact and Via when the flow names none
	Port     int
	// Advertise, when set, is the address written in Contact and Via
	// instead of the local one a flow uses (a NAT's public address).
	Advertise netip.Addr
	Dir       Directory
	Auth      Authenticator
	Cluster   func() *cluster.Cluster // the call grains' PIDs, for the legs' reports
	Lines     line.Client
	Calls     call.Client
	Draining  func() bool // this node drains: the grains refuse its new calls
	// Pickup names the call a *8<target> pickup takes (the line grain's
	// answer); nil or false: nothing to pick up.
	Pickup func(target string) (callID string, ok bool)
	// Join names the active call a *7<target> join takes; nil or false:
	// nothing to join.
	Join func(target string) (callID string, ok bool)
	// LineState is a line's calls now; LineUpdates streams every change of
	// any line (stop ends it). Both feed busy lamp subscriptions.
	LineState   func(line string) ([]LineCall, error)
	LineUpdates func() (updates <-chan LineUpdate, stop func())
	// Messages takes MESSAGEs (nil: MESSAGE is answered 405 as before).
	Messages Messages
	Log      *slog.Logger
	// Guard refuses sources that fail digest authentication too often
	// (nil: no limit).
	Guard *authguard.Guard
	// ConnsPerSource and FirstMessageTimeout guard TCP and TLS (txn.Config;
	// 0: the layer's defaults).
	ConnsPerSource      int
	FirstMessageTimeout time.Duration
}

// Edge is the node's SIP edge.
type Edge struct {
	cfg   Config
	layer *txn.Layer
	udp   *net.UDPConn
	tcp   net.Listener

	mu      sync.RWMutex
	legs    map[string]*leg          // leg id -> leg
	dialogs map[string]*leg          // dialog key -> leg
	forks   map[string]*leg          // Call-ID and From tag of our INVITE -> its leg
	subs    map[string]*subscription // dialog key -> busy lamp subscription
	active  atomic.Int64             // legs up, for drain
	admit   *admission               // new calls waiting for their grain
	// msgTimeout bounds how long a MESSAGE waits to be stored.
	msgTimeout time.Duration
	// self is the "sip" actor once spawned: legs' reports name it as their
	// sender, so a grain that no longer has their call can end them.
	self atomic.Pointer[actor.PID]
}

// New builds the edge; Listen and Serve put it on the wire.
func New(cfg Config) *Edge {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e := &Edge{cfg: cfg, legs: map[string]*leg{}, dialogs: map[string]*leg{}, forks: map[string]*leg{}, subs: map[string]*subscription{}, admit: newAdmission(time.Now), msgTimeout: messageTimeout}
	e.layer = txn.New(txn.Config{
		Host: cfg.Host, Port: cfg.Port, Log: cfg.Log,
		ConnsPerSource: cfg.ConnsPerSource, FirstMessageTimeout: cfg.FirstMessageTimeout,
		Advertise:    advertised(cfg.Advertise),
		TransportLog: slog.New(parseFailures{cfg.Log.Handler()}),
		OnRequest:    e.onRequest, OnResponse: e.onStray2xx,
		OnDrop: func(reason string) { metrics.SIPDropped.WithLabelValues(reason).Inc() },
	})
	return e
}

// advertised is the address the layer writes in Via instead of each flow's:
// the advertised IP with port 0, which keeps each flow's own port.
func advertised(ip netip.Addr) netip.AddrPort {
	if !ip.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, 0)
}

// Listen binds the SIP port at addr, over UDP and TCP on the same port, and
// returns the UDP address bound.
//
// Port 0 takes a port free for both UDP and TCP, so that tests need not
// guess one that another process may take before the node binds it.
func (e *Edge) Listen(addr string) (*net.UDPAddr, error) {
	la, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sip: listen %s: %w", addr, err)
	}
	tries := 1
	if la.Port == 0 {
		tries = 20 // the TCP side of a port the kernel gave UDP may be taken
	}
	for {
		udp, err := net.ListenUDP("udp", la)
		if err != nil {
			return nil, fmt.Errorf("sip: listen %s: %w", addr, err)
		}
		bound := udp.LocalAddr().(*net.UDPAddr)
		tcp, err := net.Listen("tcp", net.JoinHostPort(bound.IP.String(), strconv.Itoa(bound.Port)))
		if err != nil {
			udp.Close()
			if tries--; tries > 0 && errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, fmt.Errorf("sip: listen tcp %s: %w", addr, err)
		}
		growBuffers(udp, udpBuffer)
		e.udp, e.tcp = udp, tcp
		e.cfg.Port = bound.Port
		e.layer.Bound(udp, bound.Port) // a grain or a lamp may send before Serve reads
		return bound, nil
	}
}

// Serve serves what Listen bound until ctx ends.
func (e *Edge) Serve(ctx context.Context) error {
	if e.udp == nil {
		return errors.New("sip: serve before listen")
	}
	errc := make(chan error, 2)
	go e.followLines(ctx)
	go e.gaugeTransactions(ctx)
	go e.watchRouting(ctx)
	go func() { errc <- e.layer.ServeUDP(e.udp) }()
	go func() { errc <- e.layer.ServeTCP(e.tcp) }()
	select {
	case <-ctx.Done():
		e.udp.Close()
		e.tcp.Close()
		return nil
	case err := <-errc:
		e.udp.Close()
		e.tcp.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sip: serve: %w", err)
	}
}

// gaugeTransactions shows in /metrics how many transactions the layer
// holds, every few seconds until ctx ends.
func (e *Edge) gaugeTransactions(ctx context.Context) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			servers, clients := e.layer.Pending()
			metrics.SIPTransactions.WithLabelValues("server").Set(float64(servers))
			metrics.SIPTransactions.WithLabelValues("client").Set(float64(clients))
		}
	}
}

// udpBuffer is the SIP socket's receive buffer. The kernel default (208
// KiB, a few hundred requests) overflows whenever the process is off the
// CPU for a moment at a few hundred calls/s, and every dropped request
// costs its sender a 500 ms retransmission timer.
const udpBuffer = 8 << 20

// growBuffers asks for size bytes of socket buffers: past
// net.core.rmem_max when the process may (CAP_NET_ADMIN), else up to it.
func growBuffers(conn *net.UDPConn, size int) {
	_ = conn.SetReadBuffer(size)
	_ = conn.SetWriteBuffer(size)
	raw, err := conn.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, size)
	})
}

// ServeTLS listens for SIP over TLS on addr until ctx ends.
func (e *Edge) ServeTLS(ctx context.Context, addr string, conf *tls.Config) error {
	ln, err := tls.Listen("tcp", addr, conf)
	if err != nil {
		return fmt.Errorf("sip: listen tls %s: %w", addr, err)
	}
	go func() { <-ctx.Done(); ln.Close() }()
	err = e.layer.ServeTLS(ln) // returns once the listener is closed
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("sip: serve tls %s: %w", addr, err)
}

// Close stops the transaction layer (timers and connections).
func (e *Edge) Close() error { return e.layer.Close() }

// ActiveLegs is how many legs this node holds.
func (e *Edge) ActiveLegs() int64 { return e.active.Load() }

// Props is the "sip" actor that receives leg commands from grains on other
// nodes.
func (e *Edge) Props() *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*actor.Started); ok {
			e.self.Store(ctx.Self())
			return
		}
		e.Command(ctx.Message(), ctx.Sender())
	})
}

// Command carries out a grain's leg command. It is safe for concurrent use:
// a grain on this node calls it directly, which saves a mailbox hop. grain
// is the sending call grain, when known: a leg it originates reports to it
// without looking it up.
func (e *Edge) Command(msg any, grain *actor.PID) {
	switch m := msg.(type) {
	case *pb.LegRespond:
		e.admit.routed(m.CallId)
		if l := e.leg(m.LegId); l != nil {
			l.respond(m)
		}
	case *pb.LegEnd:
		e.admit.routed(m.CallId)
		if l := e.leg(m.LegId); l != nil {
			l.end(m)
		}
	case *pb.LegOriginate:
		e.admit.routed(m.CallId)
		e.originate(m, grain)
	case *pb.SmsOut:
		e.SendMessage(m)
	}
}

func (e *Edge) leg(id string) *leg {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.legs[id]
}

func (e *Edge) addLeg(l *leg) {
	e.mu.Lock()
	e.legs[l.id] = l
	e.mu.Unlock()
	e.active.Add(1)
}

func (e *Edge) bindDialog(id string, l *leg) {
	e.mu.Lock()
	e.dialogs[id] = l
	l.dialogID = id
	e.mu.Unlock()
}

// bindFork files an outbound leg under its INVITE's Call-ID and From tag:
// the answers of other forks carry those and a To tag of their own.
func (e *Edge) bindFork(key string, l *leg) {
	e.mu.Lock()
	e.forks[key] = l
	l.forkKey = key
	e.mu.Unlock()
}

func (e *Edge) dropLeg(l *leg) {
	e.mu.Lock()
	_, ok := e.legs[l.id]
	delete(e.legs, l.id)
	if l.dialogID != "" {
		delete(e.dialogs, l.dialogID)
	}
	if l.forkKey != "" {
		delete(e.forks, l.forkKey)
	}
	e.mu.Unlock()
	if ok {
		e.active.Add(-1)
	}
}

// inDialog finds the leg an in-dialog request belongs to, whichever side
// of the dialog we are on.
func (e *Edge) inDialog(req *sip.Request) *leg {
	key, ok := requestKey(req)
	if !ok {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dialogs[key]
}

// toGrain sends a message to the leg's call grain without waiting, and
// says whether it could: false when the cluster placed no grain for the
// call (Cluster.Get gives nil when its placement actor does not answer
// within 5 s, or no member is known). The grain's PID is looked up once
// per leg: Cluster.Get asks the placement actor every time, and a leg
// reports half a dozen events. A grain that is gone stays gone (its call
// state went with it), so the PID cannot go stale in a way a new lookup
// would mend. The edge's actor is the sender: a grain without the call
// ends the leg there.
func (l *leg) toGrain(msg any) bool {
	cl := l.e.cfg.Cluster()
	pid := l.grain.Load()
	if pid == nil {
		if pid = cl.Get(l.callID, call.KindName); pid == nil {
			l.e.cfg.Log.Warn("sip: no call grain", "call", l.callID, "message", fmt.Sprintf("%T", msg))
			return false
		}
		l.grain.Store(pid)
	}
	cl.ActorSystem.Root.RequestWithCustomSender(pid, msg, l.e.self.Load())
	return true
}

func (e *Edge) node() *pb.Node { return &pb.Node{Id: e.cfg.NodeID, Address: e.cfg.NodeAddr} }

// respond sends a response built from req in its transaction.
func (e *Edge) respond(req *sip.Request, tx *txn.ServerTx, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.SipVersion = "SIP/2.0" // the request's may be what we are refusing (505)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = e.send(tx, res)
}

// respondStateless answers req once and forgets its transaction
// (txn.ServerTx.RespondStateless): for challenges and refusals of requests
// nobody has authenticated yet, whose source may be spoofed.
func (e *Edge) respondStateless(req *sip.Request, tx *txn.ServerTx, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := req.To(); to != nil && !to.Params.Has("tag") {
		res.To().Params.Add("tag", statelessTag(req))
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.RespondStateless(res); err != nil {
		e.cfg.Log.Debug("sip: respond failed", "code", code, "err", err)
		return
	}
	msgsOut.code(code)
}

// send sends res in tx and counts it.
func (e *Edge) send(tx *txn.ServerTx, res *sip.Response) error {
	if err := tx.Respond(res); err != nil {
		e.cfg.Log.Debug("sip: respond failed", "code", res.StatusCode, "err", err)
		return err
	}
	msgsOut.code(res.StatusCode)
	return nil
}

func (e *Edge) refuse(req *sip.Request, tx *txn.ServerTx, r *validate.Refusal) {
	metrics.SIPDropped.WithLabelValues("refused_" + strconv.Itoa(r.Code)).Inc()
	e.respond(req, tx, r.Code, r.Reason, nil, r.Headers(e.cfg.Host)...)
}

// warn refuses with a Warning saying why.
func (e *Edge) warn(req *sip.Request, tx *txn.ServerTx, code int, reason, why string) {
	e.refuse(req, tx, &validate.Refusal{Code: code, Reason: reason, Warning: why})
}

func sourceIP(req *sip.Request) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(req.Source())
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// authenticate identifies the sender of an out-of-dialog request: a trunk by
// source address, else a user by digest. It answers the challenge or 403
// itself and returns ok=false then.
func (e *Edge) authenticate(req *sip.Request, tx *txn.ServerTx, proxy bool) (Identity, bool) {
	ip, hasIP := sourceIP(req)
	if hasIP {
		if trunk, ok := e.cfg.Dir.TrunkBySource(ip); ok {
			id := Identity{TrunkID: trunk}
			if f := req.From(); f != nil {
				id.Number, id.Display = f.Address.User, unquoteDisplay(f.DisplayName)
			}
			return id, true
		}
	}
	if e.sourceBlocked(ip) {
		e.respondStateless(req, tx, 403, "Forbidden")
		return Identity{}, false
	}
	hname, chName, code, reason := "Authorization", "WWW-Authenticate", 401, "Unauthorized"
	if proxy {
		hname, chName, code, reason = "Proxy-Authorization", "Proxy-Authenticate", 407, "Proxy Authentication Required"
	}
	var header string
	if h := req.GetHeader(hname); h != nil {
		header = h.Value()
	}
	var userID, tried string
	user, st := e.cfg.Auth.Verify(ip, string(req.Method), header, func(alg, username string) (string, bool) {
		ha1, id, ok := e.cfg.Dir.HA1(alg, username)
		userID, tried = id, username
		return ha1, ok
	})
	switch st {
	case digest.Accept:
		if id, ok := e.cfg.Dir.User(userID); ok {
			return id, true
		}
		e.cfg.Log.Debug("sip: authenticated user vanished", "user", user)
		e.respondStateless(req, tx, 403, "Forbidden")
	case digest.Challenge, digest.ChallengeStale:
		var hdrs []sip.Header
		for _, c := range e.cfg.Auth.Challenge(ip, st == digest.ChallengeStale) {
			hdrs = append(hdrs, sip.NewHeader(chName, c))
		}
		e.respondStateless(req, tx, code, reason, hdrs...)
	case digest.Reject:
		metrics.SIPDropped.WithLabelValues("auth_malformed").Inc()
		e.respondStateless(req, tx, 400, "Bad Request", sip.NewHeader("Warning", `399 `+e.cfg.Host+` "malformed credentials"`))
	default:
		metrics.SIPDropped.WithLabelValues("auth_failed").Inc()
		e.loginFailed(req, ip, tried, userID)
		e.respondStateless(req, tx, 403, "Forbidden")
	}
	return Identity{}, false
}

// onRequest takes every new request from the transaction layer, on the
// goroutine that read it. What may wait (for a grain's answer, or an etcd
// write) goes on a goroutine of its own.
func (e *Edge) onRequest(req *sip.Request, tx *txn.ServerTx) {
	msgsIn.method(req.Method)
	if r := validate.Request(req); r != nil {
		if tx == nil || req.IsAck() {
			metrics.SIPDropped.WithLabelValues("invalid_ack").Inc()
			return
		}
		e.refuse(req, tx, r)
		return
	}
	if tx == nil {
		e.onAck(req)
		return
	}
	switch req.Method {
	case sip.INVITE:
		if req.To().Params.Has("tag") {
			go e.onReinvite(req, tx)
		} else {
			go e.onInvite(req, tx)
		}
	case sip.BYE:
		e.onBye(req, tx)
	case sip.CANCEL:
		// A CANCEL that matched a transaction was taken by the transaction
		// layer; this one matched nothing.
		e.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
	case sip.OPTIONS:
		e.onOptions(req, tx)
	case sip.REGISTER:
		go e.onRegister(req, tx)
	case sip.SUBSCRIBE:
		e.onSubscribe(req, tx)
	case sip.MESSAGE:
		if e.cfg.Messages == nil {
			e.respond(req, tx, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", e.allow()))
			return
		}
		go e.onMessage(req, tx)
	case sip.NOTIFY, sip.REFER, sip.INFO, sip.UPDATE, sip.PRACK, sip.PUBLISH:
		// Methods we know but do not serve (yet) get 405 with Allow.
		e.respond(req, tx, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", e.allow()))
	default:
		e.respond(req, tx, 501, "Not Implemented", nil, sip.NewHeader("Allow", e.allow()))
	}
}

const allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE"

// allow is the Allow header's value: MESSAGE too when the node takes them.
func (e *Edge) allow() string {
	if e.cfg.Messages != nil {
		return allowed + ", MESSAGE"
	}
	return allowed
}

func (e *Edge) onOptions(req *sip.Request, tx *txn.ServerTx) {
	if req.To() != nil && req.To().Params.Has("tag") {
		e.respond(req, tx, 200, "OK", nil, sip.NewHeader("Allow", e.allow()), sip.NewHeader("Accept", "application/sdp"))
		return
	}
	if _, ok := e.authenticate(req, tx, true); !ok {
		return
	}
	e.respond(req, tx, 200, "OK", nil, sip.NewHeader("Allow", e.allow()), sip.NewHeader("Accept", "application/sdp"))
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
