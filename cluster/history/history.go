// Package history keeps each user's call history in etcd: one entry per
// party per call, written by the call grain when the call ends, read and
// deleted over REST. Deleting removes an entry for that owner only; the
// other parties keep their own.
package history

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/switchboard/switchboard/cluster/store"
)

const (
	kind         = "history"
	defaultLimit = 50
	maxLimit     = 500
)

// ErrNotFound: no such entry for this owner.
var ErrNotFound = errors.New("history entry not found")

// Entry is one party's record of a call (INTERFACE.md section 3).
type Entry struct {
	ID         string     `json:"id"`
	CallID     string     `json:"call_id"`
	Direction  string     `json:"direction"`
	Peer       string     `json:"peer"`
	Line       string     `json:"line"`
	Label      string     `json:"label"`
	StartedAt  time.Time  `json:"started_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    time.Time  `json:"ended_at"`
	Outcome    string     `json:"outcome"`
}

// validName: owners and ids are single path segments of a key.
func validName(s string) bool { return s != "" && !strings.Contains(s, "/") }

func prefix(owner string) string { return store.Key(kind, owner) + "/" }

// NewID returns an id that sorts newest first in key order: the nanoseconds
// left until the end of int64 time, then a random suffix so two entries of
// the same instant do not collide.
func NewID(t time.Time) string {
	ns := t.UnixNano()
	if t.IsZero() || ns < 0 {
		ns = 0 // UnixNano is undefined before 1678; such times sort last
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("%019d-%s", math.MaxInt64-ns, hex.EncodeToString(b[:]))
}

// List returns owner's entries newest first, starting after the cursor
// `after` (an entry id; empty: from the newest), at most limit (0: 50, at
// most 500); next is the cursor of the following page, "" at the end.
func List(ctx context.Context, st store.Store, owner, after string, limit int) ([]Entry, string, error) {
	if !validName(owner) {
		return []Entry{}, "", nil
	}
	if limit <= 0 || limit > maxLimit {
		limit = defaultLimit
	}
	from := ""
	if after != "" {
		from = prefix(owner) + after
	}
	kvs, err := st.List(ctx, prefix(owner), from, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("history %s: list: %w", owner, err)
	}
	next := ""
	if len(kvs) > limit {
		kvs = kvs[:limit]
		next = strings.TrimPrefix(kvs[limit-1].Key, prefix(owner))
	}
	out := make([]Entry, 0, len(kvs))
	for _, kv := range kvs {
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, "", fmt.Errorf("history %s: entry %s unreadable: %w", owner, kv.Key, err)
		}
		out = append(out, e)
	}
	return out, next, nil
}

// Delete removes one of owner's entries.
func Delete(ctx context.Context, st store.Store, owner, id string) error {
	if !validName(owner) || !validName(id) {
		return ErrNotFound
	}
	k := prefix(owner) + id
	kv, err := st.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("history %s: read %s: %w", owner, id, err)
	}
	// Conditional, so two deletes racing do not both report success.
	if _, err := st.Txn(ctx, []store.Cond{{Key: k, ModRevision: kv.ModRevision}}, []store.Op{{Key: k, Delete: true}}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ErrNotFound
		}
		return fmt.Errorf("history %s: delete %s: %w", owner, id, err)
	}
	return nil
}
