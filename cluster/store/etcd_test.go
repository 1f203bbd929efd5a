package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/cluster/store"
)

var endpoints []string

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestMain shares one embedded etcd; each test writes under its own prefix.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "store-test")
	if err != nil {
		panic(err)
	}
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: dir, ClientAddr: "127.0.0.1:0"}, testLog())
	if err != nil {
		panic(err)
	}
	endpoints = srv.Endpoints()
	code := m.Run()
	srv.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newStore(t *testing.T, eps []string) *store.Etcd {
	t.Helper()
	cli, err := store.Dial(eps)
	if err != nil {
		t.Fatal(err)
	}
	s := store.NewEtcd(cli)
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func prefix(t *testing.T) string { return store.Key("test", t.Name()) + "/" }

func TestGetMissing(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	if _, err := s.Get(ctx, prefix(t)+"nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func TestCreateIfAbsentConflicts(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	k := prefix(t) + "ext/100"
	create := func(owner string) error {
		_, err := s.Txn(ctx, []store.Cond{{Key: k}}, []store.Op{{Key: k, Value: []byte(owner)}})
		return err
	}
	if err := create("ann"); err != nil {
		t.Fatalf("first create: %v", err)
	}
	if err := create("bob"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: got %v, want ErrConflict", err)
	}
	kv, err := s.Get(ctx, k)
	if err != nil || string(kv.Value) != "ann" {
		t.Fatalf("got %q, %v; want ann", kv.Value, err)
	}
}

// Two twins of a grain read the same revision; the first write wins and the
// stale twin's write fails instead of overwriting it.
func TestCompareAndPutFencesStaleRevision(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	k, other := prefix(t)+"call/1", prefix(t)+"call/1/lock"
	rev, err := s.Txn(ctx, []store.Cond{{Key: k}}, []store.Op{{Key: k, Value: []byte("v1")}})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.Get(ctx, k)
	if err != nil || kv.ModRevision != rev || kv.CreateRevision != rev {
		t.Fatalf("get after create: %+v, %v; want revisions %d", kv, err, rev)
	}

	rev2, err := s.Txn(ctx, []store.Cond{{Key: k, ModRevision: rev}},
		[]store.Op{{Key: k, Value: []byte("twin-a")}, {Key: other, Value: []byte("a")}})
	if err != nil {
		t.Fatalf("twin A: %v", err)
	}
	if rev2 <= rev {
		t.Fatalf("revision did not advance: %d -> %d", rev, rev2)
	}
	_, err = s.Txn(ctx, []store.Cond{{Key: k, ModRevision: rev}},
		[]store.Op{{Key: k, Value: []byte("twin-b")}, {Key: other, Delete: true}})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale twin B: got %v, want ErrConflict", err)
	}
	for key, want := range map[string]string{k: "twin-a", other: "a"} {
		if kv, err := s.Get(ctx, key); err != nil || string(kv.Value) != want {
			t.Fatalf("%s = %q, %v; want %q", key, kv.Value, err, want)
		}
	}
	// A condition on a key that must not exist fails once it does.
	if _, err := s.Txn(ctx, []store.Cond{{Key: k, ModRevision: rev2}, {Key: other}}, nil); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("mixed conds: got %v, want ErrConflict", err)
	}
}

// The one test that waits for real time: expiry is etcd's rule, not ours.
func TestLeaseExpiresKeys(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	k := prefix(t) + "reg/ann"
	lease, err := s.Grant(ctx, 1500*time.Millisecond) // rounds up to 2 s
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, nil, []store.Op{{Key: k, Value: []byte("contact"), Lease: lease}}); err != nil {
		t.Fatal(err)
	}
	kv, err := s.Get(ctx, k)
	if err != nil || kv.Lease != lease {
		t.Fatalf("get: %+v, %v; want lease %x", kv, err, lease)
	}
	deadline := time.Now().Add(6 * time.Second)
	for {
		_, err := s.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("key outlived its 2 s lease by 4 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Revoking an expired lease is not an error.
	if err := s.Revoke(ctx, lease); err != nil {
		t.Fatalf("revoke expired: %v", err)
	}
}

func TestRevokeDeletesKeys(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	k := prefix(t) + "reg/bob"
	lease, err := s.Grant(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, nil, []store.Op{{Key: k, Value: []byte("x"), Lease: lease}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after revoke: %v, want ErrNotFound", err)
	}
}

func TestListPagesAfterKey(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	p := prefix(t) + "users/"
	var want []string
	for i := range 5 {
		k := fmt.Sprintf("%su%d", p, i)
		want = append(want, k)
		if _, err := s.Put(ctx, k, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Neighbours of the prefix must not leak in.
	for _, k := range []string{strings.TrimSuffix(p, "/"), prefix(t) + "usersx", prefix(t) + "a"} {
		if _, err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		kvs, err := s.List(ctx, p, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) == 0 {
			break
		}
		if len(kvs) > 2 {
			t.Fatalf("page of %d, limit 2", len(kvs))
		}
		for _, kv := range kvs {
			got = append(got, kv.Key)
		}
		after = kvs[len(kvs)-1].Key
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged keys %v, want %v", got, want)
	}

	all, err := s.List(ctx, p, "", 0)
	if err != nil || len(all) != 5 || all[2].Value[0] != 2 {
		t.Fatalf("list all: %d keys, %v", len(all), err)
	}
	if n, err := s.Count(ctx, p); err != nil || n != 5 {
		t.Fatalf("count: %d, %v; want 5 (neighbours of the prefix excluded)", n, err)
	}
	// An `after` before the prefix starts at the prefix.
	if kvs, err := s.List(ctx, p, prefix(t)+"a", 1); err != nil || len(kvs) != 1 || kvs[0].Key != want[0] {
		t.Fatalf("after below prefix: %v, %v", kvs, err)
	}
}

func TestDeleteManyAndAbsent(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	p := prefix(t)
	var keys []string
	for i := range 300 { // more than one etcd transaction holds
		k := fmt.Sprintf("%sk%03d", p, i)
		keys = append(keys, k)
		if _, err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, append(keys, p+"absent")...); err != nil {
		t.Fatal(err)
	}
	if kvs, err := s.List(ctx, p, "", 0); err != nil || len(kvs) != 0 {
		t.Fatalf("left %d keys, %v", len(kvs), err)
	}
	if n := observed(t, "delete"); n < 3 {
		t.Fatalf("%d delete latencies observed, want one per etcd transaction", n)
	}
}

// observed counts the etcd latencies recorded for op.
func observed(t *testing.T, op string) uint64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "switchboard_etcd_request_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestWatchPutDelete(t *testing.T) {
	s, ctx := newStore(t, endpoints), testCtx(t)
	p := prefix(t)
	wctx, stop := context.WithCancel(ctx)
	ch := s.Watch(wctx, p)
	// Written right after Watch returns: must be seen.
	if _, err := s.Put(ctx, p+"a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, store.Key("test", "elsewhere"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, p+"a"); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, store.EventPut, p+"a", "1")
	expect(t, ch, store.EventDelete, p+"a", "")

	stop()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("unexpected event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch channel not closed after ctx ended")
	}
}

// etcd restarts under a watcher: the watch resumes after the last revision
// it delivered, without repeating or losing changes.
func TestWatchResumesAfterEtcdRestart(t *testing.T) {
	dir := t.TempDir()
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: dir, ClientAddr: "127.0.0.1:0"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	eps := srv.Endpoints()
	s, ctx := newStore(t, eps), testCtx(t)
	ch := s.Watch(ctx, "/w/")
	if _, err := s.Put(ctx, "/w/a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, store.EventPut, "/w/a", "1")

	srv.Close() // waits up to 7 s for this watch stream to end
	addr := strings.TrimPrefix(eps[0], "http://")
	srv, err = etcdembed.Start(context.Background(), etcdembed.Config{DataDir: dir, ClientAddr: addr}, testLog())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer srv.Close()
	if _, err := s.Put(ctx, "/w/b", []byte("2")); err != nil {
		t.Fatal(err)
	}
	expect(t, ch, store.EventPut, "/w/b", "2")
	s.Close() // before etcd, so its Close need not wait for the stream
}

func expect(t *testing.T, ch <-chan store.Event, typ store.EventType, key, value string) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch closed; want %v %s", typ, key)
		}
		if ev.Type != typ || ev.KV.Key != key || string(ev.KV.Value) != value {
			t.Fatalf("got %v %s=%q, want %v %s=%q", ev.Type, ev.KV.Key, ev.KV.Value, typ, key, value)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no event; want %v %s", typ, key)
	}
}
