package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/store"
)

var st store.Store

// TestMain shares one embedded etcd; each test uses its own owners.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "history-test")
	if err != nil {
		panic(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: dir, ClientAddr: "127.0.0.1:0"}, log)
	if err != nil {
		panic(err)
	}
	cli, err := store.Dial(srv.Endpoints())
	if err != nil {
		panic(err)
	}
	st = store.NewEtcd(cli)
	code := m.Run()
	st.Close()
	srv.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// owner names a fresh owner, so repeated runs (-count) on the shared etcd
// do not see each other's entries.
func owner(name string) string { return fmt.Sprintf("%s-%d", name, time.Now().UnixNano()) }

// write stores entries for owner as the call grains do, through a Writer,
// and waits until they are in etcd.
func write(t *testing.T, owner string, es ...Entry) {
	t.Helper()
	w := NewWriter(st, slog.New(slog.DiscardHandler), len(es))
	for _, e := range es {
		if err := w.Append(owner, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestIDsSortNewestFirst(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ids := []string{NewID(base), NewID(base.Add(time.Nanosecond)), NewID(base.Add(time.Hour)), NewID(base), NewID(time.Time{})}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	if sorted[0] != ids[2] || sorted[1] != ids[1] || sorted[4] != ids[4] {
		t.Fatalf("order %v from %v", sorted, ids)
	}
	if ids[0] == ids[3] {
		t.Fatal("two ids of the same instant collide")
	}
}

func TestAppendListPagesNewestFirst(t *testing.T) {
	pager := owner("pager")
	base := time.Now().UTC().Truncate(time.Second)
	for i := range 5 {
		ans := base.Add(time.Duration(i)*time.Minute + time.Second)
		e := Entry{CallID: "c" + string(rune('0'+i)), Direction: "inbound", Peer: "bob", Line: "alice", Label: "Answered",
			StartedAt: base.Add(time.Duration(i) * time.Minute), AnsweredAt: &ans, EndedAt: ans.Add(time.Minute), Outcome: "answered"}
		write(t, pager, e)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		es, next, err := List(ctx(t), st, pager, cursor, 2)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, e := range es {
			got = append(got, e.CallID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 5 || got[0] != "c4" || got[4] != "c0" {
		t.Fatalf("paged newest first: %v", got)
	}
	es, _, err := List(ctx(t), st, pager[:len(pager)-1], "", 0)
	if err != nil || len(es) != 0 {
		t.Fatalf("a prefix of an owner lists its entries: %v %v", es, err)
	}
}

func TestDeleteIsPerOwner(t *testing.T) {
	ann, bob := owner("ann"), owner("bob")
	e := Entry{CallID: "call-1", Direction: "outbound", Peer: "bob", Line: "ann", StartedAt: time.Now(), EndedAt: time.Now(), Outcome: "missed"}
	e.ID = NewID(e.StartedAt)
	mine := e
	write(t, ann, e)
	e.Direction, e.ID = "inbound", NewID(e.StartedAt) // bob's own entry of the same call
	write(t, bob, e)
	if err := Delete(ctx(t), st, bob, mine.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting ann's id as bob: %v", err)
	}
	if err := Delete(ctx(t), st, ann, mine.ID); err != nil {
		t.Fatal(err)
	}
	if err := Delete(ctx(t), st, ann, mine.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if es, _, _ := List(ctx(t), st, ann, "", 0); len(es) != 0 {
		t.Fatalf("ann still has %v", es)
	}
	if es, _, _ := List(ctx(t), st, bob, "", 0); len(es) != 1 || es[0].CallID != "call-1" {
		t.Fatalf("bob lost his entry: %v", es)
	}
	for _, bad := range []string{"", "x/y", "../ann"} {
		if err := Delete(ctx(t), st, ann, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete %q: %v", bad, err)
		}
	}
	if err := NewWriter(st, slog.New(slog.DiscardHandler), 1).Append("a/b", e); err == nil {
		t.Error("an owner with a slash was accepted")
	}
}
