package etcdembed

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
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
