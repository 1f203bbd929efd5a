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
	stall := &stallingStore{Store: st, entered: make(chan struct{}, 1), until: make(chan struct{})}
	w := NewWriter(stall, slog.New(slog.DiscardHandler), 2)
	if err := w.Append("a/b", Entry{}); err == nil {
		t.Fatal("an owner with a slash was accepted")
	}
	o := owner("carol")
	if err := w.Append(o, Entry{StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	<-stall.entered // the first batch is stuck in etcd
	var refused int
	for range 10 {
		if w.Append(o, Entry{StartedAt: time.Now()}) != nil {
			refused++
		}
	}
	// Two wait in the queue; the rest is dropped and counted.
	if refused != 8 || w.Dropped() != 8 {
		t.Fatalf("refused %d, counted %d dropped; want 8", refused, w.Dropped())
	}
	close(stall.until)
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := List(ctx(t), st, o, "", 50); len(got) != 3 {
		t.Fatalf("%d entries written, want the 3 that were queued", len(got))
	}
}

// stallingStore holds every transaction until until is closed.
type stallingStore struct {
	store.Store
	entered chan struct{}
	until   chan struct{}
}

func (s *stallingStore) Txn(ctx context.Context, conds []store.Cond, ops []store.Op) (int64, error) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.until
	return s.Store.Txn(ctx, conds, ops)
}
