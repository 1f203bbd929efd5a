// Package directory holds users, trunks, numbers and tokens: settings in
// etcd, with a cache every node keeps current from a watch. SIP auth and
// routing read it on every request, so reads are map lookups; a miss falls
// back to etcd once, so a user created on another node is usable at once.
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
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api/sip/digest"
	"github.com/switchboard/switchboard/cluster/store"
)

// User is a person (or common-area phone) with a line.
type User struct {
	ID               string      `json:"id"`
	Name             string      `json:"name"`
	Extension        string      `json:"extension"`
	Numbers          []string    `json:"numbers"`
	Timezone         string      `json:"timezone"`
	BusinessHours    Hours       `json:"business_hours"`
	PowerPack        bool        `json:"power_pack"`
	VoicemailEnabled bool        `json:"voicemail_enabled"`
	SRTP             string      `json:"srtp"`
	CreatedAt        time.Time   `json:"created_at"`
	Secrets          userSecrets `json:"secrets"`
}

// userSecrets are stored but never shown: the digest HA1s for both usernames
// (the SIP password itself is not kept) and the token's hash.
type userSecrets struct {
	HA1       map[string]string `json:"ha1"` // "<alg>:<username>" -> HA1
	TokenHash string            `json:"token_hash"`
}

// Hours is business hours per weekday: {"mon": [["08:00","17:00"]], ...}.
type Hours map[string][][2]string

// Trunk is a carrier connection.
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

var (
	ErrExists   = errors.New("directory: already exists")
	ErrNotFound = errors.New("directory: not found")
)

// Directory is the cached view of the settings.
type Directory struct {
	st    store.Store
	realm string
	log   *slog.Logger

	mu     sync.RWMutex
	users  map[string]User
	byExt  map[string]string
	byNum  map[string]string
	byTok  map[string]string
	ha1    map[string]ha1Ref
	trunks map[string]Trunk
}

type ha1Ref struct{ ha1, user string }

// New returns a directory over st; Start loads and follows it.
func New(st store.Store, realm string, log *slog.Logger) *Directory {
	return &Directory{st: st, realm: realm, log: log, users: map[string]User{}, byExt: map[string]string{},
		byNum: map[string]string{}, byTok: map[string]string{}, ha1: map[string]ha1Ref{}, trunks: map[string]Trunk{}}
}

// Start loads every user and trunk and keeps the cache current.
func (d *Directory) Start(ctx context.Context) error {
	for _, kind := range []string{"users", "trunks"} {
		kvs, err := d.st.List(ctx, store.Key(kind)+"/", "", 0)
		if err != nil {
			return fmt.Errorf("directory: load %s: %w", kind, err)
		}
		for _, kv := range kvs {
			d.apply(kind, kv.Value, false)
		}
	}
	for _, kind := range []string{"users", "trunks"} {
		go d.follow(ctx, kind)
	}
	return nil
}

func (d *Directory) follow(ctx context.Context, kind string) {
	for ctx.Err() == nil {
		for ev := range d.st.Watch(ctx, store.Key(kind)+"/") {
			if ev.Type == store.EventDelete {
				d.remove(kind, strings.TrimPrefix(ev.KV.Key, store.Key(kind)+"/"))
			} else {
				d.apply(kind, ev.KV.Value, false)
			}
		}
		// The watch ended (compaction or etcd gone for good): reload.
		if ctx.Err() == nil {
			time.Sleep(time.Second)
			kvs, err := d.st.List(ctx, store.Key(kind)+"/", "", 0)
			if err == nil {
				for _, kv := range kvs {
					d.apply(kind, kv.Value, false)
				}
			}
		}
	}
}

func (d *Directory) apply(kind string, v []byte, _ bool) {
	switch kind {
	case "users":
		var u User
		if json.Unmarshal(v, &u) == nil && u.ID != "" {
			d.putUser(u)
		}
	case "trunks":
		var t Trunk
		if json.Unmarshal(v, &t) == nil && t.ID != "" {
			t.prefixes = parseCIDRs(t.InboundCIDRs)
			d.mu.Lock()
			d.trunks[t.ID] = t
			d.mu.Unlock()
		}
	}
}

func (d *Directory) putUser(u User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropUserLocked(u.ID)
	d.users[u.ID] = u
	d.byExt[u.Extension] = u.ID
	for _, n := range u.Numbers {
		d.byNum[n] = u.ID
	}
	if u.Secrets.TokenHash != "" {
		d.byTok[u.Secrets.TokenHash] = u.ID
	}
	for k, h := range u.Secrets.HA1 {
		d.ha1[k] = ha1Ref{ha1: h, user: u.ID}
	}
}

func (d *Directory) dropUserLocked(id string) {
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
	delete(d.byTok, old.Secrets.TokenHash)
	for k := range old.Secrets.HA1 {
		if d.ha1[k].user == id {
			delete(d.ha1, k)
		}
	}
}

func (d *Directory) remove(kind, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if kind == "users" {
		d.dropUserLocked(id)
	} else {
		delete(d.trunks, id)
	}
}

// fetch reads one user from etcd on a cache miss.
func (d *Directory) fetch(id string) (User, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := d.st.Get(ctx, store.Key("users", id))
	if err != nil {
		return User{}, false
	}
	var u User
	if json.Unmarshal(kv.Value, &u) != nil {
		return User{}, false
	}
	d.putUser(u)
	return u, true
}

// fetchIndex reads an index key (extensions/<ext>, numbers/<n>) on a miss.
func (d *Directory) fetchIndex(kind, k string) (User, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := d.st.Get(ctx, store.Key(kind, k))
	if err != nil {
		return User{}, false
	}
	return d.fetch(string(kv.Value))
}

// UserByID returns a user.
func (d *Directory) UserByID(id string) (User, bool) {
	d.mu.RLock()
	u, ok := d.users[id]
	d.mu.RUnlock()
	if ok || !validID(id) {
		return u, ok
	}
	return d.fetch(id)
}

// UserByExtension returns the user with that extension.
func (d *Directory) UserByExtension(ext string) (User, bool) {
	d.mu.RLock()
	id, ok := d.byExt[ext]
	u := d.users[id]
	d.mu.RUnlock()
	if ok || !validExt(ext) {
		return u, ok
	}
	return d.fetchIndex("extensions", ext)
}

// UserByNumber returns the owner of an E.164 number.
func (d *Directory) UserByNumber(n string) (User, bool) {
	d.mu.RLock()
	id, ok := d.byNum[n]
	u := d.users[id]
	d.mu.RUnlock()
	if ok || !validE164(n) {
		return u, ok
	}
	return d.fetchIndex("numbers", n)
}

// Resolve maps an extension or user id to a user.
func (d *Directory) Resolve(part string) (User, bool) {
	if validExt(part) {
		if u, ok := d.UserByExtension(part); ok {
			return u, true
		}
	}
	return d.UserByID(part)
}

// HA1 returns the stored digest HA1 for alg ("MD5" or "SHA-256") and a
// username (id or extension), with the user's id.
func (d *Directory) HA1(alg, username string) (string, string, bool) {
	d.mu.RLock()
	r, ok := d.ha1[alg+":"+username]
	d.mu.RUnlock()
	if !ok {
		if _, found := d.Resolve(username); found {
			d.mu.RLock()
			r, ok = d.ha1[alg+":"+username]
			d.mu.RUnlock()
		}
	}
	return r.ha1, r.user, ok
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// UserByToken returns the user a REST token belongs to.
func (d *Directory) UserByToken(tok string) (User, bool) {
	h := hashToken(tok)
	d.mu.RLock()
	id, ok := d.byTok[h]
	u := d.users[id]
	d.mu.RUnlock()
	if ok {
		return u, true
	}
	return d.fetchIndex("tokens", h)
}

// TrunkBySource returns the trunk whose inbound CIDRs hold ip.
func (d *Directory) TrunkBySource(ip netip.Addr) (Trunk, bool) {
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

// OutboundTrunk is the trunk external numbers leave through (the first by id).
func (d *Directory) OutboundTrunk() (Trunk, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var ids []string
	for id, t := range d.trunks {
		if t.Outbound {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return Trunk{}, false
	}
	sort.Strings(ids)
	return d.trunks[ids[0]], true
}

// TrunkByID returns a trunk.
func (d *Directory) TrunkByID(id string) (Trunk, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.trunks[id]
	return t, ok
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (d *Directory) secrets(u *User, password string) {
	u.Secrets.HA1 = map[string]string{}
	for _, alg := range []string{digest.MD5, digest.SHA256} {
		for _, name := range []string{u.ID, u.Extension} {
			u.Secrets.HA1[alg+":"+name] = digest.HA1(alg, name, d.realm, password)
		}
	}
}

// CreateUser validates, stores (id, extension and numbers unique in one
// transaction) and returns the user with its token, shown only now.
func (d *Directory) CreateUser(ctx context.Context, in UserInput) (User, string, error) {
	u, err := in.validate()
	if err != nil {
		return User{}, "", err
	}
	u.CreatedAt = time.Now().UTC().Truncate(time.Second)
	d.secrets(&u, in.SIPPassword)
	tok := newToken()
	u.Secrets.TokenHash = hashToken(tok)
	v, _ := json.Marshal(u)
	conds := []store.Cond{{Key: store.Key("users", u.ID)}, {Key: store.Key("extensions", u.Extension)}}
	ops := []store.Op{{Key: store.Key("users", u.ID), Value: v}, {Key: store.Key("extensions", u.Extension), Value: []byte(u.ID)},
		{Key: store.Key("tokens", u.Secrets.TokenHash), Value: []byte(u.ID)}}
	for _, n := range u.Numbers {
		conds = append(conds, store.Cond{Key: store.Key("numbers", n)})
		ops = append(ops, store.Op{Key: store.Key("numbers", n), Value: []byte(u.ID)})
	}
	if _, err := d.st.Txn(ctx, conds, ops); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return User{}, "", ErrExists
		}
		return User{}, "", fmt.Errorf("directory: create user %s: %w", u.ID, err)
	}
	d.putUser(u)
	return u, tok, nil
}

// current reads a user and its revision from etcd (for fenced updates).
func (d *Directory) current(ctx context.Context, id string) (User, int64, error) {
	kv, err := d.st.Get(ctx, store.Key("users", id))
	if errors.Is(err, store.ErrNotFound) {
		return User{}, 0, ErrNotFound
	}
	if err != nil {
		return User{}, 0, err
	}
	var u User
	if err := json.Unmarshal(kv.Value, &u); err != nil {
		return User{}, 0, fmt.Errorf("directory: user %s unreadable: %w", id, err)
	}
	return u, kv.ModRevision, nil
}

// UpdateUser applies a patch, fenced on the user's revision.
func (d *Directory) UpdateUser(ctx context.Context, id string, p UserPatch) (User, error) {
	old, rev, err := d.current(ctx, id)
	if err != nil {
		return User{}, err
	}
	u, err := p.apply(old)
	if err != nil {
		return User{}, err
	}
	if p.SIPPassword != nil {
		d.secrets(&u, *p.SIPPassword)
	}
	v, _ := json.Marshal(u)
	conds := []store.Cond{{Key: store.Key("users", id), ModRevision: rev}}
	ops := []store.Op{{Key: store.Key("users", id), Value: v}}
	if u.Extension != old.Extension {
		conds = append(conds, store.Cond{Key: store.Key("extensions", u.Extension)})
		ops = append(ops, store.Op{Key: store.Key("extensions", u.Extension), Value: []byte(id)}, store.Op{Key: store.Key("extensions", old.Extension), Delete: true})
	}
	oldNums := map[string]bool{}
	for _, n := range old.Numbers {
		oldNums[n] = true
	}
	for _, n := range u.Numbers {
		if !oldNums[n] {
			conds = append(conds, store.Cond{Key: store.Key("numbers", n)})
			ops = append(ops, store.Op{Key: store.Key("numbers", n), Value: []byte(id)})
		}
		delete(oldNums, n)
	}
	for n := range oldNums {
		ops = append(ops, store.Op{Key: store.Key("numbers", n), Delete: true})
	}
	if _, err := d.st.Txn(ctx, conds, ops); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return User{}, ErrExists
		}
		return User{}, fmt.Errorf("directory: update user %s: %w", id, err)
	}
	d.putUser(u)
	return u, nil
}

// ReissueToken replaces a user's token and returns the new one.
func (d *Directory) ReissueToken(ctx context.Context, id string) (string, error) {
	u, rev, err := d.current(ctx, id)
	if err != nil {
		return "", err
	}
	tok := newToken()
	oldHash := u.Secrets.TokenHash
	u.Secrets.TokenHash = hashToken(tok)
	v, _ := json.Marshal(u)
	ops := []store.Op{{Key: store.Key("users", id), Value: v}, {Key: store.Key("tokens", u.Secrets.TokenHash), Value: []byte(id)}}
	if oldHash != "" {
		ops = append(ops, store.Op{Key: store.Key("tokens", oldHash), Delete: true})
	}
	if _, err := d.st.Txn(ctx, []store.Cond{{Key: store.Key("users", id), ModRevision: rev}}, ops); err != nil {
		return "", fmt.Errorf("directory: reissue token %s: %w", id, err)
	}
	d.putUser(u)
	return tok, nil
}

// DeleteUser removes a user and its index keys.
func (d *Directory) DeleteUser(ctx context.Context, id string) error {
	u, rev, err := d.current(ctx, id)
	if err != nil {
		return err
	}
	ops := []store.Op{{Key: store.Key("users", id), Delete: true}, {Key: store.Key("extensions", u.Extension), Delete: true}}
	if u.Secrets.TokenHash != "" {
		ops = append(ops, store.Op{Key: store.Key("tokens", u.Secrets.TokenHash), Delete: true})
	}
	for _, n := range u.Numbers {
		ops = append(ops, store.Op{Key: store.Key("numbers", n), Delete: true})
	}
	if _, err := d.st.Txn(ctx, []store.Cond{{Key: store.Key("users", id), ModRevision: rev}}, ops); err != nil {
		return fmt.Errorf("directory: delete user %s: %w", id, err)
	}
	d.remove("users", id)
	return nil
}

// ListUsers pages users in id order.
func (d *Directory) ListUsers(ctx context.Context, after string, limit int) ([]User, string, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	from := ""
	if after != "" {
		from = store.Key("users", after)
	}
	kvs, err := d.st.List(ctx, store.Key("users")+"/", from, limit+1)
	if err != nil {
		return nil, "", err
	}
	var out []User
	for _, kv := range kvs {
		var u User
		if json.Unmarshal(kv.Value, &u) == nil {
			out = append(out, u)
		}
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// CreateTrunk validates and stores a trunk.
func (d *Directory) CreateTrunk(ctx context.Context, t Trunk) (Trunk, error) {
	if !validID(t.ID) {
		return Trunk{}, &FieldError{"id", "must be a slug: lower-case letters, digits, '.', '_' or '-'"}
	}
	if t.Address != "" {
		if _, err := netip.ParseAddrPort(t.Address); err != nil {
			return Trunk{}, &FieldError{"address", "must be ip:port"}
		}
	} else if t.Outbound {
		return Trunk{}, &FieldError{"address", "is required for an outbound trunk"}
	}
	for i, c := range t.InboundCIDRs {
		if _, err := netip.ParsePrefix(c); err != nil {
			if _, err2 := netip.ParseAddr(c); err2 != nil {
				return Trunk{}, &FieldError{fmt.Sprintf("inbound_cidrs[%d]", i), "must be a CIDR such as 203.0.113.0/24"}
			}
		}
	}
	if t.InboundCIDRs == nil {
		t.InboundCIDRs = []string{}
	}
	v, _ := json.Marshal(t)
	if _, err := d.st.Txn(ctx, []store.Cond{{Key: store.Key("trunks", t.ID)}}, []store.Op{{Key: store.Key("trunks", t.ID), Value: v}}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Trunk{}, ErrExists
		}
		return Trunk{}, fmt.Errorf("directory: create trunk %s: %w", t.ID, err)
	}
	d.apply("trunks", v, false)
	return t, nil
}

// DeleteTrunk removes a trunk.
func (d *Directory) DeleteTrunk(ctx context.Context, id string) error {
	if _, ok := d.TrunkByID(id); !ok {
		if _, err := d.st.Get(ctx, store.Key("trunks", id)); err != nil {
			return ErrNotFound
		}
	}
	if err := d.st.Delete(ctx, store.Key("trunks", id)); err != nil {
		return err
	}
	d.remove("trunks", id)
	return nil
}

// ListTrunks returns every trunk by id.
func (d *Directory) ListTrunks() []Trunk {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]Trunk, 0, len(d.trunks))
	for _, t := range d.trunks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func parseCIDRs(cs []string) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range cs {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		} else if a, err := netip.ParseAddr(c); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}
