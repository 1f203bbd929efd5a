// Package directory holds users, trunks, numbers, tokens, monitoring
// groups, call queues, shared line groups and pickup groups: settings in
// etcd, with a cache every node keeps current from a watch. SIP auth and routing read it on every request, so reads are map
// lookups; a miss falls back to etcd once, so a user created on another
// node is usable at once.
package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/cluster/store"
)

const (
	kindUsers      = "users"
	kindTrunks     = "trunks"
	kindExtensions = "extensions"
	kindNumbers    = "numbers"
	kindTokens     = "tokens"

	// missTimeout bounds the etcd read a cache miss costs a SIP request.
	missTimeout = 2 * time.Second
	// writeAttempts: a fenced write re-reads after losing to a concurrent one.
	writeAttempts = 5
	resyncMin     = 100 * time.Millisecond
	resyncMax     = 5 * time.Second
	defaultPage   = 100
	maxPage       = 500
)

// User is a person (or common-area phone) with a line. It carries no
// secrets, so it may be shown as it is.
type User struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Extension        string    `json:"extension"`
	Numbers          []string  `json:"numbers"`
	Timezone         string    `json:"timezone"`
	BusinessHours    Hours     `json:"business_hours"`
	PowerPack        bool      `json:"power_pack"`
	VoicemailEnabled bool      `json:"voicemail_enabled"`
	SRTP             string    `json:"srtp"`
	CreatedAt        time.Time `json:"created_at"`
}

// record is a user as stored: the user plus what is never shown.
type record struct {
	User
	Secrets secrets `json:"secrets"`
}

// secrets are the digest HA1s for both usernames (the SIP password itself is
// not kept) and the hash of the REST token.
type secrets struct {
	HA1       map[string]string `json:"ha1"` // "<alg>:<username>" -> HA1
	TokenHash string            `json:"token_hash"`
}

// Trunk is a carrier connection: trusted by source address, reached at
// Address.
type Trunk struct {
	ID           string   `json:"id"`
	Address      string   `json:"address"`
	InboundCIDRs []string `json:"inbound_cidrs"`
	Outbound     bool     `json:"outbound"`
	prefixes     []netip.Prefix
}

// FieldError is invalid input, naming the field.
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// RuleError is valid input the rules refuse (the API's 422): a user or
// queue that does not exist, an overflow loop, too many members. Code is
// the API's snake_case code; Field names the field as the client wrote it.
type RuleError struct{ Code, Field, Message string }

func (e *RuleError) Error() string { return e.Field + ": " + e.Message }

var (
	// ErrExists: the id, extension or a number is already in use. Errors
	// wrapping it say which.
	ErrExists = errors.New("already in use")
	// ErrNotFound: no such user or trunk.
	ErrNotFound = errors.New("not found")
)

// Directory is this node's cached view of users and trunks.
type Directory struct {
	st    store.Store
	realm string
	creds Credentials
	log   *slog.Logger

	mu sync.RWMutex
	// revs holds the revision last applied per key, deletes included, so a
	// late or stale write (a watch event after our own write, a miss read
	// racing a delete) never overwrites a newer one.
	revs     map[string]int64
	users    map[string]record
	byExt    map[string]string
	byNum    map[string]string
	byTok    map[string]string
	ha1      map[string]ha1Ref
	trunks   map[string]Trunk
	outbound string // id of the outbound trunk, "" when none
	groups   map[string]MonitoringGroup
	// bySupervisor: a supervisor's monitoring groups, by id.
	bySupervisor map[string][]string
	queues       map[string]Queue
	slgs         map[string]SharedLineGroup
	pickups      map[string]PickupGroup
	queuesOf     userIndex // a member's queues
	slgsOf       userIndex // a member's shared line groups
	pickupsOf    userIndex // a member's pickup groups
	// dests: the queue or shared line group claiming an extension or a
	// number (users' are in byExt and byNum).
	dests map[string]Dest
}

type ha1Ref struct{ ha1, user string }

// New returns a directory over st for the digest realm; Start fills it.
func New(st store.Store, realm string, creds Credentials, log *slog.Logger) *Directory {
	return &Directory{st: st, realm: realm, creds: creds, log: log.With("component", "directory"),
		revs: map[string]int64{}, users: map[string]record{}, byExt: map[string]string{}, byNum: map[string]string{},
		byTok: map[string]string{}, ha1: map[string]ha1Ref{}, trunks: map[string]Trunk{},
		groups: map[string]MonitoringGroup{}, bySupervisor: map[string][]string{},
		queues: map[string]Queue{}, slgs: map[string]SharedLineGroup{}, pickups: map[string]PickupGroup{},
		queuesOf: userIndex{}, slgsOf: userIndex{}, pickupsOf: userIndex{}, dests: map[string]Dest{}}
}

// Start loads every user, trunk, monitoring group, queue, shared line group
// and pickup group, then keeps the cache current until ctx ends. It fails
// only when the first load does.
func (d *Directory) Start(ctx context.Context) error {
	for _, kind := range []string{kindUsers, kindTrunks, kindGroups, kindQueues, kindSLGs, kindPickups} {
		// Watch before List: a change between the two is then in the watch.
		ch, stop := d.watch(ctx, kind)
		if err := d.resync(ctx, kind); err != nil {
			stop()
			return err
		}
		go d.follow(ctx, kind, ch, stop)
	}
	return nil
}

func prefix(kind string) string { return store.Key(kind) + "/" }

func (d *Directory) watch(ctx context.Context, kind string) (<-chan store.Event, context.CancelFunc) {
	wctx, stop := context.WithCancel(ctx)
	return d.st.Watch(wctx, prefix(kind)), stop
}

// follow applies watch events; when the watch ends (etcd compacted past it)
// it watches again and reloads everything of that kind.
func (d *Directory) follow(ctx context.Context, kind string, ch <-chan store.Event, stop context.CancelFunc) {
	backoff := resyncMin
	for {
		for ev := range ch {
			d.applyEvent(kind, ev)
		}
		stop()
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("watch ended; reloading", "kind", kind)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			ch, stop = d.watch(ctx, kind)
			err := d.resync(ctx, kind)
			if err == nil {
				backoff = resyncMin
				break
			}
			stop() // its events would be applied without their base
			d.log.Warn("reload failed", "kind", kind, "err", err, "retry_in", backoff)
			backoff = min(2*backoff, resyncMax)
		}
	}
}

// resync loads every key of kind and drops cached ones that are gone.
func (d *Directory) resync(ctx context.Context, kind string) error {
	kvs, err := d.st.List(ctx, prefix(kind), "", 0)
	if err != nil {
		return fmt.Errorf("directory: load %s: %w", kind, err)
	}
	present := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		present[kv.Key] = true
		d.applyEvent(kind, store.Event{Type: store.EventPut, KV: kv})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for key := range d.revs {
		if strings.HasPrefix(key, prefix(kind)) && !present[key] {
			// Forget the revision too: a later put of this key comes
			// through the watch started before the List.
			delete(d.revs, key)
			d.dropLocked(kind, strings.TrimPrefix(key, prefix(kind)))
		}
	}
	return nil
}

// applyEvent puts a change into the cache unless a newer one is there.
func (d *Directory) applyEvent(kind string, ev store.Event) {
	var (
		rec    record
		trunk  Trunk
		group  MonitoringGroup
		queue  Queue
		slg    SharedLineGroup
		pickup PickupGroup
	)
	if ev.Type == store.EventPut {
		var err error
		switch kind {
		case kindUsers:
			err = json.Unmarshal(ev.KV.Value, &rec)
		case kindTrunks:
			if err = json.Unmarshal(ev.KV.Value, &trunk); err == nil {
				err = trunk.validate()
			}
		case kindGroups:
			err = json.Unmarshal(ev.KV.Value, &group)
		case kindQueues:
			err = json.Unmarshal(ev.KV.Value, &queue)
		case kindSLGs:
			err = json.Unmarshal(ev.KV.Value, &slg)
		case kindPickups:
			err = json.Unmarshal(ev.KV.Value, &pickup)
		}
		if err != nil {
			d.log.Error("unreadable setting ignored", "key", ev.KV.Key, "err", err)
			return
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if ev.KV.ModRevision <= d.revs[ev.KV.Key] {
		return
	}
	d.revs[ev.KV.Key] = ev.KV.ModRevision
	id := strings.TrimPrefix(ev.KV.Key, prefix(kind))
	d.dropLocked(kind, id)
	if ev.Type == store.EventDelete {
		return
	}
	switch kind {
	case kindUsers:
		d.putUserLocked(rec)
	case kindTrunks:
		d.trunks[trunk.ID] = trunk
		d.pickOutboundLocked()
	case kindGroups:
		d.putGroupLocked(group)
	case kindQueues:
		d.putQueueLocked(queue)
	case kindSLGs:
		d.putSLGLocked(slg)
	case kindPickups:
		d.putPickupLocked(pickup)
	}
}

func (d *Directory) putUserLocked(r record) {
	d.users[r.ID] = r
	d.byExt[r.Extension] = r.ID
	for _, n := range r.Numbers {
		d.byNum[n] = r.ID
	}
	if r.Secrets.TokenHash != "" {
		d.byTok[r.Secrets.TokenHash] = r.ID
	}
	for k, h := range r.Secrets.HA1 {
		d.ha1[k] = ha1Ref{ha1: h, user: r.ID}
	}
}

// dropLocked removes a cached setting and the index entries that still
// point at it (another user may already own a freed extension).
func (d *Directory) dropLocked(kind, id string) {
	switch kind {
	case kindGroups:
		d.dropGroupLocked(id)
		return
	case kindQueues:
		d.dropQueueLocked(id)
		return
	case kindSLGs:
		d.dropSLGLocked(id)
		return
	case kindPickups:
		d.dropPickupLocked(id)
		return
	}
	if kind == kindTrunks {
		if _, ok := d.trunks[id]; ok {
			delete(d.trunks, id)
			d.pickOutboundLocked()
		}
		return
	}
	old, ok := d.users[id]
	if !ok {
		return
	}
	delete(d.users, id)
	if d.byExt[old.Extension] == id {
		delete(d.byExt, old.Extension)
	}
	for _, n := range old.Numbers {
		if d.byNum[n] == id {
			delete(d.byNum, n)
		}
	}
	if d.byTok[old.Secrets.TokenHash] == id {
		delete(d.byTok, old.Secrets.TokenHash)
	}
	for k := range old.Secrets.HA1 {
		if d.ha1[k].user == id {
			delete(d.ha1, k)
		}
	}
}

// pickOutboundLocked chooses the outbound trunk (the lowest id, so every
// node picks the same one) once per change rather than per call.
func (d *Directory) pickOutboundLocked() {
	d.outbound = ""
	for id, t := range d.trunks {
		if t.Outbound && (d.outbound == "" || id < d.outbound) {
			d.outbound = id
		}
	}
}

// ---- reads ----------------------------------------------------------------

// UserByID returns a user.
func (d *Directory) UserByID(id string) (User, bool) {
	r, ok := d.recordByID(id)
	return r.User, ok
}

func (d *Directory) recordByID(id string) (record, bool) {
	d.mu.RLock()
	r, ok := d.users[id]
	d.mu.RUnlock()
	if ok || !validID(id) {
		return r, ok
	}
	return d.missUser(id)
}

// UserByExtension returns the user with that extension.
func (d *Directory) UserByExtension(ext string) (User, bool) {
	r, ok := d.byIndex(d.byExt, kindExtensions, ext, validExt(ext), func(r record) bool { return r.Extension == ext })
	return r.User, ok
}

// UserByNumber returns the owner of an E.164 number.
func (d *Directory) UserByNumber(n string) (User, bool) {
	r, ok := d.byIndex(d.byNum, kindNumbers, n, validE164(n), func(r record) bool {
		for _, x := range r.Numbers {
			if x == n {
				return true
			}
		}
		return false
	})
	return r.User, ok
}

// UserByToken returns the user a REST token belongs to.
func (d *Directory) UserByToken(tok string) (User, bool) {
	h := hashToken(tok)
	r, ok := d.byIndex(d.byTok, kindTokens, h, tok != "", func(r record) bool { return r.Secrets.TokenHash == h })
	return r.User, ok
}

// CachedUserByToken is UserByToken without the etcd read a miss costs: for
// callers that must stay cheap whatever they are sent, at the price of
// missing a token issued on another node a moment ago.
func (d *Directory) CachedUserByToken(tok string) (User, bool) {
	r, ok := d.byIndex(d.byTok, kindTokens, hashToken(tok), false, nil)
	return r.User, ok
}

// Resolve maps the user part of a SIP URI (an extension or a user id) to a
// user; an extension wins when both could match.
func (d *Directory) Resolve(part string) (User, bool) {
	r, ok := d.resolve(part)
	return r.User, ok
}

func (d *Directory) resolve(part string) (record, bool) {
	if validExt(part) {
		if r, ok := d.byIndex(d.byExt, kindExtensions, part, true, func(r record) bool { return r.Extension == part }); ok {
			return r, true
		}
	}
	return d.recordByID(part)
}

// HA1 returns the stored digest HA1 for alg (one of Credentials.Algorithms)
// and a username (id or extension), with the user's id.
func (d *Directory) HA1(alg, username string) (ha1, userID string, ok bool) {
	key := alg + ":" + username
	d.mu.RLock()
	ref, ok := d.ha1[key]
	d.mu.RUnlock()
	if ok {
		return ref.ha1, ref.user, true
	}
	r, found := d.resolve(username)
	if !found {
		return "", "", false
	}
	h, ok := r.Secrets.HA1[key]
	return h, r.ID, ok
}

// TrunkBySource returns the trunk whose inbound CIDRs hold ip.
func (d *Directory) TrunkBySource(ip netip.Addr) (Trunk, bool) {
	ip = ip.Unmap()
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, t := range d.trunks {
		for _, p := range t.prefixes {
			if p.Contains(ip) {
				return t, true
			}
		}
	}
	return Trunk{}, false
}

// OutboundTrunk is the trunk external numbers leave through (the outbound
// trunk with the lowest id).
func (d *Directory) OutboundTrunk() (Trunk, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.trunks[d.outbound]
	return t, ok
}

// TrunkByID returns a trunk, reading etcd on a miss.
func (d *Directory) TrunkByID(id string) (Trunk, bool) {
	d.mu.RLock()
	t, ok := d.trunks[id]
	d.mu.RUnlock()
	if ok || !validID(id) || !d.fetch(kindTrunks, id) {
		return t, ok
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok = d.trunks[id]
	return t, ok
}

// fetch reads a setting that is not cached (yet) from etcd into the cache;
// false when there is none.
func (d *Directory) fetch(kind, id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), missTimeout)
	defer cancel()
	kv, err := d.st.Get(ctx, store.Key(kind, id))
	if err != nil {
		d.logMiss(kind, err)
		return false
	}
	// Through the cache, so a delete seen meanwhile wins over this read.
	d.applyEvent(kind, store.Event{Type: store.EventPut, KV: kv})
	return true
}

// byIndex looks a user up in an index map and, on a miss, through the
// index key in etcd; match rejects an index key that is stale.
func (d *Directory) byIndex(idx map[string]string, kind, k string, valid bool, match func(record) bool) (record, bool) {
	d.mu.RLock()
	id, ok := idx[k]
	r := d.users[id]
	d.mu.RUnlock()
	if ok || !valid {
		return r, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), missTimeout)
	defer cancel()
	kv, err := d.st.Get(ctx, store.Key(kind, k))
	if err != nil {
		d.logMiss(kind, err)
		return record{}, false
	}
	// A queue's or group's claim names no user: no second read.
	if !validID(string(kv.Value)) {
		return record{}, false
	}
	r, ok = d.missUser(string(kv.Value))
	if !ok || !match(r) {
		return record{}, false
	}
	return r, true
}

// missUser reads a user that is not cached (yet) from etcd.
func (d *Directory) missUser(id string) (record, bool) {
	if !d.fetch(kindUsers, id) {
		return record{}, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	r, ok := d.users[id]
	return r, ok
}

func (d *Directory) logMiss(kind string, err error) {
	if !errors.Is(err, store.ErrNotFound) {
		d.log.Warn("lookup in etcd failed", "kind", kind, "err", err)
	}
}

// ---- writes ---------------------------------------------------------------

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Credentials derives what is stored of a password: the digest HA1 of
// each algorithm the SIP edge may offer (api/sipedge/digest), so that the
// password itself is never kept and the directory needs no digest code.
type Credentials struct {
	Algorithms []string
	HA1        func(alg, username, realm, password string) string
}

// setPassword stores the HA1 for every algorithm and both usernames.
func (d *Directory) setPassword(r *record, password string) {
	r.Secrets.HA1 = map[string]string{}
	for _, alg := range d.creds.Algorithms {
		for _, name := range []string{r.ID, r.Extension} {
			r.Secrets.HA1[alg+":"+name] = d.creds.HA1(alg, name, d.realm, password)
		}
	}
}

// claims are the uniqueness conditions of a user's names: its id, its
// extension and numbers, and neither name taken in the other's namespace
// (a digit-only id would otherwise shadow someone's extension). Queues and
// shared line groups claim their extensions and numbers in the same
// namespaces, so that a name reaches one owner. Fences are the other
// settings a write was checked against (an overflow's queues), which must
// not have changed when it commits.
type claims struct {
	conds []store.Cond
	ops   []store.Op
	what  []string // conds[i] is described by what[i]
}

func (c *claims) claim(key, value, what string) {
	c.conds = append(c.conds, store.Cond{Key: key})
	c.what = append(c.what, what)
	if value != "" {
		c.ops = append(c.ops, store.Op{Key: key, Value: []byte(value)})
	}
}

// fence makes the write depend on key still being at rev.
func (c *claims) fence(key string, rev int64) {
	c.conds = append(c.conds, store.Cond{Key: key, ModRevision: rev})
	c.what = append(c.what, "")
}

// extension claims ext for owner: a user's id, or a Dest's claim value.
func (c *claims) extension(owner, ext string) {
	c.claim(store.Key(kindExtensions, ext), owner, "extension "+ext)
	if ext != owner {
		c.claim(store.Key(kindUsers, ext), "", "extension "+ext)
	}
}

// CreateUser validates, stores (names claimed in one transaction) and
// returns the user with its token, which is shown only now.
func (d *Directory) CreateUser(ctx context.Context, in UserInput) (User, string, error) {
	u, err := in.user()
	if err != nil {
		return User{}, "", err
	}
	u.CreatedAt = time.Now().UTC().Truncate(time.Second)
	r := record{User: u}
	d.setPassword(&r, in.SIPPassword)
	tok := newToken()
	r.Secrets.TokenHash = hashToken(tok)
	v, err := json.Marshal(r)
	if err != nil {
		return User{}, "", fmt.Errorf("directory: encode user %s: %w", u.ID, err)
	}
	var c claims
	c.claim(store.Key(kindUsers, u.ID), string(v), "id "+u.ID)
	if validExt(u.ID) && u.ID != u.Extension {
		c.claim(store.Key(kindExtensions, u.ID), "", "id "+u.ID+" (an extension)")
	}
	c.extension(u.ID, u.Extension)
	for _, n := range u.Numbers {
		c.claim(store.Key(kindNumbers, n), u.ID, "number "+n)
	}
	c.ops = append(c.ops, store.Op{Key: store.Key(kindTokens, r.Secrets.TokenHash), Value: []byte(u.ID)})
	rev, err := d.st.Txn(ctx, c.conds, c.ops)
	if errors.Is(err, store.ErrConflict) {
		return User{}, "", d.taken(ctx, c)
	}
	if err != nil {
		return User{}, "", fmt.Errorf("directory: create user %s: %w", u.ID, err)
	}
	d.applyEvent(kindUsers, store.Event{Type: store.EventPut, KV: store.KV{Key: store.Key(kindUsers, u.ID), Value: v, ModRevision: rev}})
	d.log.Info("user created", "id", u.ID, "extension", u.Extension)
	return u, tok, nil
}

// taken says which claim failed, for the 409's message.
func (d *Directory) taken(ctx context.Context, c claims) error {
	if err := d.claimTaken(ctx, c); err != nil {
		return err
	}
	// Freed again since: the caller may simply retry.
	return fmt.Errorf("a name changed hands while it was being claimed: %w", ErrExists)
}

// claimTaken is an ErrExists naming a claimed name that is held now, or nil
// when none is (a fence moved instead).
func (d *Directory) claimTaken(ctx context.Context, c claims) error {
	for i, cond := range c.conds {
		if cond.ModRevision != 0 {
			continue // a fence
		}
		if _, err := d.st.Get(ctx, cond.Key); err == nil {
			return fmt.Errorf("%s: %w", c.what[i], ErrExists)
		}
	}
	return nil
}

// current reads a user and its revision from etcd, for a fenced write.
func (d *Directory) current(ctx context.Context, id string) (record, int64, error) {
	if !validID(id) {
		return record{}, 0, ErrNotFound
	}
	kv, err := d.st.Get(ctx, store.Key(kindUsers, id))
	if errors.Is(err, store.ErrNotFound) {
		return record{}, 0, ErrNotFound
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("directory: read user %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return record{}, 0, fmt.Errorf("directory: user %s unreadable: %w", id, err)
	}
	return r, kv.ModRevision, nil
}

// change rewrites a user with fn's result (nil: delete), fenced on the
// revision it read; losing to a concurrent writer makes it read again.
func (d *Directory) change(ctx context.Context, id string, fn func(r record) (*record, claims, error)) (record, error) {
	for range writeAttempts {
		old, rev, err := d.current(ctx, id)
		if err != nil {
			return record{}, err
		}
		next, c, err := fn(old)
		if err != nil {
			return record{}, err
		}
		key := store.Key(kindUsers, id)
		conds := append([]store.Cond{{Key: key, ModRevision: rev}}, c.conds...)
		ops := c.ops
		var v []byte
		if next == nil {
			ops = append(ops, store.Op{Key: key, Delete: true})
		} else if v, err = json.Marshal(next); err != nil {
			return record{}, fmt.Errorf("directory: encode user %s: %w", id, err)
		} else {
			ops = append(ops, store.Op{Key: key, Value: v})
		}
		wrev, err := d.st.Txn(ctx, conds, ops)
		if errors.Is(err, store.ErrConflict) {
			if kv, gerr := d.st.Get(ctx, key); gerr == nil && kv.ModRevision == rev {
				return record{}, d.taken(ctx, c) // the user held still: a name is taken
			}
			continue
		}
		if err != nil {
			return record{}, fmt.Errorf("directory: write user %s: %w", id, err)
		}
		ev := store.Event{Type: store.EventDelete, KV: store.KV{Key: key, ModRevision: wrev}}
		if next != nil {
			ev = store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: v, ModRevision: wrev}}
		}
		d.applyEvent(kindUsers, ev)
		if next == nil {
			return old, nil
		}
		return *next, nil
	}
	return record{}, fmt.Errorf("directory: user %s kept changing under %d attempts: %w", id, writeAttempts, store.ErrConflict)
}

// UpdateUser applies a patch, fenced on the user's revision.
func (d *Directory) UpdateUser(ctx context.Context, id string, p UserPatch) (User, error) {
	r, err := d.change(ctx, id, func(old record) (*record, claims, error) {
		u, err := p.apply(old.User)
		if err != nil {
			return nil, claims{}, err
		}
		next := record{User: u, Secrets: old.Secrets}
		if p.SIPPassword != nil {
			d.setPassword(&next, *p.SIPPassword)
		}
		var c claims
		if u.Extension != old.Extension {
			c.extension(id, u.Extension)
			c.ops = append(c.ops, store.Op{Key: store.Key(kindExtensions, old.Extension), Delete: true})
		}
		kept := make(map[string]bool, len(old.Numbers))
		for _, n := range old.Numbers {
			kept[n] = true
		}
		for _, n := range u.Numbers {
			if !kept[n] {
				c.claim(store.Key(kindNumbers, n), id, "number "+n)
			}
			delete(kept, n)
		}
		for n := range kept {
			c.ops = append(c.ops, store.Op{Key: store.Key(kindNumbers, n), Delete: true})
		}
		return &next, c, nil
	})
	if err != nil {
		return User{}, err
	}
	return r.User, nil
}

// ReissueToken replaces a user's token (the old one stops working) and
// returns the new one, shown only now.
func (d *Directory) ReissueToken(ctx context.Context, id string) (string, error) {
	tok := newToken()
	h := hashToken(tok)
	_, err := d.change(ctx, id, func(old record) (*record, claims, error) {
		next := old
		next.Secrets.TokenHash = h
		var c claims
		c.ops = append(c.ops, store.Op{Key: store.Key(kindTokens, h), Value: []byte(id)})
		if old.Secrets.TokenHash != "" {
			c.ops = append(c.ops, store.Op{Key: store.Key(kindTokens, old.Secrets.TokenHash), Delete: true})
		}
		return &next, c, nil
	})
	if err != nil {
		return "", err
	}
	return tok, nil
}

// DeleteUser removes a user and its index keys, after taking them out of
// the monitoring groups, queues, shared line groups and pickup groups.
func (d *Directory) DeleteUser(ctx context.Context, id string) error {
	if _, _, err := d.current(ctx, id); err != nil {
		return err
	}
	for _, forget := range []func(context.Context, string) error{d.forgetInGroups, d.forgetInQueues, d.forgetInSLGs, d.forgetInPickups} {
		if err := forget(ctx, id); err != nil {
			return err
		}
	}
	_, err := d.change(ctx, id, func(old record) (*record, claims, error) {
		var c claims
		c.ops = append(c.ops, store.Op{Key: store.Key(kindExtensions, old.Extension), Delete: true})
		if old.Secrets.TokenHash != "" {
			c.ops = append(c.ops, store.Op{Key: store.Key(kindTokens, old.Secrets.TokenHash), Delete: true})
		}
		for _, n := range old.Numbers {
			c.ops = append(c.ops, store.Op{Key: store.Key(kindNumbers, n), Delete: true})
		}
		return nil, c, nil
	})
	if err == nil {
		d.log.Info("user deleted", "id", id)
	}
	return err
}

// ListUsers pages users in id order from etcd (not the cache, so a list
// right after a create on another node includes it). next is "" at the end.
func (d *Directory) ListUsers(ctx context.Context, after string, limit int) ([]User, string, error) {
	rs, next, err := list[record](ctx, d.st, kindUsers, after, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]User, len(rs))
	for i, r := range rs {
		out[i] = r.User
	}
	return out, next, nil
}

// list pages the JSON values under a kind in key order.
func list[T any](ctx context.Context, st store.Store, kind, after string, limit int) ([]T, string, error) {
	if limit <= 0 || limit > maxPage {
		limit = defaultPage
	}
	from := ""
	if after != "" {
		from = store.Key(kind, after)
	}
	kvs, err := st.List(ctx, prefix(kind), from, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("directory: list %s: %w", kind, err)
	}
	next := ""
	if len(kvs) > limit {
		kvs = kvs[:limit]
		next = strings.TrimPrefix(kvs[limit-1].Key, prefix(kind))
	}
	out := make([]T, 0, len(kvs))
	for _, kv := range kvs {
		var v T
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			return nil, "", fmt.Errorf("directory: %s unreadable: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, next, nil
}

// CreateTrunk validates and stores a trunk.
func (d *Directory) CreateTrunk(ctx context.Context, t Trunk) (Trunk, error) {
	if err := t.validate(); err != nil {
		return Trunk{}, err
	}
	v, err := json.Marshal(t)
	if err != nil {
		return Trunk{}, fmt.Errorf("directory: encode trunk %s: %w", t.ID, err)
	}
	key := store.Key(kindTrunks, t.ID)
	rev, err := d.st.Txn(ctx, []store.Cond{{Key: key}}, []store.Op{{Key: key, Value: v}})
	if errors.Is(err, store.ErrConflict) {
		return Trunk{}, fmt.Errorf("trunk %s: %w", t.ID, ErrExists)
	}
	if err != nil {
		return Trunk{}, fmt.Errorf("directory: create trunk %s: %w", t.ID, err)
	}
	d.applyEvent(kindTrunks, store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: v, ModRevision: rev}})
	d.log.Info("trunk created", "id", t.ID, "address", t.Address, "outbound", t.Outbound)
	return t, nil
}

// DeleteTrunk removes a trunk.
func (d *Directory) DeleteTrunk(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	key := store.Key(kindTrunks, id)
	for range writeAttempts {
		kv, err := d.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("directory: read trunk %s: %w", id, err)
		}
		rev, err := d.st.Txn(ctx, []store.Cond{{Key: key, ModRevision: kv.ModRevision}}, []store.Op{{Key: key, Delete: true}})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("directory: delete trunk %s: %w", id, err)
		}
		d.applyEvent(kindTrunks, store.Event{Type: store.EventDelete, KV: store.KV{Key: key, ModRevision: rev}})
		d.log.Info("trunk deleted", "id", id)
		return nil
	}
	return fmt.Errorf("directory: trunk %s kept changing: %w", id, store.ErrConflict)
}

// ListTrunks pages trunks in id order from etcd.
func (d *Directory) ListTrunks(ctx context.Context, after string, limit int) ([]Trunk, string, error) {
	return list[Trunk](ctx, d.st, kindTrunks, after, limit)
}

// ---- what queues and groups share ---------------------------------------------

// Dest is whoever an extension, a number or a user id reaches: Kind is
// DestUser, DestQueue or DestSharedLineGroup.
type Dest struct{ Kind, ID string }

// Kinds of Dest.
const (
	DestUser            = "user"
	DestQueue           = "queue"
	DestSharedLineGroup = "shared_line_group"
)

// claimValue is what a claim of a name held by t stores: a user's id as it
// is (as users' claims always have), "<kind>:<id>" otherwise, which no user
// id can be.
func (t Dest) claimValue() string {
	if t.Kind == DestUser {
		return t.ID
	}
	return t.Kind + ":" + t.ID
}

// Destination resolves what was dialled, an extension or an E.164 number
// owned in the system (or a user id, for users), to whoever claims it. It
// reads the cache alone, as routing asks on every call: a name claimed on
// another node a moment ago is found once its watch event arrives (a user
// is also found through Resolve, which reads etcd on a miss).
func (d *Directory) Destination(dialed string) (Dest, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if t, ok := d.dests[dialed]; ok {
		return t, true
	}
	for _, idx := range []map[string]string{d.byExt, d.byNum} {
		if id, ok := idx[dialed]; ok {
			return Dest{DestUser, id}, true
		}
	}
	if _, ok := d.users[dialed]; ok {
		return Dest{DestUser, dialed}, true
	}
	return Dest{}, false
}

// names claims owner's extension (none when "") and numbers, releasing
// those of the old ones it no longer has.
func (c *claims) names(owner Dest, oldExt string, oldNums []string, ext string, nums []string) {
	if ext != oldExt {
		if ext != "" {
			c.extension(owner.claimValue(), ext)
		}
		if oldExt != "" {
			c.ops = append(c.ops, store.Op{Key: store.Key(kindExtensions, oldExt), Delete: true})
		}
	}
	for _, n := range nums {
		if !slices.Contains(oldNums, n) {
			c.claim(store.Key(kindNumbers, n), owner.claimValue(), "number "+n)
		}
	}
	for _, n := range oldNums {
		if !slices.Contains(nums, n) {
			c.ops = append(c.ops, store.Op{Key: store.Key(kindNumbers, n), Delete: true})
		}
	}
}

// putDestsLocked indexes owner's extension and numbers for Destination.
func (d *Directory) putDestsLocked(owner Dest, ext string, nums []string) {
	if ext != "" {
		d.dests[ext] = owner
	}
	for _, n := range nums {
		d.dests[n] = owner
	}
}

// dropDestsLocked removes the entries that still point at owner.
func (d *Directory) dropDestsLocked(owner Dest, ext string, nums []string) {
	for _, k := range append([]string{ext}, nums...) {
		if d.dests[k] == owner {
			delete(d.dests, k)
		}
	}
}

// userIndex maps a user to the ids of the settings that list them.
type userIndex map[string][]string

func (x userIndex) add(id string, users []string) {
	for _, u := range users {
		x[u] = append(x[u], id)
	}
}

func (x userIndex) remove(id string, users []string) {
	for _, u := range users {
		ids := slices.DeleteFunc(x[u], func(s string) bool { return s == id })
		if len(ids) == 0 {
			delete(x, u)
		} else {
			x[u] = ids
		}
	}
}

// of returns user's ids in order, as a copy.
func (x userIndex) of(user string) []string {
	out := slices.Clone(x[user])
	slices.Sort(out)
	return out
}

// writeSetting stores the JSON setting kind/id: a new one (create: the id
// must be free; fn gets nil) or fn's change of the stored one (nil:
// delete), with fn's claims, in one transaction fenced on the revision it
// read. Losing to a concurrent writer, or a fence that moved, makes it read
// and check again; a name that is taken is ErrExists naming it.
func writeSetting[T any](ctx context.Context, d *Directory, kind, what, id string, create bool, fn func(old *T) (*T, claims, error)) (T, error) {
	var zero T
	if !validID(id) {
		if create {
			return zero, &FieldError{"id", slugMessage}
		}
		return zero, ErrNotFound
	}
	key := store.Key(kind, id)
	for range writeAttempts {
		var (
			old *T
			rev int64
		)
		if !create {
			kv, err := d.st.Get(ctx, key)
			if errors.Is(err, store.ErrNotFound) {
				return zero, ErrNotFound
			}
			if err != nil {
				return zero, fmt.Errorf("directory: read %s %s: %w", what, id, err)
			}
			old, rev = new(T), kv.ModRevision
			if err := json.Unmarshal(kv.Value, old); err != nil {
				return zero, fmt.Errorf("directory: %s %s unreadable: %w", what, id, err)
			}
		}
		next, c, err := fn(old)
		if err != nil {
			return zero, err
		}
		op := store.Op{Key: key, Delete: true}
		if next != nil {
			if op.Value, err = json.Marshal(next); err != nil {
				return zero, fmt.Errorf("directory: encode %s %s: %w", what, id, err)
			}
			op.Delete = false
		}
		wrev, err := d.st.Txn(ctx, append([]store.Cond{{Key: key, ModRevision: rev}}, c.conds...), append(c.ops, op))
		if errors.Is(err, store.ErrConflict) {
			kv, gerr := d.st.Get(ctx, key)
			switch {
			case create && gerr == nil:
				return zero, fmt.Errorf("%s %s: %w", what, id, ErrExists)
			case create && errors.Is(gerr, store.ErrNotFound), !create && gerr == nil && kv.ModRevision == rev:
				// The setting held still: a name is taken, or a fence moved.
				if err := d.claimTaken(ctx, c); err != nil {
					return zero, err
				}
			}
			continue
		}
		if err != nil {
			return zero, fmt.Errorf("directory: write %s %s: %w", what, id, err)
		}
		if next == nil {
			d.applyEvent(kind, store.Event{Type: store.EventDelete, KV: store.KV{Key: key, ModRevision: wrev}})
			return *old, nil
		}
		d.applyEvent(kind, store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: op.Value, ModRevision: wrev}})
		return *next, nil
	}
	return zero, fmt.Errorf("directory: %s %s kept changing under %d attempts: %w", what, id, writeAttempts, store.ErrConflict)
}

// each calls fn on every setting of kind, in id order, read from etcd.
func each[T any](ctx context.Context, st store.Store, kind string, fn func(T) error) error {
	for after := ""; ; {
		items, next, err := list[T](ctx, st, kind, after, maxPage)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// checkIDs validates a list of ids sent as field: at most most, each once;
// nil becomes empty. Whether they name users is usersExist's question.
func checkIDs(field string, ids []string, most int) ([]string, error) {
	if len(ids) > most {
		return nil, &FieldError{field, fmt.Sprintf("must list at most %d users", most)}
	}
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return nil, &FieldError{field + "[" + strconv.Itoa(i) + "]", "is listed twice"}
		}
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// usersExist: every id of the list sent as field names a user.
func (d *Directory) usersExist(field string, ids []string) error {
	for i, id := range ids {
		if err := d.userExists(field+"["+strconv.Itoa(i)+"]", id); err != nil {
			return err
		}
	}
	return nil
}

func (d *Directory) userExists(field, id string) error {
	if _, ok := d.UserByID(id); !ok {
		return &RuleError{"unknown_user", field, fmt.Sprintf("is not a user: no user has the id %q", id)}
	}
	return nil
}
