package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchboard/switchboard/cluster/metrics"
)

const (
	// maxTxnOps is etcd's default --max-txn-ops; Delete splits larger batches.
	maxTxnOps = 128
	// watchBuffer lets a burst of changes through while the reader is busy.
	watchBuffer = 64
	// watchStartTimeout bounds the revision lookup that pins "from now on".
	watchStartTimeout = 2 * time.Second
	watchRetryMin     = 100 * time.Millisecond
	watchRetryMax     = 5 * time.Second
)

// Etcd is the Store over an etcd client.
type Etcd struct {
	cli *clientv3.Client
}

var _ Store = (*Etcd)(nil)

// NewEtcd wraps cli; Close closes it.
func NewEtcd(cli *clientv3.Client) *Etcd { return &Etcd{cli: cli} }

// observe records an etcd request's latency under op.
func observe(op string, start time.Time) {
	metrics.EtcdSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (s *Etcd) Get(ctx context.Context, key string) (KV, error) {
	defer observe("get", time.Now())
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return KV{}, fmt.Errorf("store: get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	return fromEtcd(resp.Kvs[0]), nil
}

func (s *Etcd) List(ctx context.Context, prefix, after string, limit int) ([]KV, error) {
	defer observe("list", time.Now())
	start := prefix
	if after != "" && after >= prefix {
		// The smallest key strictly greater than after.
		start = after + "\x00"
	}
	opts := []clientv3.OpOption{
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend),
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, start, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: list %s after %q: %w", prefix, after, err)
	}
	out := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = fromEtcd(kv)
	}
	return out, nil
}

func (s *Etcd) Count(ctx context.Context, prefix string) (int64, error) {
	defer observe("count", time.Now())
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return 0, fmt.Errorf("store: count %s: %w", prefix, err)
	}
	return resp.Count, nil
}

func (s *Etcd) Put(ctx context.Context, key string, value []byte) (int64, error) {
	defer observe("put", time.Now())
	resp, err := s.cli.Put(ctx, key, string(value))
	if err != nil {
		return 0, fmt.Errorf("store: put %s: %w", key, err)
	}
	return resp.Header.Revision, nil
}

func (s *Etcd) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxTxnOps)
		ops := make([]clientv3.Op, n)
		for i, k := range keys[:n] {
			ops[i] = clientv3.OpDelete(k)
		}
		start := time.Now()
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		observe("delete", start)
		if err != nil {
			return fmt.Errorf("store: delete %d keys from %s: %w", n, keys[0], err)
		}
		keys = keys[n:]
	}
	return nil
}

func (s *Etcd) Txn(ctx context.Context, conds []Cond, ops []Op) (int64, error) {
	defer observe("txn", time.Now())
	cmps := make([]clientv3.Cmp, len(conds))
	for i, c := range conds {
		// A missing key has ModRevision 0, so 0 means "must not exist".
		cmps[i] = clientv3.Compare(clientv3.ModRevision(c.Key), "=", c.ModRevision)
	}
	thens := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		switch {
		case o.Delete:
			thens[i] = clientv3.OpDelete(o.Key)
		case o.Lease != 0:
			thens[i] = clientv3.OpPut(o.Key, string(o.Value), clientv3.WithLease(clientv3.LeaseID(o.Lease)))
		default:
			thens[i] = clientv3.OpPut(o.Key, string(o.Value))
		}
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(thens...).Commit()
	if err != nil {
		return 0, fmt.Errorf("store: txn (%d conds, %d ops): %w", len(conds), len(ops), err)
	}
	if !resp.Succeeded {
		return 0, ErrConflict
	}
	return resp.Header.Revision, nil
}

func (s *Etcd) Grant(ctx context.Context, ttl time.Duration) (LeaseID, error) {
	defer observe("grant", time.Now())
	secs := max(int64((ttl+time.Second-1)/time.Second), 1)
	resp, err := s.cli.Grant(ctx, secs)
	if err != nil {
		return 0, fmt.Errorf("store: grant %ds lease: %w", secs, err)
	}
	return LeaseID(resp.ID), nil
}

func (s *Etcd) Revoke(ctx context.Context, id LeaseID) error {
	defer observe("revoke", time.Now())
	_, err := s.cli.Revoke(ctx, clientv3.LeaseID(id))
	// A lease that already expired has done what Revoke asks.
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("store: revoke lease %x: %w", int64(id), err)
	}
	return nil
}

// Watch pins "now" to the current revision when etcd answers quickly, so a
// change written after Watch returns is always seen. It then follows the
// prefix, resuming after the last revision it delivered when the stream
// breaks (etcd restart, lost leader, network). The channel closes when ctx
// ends or when etcd has compacted past that revision: changes were lost, so
// the reader must List again and start a new Watch.
func (s *Etcd) Watch(ctx context.Context, prefix string) <-chan Event {
	out := make(chan Event, watchBuffer)
	var rev int64
	gctx, cancel := context.WithTimeout(ctx, watchStartTimeout)
	start := time.Now()
	resp, err := s.cli.Get(gctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	cancel()
	if err == nil {
		observe("watch_start", start)
		rev = resp.Header.Revision
	}
	go s.follow(ctx, prefix, rev, out)
	return out
}

// follow streams events after rev (0: from whatever is current) into out.
func (s *Etcd) follow(ctx context.Context, prefix string, rev int64, out chan<- Event) {
	defer close(out)
	log := slog.Default().With("component", "store", "watch", prefix)
	backoff := watchRetryMin
	for ctx.Err() == nil {
		opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify()}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev+1))
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		progressed, err := s.stream(wctx, s.cli.Watch(wctx, prefix, opts...), &rev, out)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			log.Error("watch fell behind compaction; closing so the reader resyncs", "rev", rev)
			return
		}
		if progressed {
			backoff = watchRetryMin
		}
		log.Warn("watch interrupted; resuming", "after_rev", rev, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(backoff)):
		}
		backoff = min(2*backoff, watchRetryMax)
	}
}

// stream delivers one watch stream's events, advancing *rev, until the
// stream fails. It reports whether it delivered anything, and why it ended.
func (s *Etcd) stream(ctx context.Context, wch clientv3.WatchChan, rev *int64, out chan<- Event) (bool, error) {
	delivered := false
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return delivered, err
		}
		if resp.Created {
			// A watch from "now" learns which revision now was, so a retry
			// resumes there rather than at a later "now".
			if *rev == 0 {
				*rev = resp.Header.Revision
			}
			continue
		}
		if resp.IsProgressNotify() {
			// Everything up to the header revision has been delivered.
			*rev = max(*rev, resp.Header.Revision)
			continue
		}
		for _, ev := range resp.Events {
			e := Event{Type: EventPut, KV: fromEtcd(ev.Kv)}
			if ev.Type == clientv3.EventTypeDelete {
				e.Type = EventDelete
				e.KV.Value = nil
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return delivered, ctx.Err()
			}
			*rev = ev.Kv.ModRevision
			delivered = true
		}
	}
	return delivered, errors.New("watch stream closed")
}

func (s *Etcd) Close() error {
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: close etcd client: %w", err)
	}
	return nil
}

func fromEtcd(kv *mvccpb.KeyValue) KV {
	return KV{Key: string(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Lease: LeaseID(kv.Lease)}
}

// jitter spreads retries of many watchers over [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2)
}
