// Package node assembles one Switchboard process: etcd (embedded or remote),
// the store, the directory, the protoactor cluster with its grain kinds, the
// node-local SIP edge, media and call-index actors, and the REST API.
package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/actors/delegator"
	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/actors/mediasvc"
	"github.com/switchboard/switchboard/actors/queue"
	"github.com/switchboard/switchboard/actors/thread"
	"github.com/switchboard/switchboard/api/authguard"
	"github.com/switchboard/switchboard/api/rest"
	sipedge "github.com/switchboard/switchboard/api/sipedge"
	"github.com/switchboard/switchboard/api/sipedge/digest"
	"github.com/switchboard/switchboard/cluster/directory"
	"github.com/switchboard/switchboard/cluster/dispatch"
	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/grainpid"
	"github.com/switchboard/switchboard/cluster/history"
	"github.com/switchboard/switchboard/cluster/membership"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/cluster/store"
	"github.com/switchboard/switchboard/media"
)

// ClusterName is the protoactor cluster every node joins.
const ClusterName = "switchboard"

// Config is everything a node is started with (INTERFACE.md section 1).
type Config struct {
	SIPAddr, SIPTLSAddr, TLSCert, TLSKey string
	HTTPAddr                             string
	MediaIP                              string
	SIPAdvertise                         string // address written in Contact and Via instead of the local one (NAT)
	RTPPorts                             string
	DataDir                              string
	EtcdEndpoints                        string
	EtcdListen                           string
	NodeID                               string
	ClusterAddr                          string
	Domain                               string
	AdminToken                           string
	LogLevel                             string
	PprofAddr                            string
	DrainTimeout                         time.Duration
	RTPTimeout                           time.Duration
	NoAnswer                             time.Duration // 0: call.DefaultSettings
	MembershipTTL                        time.Duration // 0: the provider's default
	Dev                                  bool
	// Access to etcd (README "Running a cluster"): client TLS and login for
	// every etcd client of the node; server TLS and exposure of the embedded
	// etcd, which also requires client certificates signed by EtcdCA.
	EtcdCA, EtcdCert, EtcdKey     string
	EtcdUser, EtcdPassword        string
	EtcdServerCert, EtcdServerKey string
	EtcdInsecureListen            bool
	// DigestAlgorithms are the digest algorithms SIP challenges offer, in
	// order (ParseDigestAlgorithms); empty means MD5 alone.
	DigestAlgorithms []string
	Log              *slog.Logger
	// AuthGuard limits password and token guessing; a zero SourceLimit
	// turns it off.
	AuthGuard authguard.Config
	// SIPTCPPerSource caps the SIP TCP and TLS connections one address
	// holds; SIPTCPFirstMessage is how long one may wait for its first SIP
	// message before it is closed. 0: the defaults (1024, 10 s).
	SIPTCPPerSource    int
	SIPTCPFirstMessage time.Duration
}

// Node is a running Switchboard process.
type Node struct {
	cfg      Config
	log      *slog.Logger
	etcd     *etcdembed.Server
	store    store.Store
	history  *history.Writer
	dir      *directory.Directory
	media    *media.Service
	mediaSvc *mediasvc.Service
	system   *actor.ActorSystem
	cluster  *cluster.Cluster
	linePIDs *grainpid.Cache // line grains activated on this node, for line updates
	// The grains' typed clients: the node reaches grains only through them.
	lines      line.Client
	calls      call.Client
	delegators delegator.Client
	queues     queue.Client
	threads    thread.Client
	provider   *membership.Provider
	edge       *sipedge.Edge
	http       *fiber.App
	index      *call.Index
	events     *events.Hub
	cancel     context.CancelFunc
	draining   atomic.Bool
	ready      atomic.Bool
	sipAddr    string
	sipPublic  []string // what phones register to (the dev banner)
	httpAddr   string
	adminTok   string
}

// Start brings a node up and returns once it serves SIP and HTTP.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Log, index: call.NewIndex(), events: events.NewHub()}
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if err := n.start(ctx, runCtx); err != nil {
		n.Close()
		return nil, err
	}
	n.ready.Store(true)
	n.log.Info("switchboard: ready", "node", cfg.NodeID, "sip", n.sipAddr, "http", n.httpAddr, "cluster", n.system.Address())
	if cfg.Dev {
		n.printDev()
	}
	return n, nil
}

func (n *Node) start(ctx, runCtx context.Context) error {
	if err := n.openDataDir(); err != nil {
		return err
	}
	cfg := n.cfg
	tok, err := adminToken(cfg)
	if err != nil {
		return err
	}
	if len(tok) < minAdminToken {
		n.log.Warn("switchboard: --admin-token is short: anyone who can reach the REST API may guess it (a generated one has 48 hex digits)", "length", len(tok), "want_at_least", minAdminToken)
	}
	n.adminTok = tok

	endpoints, cli, err := n.connectEtcd(ctx)
	if err != nil {
		return err
	}
	n.store = store.NewEtcd(cli)

	metrics.SetRegistrations(n.registrationsGauge())

	n.dir = directory.New(n.store, cfg.Domain, directory.Credentials{Algorithms: []string{digest.MD5, digest.SHA256}, HA1: digest.HA1}, n.log)
	if err := n.dir.Start(runCtx); err != nil {
		return fmt.Errorf("directory: %w", err)
	}

	sipHost, sipPort, err := splitHostPort(cfg.SIPAddr)
	if err != nil {
		return fmt.Errorf("--sip-addr: %w", err)
	}
	mediaIP, err := pickMediaIP(cfg.MediaIP, sipHost)
	if err != nil {
		return err
	}
	pmin, pmax, err := parsePorts(cfg.RTPPorts)
	if err != nil {
		return err
	}
	n.media, err = media.NewService(media.Config{IP: mediaIP, PortMin: pmin, PortMax: pmax, RTPTimeout: cfg.RTPTimeout}, n.log)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}

	// The actor system, its remote and the cluster.
	// protoactor logs chattily at info; ours is the node's logger, one level up.
	actorLog := n.log.With("lib", "protoactor")
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(quieter{actorLog.Handler()})
	}))
	n.system.Root.WithSpawnMiddleware(placementOnPool)
	chost, cport, err := splitHostPort(cfg.ClusterAddr)
	if err != nil {
		return fmt.Errorf("--cluster-addr: %w", err)
	}
	n.provider = membership.New(endpoints, membership.Options{TTL: cfg.MembershipTTL, NodeID: cfg.NodeID, Log: n.log, Access: cfg.etcdAccess()})
	settings := call.DefaultSettings
	if cfg.NoAnswer > 0 {
		settings.NoAnswer = cfg.NoAnswer
	}
	n.history = history.NewWriter(n.store, n.log, historyQueue)
	callDeps := &call.Deps{
		Router: call.DialPlan{Dir: n.dir}, History: n.history, Events: fanout{n}, Index: n.index, Settings: settings,
		NodeID: cfg.NodeID, Draining: n.draining.Load, Now: time.Now, Log: n.log, MonitorFacts: n.monitorFacts,
		LineContacts: n.lineContacts, RingPlan: n.ringPlan, Access: n.access, LineUpdate: n.lineUpdate, PersistLock: n.persistLock, PersistMonitor: n.persistMonitor, ClearLock: n.clearLock,
		Queues: callQueues{n}, Groups: callGroups{n},
	}
	lineDeps := &line.Deps{Store: n.store, Events: fanout{n}, Now: time.Now, Log: n.log}
	n.lineQueues(lineDeps)
	delegatorDeps := &delegator.Deps{Store: n.store, Person: n.person, Events: fanout{n}, Now: time.Now, Log: n.log}
	rcfg := remote.Configure(chost, cport)
	ccfg := cluster.Configure(ClusterName, n.provider, disthash.New(), rcfg,
		cluster.WithKinds(onPool(call.NewKind(callDeps)), onPool(line.NewKind(lineDeps)), onPool(delegator.NewKind(delegatorDeps)),
			onPool(queue.NewKind(n.queueDeps())), onPool(thread.NewKind(n.threadDeps()))),
		cluster.WithRequestTimeout(5*time.Second))
	n.cluster = cluster.New(n.system, ccfg)
	n.lines, n.calls, n.delegators = line.NewClient(n.cluster), call.NewClient(n.cluster), delegator.NewClient(n.cluster)
	n.queues, n.threads = queue.NewClient(n.cluster), thread.NewClient(n.cluster)
	n.linePIDs = grainpid.New(n.system, n.cluster.Get)
	n.cluster.StartMember()
	nodeAddr := n.system.Address()

	n.mediaSvc = mediasvc.New(n.media, func() *cluster.Cluster { return n.cluster }, call.KindName, n.log)
	if _, err := n.system.Root.SpawnNamed(n.mediaSvc.Props().Configure(actor.WithDispatcher(pool)), call.MediaActor); err != nil {
		return fmt.Errorf("spawn media actor: %w", err)
	}
	if _, err := n.system.Root.SpawnNamed(eventsProps(n.events).Configure(actor.WithDispatcher(pool)), eventsActor); err != nil {
		return fmt.Errorf("spawn events actor: %w", err)
	}
	if _, err := n.system.Root.SpawnNamed(call.IndexProps(n.index, n.actorCount).Configure(actor.WithDispatcher(pool)), call.IndexActor); err != nil {
		return fmt.Errorf("spawn calls actor: %w", err)
	}

	// SIP edge.
	var advertise netip.Addr
	if cfg.SIPAdvertise != "" {
		if advertise, err = netip.ParseAddr(cfg.SIPAdvertise); err != nil {
			return fmt.Errorf("--sip-advertise: %w", err)
		}
	}
	sipGuard, restGuard := loginGuards(cfg.AuthGuard)
	auth := digest.New(cfg.Domain, deriveKey(tok, "digest-nonce"), time.Now)
	n.edge = sipedge.New(sipedge.Config{
		NodeID: cfg.NodeID, NodeAddr: nodeAddr, Domain: cfg.Domain, Host: mediaIP.String(), Port: sipPort, Advertise: advertise,
		Lines: n.lines, Calls: n.calls,
		Dir: edgeDir{d: n.dir, line: n.lineOf}, Auth: sipedge.DigestAuth{Auth: auth, Algorithms: digestAlgorithms(cfg.DigestAlgorithms)}, Cluster: func() *cluster.Cluster { return n.cluster },
		Draining: n.draining.Load, Pickup: n.pickupTarget, Join: n.joinTarget, LineState: n.lineState, LineUpdates: n.lineUpdates, Log: n.log,
		Guard: sipGuard, Messages: smsService{n}, ConnsPerSource: cfg.SIPTCPPerSource, FirstMessageTimeout: cfg.SIPTCPFirstMessage,
	})
	if _, err := n.system.Root.SpawnNamed(n.edge.Props().Configure(actor.WithDispatcher(pool)), call.EdgeActor); err != nil {
		return fmt.Errorf("spawn sip actor: %w", err)
	}
	callDeps.Local.Store(&call.Local{Addr: nodeAddr, Media: n.mediaSvc.Handle, Edge: n.edge.Command})
	ln, err := n.edge.Listen(cfg.SIPAddr)
	if err != nil {
		return fmt.Errorf("--sip-addr: %w", err)
	}
	n.sipAddr = ln.String()
	n.sipPublic = phoneAddrs(advertise, sipHost, ln.Port) // the port bound: --sip-addr may name 0
	go func() {
		if err := n.edge.Serve(runCtx); err != nil {
			n.log.Error("sip: serve stopped", "err", err)
			n.ready.Store(false)
		}
	}()

	if cfg.SIPTLSAddr != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("--sip-tls-addr needs --tls-cert and --tls-key: %w", err)
		}
		go func() {
			if err := n.edge.ServeTLS(runCtx, cfg.SIPTLSAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}); err != nil {
				n.log.Error("sip: tls serve stopped", "err", err)
			}
		}()
	}

	if cfg.PprofAddr != "" {
		go servePprof(cfg.PprofAddr, n.system, n.log)
	}

	go smsService{n}.sweep(runCtx)

	// REST.
	n.http = rest.New(rest.Deps{
		Directory: n.dir, Store: n.store, Events: n.events, AdminToken: tok,
		Calls: &calls{n: n}, Delegation: delegators{n}, Cluster: &members{n: n}, Ready: n.readiness,
		Registrations: registrations{st: n.store, now: time.Now}, Guard: restGuard, Queues: restQueues{n}, SMS: smsService{n},
	}, n.log)
	hl, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	n.httpAddr = hl.Addr().String()
	go func() {
		if err := rest.Serve(n.http, hl); err != nil {
			n.log.Error("http: serve stopped", "err", err)
		}
	}()
	return nil
}

func (n *Node) readiness() error {
	switch {
	case n.draining.Load():
		return errors.New("draining")
	case !n.ready.Load():
		return errors.New("starting")
	case !n.provider.Ready():
		return errors.New("not a cluster member (etcd unreachable?)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := n.store.Get(ctx, store.Key("ping")); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("etcd unreachable: %w", err)
	}
	return nil
}

// actorCount is the grains this node holds, of every kind it registered
// (cluster.WithKinds above), so a new kind is counted without a change here.
func (n *Node) actorCount() int {
	total := 0
	for kind := range n.cluster.Config.Kinds {
		if ak, ok := n.cluster.TryGetClusterKind(kind); ok {
			total += int(ak.Count())
		}
	}
	return total
}

func (n *Node) lineContacts(ctx actor.Context, user string) ([]call.Contact, error) {
	bindings, err := n.lines.Contacts(user)
	if err != nil {
		return nil, err
	}
	out := make([]call.Contact, 0, len(bindings))
	for _, b := range bindings {
		out = append(out, call.Contact{URI: b.Contact, Destination: b.Source, Transport: b.Transport, NodeID: b.Node.GetId(), NodeAddr: b.Node.GetAddress()})
	}
	return out, nil
}

// Evicted is closed when the cluster dropped this member while it ran; the
// process must restart to rejoin under a new member id.
func (n *Node) Evicted() <-chan struct{} { return n.provider.Evicted() }

// Drain refuses new calls, waits for active legs to end (up to timeout),
// then leaves the cluster.
func (n *Node) Drain(timeout time.Duration) error {
	n.draining.Store(true)
	deadline := time.Now().Add(timeout)
	for n.edge != nil && n.edge.ActiveLegs() > 0 {
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// Close leaves the cluster gracefully and stops everything.
func (n *Node) Close() { n.stop(true) }

// Abort stops the node as a crash would look to the others: it does not
// deregister, so the cluster learns of its death when its lease runs out.
func (n *Node) Abort() { n.stop(false) }

// pool runs every mailbox of this process's actors (cluster/dispatch).
var pool = dispatch.New(300)

// placementOnPool puts the mailbox of disthash's placement actor, which
// activates every grain (one per call), on the pool as well: the library
// spawns it with no dispatcher option, and on the default one each burst of
// activations starts a goroutine and grows its stack anew.
func placementOnPool(next actor.SpawnFunc) actor.SpawnFunc {
	return func(sys *actor.ActorSystem, id string, props *actor.Props, parent actor.SpawnerContext) (*actor.PID, error) {
		if id == disthash.PartitionActivatorActorName {
			props = props.Configure(actor.WithDispatcher(pool))
		}
		return next(sys, id, props, parent)
	}
}

// onPool puts a grain kind's mailboxes on the pool.
func onPool(k *cluster.Kind) *cluster.Kind {
	k.Props = k.Props.Configure(actor.WithDispatcher(pool))
	return k
}

// historyQueue is how many history entries may wait for etcd: minutes of
// calls at full rate, so only an etcd outage longer than that loses any.
const historyQueue = 100000

// stop tears down in the reverse order of start.
func (n *Node) stop(graceful bool) {
	if n.cancel != nil {
		n.cancel()
	}
	if n.http != nil {
		_ = n.http.ShutdownWithTimeout(2 * time.Second)
	}
	if n.edge != nil {
		_ = n.edge.Close()
	}
	if n.cluster != nil {
		n.cluster.Shutdown(graceful)
		if !graceful {
			// protoactor does not tell the provider of a non-graceful stop;
			// it must stop its keepalive without deregistering.
			_ = n.provider.Shutdown(false)
		}
	}
	if n.media != nil {
		_ = n.media.Close()
	}
	if n.history != nil && graceful {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := n.history.Close(ctx); err != nil {
			n.log.Warn("history: not all entries written at shutdown", "err", err)
		}
		cancel()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
	if n.etcd != nil {
		_ = n.etcd.Close()
	}
}

// Addresses for tests and the dev banner.
func (n *Node) SIPAddr() string                 { return n.sipAddr }
func (n *Node) HTTPAddr() string                { return n.httpAddr }
func (n *Node) AdminToken() string              { return n.adminTok }
func (n *Node) ClusterAddr() string             { return n.system.Address() }
func (n *Node) Directory() *directory.Directory { return n.dir }

// EtcdEndpoints are the client URLs of this node's embedded etcd (empty when
// it uses an external one).
func (n *Node) EtcdEndpoints() string {
	if n.etcd == nil {
		return ""
	}
	return strings.Join(n.etcd.Endpoints(), ",")
}

// minAdminToken is the length below which a configured admin token is
// warned of: 32 hex digits are 128 bits.
const minAdminToken = 32

// adminToken returns the configured token, or the one kept under the data
// dir, generating it at first start.
func adminToken(cfg Config) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	p := filepath.Join(cfg.DataDir, "admin-token")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep admin token: %w", err)
	}
	fmt.Fprintf(os.Stderr, "switchboard: generated admin token (kept in %s): %s\n", p, tok)
	return tok, nil
}

// digestAlgorithms is what challenges offer: MD5 alone unless configured.
// Many deployed phones (Debian 12's baresip among them) give up on the
// first challenge they cannot answer, so offering SHA-256 is a choice the
// operator makes knowing their phones.
func digestAlgorithms(algs []string) []string {
	if len(algs) == 0 {
		return []string{digest.MD5}
	}
	return algs
}

// ParseDigestAlgorithms reads the --sip-digest setting: "md5", "sha256",
// or both in the order to offer them ("sha256,md5" is RFC 8760's: the
// strongest first).
func ParseDigestAlgorithms(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range splitList(s) {
		var alg string
		switch strings.ToLower(p) {
		case "md5":
			alg = digest.MD5
		case "sha256", "sha-256":
			alg = digest.SHA256
		default:
			return nil, fmt.Errorf("--sip-digest: unknown algorithm %q (want md5, sha256 or both, comma separated)", p)
		}
		if seen[alg] {
			return nil, fmt.Errorf("--sip-digest: %q named twice", p)
		}
		seen[alg] = true
		out = append(out, alg)
	}
	if len(out) == 0 {
		return nil, errors.New("--sip-digest: name at least one algorithm")
	}
	return out, nil
}

func deriveKey(secret, purpose string) []byte {
	h := sha256.Sum256([]byte(purpose + ":" + secret))
	return h[:]
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}

func parsePorts(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi-lo < 3 {
		return 0, 0, fmt.Errorf("--rtp-ports %q: want LOW-HIGH within 1024-65535", s)
	}
	return lo, hi, nil
}

// pickMediaIP: the flag, else the SIP address's IP, else the first
// non-loopback address of the machine (loopback when there is none).
func pickMediaIP(flagIP, sipHost string) (netip.Addr, error) {
	if flagIP != "" {
		a, err := netip.ParseAddr(flagIP)
		if err != nil {
			return a, fmt.Errorf("--media-ip: %w", err)
		}
		return a, nil
	}
	if a, err := netip.ParseAddr(sipHost); err == nil && !a.IsUnspecified() {
		return a, nil
	}
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			a, _ := netip.AddrFromSlice(ipn.IP.To4())
			return a, nil
		}
	}
	return netip.MustParseAddr("127.0.0.1"), nil
}
