// Package history keeps each user's call history in etcd: one entry per
// party per call, written by the call grain when the call ends, read and
// deleted over REST. Deleting removes it for that owner only.
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

// ErrNotFound: no such entry for this owner.
var ErrNotFound = errors.New("history: not found")

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

func prefix(owner string) string { return store.Key("history", owner) + "/" }

// newID sorts newest first in key order: inverted nanoseconds plus a random
// suffix so two entries of the same instant do not collide.
func newID(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%019d-%s", math.MaxInt64-t.UnixNano(), hex.EncodeToString(b[:]))
}

// Append stores e for owner and returns it with its id.
func Append(ctx context.Context, st store.Store, owner string, e Entry) (Entry, error) {
	if e.ID == "" {
		e.ID = newID(e.StartedAt)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	if _, err := st.Put(ctx, prefix(owner)+e.ID, v); err != nil {
		return e, fmt.Errorf("history %s: append: %w", owner, err)
	}
	return e, nil
}

// List returns owner's entries newest first, after the cursor `after` (an
// entry id), at most limit; next is the cursor for the following page.
func List(ctx context.Context, st store.Store, owner, after string, limit int) ([]Entry, string, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	from := ""
	if after != "" {
		from = prefix(owner) + after
	}
	kvs, err := st.List(ctx, prefix(owner), from, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("history %s: list: %w", owner, err)
	}
	out := make([]Entry, 0, len(kvs))
	for _, kv := range kvs {
		var e Entry
		if json.Unmarshal(kv.Value, &e) == nil {
			out = append(out, e)
		}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// Delete removes one entry of owner's.
func Delete(ctx context.Context, st store.Store, owner, id string) error {
	if id == "" || strings.Contains(id, "/") {
		return ErrNotFound
	}
	k := prefix(owner) + id
	if _, err := st.Get(ctx, k); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}
	return st.Delete(ctx, k)
}
