package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/cluster/store"
)

const (
	// maxBatch stays under etcd's default --max-txn-ops (128).
	maxBatch = 100
	// linger is how long a batch waits for more entries: at most 40 etcd
	// writes (and fsyncs) a second, whatever the call rate.
	linger = 25 * time.Millisecond
)

// Writer writes history after calls end, off the call's path: entries are
// gathered for up to 25 ms (or 100 of them) into one etcd transaction, so a
// thousand calls a second cost a few dozen writes and fsyncs, not a
// thousand. Entries are durable once written, not when Append returns: a
// node that dies loses the last few milliseconds of history, never a call.
type Writer struct {
	st      store.Store
	log     *slog.Logger
	in      chan pending
	done    chan struct{}
	closing sync.Once
	dropped atomic.Int64
}

type pending struct {
	key string
	val []byte
}

// NewWriter starts a writer holding at most queue entries waiting for etcd.
func NewWriter(st store.Store, log *slog.Logger, queue int) *Writer {
	w := &Writer{st: st, log: log, in: make(chan pending, queue), done: make(chan struct{})}
	go w.run()
	return w
}

// Append queues e for owner (a new id from StartedAt unless e has one).
// When etcd has fallen a whole queue behind the entry is dropped and
// counted: a call must never wait for its history.
func (w *Writer) Append(owner string, e Entry) error {
	key, val, err := encode(owner, e)
	if err != nil {
		return err
	}
	select {
	case w.in <- pending{key, val}:
		return nil
	default:
		w.dropped.Add(1)
		return fmt.Errorf("history %s: write queue full, entry dropped", owner)
	}
}

// Dropped counts entries lost to a full queue.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Close writes what is queued (bounded by ctx) and stops the writer.
func (w *Writer) Close(ctx context.Context) error {
	w.closing.Do(func() { close(w.in) })
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("history: close: %w", ctx.Err())
	}
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]store.Op, 0, maxBatch)
	t := time.NewTimer(linger)
	for p := range w.in {
		batch = append(batch[:0], store.Op{Key: p.key, Value: p.val})
		t.Reset(linger)
	fill:
		for len(batch) < maxBatch {
			select {
			case p, ok := <-w.in:
				if !ok {
					break fill
				}
				batch = append(batch, store.Op{Key: p.key, Value: p.val})
			case <-t.C:
				break fill
			}
		}
		w.write(batch)
	}
}

// write retries a failed batch a few times: etcd elects a new leader in
// about a second.
func (w *Writer) write(ops []store.Op) {
	var err error
	for attempt := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = w.st.Txn(ctx, nil, ops)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 250 * time.Millisecond)
	}
	w.dropped.Add(int64(len(ops)))
	w.log.Warn("history: batch write failed, entries dropped", "entries", len(ops), "err", err)
}

func encode(owner string, e Entry) (string, []byte, error) {
	if !validName(owner) {
		return "", nil, fmt.Errorf("history: owner %q is not a valid key segment", owner)
	}
	if e.ID == "" {
		e.ID = NewID(e.StartedAt)
	} else if !validName(e.ID) {
		return "", nil, fmt.Errorf("history: entry id %q is not a valid key segment", e.ID)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("history %s: encode entry: %w", owner, err)
	}
	return prefix(owner) + e.ID, v, nil
}
