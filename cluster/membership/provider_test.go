// These tests run whole protoactor clusters, and protoactor has data races
// of its own: run this package without -race.
package membership_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/etcdembed/pkitest"
	"github.com/switchboard/switchboard/cluster/membership"
	"github.com/switchboard/switchboard/cluster/store"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/freeport"
)

const clusterName = "test"

func quiet(level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func startEtcd(t *testing.T, dir, addr string) *etcdembed.Server {
	t.Helper()
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: dir, ClientAddr: addr}, quiet(slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

type member struct {
	c *cluster.Cluster
	p *membership.Provider
}

// startMember starts a cluster member whose "echo" grains answer with the
// node id they run on.
func startMember(t *testing.T, endpoints []string, nodeID string, ttl time.Duration) member {
	t.Helper()
	return startMemberWith(t, endpoints, membership.Options{NodeID: nodeID, TTL: ttl})
}

// startMemberWith is startMember with any options (TLS and a user for etcd,
// a log other than warnings on stderr).
func startMemberWith(t *testing.T, endpoints []string, opts membership.Options) member {
	t.Helper()
	if opts.Log == nil {
		opts.Log = quiet(slog.LevelWarn)
	}
	nodeID := opts.NodeID
	p := membership.New(endpoints, opts)
	echo := cluster.NewKind("echo", actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			ctx.Respond(wrapperspb.String(nodeID))
		}
	}))
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return quiet(slog.LevelError + 4) // protoactor reports expected disconnects as errors
	}))
	cfg := cluster.Configure(clusterName, p, disthash.New(), remote.Configure("127.0.0.1", 0), cluster.WithKinds(echo))
	c := cluster.New(system, cfg)
	c.StartMember()
	return member{c: c, p: p}
}

// stop shuts a member down gracefully, as a node on SIGTERM would.
func (m member) stop() {
	_ = m.p.Shutdown(true)
	m.c.Shutdown(false)
}

// crash stops a member as a dying process would: its key is left to expire.
func (m member) crash() {
	m.c.Shutdown(false)
	_ = m.p.Shutdown(false)
}

func (m member) id() string { return m.c.ActorSystem.ID }

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func alive(p *membership.Provider, id string) (seen, isAlive bool) {
	for _, m := range p.Members() {
		if m.ID == id {
			return true, m.Alive
		}
	}
	return false, false
}

func aliveCount(p *membership.Provider) int {
	n := 0
	for _, m := range p.Members() {
		if m.Alive {
			n++
		}
	}
	return n
}

func TestMembersShareGrainsAndNoticeACrash(t *testing.T) {
	srv := startEtcd(t, t.TempDir(), "127.0.0.1:0")
	defer srv.Close()
	eps := srv.Endpoints()

	m1 := startMember(t, eps, "node1", 0)
	defer m1.stop()
	changes := make(chan []membership.Member, 100)
	m1.p.OnChange(func(ms []membership.Member) { changes <- ms })
	m2 := startMember(t, eps, "node2", 0)

	eventually(t, 5*time.Second, "both members see each other", func() bool {
		return aliveCount(m1.p) == 2 && aliveCount(m2.p) == 2 &&
			m1.c.MemberList.Members().Len() == 2 && m2.c.MemberList.Members().Len() == 2
	})
	for _, m := range m1.p.Members() {
		if m.ID == m2.id() && (m.NodeID != "node2" || !strings.HasPrefix(m.Address, "127.0.0.1:") || len(m.Kinds) == 0) {
			t.Fatalf("member 2 as seen by member 1: %+v", m)
		}
	}
	select {
	case <-changes:
	case <-time.After(time.Second):
		t.Fatal("OnChange not called when member 2 joined")
	}

	// Grains requested on member 1 activate where disthash puts them, on
	// both nodes across enough identities, and answer.
	served := map[string]int{}
	for i := range 20 {
		resp, err := m1.c.Request(fmt.Sprintf("g%d", i), "echo", wrapperspb.String("hi"), cluster.WithTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("grain g%d: %v", i, err)
		}
		served[resp.(*wrapperspb.StringValue).GetValue()]++
	}
	if served["node1"] == 0 || served["node2"] == 0 {
		t.Fatalf("grains served per node %v; want both nodes", served)
	}

	m2.crash()
	took := eventually(t, 10*time.Second, "member 1 sees member 2 gone", func() bool {
		seen, isAlive := alive(m1.p, m2.id())
		return seen && !isAlive && m1.c.MemberList.Members().Len() == 1
	})
	t.Logf("crash noticed after %s (TTL %s)", took, membership.DefaultTTL)

	// The node's grains now all live on member 1.
	for i := range 20 {
		resp, err := m1.c.Request(fmt.Sprintf("g%d", i), "echo", wrapperspb.String("hi"), cluster.WithTimeout(5*time.Second))
		if err != nil || resp.(*wrapperspb.StringValue).GetValue() != "node1" {
			t.Fatalf("grain g%d after the crash: %v, %v", i, resp, err)
		}
	}

	// node2 comes back under a new member id and replaces its old entry; a
	// graceful stop is seen at once, not after the lease TTL.
	m3 := startMember(t, eps, "node2", 0)
	eventually(t, 5*time.Second, "restarted node2 replaces its old entry", func() bool {
		seenOld, _ := alive(m1.p, m2.id())
		_, isAlive := alive(m1.p, m3.id())
		return !seenOld && isAlive
	})
	m3.stop()
	eventually(t, 2*time.Second, "graceful leave seen before the TTL", func() bool {
		seen, isAlive := alive(m1.p, m3.id())
		return seen && !isAlive
	})
}

func TestRejoinsAfterEtcdRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startEtcd(t, dir, "127.0.0.1:0")
	eps := srv.Endpoints()
	const ttl = 3 * time.Second
	m := startMember(t, eps, "node1", ttl)
	// Members leave before etcd stops, as in a node's orderly shutdown.
	defer func() {
		m.stop()
		srv.Close()
	}()
	eventually(t, 5*time.Second, "registered", m.p.Ready)

	cli, err := store.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	key := store.Key("members", clusterName, m.id())
	lease := func() clientv3.LeaseID {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, key)
		if err != nil || len(resp.Kvs) == 0 {
			return 0
		}
		return clientv3.LeaseID(resp.Kvs[0].Lease)
	}
	before := lease()
	if before == 0 {
		t.Fatal("member key missing")
	}

	srv.Close()
	eventually(t, 5*time.Second, "not ready while etcd is down", func() bool { return !m.p.Ready() })
	time.Sleep(ttl + time.Second) // long enough for the client to give its lease up
	srv = startEtcd(t, dir, strings.TrimPrefix(eps[0], "http://"))

	took := eventually(t, 15*time.Second, "re-registered under a new lease", func() bool {
		l := lease()
		return m.p.Ready() && l != 0 && l != before
	})
	t.Logf("re-registered %s after etcd came back", took)
	// The new lease is kept alive: the key outlives several TTLs.
	time.Sleep(2 * ttl)
	if lease() == 0 {
		t.Fatal("member key expired after rejoining")
	}
	select {
	case <-m.p.Evicted():
		t.Fatal("evicted after a mere etcd restart")
	default:
	}
	// And the member list is followed again: a newcomer shows up.
	other, _ := json.Marshal(map[string]any{"id": "other", "node_id": "node9", "host": "127.0.0.1", "port": 1, "kinds": []string{"echo"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, store.Key("members", clusterName, "other"), string(other)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "newcomer seen after rejoin", func() bool {
		_, isAlive := alive(m.p, "other")
		return isAlive
	})
}

// A revoked lease (as after a long partition) makes the member re-register
// and say it was evicted, without panicking or giving up.
func TestLostLeaseReportsEviction(t *testing.T) {
	srv := startEtcd(t, t.TempDir(), "127.0.0.1:0")
	defer srv.Close()
	eps := srv.Endpoints()
	m := startMember(t, eps, "node1", 0)
	defer m.stop()
	eventually(t, 5*time.Second, "registered", m.p.Ready)

	cli, err := store.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := store.Key("members", clusterName, m.id())
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("member key: %v, %v", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-m.p.Evicted():
	case <-time.After(5 * time.Second):
		t.Fatal("eviction not reported")
	}
	eventually(t, 5*time.Second, "registered again", func() bool {
		resp, err := cli.Get(ctx, key)
		return err == nil && len(resp.Kvs) == 1 && m.p.Ready()
	})
}

func TestStartMemberRejectsMisconfiguration(t *testing.T) {
	for name, tc := range map[string]struct {
		ttl         time.Duration
		startRemote bool
		access      store.Access
	}{
		"ttl below a second":      {ttl: 500 * time.Millisecond, startRemote: true},
		"remote not started":      {ttl: 0, startRemote: false},
		"certificate without key": {startRemote: true, access: store.Access{CertFile: "client.pem"}},
		"user without password":   {startRemote: true, access: store.Access{User: "switchboard"}},
	} {
		t.Run(name, func(t *testing.T) {
			p := membership.New([]string{"127.0.0.1:1"}, membership.Options{TTL: tc.ttl, Log: quiet(slog.LevelError), Access: tc.access})
			system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet(slog.LevelError + 4) }))
			c := cluster.New(system, cluster.Configure(clusterName, p, disthash.New(), remote.Configure("127.0.0.1", 0)))
			if tc.startRemote {
				r := remote.NewRemote(system, c.Config.RemoteConfig)
				r.Start()
				defer r.Shutdown(false)
			}
			if err := p.StartMember(c); err == nil {
				p.Shutdown(false)
				t.Fatal("want a configuration error")
			}
		})
	}
}

// A member whose etcd wants TLS and a user, started before that etcd is up:
// StartMember returns (protoactor would panic on an error), and the member
// logs in and registers once etcd serves.
func TestJoinsAnAuthenticatedEtcdStartedLater(t *testing.T) {
	pki := pkitest.Write(t)
	port, err := freeport.Find("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	access := store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: "switchboard", Password: "s3cret"}
	m := startMemberWith(t, []string{"https://" + addr}, membership.Options{NodeID: "node1", Access: access})
	if m.p.Ready() {
		t.Fatal("ready without etcd")
	}

	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{
		DataDir: t.TempDir(), ClientAddr: addr,
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA,
		User: access.User, Password: access.Password,
	}, quiet(slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		m.stop()
		srv.Close()
	}()
	took := eventually(t, 15*time.Second, "registered over TLS with a user", m.p.Ready)
	t.Logf("registered %s after etcd came up", took)

	cli, err := access.Dial(srv.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, store.Key("members", clusterName, m.id()))
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("member key: %v %v, want it under a lease", resp, err)
	}
}

// A member that etcd refuses (here, its password) says so as an error, not
// as the warning of an etcd not up yet, and is not ready; it keeps asking,
// so a fix on etcd's side needs no restart.
func TestRefusedMemberSaysSoAndJoinsOnceLetIn(t *testing.T) {
	pki := pkitest.Write(t)
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{
		DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0",
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA,
		User: "switchboard", Password: "s3cret",
	}, quiet(slog.LevelWarn))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	access := store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: "switchboard", Password: "guess"}
	refused := make(chan struct{}, 1)
	log := slog.New(onError{Handler: quiet(slog.LevelWarn).Handler(), seen: refused})
	m := startMemberWith(t, srv.Endpoints(), membership.Options{NodeID: "node1", Access: access, Log: log})
	defer m.stop()
	select {
	case <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("the refusal was not logged as an error")
	}
	if m.p.Ready() {
		t.Fatal("ready though refused")
	}

	admin := access
	admin.Password = "s3cret"
	cli, err := admin.Dial(srv.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.UserChangePassword(ctx, access.User, access.Password); err != nil {
		t.Fatal(err)
	}
	took := eventually(t, 15*time.Second, "registered once etcd takes the password", m.p.Ready)
	t.Logf("registered %s after the password changed", took)
}

// onError signals seen (without blocking) when an error-level record passes.
type onError struct {
	slog.Handler
	seen chan struct{}
}

func (h onError) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h onError) WithAttrs(as []slog.Attr) slog.Handler {
	return onError{Handler: h.Handler.WithAttrs(as), seen: h.seen}
}

func (h onError) WithGroup(name string) slog.Handler {
	return onError{Handler: h.Handler.WithGroup(name), seen: h.seen}
}
