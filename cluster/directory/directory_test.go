package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api/sipedge/digest"
	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/store"
)

const realm = "test.local"

// creds stores HA1s as the node does.
var creds = Credentials{Algorithms: []string{digest.MD5, digest.SHA256}, HA1: digest.HA1}

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// newStores starts an embedded etcd of the test's own and returns n
// clients of it (n nodes of one cluster).
func newStores(t *testing.T, n int) []store.Store {
	t.Helper()
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var out []store.Store
	for range n {
		cli, err := store.Dial(srv.Endpoints())
		if err != nil {
			t.Fatal(err)
		}
		st := store.NewEtcd(cli)
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

func startDir(t *testing.T, st store.Store) *Directory {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d := New(st, realm, creds, testLog())
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alice() UserInput {
	return UserInput{ID: "alice", Name: "Alice", Extension: "1001", Numbers: []string{"+14155550101"}, SIPPassword: "alice-secret"}
}

func TestCreateAndLookups(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	u, tok, err := d.CreateUser(ctx(t), alice())
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 || u.Timezone != "UTC" || len(u.BusinessHours) != 7 || u.CreatedAt.IsZero() {
		t.Fatalf("created %+v with token %q", u, tok)
	}
	for name, look := range map[string]func() (User, bool){
		"id":        func() (User, bool) { return d.UserByID("alice") },
		"extension": func() (User, bool) { return d.UserByExtension("1001") },
		"number":    func() (User, bool) { return d.UserByNumber("+14155550101") },
		"token":     func() (User, bool) { return d.UserByToken(tok) },
		"resolve":   func() (User, bool) { return d.Resolve("1001") },
		"resolveID": func() (User, bool) { return d.Resolve("alice") },
	} {
		if got, ok := look(); !ok || got.ID != "alice" {
			t.Errorf("by %s: %+v %v", name, got, ok)
		}
	}
	for _, alg := range []string{digest.MD5, digest.SHA256} {
		for _, name := range []string{"alice", "1001"} {
			h, id, ok := d.HA1(alg, name)
			if !ok || id != "alice" || h != digest.HA1(alg, name, realm, "alice-secret") {
				t.Errorf("HA1(%s, %s) = %q %q %v", alg, name, h, id, ok)
			}
		}
	}
	if _, ok := d.UserByToken(strings.Repeat("0", 64)); ok {
		t.Error("a wrong token found a user")
	}
	if _, _, ok := d.HA1(digest.MD5, "nobody"); ok {
		t.Error("HA1 for an unknown user")
	}
}

func TestUniqueness(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	if _, _, err := d.CreateUser(ctx(t), alice()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		in   UserInput
		says string
	}{
		{"same id", UserInput{ID: "alice", Name: "A2", Extension: "1002", SIPPassword: "password1"}, "id alice"},
		{"same extension", UserInput{ID: "bob", Name: "Bob", Extension: "1001", SIPPassword: "password1"}, "extension 1001"},
		{"same number", UserInput{ID: "bob", Name: "Bob", Extension: "1002", Numbers: []string{"+14155550101"}, SIPPassword: "password1"}, "number +14155550101"},
		{"id is an extension", UserInput{ID: "1001", Name: "Digits", Extension: "1003", SIPPassword: "password1"}, "id 1001"},
	} {
		_, _, err := d.CreateUser(ctx(t), c.in)
		if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want ErrExists naming %q", c.name, err, c.says)
		}
	}
	// Nothing of the refused users was written.
	if _, ok := d.UserByID("bob"); ok {
		t.Error("a refused create left a user")
	}
	// An extension equal to an existing digit-only id is refused too.
	if _, _, err := d.CreateUser(ctx(t), UserInput{ID: "2001", Name: "D", Extension: "2001", SIPPassword: "password1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.CreateUser(ctx(t), UserInput{ID: "carol", Name: "C", Extension: "2001", SIPPassword: "password1"}); !errors.Is(err, ErrExists) {
		t.Errorf("extension equal to a user id: %v", err)
	}
}

func TestConcurrentCreatesOneWins(t *testing.T) {
	stores := newStores(t, 2)
	dirs := []*Directory{startDir(t, stores[0]), startDir(t, stores[1])}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			in := UserInput{ID: fmt.Sprintf("u%d", i), Name: "U", Extension: "3000", SIPPassword: "password1"}
			_, _, errs[i] = dirs[i%2].CreateUser(ctx(t), in)
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates won the extension", won)
	}
}

func TestValidation(t *testing.T) {
	ok := alice()
	for _, c := range []struct {
		field string
		edit  func(*UserInput)
	}{
		{"id", func(in *UserInput) { in.ID = "" }},
		{"id", func(in *UserInput) { in.ID = "Alice" }},
		{"id", func(in *UserInput) { in.ID = "a/b" }},
		{"id", func(in *UserInput) { in.ID = strings.Repeat("a", 64) }},
		{"name", func(in *UserInput) { in.Name = "" }},
		{"name", func(in *UserInput) { in.Name = strings.Repeat("n", 201) }},
		{"extension", func(in *UserInput) { in.Extension = "" }},
		{"extension", func(in *UserInput) { in.Extension = "1" }},
		{"extension", func(in *UserInput) { in.Extension = "10a1" }},
		{"extension", func(in *UserInput) { in.Extension = "12345678901" }},
		{"numbers[0]", func(in *UserInput) { in.Numbers = []string{"4155550101"} }},
		{"numbers[1]", func(in *UserInput) { in.Numbers = []string{"+14155550101", "+14155550101"} }},
		{"numbers", func(in *UserInput) { in.Numbers = make([]string, maxNumbers+1) }},
		{"sip_password", func(in *UserInput) { in.SIPPassword = "" }},
		{"sip_password", func(in *UserInput) { in.SIPPassword = "short" }},
		{"timezone", func(in *UserInput) { in.Timezone = "Mars/Olympus" }},
		{"timezone", func(in *UserInput) { in.Timezone = "Local" }},
		{"srtp", func(in *UserInput) { in.SRTP = "optional" }},
		{"business_hours.monday", func(in *UserInput) { in.BusinessHours = Hours{"monday": nil} }},
		{"business_hours.mon[0]", func(in *UserInput) { in.BusinessHours = Hours{"mon": {{"17:00", "08:00"}}} }},
		{"business_hours.tue[1]", func(in *UserInput) { in.BusinessHours = Hours{"tue": {{"08:00", "12:00"}, {"13:00", "25:00"}}} }},
		{"business_hours.wed[0]", func(in *UserInput) { in.BusinessHours = Hours{"wed": {{"08:00"}}} }},
		{"business_hours.wed[0]", func(in *UserInput) { in.BusinessHours = Hours{"wed": {{"8:00", "17:00"}}} }},
	} {
		in := ok
		c.edit(&in)
		var fe *FieldError
		if err := in.Validate(); !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: got %v, want a FieldError on %s", in, err, c.field)
		}
	}
	good := ok
	good.Timezone = "Europe/Paris"
	good.SRTP = "required"
	good.BusinessHours = Hours{"mon": {{"08:00", "12:00"}, {"13:00", "24:00"}}, "sun": {}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestUpdate(t *testing.T) {
	stores := newStores(t, 2)
	d, other := startDir(t, stores[0]), startDir(t, stores[1])
	if _, _, err := d.CreateUser(ctx(t), alice()); err != nil {
		t.Fatal(err)
	}
	ext := "1009"
	var fe *FieldError
	if _, err := d.UpdateUser(ctx(t), "alice", UserPatch{Extension: &ext}); !errors.As(err, &fe) || fe.Field != "sip_password" {
		t.Fatalf("extension change without password: %v", err)
	}
	pw := "new-secret"
	nums := []string{"+14155550199"}
	tz := "America/New_York"
	u, err := d.UpdateUser(ctx(t), "alice", UserPatch{Extension: &ext, SIPPassword: &pw, Numbers: &nums, Timezone: &tz})
	if err != nil {
		t.Fatal(err)
	}
	if u.Extension != "1009" || u.Timezone != tz || u.Numbers[0] != nums[0] {
		t.Fatalf("updated: %+v", u)
	}
	for _, dir := range []*Directory{d, other} {
		eventually(t, "old names released everywhere", func() bool {
			_, byOldExt := dir.UserByExtension("1001")
			_, byOldNum := dir.UserByNumber("+14155550101")
			_, _, oldHA1 := dir.HA1(digest.MD5, "1001")
			return !byOldExt && !byOldNum && !oldHA1
		})
		if got, ok := dir.UserByExtension("1009"); !ok || got.ID != "alice" {
			t.Fatalf("new extension: %+v %v", got, ok)
		}
		eventually(t, "new password everywhere", func() bool {
			h, _, ok := dir.HA1(digest.SHA256, "alice")
			return ok && h == digest.HA1(digest.SHA256, "alice", realm, pw)
		})
	}
	// The released extension and number can be claimed by someone else.
	if _, _, err := d.CreateUser(ctx(t), UserInput{ID: "bob", Name: "Bob", Extension: "1001", Numbers: []string{"+14155550101"}, SIPPassword: "bob-secret"}); err != nil {
		t.Fatalf("reuse of released names: %v", err)
	}
	taken := "1001"
	if _, err := d.UpdateUser(ctx(t), "alice", UserPatch{Extension: &taken, SIPPassword: &pw}); !errors.Is(err, ErrExists) {
		t.Fatalf("taking bob's extension: %v", err)
	}
	if _, err := d.UpdateUser(ctx(t), "nobody", UserPatch{Timezone: &tz}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	bad := "Nowhere/Special"
	if _, err := d.UpdateUser(ctx(t), "alice", UserPatch{Timezone: &bad}); !errors.As(err, &fe) || fe.Field != "timezone" {
		t.Fatalf("bad timezone: %v", err)
	}
}

func TestConcurrentUpdatesAreFenced(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	if _, _, err := d.CreateUser(ctx(t), alice()); err != nil {
		t.Fatal(err)
	}
	// Each writer adds its own number; fencing means none is lost.
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			_, err := d.change(ctx(t), "alice", func(r record) (*record, claims, error) {
				r.Numbers = append(r.Numbers, fmt.Sprintf("+1415555100%d", i))
				return &r, claims{}, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	u, _, err := d.current(ctx(t), "alice")
	if err != nil || len(u.Numbers) != 6 {
		t.Fatalf("numbers after 5 fenced writers: %v %v", u.Numbers, err)
	}
}

// gets counts the store's reads.
type gets struct {
	store.Store
	n atomic.Int64
}

func (g *gets) Get(ctx context.Context, key string) (store.KV, error) {
	g.n.Add(1)
	return g.Store.Get(ctx, key)
}

// The cached lookup answers from memory alone, where a miss of the full
// one reads etcd.
func TestCachedUserByToken(t *testing.T) {
	st := &gets{Store: newStores(t, 1)[0]}
	d := startDir(t, st)
	_, tok, err := d.CreateUser(ctx(t), alice())
	if err != nil {
		t.Fatal(err)
	}
	unknown := strings.Repeat("0", 64)
	for _, tt := range []struct {
		name  string
		look  func(string) (User, bool)
		tok   string
		found bool
		reads int64
	}{
		{"cached, known", d.CachedUserByToken, tok, true, 0},
		{"cached, unknown", d.CachedUserByToken, unknown, false, 0},
		{"cached, empty", d.CachedUserByToken, "", false, 0},
		{"full, unknown", d.UserByToken, unknown, false, 1},
	} {
		before := st.n.Load()
		u, ok := tt.look(tt.tok)
		if ok != tt.found || (ok && u.ID != "alice") {
			t.Errorf("%s: %+v %v, want found %v", tt.name, u, ok, tt.found)
		}
		if n := st.n.Load() - before; n != tt.reads {
			t.Errorf("%s: %d etcd reads, want %d", tt.name, n, tt.reads)
		}
	}
}

func TestOtherNodeSeesChangesAtOnce(t *testing.T) {
	stores := newStores(t, 2)
	a, b := startDir(t, stores[0]), startDir(t, stores[1])
	_, tok, err := a.CreateUser(ctx(t), alice())
	if err != nil {
		t.Fatal(err)
	}
	// No waiting: a miss on b reads etcd.
	if u, ok := b.UserByToken(tok); !ok || u.ID != "alice" {
		t.Fatalf("token on the other node: %+v %v", u, ok)
	}
	if _, _, ok := b.HA1(digest.MD5, "1001"); !ok {
		t.Fatal("HA1 on the other node")
	}
	newTok, err := a.ReissueToken(ctx(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := b.UserByToken(newTok); !ok || u.ID != "alice" {
		t.Fatalf("new token on the other node: %v", ok)
	}
	eventually(t, "old token refused on the other node", func() bool { _, ok := b.UserByToken(tok); return !ok })
	if _, ok := a.UserByToken(tok); ok {
		t.Fatal("old token still valid where it was reissued")
	}
	if err := a.DeleteUser(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted user gone on the other node", func() bool {
		_, byID := b.UserByID("alice")
		_, byExt := b.UserByExtension("1001")
		_, byTok := b.UserByToken(newTok)
		return !byID && !byExt && !byTok
	})
	if err := a.DeleteUser(ctx(t), "alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// A restarted node loads what is there.
	c := startDir(t, stores[1])
	if _, ok := c.UserByID("alice"); ok {
		t.Fatal("deleted user loaded")
	}
}

func TestStaleEventsDoNotWin(t *testing.T) {
	d := New(nil, realm, creds, testLog())
	key := store.Key(kindUsers, "alice")
	put := func(rev int64, ext string) {
		v := fmt.Sprintf(`{"id":"alice","name":"A","extension":%q,"secrets":{}}`, ext)
		d.applyEvent(kindUsers, store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: []byte(v), ModRevision: rev}})
	}
	put(5, "1001")
	put(4, "1000") // older: ignored
	if u := d.users["alice"]; u.Extension != "1001" {
		t.Fatalf("older put won: %+v", u)
	}
	d.applyEvent(kindUsers, store.Event{Type: store.EventDelete, KV: store.KV{Key: key, ModRevision: 7}})
	put(6, "1002") // a read from before the delete
	if _, ok := d.users["alice"]; ok || len(d.byExt) != 0 {
		t.Fatal("a stale read resurrected a deleted user")
	}
	put(8, "1003")
	if d.byExt["1003"] != "alice" {
		t.Fatal("a newer put was ignored")
	}
}

func TestListUsersPages(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	for i := range 5 {
		in := UserInput{ID: fmt.Sprintf("user%d", i), Name: "U", Extension: fmt.Sprintf("20%d", i), SIPPassword: "password1"}
		if _, _, err := d.CreateUser(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		us, next, err := d.ListUsers(ctx(t), cursor, 2)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, u := range us {
			got = append(got, u.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(got, ",") != "user0,user1,user2,user3,user4" {
		t.Fatalf("paged: %v", got)
	}
}

func TestTrunks(t *testing.T) {
	stores := newStores(t, 2)
	d, other := startDir(t, stores[0]), startDir(t, stores[1])
	var fe *FieldError
	for field, tr := range map[string]Trunk{
		"id":               {ID: "Bad Id"},
		"address":          {ID: "t", Address: "nohost", Outbound: true},
		"inbound_cidrs[1]": {ID: "t", InboundCIDRs: []string{"10.0.0.0/8", "10.0.0.0/33"}},
	} {
		if _, err := d.CreateTrunk(ctx(t), tr); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%+v: %v, want a FieldError on %s", tr, err, field)
		}
	}
	if _, err := d.CreateTrunk(ctx(t), Trunk{ID: "b-carrier", Address: "sip.carrier.example:5060", InboundCIDRs: []string{"198.51.100.0/24"}, Outbound: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateTrunk(ctx(t), Trunk{ID: "a-carrier", Address: "203.0.113.5:5060", InboundCIDRs: []string{"203.0.113.5"}, Outbound: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateTrunk(ctx(t), Trunk{ID: "a-carrier", Address: "203.0.113.6:5060"}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate trunk: %v", err)
	}
	for _, dir := range []*Directory{d, other} {
		eventually(t, "trunks everywhere", func() bool {
			tr, ok := dir.OutboundTrunk()
			return ok && tr.ID == "a-carrier"
		})
		if tr, ok := dir.TrunkBySource(netip.MustParseAddr("198.51.100.77")); !ok || tr.ID != "b-carrier" {
			t.Fatalf("by source: %+v %v", tr, ok)
		}
		if tr, ok := dir.TrunkBySource(netip.MustParseAddr("::ffff:203.0.113.5")); !ok || tr.ID != "a-carrier" {
			t.Fatalf("by mapped source: %+v %v", tr, ok)
		}
		if _, ok := dir.TrunkBySource(netip.MustParseAddr("203.0.113.6")); ok {
			t.Fatal("an untrusted source matched")
		}
	}
	ts, next, err := d.ListTrunks(ctx(t), "", 0)
	if err != nil || len(ts) != 2 || ts[0].ID != "a-carrier" || next != "" {
		t.Fatalf("list: %+v %q %v", ts, next, err)
	}
	if err := d.DeleteTrunk(ctx(t), "a-carrier"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteTrunk(ctx(t), "a-carrier"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	eventually(t, "outbound moves to the remaining trunk", func() bool {
		tr, ok := other.OutboundTrunk()
		return ok && tr.ID == "b-carrier"
	})
}

// lossyWatch lets a test lose watch events and then end the watches, as
// etcd does when it compacts past a watcher that fell behind.
type lossyWatch struct {
	store.Store
	deaf    atomic.Bool
	mu      sync.Mutex
	cancels []context.CancelFunc
}

func (l *lossyWatch) Watch(ctx context.Context, prefix string) <-chan store.Event {
	wctx, cancel := context.WithCancel(ctx)
	l.mu.Lock()
	l.cancels = append(l.cancels, cancel)
	l.mu.Unlock()
	in := l.Store.Watch(wctx, prefix)
	out := make(chan store.Event)
	go func() {
		defer close(out)
		for ev := range in {
			if l.deaf.Load() {
				continue
			}
			select {
			case out <- ev:
			case <-wctx.Done():
				return
			}
		}
	}()
	return out
}

func (l *lossyWatch) endWatches() {
	l.deaf.Store(false)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cancels {
		c()
	}
	l.cancels = nil
}

func TestReloadAfterLostWatch(t *testing.T) {
	stores := newStores(t, 2)
	lossy := &lossyWatch{Store: stores[1]}
	a, b := startDir(t, stores[0]), startDir(t, lossy)
	for _, in := range []UserInput{alice(), {ID: "bob", Name: "Bob", Extension: "1002", SIPPassword: "bob-secret"}} {
		if _, _, err := a.CreateUser(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateTrunk(ctx(t), Trunk{ID: "carrier", Address: "203.0.113.5:5060", Outbound: true}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees both users and the trunk", func() bool {
		_, ok1 := b.UserByExtension("1001")
		_, ok2 := b.UserByExtension("1002")
		_, ok3 := b.OutboundTrunk()
		return ok1 && ok2 && ok3
	})

	lossy.deaf.Store(true)
	if err := a.DeleteUser(ctx(t), "alice"); err != nil {
		t.Fatal(err)
	}
	ext, pw := "1009", "bob-secret2"
	if _, err := a.UpdateUser(ctx(t), "bob", UserPatch{Extension: &ext, SIPPassword: &pw}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteTrunk(ctx(t), "carrier"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, ok := b.UserByExtension("1001"); !ok {
		t.Fatal("the test lost no events: b already dropped alice")
	}

	lossy.endWatches()
	eventually(t, "b reloads what it missed", func() bool {
		_, alice := b.UserByID("alice")
		_, oldExt := b.UserByExtension("1002")
		bob, newExt := b.UserByExtension("1009")
		_, trunk := b.OutboundTrunk()
		return !alice && !oldExt && newExt && bob.ID == "bob" && !trunk
	})
	// And it follows again afterwards.
	if _, _, err := a.CreateUser(ctx(t), UserInput{ID: "carol", Name: "Carol", Extension: "1003", SIPPassword: "carol-secret"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b follows after the reload", func() bool {
		b.mu.RLock()
		defer b.mu.RUnlock()
		_, ok := b.users["carol"] // the cache itself, not a miss read
		return ok
	})
}
