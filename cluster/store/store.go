// Package store keeps Switchboard's durable facts in etcd. Grains and edges
// see only this interface; the etcd implementation is in etcd.go. Every key
// lives under Prefix, versioned by kind: /switchboard/v1/<kind>/<id>.
package store

import (
	"context"
	"errors"
	"time"
)

// Prefix is the root of every key this system writes.
const Prefix = "/switchboard/v1/"

// Key builds /switchboard/v1/<kind>/<id>[/<more>...].
func Key(kind string, parts ...string) string {
	k := Prefix + kind
	for _, p := range parts {
		k += "/" + p
	}
	return k
}

var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a transaction's condition failed (someone else wrote first,
	// or a stale grain twin lost its fence).
	ErrConflict = errors.New("store: revision conflict")
)

// KV is one stored key with its etcd revisions.
type KV struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Lease          LeaseID
}

// LeaseID names an etcd lease; 0 means none.
type LeaseID int64

// Cond guards a transaction: the key's ModRevision must equal ModRevision.
// ModRevision 0 means "the key must not exist".
type Cond struct {
	Key         string
	ModRevision int64
}

// Op is one write in a transaction: a put (with an optional lease) or a delete.
type Op struct {
	Key    string
	Value  []byte
	Lease  LeaseID
	Delete bool
}

// EventType says whether a watched key was written or removed.
type EventType int

const (
	EventPut EventType = iota
	EventDelete
)

// Event is one change seen by Watch. For deletes KV.Value is empty.
type Event struct {
	Type EventType
	KV   KV
}

// Store is the durable fact store.
type Store interface {
	// Get returns ErrNotFound when the key is absent.
	Get(ctx context.Context, key string) (KV, error)
	// List returns keys under prefix in key order, starting strictly after
	// `after` (empty: from the start), at most limit (0: all).
	List(ctx context.Context, prefix, after string, limit int) ([]KV, error)
	// Count returns how many keys are under prefix.
	Count(ctx context.Context, prefix string) (int64, error)
	// Put writes unconditionally and returns the new revision.
	Put(ctx context.Context, key string, value []byte) (int64, error)
	// Delete removes keys unconditionally (absent keys are not an error).
	Delete(ctx context.Context, keys ...string) error
	// Txn applies ops atomically if every cond holds, else returns ErrConflict.
	// It returns the revision of the write.
	Txn(ctx context.Context, conds []Cond, ops []Op) (int64, error)
	// Grant creates a lease that expires after ttl (rounded up to a second).
	Grant(ctx context.Context, ttl time.Duration) (LeaseID, error)
	// Revoke ends a lease and deletes the keys attached to it.
	Revoke(ctx context.Context, id LeaseID) error
	// Watch streams changes under prefix from now on until ctx ends. The
	// channel is closed when ctx ends or the watch fails for good.
	Watch(ctx context.Context, prefix string) <-chan Event
	// Close releases the client.
	Close() error
}
