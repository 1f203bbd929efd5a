package line

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster/store"
	"github.com/switchboard/switchboard/cluster/store/storetest"
	pb "github.com/switchboard/switchboard/proto"
)

// newStore starts an etcd of the test's own: AllRegistrations reads every
// line's bindings, so tests must not share one.
func newStore(t *testing.T) store.Store { return storetest.New(t) }

// lineGrain is a line grain outside an actor system, on a clock that stands
// at now (near the real time: etcd's leases run on the real one).
func lineGrain(st store.Store, user string, now time.Time) *grain {
	d := &Deps{Store: st, Now: func() time.Time { return now }, Log: slog.New(slog.DiscardHandler)}
	return &grain{d: d, line: New(user), leases: map[string]store.LeaseID{}, calls: Calls{}}
}

func register(t *testing.T, g *grain, expires int, b *pb.Binding) {
	t.Helper()
	b.Node = &pb.Node{Id: "n1", Address: "10.0.0.1:7000"}
	if res := g.register(&pb.Register{UserId: g.line.User, Binding: b, Expires: int32(expires)}); res.Status != 200 {
		t.Fatalf("register %s: %d %s", b.Contact, res.Status, res.Reason)
	}
}

// Bindings the grains write are read back whole by Registrations and
// AllRegistrations; old records without a user agent still read; bindings
// past their expiry, and records that do not parse, are left out.
func TestRegistrationsFromStore(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)

	alice := lineGrain(st, "alice", now)
	register(t, alice, 300, &pb.Binding{Contact: "sip:alice@192.0.2.1:5060", Source: "192.0.2.1:5060", Transport: "UDP",
		RegCallId: "a1", Cseq: 1, UserAgent: "Desk/1.0"})
	register(t, alice, 600, &pb.Binding{Contact: "sip:alice@192.0.2.2:5070;transport=tcp", Source: "192.0.2.2:40000", Transport: "TCP",
		RegCallId: "a2", Cseq: 1})
	bob := lineGrain(st, "bob", now)
	register(t, bob, 3600, &pb.Binding{Contact: "sip:bob@192.0.2.3:5061;transport=tls", Source: "192.0.2.3:41000", Transport: "TLS",
		RegCallId: "b1", Cseq: 7, UserAgent: "Soft 2"})

	// carol's binding was stored before user agents were; dave's has just
	// expired (its lease not yet ended); erin's does not parse.
	old, _ := json.Marshal(map[string]any{"contact": "sip:carol@192.0.2.4", "expires": now.Add(120 * time.Second), "node_id": "n2",
		"node_addr": "10.0.0.2:7000", "source": "192.0.2.4:5060", "transport": "UDP", "call_id": "c1", "cseq": 3})
	expired, _ := json.Marshal(stored{Contact: "sip:dave@192.0.2.5", Expires: now.Add(-time.Second), NodeID: "n1"})
	for key, v := range map[string][]byte{
		regKey("carol", "sip:carol@192.0.2.4"): old,
		regKey("dave", "sip:dave@192.0.2.5"):   expired,
		regKey("erin", "sip:erin@192.0.2.6"):   []byte("{not json"),
	} {
		if _, err := st.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}

	deskPhone := Binding{Contact: "sip:alice@192.0.2.1:5060", Expires: now.Add(300 * time.Second), NodeID: "n1", NodeAddr: "10.0.0.1:7000",
		Source: "192.0.2.1:5060", Transport: "UDP", CallID: "a1", CSeq: 1, UserAgent: "Desk/1.0"}
	softPhone := Binding{Contact: "sip:alice@192.0.2.2:5070;transport=tcp", Expires: now.Add(600 * time.Second), NodeID: "n1", NodeAddr: "10.0.0.1:7000",
		Source: "192.0.2.2:40000", Transport: "TCP", CallID: "a2", CSeq: 1}
	bobPhone := Binding{Contact: "sip:bob@192.0.2.3:5061;transport=tls", Expires: now.Add(3600 * time.Second), NodeID: "n1", NodeAddr: "10.0.0.1:7000",
		Source: "192.0.2.3:41000", Transport: "TLS", CallID: "b1", CSeq: 7, UserAgent: "Soft 2"}
	carolPhone := Binding{Contact: "sip:carol@192.0.2.4", Expires: now.Add(120 * time.Second), NodeID: "n2", NodeAddr: "10.0.0.2:7000",
		Source: "192.0.2.4:5060", Transport: "UDP", CallID: "c1", CSeq: 3}

	for _, c := range []struct {
		name string
		user string
		at   time.Time
		want []Binding
	}{
		{"alice, longest-lived first", "alice", now, []Binding{softPhone, deskPhone}},
		{"alice after the desk phone's expiry", "alice", now.Add(300 * time.Second), []Binding{softPhone}},
		{"carol's record without a user agent", "carol", now, []Binding{carolPhone}},
		{"dave's expired binding", "dave", now, []Binding{}},
		{"erin's unreadable record", "erin", now, []Binding{}},
		{"nobody", "nobody", now, []Binding{}},
	} {
		got, err := Registrations(ctx, st, c.user, c.at)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !equalBindings(got, c.want) {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, user := range []string{"", "alice/x", "../alice"} {
		if _, err := Registrations(ctx, st, user, now); err == nil {
			t.Errorf("Registrations(%q) read something", user)
		}
	}

	// Paged one at a time, every user's bindings come in key order; the
	// expired and the unreadable take a page's place but are not shown.
	var walked []Registration
	pages, cursor := 0, ""
	for {
		page, next, err := AllRegistrations(ctx, st, cursor, 1, now)
		if err != nil {
			t.Fatal(err)
		}
		walked = append(walked, page...)
		pages++
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatalf("cursor %q does not move on", next)
		}
		cursor = next
	}
	byUser := map[string][]Binding{}
	var users []string
	for _, r := range walked {
		if len(users) == 0 || users[len(users)-1] != r.User {
			users = append(users, r.User)
		}
		byUser[r.User] = append(byUser[r.User], r.Binding)
	}
	if !reflect.DeepEqual(users, []string{"alice", "bob", "carol"}) || len(walked) != 4 || pages != 6 {
		t.Fatalf("walked %d pages: users %v, %d bindings: %+v", pages, users, len(walked), walked)
	}
	if !sameSet(byUser["alice"], []Binding{deskPhone, softPhone}) || !equalBindings(byUser["bob"], []Binding{bobPhone}) ||
		!equalBindings(byUser["carol"], []Binding{carolPhone}) {
		t.Fatalf("walked %+v", walked)
	}
	all, next, err := AllRegistrations(ctx, st, "", 0, now)
	if err != nil || len(all) != 4 || next != "" {
		t.Fatalf("one default page: %d bindings, next %q, %v", len(all), next, err)
	}

	// A line grain activated afresh (another node, after a crash) loads the
	// old record too, and an unregister leaves the other binding stored.
	carol := lineGrain(st, "carol", now)
	if err := carol.load(); err != nil {
		t.Fatal(err)
	}
	if got := carol.line.Contacts(now); !equalBindings(got, []Binding{carolPhone}) {
		t.Fatalf("carol's line loaded %+v", got)
	}
	register(t, alice, 0, &pb.Binding{Contact: deskPhone.Contact, RegCallId: "a1", Cseq: 2})
	if got, err := Registrations(ctx, st, "alice", now); err != nil || !equalBindings(got, []Binding{softPhone}) {
		t.Fatalf("alice after unregistering the desk phone: %+v %v", got, err)
	}
}

// equalBindings compares in order; times by instant (etcd's JSON drops the
// monotonic reading and the location).
func equalBindings(got, want []Binding) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Expires.Equal(w.Expires) {
			return false
		}
		g.Expires, w.Expires = time.Time{}, time.Time{}
		if g != w {
			return false
		}
	}
	return true
}

func sameSet(got, want []Binding) bool {
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || equalBindings([]Binding{g}, []Binding{w})
		}
		if !found {
			return false
		}
	}
	return len(got) == len(want)
}
