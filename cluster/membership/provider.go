// Package membership is Switchboard's protoactor ClusterProvider over etcd.
//
// Each member keeps /switchboard/v1/members/<cluster>/<member id> alive with
// a lease (5 s by default, so a dead node drops out well within 10 s) and
// watches the prefix, pushing every change to protoactor's MemberList. When
// etcd blips, it re-grants its lease, re-registers, reloads the member list
// and watches again from that revision, retrying with backoff; it never
// panics and never gives up while running.
package membership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchboard/switchboard/cluster/store"
)

const (
	// DefaultTTL is the member lease: a node that stops renewing it is gone
	// from every other node's view within this time (plus etcd's ~0.5 s tick).
	DefaultTTL = 5 * time.Second
	// opTimeout bounds one etcd request so a blip is noticed and retried.
	opTimeout = 3 * time.Second
	// firstSyncWait is how long StartMember waits for the first member list,
	// so a node starts with its peers known when etcd is healthy.
	firstSyncWait = 3 * time.Second
	retryMin      = 100 * time.Millisecond
	retryMax      = 5 * time.Second
)

// Options tune a Provider.
type Options struct {
	// TTL of the member lease, at least 1 s, rounded up to whole seconds;
	// 0 means DefaultTTL.
	TTL time.Duration
	// NodeID is the operator's name for this node (--node-id), stored with the
	// member so /v1/cluster can name it.
	NodeID string
	// Log receives the provider's records; nil means slog.Default().
	Log *slog.Logger
	// Access is how the provider's etcd client proves itself (TLS, user):
	// the same as the node's other clients.
	Access store.Access
}

// Member is one cluster member as this node knows it. ID is protoactor's
// member id (the actor system id, new at every start); NodeID is the
// operator's name for the node; Address is host:port for actor traffic.
// A member seen earlier whose key is gone stays listed with Alive false
// until a member with the same NodeID joins.
type Member struct {
	ID      string
	NodeID  string
	Address string
	Alive   bool
	Kinds   []string
}

// record is the JSON stored under a member's key.
type record struct {
	ID        string    `json:"id"`
	NodeID    string    `json:"node_id"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	Kinds     []string  `json:"kinds"`
	StartedAt time.Time `json:"started_at"`
}

func (r record) member(alive bool) Member {
	return Member{
		ID: r.ID, NodeID: r.NodeID, Address: net.JoinHostPort(r.Host, strconv.Itoa(r.Port)),
		Alive: alive, Kinds: slices.Clone(r.Kinds),
	}
}

// Provider implements cluster.ClusterProvider.
type Provider struct {
	endpoints []string
	access    store.Access
	ttl       time.Duration
	nodeID    string
	log       *slog.Logger

	// Set by start, before the loop goroutine exists; read-only after.
	cluster *cluster.Cluster
	etcdCfg clientv3.Config
	prefix  string
	self    *record // nil for a client
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// Set by the loop goroutine before its first session; Shutdown reads it
	// once that goroutine has ended. nil until etcd first let us in.
	cli *clientv3.Client

	mu         sync.Mutex
	started    bool
	stopped    bool
	alive      map[string]record // members whose key exists
	gone       map[string]record // members whose key went away
	last       []Member          // last list handed to OnChange callbacks
	watchers   []func([]Member)
	ready      bool          // registered and following etcd
	synced     chan struct{} // closed at the first successful sync
	lease      clientv3.LeaseID
	registered bool          // own key has been written at least once
	evicted    chan struct{} // closed when our key vanished under us
}

var _ cluster.ClusterProvider = (*Provider)(nil)

// New returns a provider for the etcd at endpoints. Nothing connects until
// StartMember or StartClient.
func New(endpoints []string, opts Options) *Provider {
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Provider{
		endpoints: endpoints,
		access:    opts.Access,
		ttl:       opts.TTL,
		nodeID:    opts.NodeID,
		log:       opts.Log.With("component", "membership"),
		alive:     map[string]record{},
		gone:      map[string]record{},
		synced:    make(chan struct{}),
		evicted:   make(chan struct{}),
	}
}

// StartMember registers this node and follows the member list. It fails only
// on misconfiguration (protoactor panics on a provider error); etcd being
// unreachable is retried in the background, and /readyz should consult Ready.
func (p *Provider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil || port <= 0 {
		return fmt.Errorf("membership: actor system address %q is not host:port (start remote first): %v", c.ActorSystem.Address(), err)
	}
	self := &record{
		ID: c.ActorSystem.ID, NodeID: p.nodeID, Host: host, Port: port,
		Kinds: c.GetClusterKinds(), StartedAt: time.Now().UTC(),
	}
	slices.Sort(self.Kinds)
	if err := p.start(c, self); err != nil {
		return err
	}
	// protoactor routes grains as soon as StartMember returns: give a healthy
	// etcd the chance to tell us our peers first.
	select {
	case <-p.synced:
	case <-time.After(firstSyncWait):
		p.log.Warn("etcd has not let this member in yet; joining in the background", "endpoints", p.endpoints)
	}
	return nil
}

// StartClient follows the member list without registering.
func (p *Provider) StartClient(c *cluster.Cluster) error {
	return p.start(c, nil)
}

func (p *Provider) start(c *cluster.Cluster, self *record) error {
	if p.ttl < time.Second {
		return fmt.Errorf("membership: lease TTL %s is below etcd's 1 s granularity", p.ttl)
	}
	if c.Config.Name == "" || strings.Contains(c.Config.Name, "/") {
		return fmt.Errorf("membership: cluster name %q must be non-empty and contain no '/'", c.Config.Name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("membership: provider already started")
	}
	// A configuration that cannot work fails here; the client itself is made
	// by the loop (see connect).
	etcdCfg, err := p.access.ClientConfig(p.endpoints)
	if err != nil {
		return fmt.Errorf("membership: %w", err)
	}
	p.started = true
	p.cluster, p.etcdCfg, p.self = c, etcdCfg, self
	p.prefix = store.Key("members", c.Config.Name) + "/"
	if self != nil {
		p.alive[self.ID] = *self
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go p.run(ctx)
	return nil
}

// Shutdown stops following etcd and closes the client. Graceful removes this
// member's key at once; otherwise it is left to expire with its lease, as a
// crashed node's would.
func (p *Provider) Shutdown(graceful bool) error {
	p.mu.Lock()
	if !p.started || p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.mu.Unlock()

	p.cancel()
	p.wg.Wait()
	if p.cli == nil {
		p.log.Info("left cluster before etcd let us in")
		return nil
	}
	var err error
	if graceful && p.self != nil {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		// Revoking the lease deletes the key; deleting too covers a key
		// written under a lease we no longer hold.
		if lease := p.currentLease(); lease != 0 {
			if _, rerr := p.cli.Revoke(ctx, lease); rerr != nil {
				p.log.Warn("revoke member lease", "err", rerr)
			}
		}
		if _, derr := p.cli.Delete(ctx, p.key(p.self.ID)); derr != nil {
			err = fmt.Errorf("membership: deregister %s: %w", p.self.ID, derr)
		}
		cancel()
	}
	if cerr := p.cli.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) && err == nil {
		err = fmt.Errorf("membership: close etcd client: %w", cerr)
	}
	p.log.Info("left cluster", "graceful", graceful)
	return err
}

// Members lists every member this node has seen, alive first, then by id.
func (p *Provider) Members() []Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.membersLocked()
}

// OnChange registers f to be called with the new list after every change.
// Calls come from one goroutine, in order; f must not block for long.
func (p *Provider) OnChange(f func([]Member)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchers = append(p.watchers, f)
}

// Ready reports whether this node is registered in etcd (members) and
// following the member list: false while etcd is unreachable.
func (p *Provider) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// Evicted is closed when this member's key disappeared while it was running
// (its lease expired, say after a long partition from etcd). The other
// members have then removed it, and protoactor never readmits a member id it
// has seen leave: the process should exit so it restarts under a new id.
func (p *Provider) Evicted() <-chan struct{} { return p.evicted }

func (p *Provider) membersLocked() []Member {
	out := make([]Member, 0, len(p.alive)+len(p.gone))
	for _, r := range p.alive {
		out = append(out, r.member(true))
	}
	for _, r := range p.gone {
		out = append(out, r.member(false))
	}
	slices.SortFunc(out, func(a, b Member) int {
		if a.Alive != b.Alive {
			if a.Alive {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (p *Provider) key(id string) string { return p.prefix + id }

func (p *Provider) currentLease() clientv3.LeaseID {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lease
}

func (p *Provider) setReady(ready bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ready = ready
}

// run keeps sessions going until ctx ends. A session is one lease: it ends
// when the lease is lost, and the next one starts after a backoff.
func (p *Provider) run(ctx context.Context) {
	defer p.wg.Done()
	if !p.connect(ctx) {
		return
	}
	backoff := retryMin
	for {
		joined, err := p.session(ctx)
		p.setReady(false)
		if ctx.Err() != nil {
			return
		}
		if joined {
			backoff = retryMin // that session worked: start the next one promptly
		}
		p.log.Warn("membership session ended; rejoining", "err", err, "retry_in", backoff)
		if !sleep(ctx, nil, backoff) {
			return
		}
		backoff = min(2*backoff, retryMax)
	}
}

// connect makes the provider's client, retrying until ctx ends. It is made
// here, not in New or start: creating it while remote.Start sets up grpc
// races on grpc's global logger, and a client with an etcd user logs in as
// it is made, so it fails (after up to 5 s) while etcd is away, and
// protoactor panics on a provider error.
//
// store.Check first tells an etcd that refuses this member (certificates,
// login) from one that is not up. Retrying cannot cure a refusal, but
// protoactor gives a started provider no way to fail, and whoever fixes it
// on etcd's side (a password, a certificate) should not have to restart the
// node: it is logged as an error and asked again at the slowest pace.
func (p *Provider) connect(ctx context.Context) bool {
	backoff := retryMin
	for {
		err := store.Check(ctx, p.etcdCfg)
		if err == nil {
			var cli *clientv3.Client
			if cli, err = clientv3.New(p.etcdCfg); err == nil {
				p.cli = cli
				return true
			}
		}
		wait := backoff
		if errors.Is(err, store.ErrAccess) {
			wait = retryMax
			p.log.Error("etcd and this member refuse each other; fix the etcd access (CA, certificates, user, password)",
				"endpoints", p.endpoints, "err", err, "retry_in", wait)
		} else {
			p.log.Warn("etcd client not made; retrying", "endpoints", p.endpoints, "err", err, "retry_in", wait)
			backoff = min(2*backoff, retryMax)
		}
		if !sleep(ctx, nil, wait) {
			return false
		}
	}
}

// errLeaseLost ends a session whose lease etcd no longer keeps.
var errLeaseLost = errors.New("member lease lost")

// session registers (for a member) and follows the member list, resyncing
// with backoff when the watch breaks, until the lease is lost or ctx ends.
// It reports whether it got as far as following the list.
func (p *Provider) session(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // also stops the lease keepalive
	var keepalive <-chan *clientv3.LeaseKeepAliveResponse
	if p.self != nil {
		var err error
		if keepalive, err = p.register(ctx); err != nil {
			return false, err
		}
	}
	joined := false
	backoff := retryMin
	for {
		rev, err := p.sync(ctx)
		if err == nil {
			joined = true
			p.setReady(true)
			err = p.follow(ctx, rev, keepalive)
			if errors.Is(err, errLeaseLost) || ctx.Err() != nil {
				return joined, err
			}
			backoff = retryMin
		}
		p.setReady(false)
		p.log.Warn("member list out of date; resyncing", "err", err, "retry_in", backoff)
		if !sleep(ctx, keepalive, backoff) {
			if ctx.Err() != nil {
				return joined, ctx.Err()
			}
			return joined, fmt.Errorf("%w: keepalive ended", errLeaseLost)
		}
		backoff = min(2*backoff, retryMax)
	}
}

// register grants a lease, writes our key under it and keeps it alive.
func (p *Provider) register(ctx context.Context) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	key := p.key(p.self.ID)
	value, err := json.Marshal(p.self)
	if err != nil {
		return nil, fmt.Errorf("encode member: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()

	p.mu.Lock()
	wasRegistered := p.registered
	p.mu.Unlock()
	if wasRegistered {
		// etcd restores leases when it restarts, so after a mere blip our
		// key is still there. If it is not, the others saw us leave.
		resp, err := p.cli.Get(rctx, key, clientv3.WithCountOnly())
		if err != nil {
			return nil, fmt.Errorf("check own key: %w", err)
		}
		if resp.Count == 0 {
			p.markEvicted()
		}
	}
	grant, err := p.cli.Grant(rctx, int64((p.ttl+time.Second-1)/time.Second))
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	if _, err := p.cli.Put(rctx, key, string(value), clientv3.WithLease(grant.ID)); err != nil {
		return nil, fmt.Errorf("put %s: %w", key, err)
	}
	keepalive, err := p.cli.KeepAlive(ctx, grant.ID)
	if err != nil {
		return nil, fmt.Errorf("keep lease alive: %w", err)
	}
	p.mu.Lock()
	old := p.lease
	p.lease, p.registered = grant.ID, true
	p.mu.Unlock()
	if old != 0 {
		// Our key now hangs on the new lease; the old one (restored by an
		// etcd restart, or already expired) only costs etcd.
		_, _ = p.cli.Revoke(rctx, old)
	}
	p.log.Info("registered", "key", key, "lease", fmt.Sprintf("%x", int64(grant.ID)), "ttl", p.ttl)
	return keepalive, nil
}

func (p *Provider) markEvicted() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.evicted:
	default:
		close(p.evicted)
		p.log.Error("this member's key vanished while it ran; peers have dropped it for good", "id", p.self.ID)
	}
}

// sync replaces the member list with etcd's and returns its revision.
func (p *Provider) sync(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := p.cli.Get(rctx, p.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("list members: %w", err)
	}
	alive := map[string]record{}
	for _, kv := range resp.Kvs {
		if r, ok := p.decode(kv.Key, kv.Value); ok {
			alive[r.ID] = r
		}
	}
	p.apply(func() { p.alive = alive })
	select {
	case <-p.synced:
	default:
		close(p.synced)
	}
	return resp.Header.Revision, nil
}

// follow applies watch events after rev until the watch breaks (returns its
// error) or the lease is lost (errLeaseLost).
func (p *Provider) follow(ctx context.Context, rev int64, keepalive <-chan *clientv3.LeaseKeepAliveResponse) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := p.cli.Watch(wctx, p.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-keepalive:
			if !ok {
				return fmt.Errorf("%w: keepalive ended", errLeaseLost)
			}
		case resp, ok := <-wch:
			if !ok {
				return errors.New("watch closed")
			}
			if err := resp.Err(); err != nil {
				return fmt.Errorf("watch: %w", err)
			}
			lost := false
			p.apply(func() {
				for _, ev := range resp.Events {
					id := strings.TrimPrefix(string(ev.Kv.Key), p.prefix)
					if ev.Type == clientv3.EventTypeDelete {
						delete(p.alive, id)
						lost = lost || (p.self != nil && id == p.self.ID)
						continue
					}
					if r, ok := p.decode(ev.Kv.Key, ev.Kv.Value); ok {
						p.alive[r.ID] = r
					}
				}
			})
			if lost {
				p.markEvicted()
				return fmt.Errorf("%w: own key deleted", errLeaseLost)
			}
		}
	}
}

func (p *Provider) decode(key, value []byte) (record, bool) {
	var r record
	if err := json.Unmarshal(value, &r); err != nil || r.ID == "" || r.ID != strings.TrimPrefix(string(key), p.prefix) {
		p.log.Warn("ignoring malformed member", "key", string(key), "err", err)
		return record{}, false
	}
	return r, true
}

// apply runs change under the lock, then brings the gone list, protoactor's
// topology and OnChange watchers up to date. Only the run goroutine calls it.
func (p *Provider) apply(change func()) {
	p.mu.Lock()
	before := make(map[string]record, len(p.alive))
	for id, r := range p.alive {
		before[id] = r
	}
	change()
	if p.self != nil {
		// We are a member whatever etcd's copy says: a topology without us
		// would make protoactor block our own id.
		p.alive[p.self.ID] = *p.self
	}
	for id, r := range before {
		if _, ok := p.alive[id]; !ok {
			p.gone[id] = r
			p.log.Info("member left", "id", id, "node", r.NodeID)
		}
	}
	for id, r := range p.alive {
		if _, ok := before[id]; !ok {
			p.log.Info("member joined", "id", id, "node", r.NodeID, "host", r.Host, "port", r.Port)
		}
		delete(p.gone, id)
		// A node back under a new id replaces its old, gone entries.
		for gid, g := range p.gone {
			if g.NodeID != "" && g.NodeID == r.NodeID {
				delete(p.gone, gid)
			}
		}
	}
	topology := make([]*cluster.Member, 0, len(p.alive))
	for _, r := range p.alive {
		topology = append(topology, &cluster.Member{Id: r.ID, Host: r.Host, Port: int32(r.Port), Kinds: slices.Clone(r.Kinds)})
	}
	members := p.membersLocked()
	changed := !slices.EqualFunc(members, p.last, sameMember)
	p.last = members
	watchers := slices.Clone(p.watchers)
	p.mu.Unlock()

	// protoactor diffs against its own list, so an unchanged push is a no-op.
	p.cluster.MemberList.UpdateClusterTopology(topology)
	if changed {
		for _, f := range watchers {
			f(slices.Clone(members))
		}
	}
}

func sameMember(a, b Member) bool {
	return a.ID == b.ID && a.NodeID == b.NodeID && a.Address == b.Address && a.Alive == b.Alive && slices.Equal(a.Kinds, b.Kinds)
}

// sleep waits d (with jitter) unless ctx ends or keepalive closes (the lease
// is lost); it reports whether the full wait happened. A nil keepalive never
// fires.
func sleep(ctx context.Context, keepalive <-chan *clientv3.LeaseKeepAliveResponse, d time.Duration) bool {
	t := time.NewTimer(d/2 + rand.N(d/2))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case _, ok := <-keepalive:
			if !ok {
				return false
			}
		}
	}
}
