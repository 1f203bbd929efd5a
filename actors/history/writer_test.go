package history

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster/store"
)

// countingStore counts transactions on the way to etcd.
type countingStore struct {
	store.Store
	txns atomic.Int64
}

func (c *countingStore) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	c.txns.Add(1)
	return c.Store.Txn(ctx, conds, ops)
}

func TestWriterBatchesAndFlushesOnClose(t *testing.T) {
	cs := &countingStore{Store: st}
	w := NewWriter(cs, slog.New(slog.DiscardHandler), 1000)
	ann, bob := owner("ann"), owner("bob")
	t0 := time.Now()
	const n = 300
	for i := range n {
		o := ann
		if i%3 == 0 {
			o = bob
		}
		if err := w.Append(o, Entry{CallID: "c", Outcome: "answered", StartedAt: t0.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	a, _, err := List(ctx(t), st, ann, "", 500)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := List(ctx(t), st, bob, "", 500)
	if len(a) != 200 || len(b) != 100 {
		t.Fatalf("after Close: ann has %d entries, bob %d; want 200 and 100", len(a), len(b))
	}
	if !a[0].StartedAt.After(a[len(a)-1].StartedAt) {
		t.Fatal("entries are not newest first")
	}
	if got := cs.txns.Load(); got < 3 || got > n/2 {
		t.Fatalf("%d transactions for %d entries: want batches of up to %d", got, n, maxBatch)
	}
}

func TestWriterRefusesBadOwnersAndDropsWhenFull(t *testing.T) {
	blocked := make(chan struct{})
	w := NewWriter(&stallingStore{Store: st, until: blocked}, slog.New(slog.DiscardHandler), 2)
	if err := w.Append("a/b", Entry{}); err == nil {
		t.Fatal("an owner with a slash was accepted")
	}
	o := owner("carol")
	var refused int
	for range 10 {
		if w.Append(o, Entry{StartedAt: time.Now()}) != nil {
			refused++
		}
	}
	// One batch is stuck in etcd, two wait in the queue; the rest is dropped.
	if refused < 6 || w.Dropped() != int64(refused) {
		t.Fatalf("refused %d, counted %d dropped", refused, w.Dropped())
	}
	close(blocked)
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

type stallingStore struct {
	store.Store
	until chan struct{}
}

func (s *stallingStore) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	<-s.until
	return s.Store.Txn(ctx, conds, ops)
}
