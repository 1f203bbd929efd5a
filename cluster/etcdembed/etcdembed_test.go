package etcdembed

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchboard/switchboard/cluster/etcdembed/pkitest"
	"github.com/switchboard/switchboard/cluster/store"
)

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{Name: "t", DataDir: dir, ClientAddr: "127.0.0.1:0"}

	s, err := Start(ctx, cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	put(t, s.Endpoints(), "k", "v1")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Same data dir, new ports (the peer port is picked afresh).
	s, err = Start(ctx, cfg, testLog())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer s.Close()
	cli := dial(t, s.Endpoints())
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cli.Get(rctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("after restart got %v, want k=v1", resp.Kvs)
	}
}

func TestStartRejectsMissingConfig(t *testing.T) {
	if _, err := Start(context.Background(), Config{DataDir: t.TempDir()}, testLog()); err == nil {
		t.Fatal("want an error without ClientAddr")
	}
}

func put(t *testing.T, endpoints []string, k, v string) {
	t.Helper()
	cli := dial(t, endpoints)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, k, v); err != nil {
		t.Fatal(err)
	}
}

func dial(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// The in-process client sees what a socket client writes, and its watches
// and leases work: the node's store runs on it.
func TestInProcessClient(t *testing.T) {
	s, err := Start(context.Background(), Config{Name: "t", DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local := s.Client()
	defer local.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	w := local.Watch(ctx, "k")
	put(t, s.Endpoints(), "k", "from-socket")
	select {
	case ev := <-w:
		if len(ev.Events) != 1 || string(ev.Events[0].Kv.Value) != "from-socket" {
			t.Fatalf("watch got %+v", ev.Events)
		}
	case <-ctx.Done():
		t.Fatal("the in-process watch saw nothing")
	}

	lease, err := local.Grant(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.Put(ctx, "leased", "v", clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
	resp, err := dial(t, s.Endpoints()).Get(ctx, "leased")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || resp.Kvs[0].Lease != int64(lease.ID) {
		t.Fatalf("socket client got %v, want the leased key", resp.Kvs)
	}
}

// Start refuses a client address other hosts can reach unless etcd serves
// TLS and authenticates its clients, or the operator says otherwise.
func TestCheckExposure(t *testing.T) {
	base := Config{DataDir: "d"}
	tls := func(c Config) Config { c.CertFile, c.KeyFile = "s.pem", "s-key.pem"; return c }
	for _, tc := range []struct {
		name    string
		cfg     Config
		exposed bool
		bad     bool
	}{
		{name: "loopback plain", cfg: with(base, "127.0.0.1:2379")},
		{name: "ipv6 loopback plain", cfg: with(base, "[::1]:2379")},
		{name: "localhost plain", cfg: with(base, "localhost:2379")},
		{name: "wildcard plain", cfg: with(base, "0.0.0.0:2379"), exposed: true},
		{name: "lan address plain", cfg: with(base, "10.1.2.3:2379"), exposed: true},
		{name: "host name plain", cfg: with(base, "etcd.example:2379"), exposed: true},
		{name: "wildcard tls, nobody authenticated", cfg: tls(with(base, "0.0.0.0:2379")), exposed: true},
		{name: "wildcard user without tls", cfg: withUser(with(base, "0.0.0.0:2379")), exposed: true},
		{name: "wildcard tls and client certificates", cfg: withCA(tls(with(base, "0.0.0.0:2379")))},
		{name: "wildcard tls and a user", cfg: withUser(tls(with(base, "0.0.0.0:2379")))},
		{name: "wildcard plain, insecure listen said", cfg: insecure(with(base, "0.0.0.0:2379"))},
		{name: "certificate without key", cfg: Config{DataDir: "d", ClientAddr: "127.0.0.1:2379", CertFile: "s.pem"}, bad: true},
		{name: "client CA without tls", cfg: withCA(with(base, "127.0.0.1:2379")), bad: true},
		{name: "user without password", cfg: Config{DataDir: "d", ClientAddr: "127.0.0.1:2379", User: "sb"}, bad: true},
		{name: "no client address", cfg: base, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.check()
			switch {
			case tc.exposed && !errors.Is(err, ErrExposed):
				t.Fatalf("got %v, want ErrExposed", err)
			case tc.bad && (err == nil || errors.Is(err, ErrExposed)):
				t.Fatalf("got %v, want a configuration error", err)
			case !tc.exposed && !tc.bad && err != nil:
				t.Fatalf("got %v, want it accepted", err)
			}
		})
	}
}

func with(c Config, addr string) Config { c.ClientAddr = addr; return c }
func withCA(c Config) Config            { c.ClientCAFile = "ca.pem"; return c }
func withUser(c Config) Config          { c.User, c.Password = "sb", "pw"; return c }
func insecure(c Config) Config          { c.InsecureListen = true; return c }

// An embedded etcd with TLS, client certificates and a user: only a client
// with all three gets in, the in-process client is refused once
// authentication is on, and a restart keeps the users without redoing them.
func TestTLSAndAuth(t *testing.T) {
	pki := pkitest.Write(t)
	cfg := Config{
		Name: "t", DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0",
		CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA,
		User: "switchboard", Password: "s3cret",
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	if eps := s.Endpoints(); len(eps) != 1 || !strings.HasPrefix(eps[0], "https://127.0.0.1:") {
		t.Fatalf("endpoints %v, want one https://127.0.0.1:port", eps)
	}
	full := store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: cfg.User, Password: cfg.Password}
	cli := dialAccess(t, full, s.Endpoints())
	if _, err := cli.Put(ctx, "/switchboard/v1/k", "v"); err != nil {
		t.Fatalf("put with every credential: %v", err)
	}

	certOnly := full
	certOnly.User, certOnly.Password = "", ""
	if _, err := dialAccess(t, certOnly, s.Endpoints()).Get(ctx, "/switchboard/v1/k"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("certificate without a user: got %v, want permission denied", err)
	}
	wrong := full
	wrong.Password = "guess"
	if _, err := wrong.Dial(s.Endpoints()); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: got %v, want authentication failed", err)
	}
	local := s.Client()
	if _, err := local.Get(ctx, "/switchboard/v1/k"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("in-process client with auth on: got %v, want user name empty", err)
	}
	local.Close()
	s.Close()

	// Same address: the client made before the restart logs in again (etcd
	// forgets its tokens when it stops).
	cfg.ClientAddr = strings.TrimPrefix(s.Endpoints()[0], "https://")
	s, err = Start(ctx, cfg, testLog())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	resp, err := cli.Get(ctx, "/switchboard/v1/k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("after restart: %v %v, want the key", resp, err)
	}
	cli.Close()
	s.Close()

	noUser := cfg
	noUser.User, noUser.Password = "", ""
	if s, err := Start(ctx, noUser, testLog()); !errors.Is(err, ErrAuthNeedsUser) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("restart without a user: got %v, want ErrAuthNeedsUser", err)
	}
}

func TestStartRefusesExposedPlain(t *testing.T) {
	if _, err := Start(context.Background(), Config{DataDir: t.TempDir(), ClientAddr: "0.0.0.0:0"}, testLog()); !errors.Is(err, ErrExposed) {
		t.Fatalf("got %v, want ErrExposed", err)
	}
}

func dialAccess(t *testing.T, a store.Access, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := a.Dial(endpoints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
