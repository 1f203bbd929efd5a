package queue

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/cluster/store/storetest"
	pb "github.com/switchboard/switchboard/proto"
)

// The adapter: a claim a member's line refuses moves the offer on within
// the same message; the state outlives the activation; a write fenced by a
// twin stops the grain.

type fakeWorld struct {
	mu      sync.Mutex
	refuse  map[string]bool // members whose line refuses a ring claim
	claims  []string        // "kind user call"
	offers  []string        // "user call", "withdraw user call", "overflow kind call"
	stopped chan struct{}
}

func (w *fakeWorld) claim(m *pb.AgentClaim) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.claims = append(w.claims, m.Kind+" "+m.User+" "+m.CallId)
	return !(m.Kind == "ring" && w.refuse[m.User]), nil
}

func (w *fakeWorld) toCall(_ actor.Context, m *pb.QueueOffer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case m.Overflow != nil:
		w.offers = append(w.offers, "overflow "+m.Overflow.Kind+" "+m.CallId)
	case m.Withdraw:
		w.offers = append(w.offers, "withdraw "+m.User+" "+m.CallId)
	default:
		w.offers = append(w.offers, m.User+" "+m.CallId)
	}
}

func (w *fakeWorld) seen() (claims, offers []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.claims), slices.Clone(w.offers)
}

func TestGrain(t *testing.T) {
	st := storetest.New(t)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	w := &fakeWorld{refuse: map[string]bool{"ann": true}}
	cfg := Config{ID: "sales", Name: "Sales", Distribution: Sequential, Ring: 20 * time.Second, MaxWait: time.Hour, MaxCalls: 10,
		Members: []Member{{User: "ann", Order: 1}, {User: "ben", Order: 2}}, Business: Target{Kind: "disconnect"}, Closed: Target{Kind: "disconnect"}}
	d := &Deps{Store: st, Claim: w.claim, ToCall: w.toCall, Now: time.Now, Log: slog.New(slog.DiscardHandler),
		Settings: func(id string) (Settings, bool) { return Settings{Config: cfg}, id == "sales" }}
	spawn := func() *actor.PID {
		pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &grain{d: d, id: "sales"} }))
		t.Cleanup(func() { sys.Root.Stop(pid) })
		return pid
	}
	ask := func(pid *actor.PID, m any) any {
		t.Helper()
		res, err := sys.Root.RequestFuture(pid, m, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	stats := func(pid *actor.PID) Stats {
		t.Helper()
		var s Stats
		if err := json.Unmarshal(ask(pid, &pb.QueueStats{QueueId: "sales"}).(*pb.QueueResult).Json, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	pid := spawn()
	for _, u := range []string{"ann", "ben"} {
		sys.Root.Send(pid, &pb.AgentPresence{QueueId: "sales", User: u, Registered: true})
	}
	if res := ask(pid, &pb.QueueArrive{QueueId: "sales", CallId: "c1"}).(*pb.QueueArriveResult); !res.Found || res.Overflow != nil || res.Name != "Sales" {
		t.Fatalf("arrive: %v", res)
	}
	// Ann's line refused the claim (she is taken by another queue): the
	// offer went to Ben in the same message, and Ann was never rung.
	claims, offers := w.seen()
	if !slices.Contains(claims, "ring ann c1") || !slices.Contains(claims, "ring ben c1") || !slices.Equal(offers, []string{"ben c1"}) {
		t.Fatalf("claims %v, offers %v", claims, offers)
	}

	// The waiting caller is in etcd once the write lands: a new activation
	// (another node, after a crash) has it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		kv, err := st.Get(context.Background(), Key("sales"))
		var q Queue
		if err == nil && json.Unmarshal(kv.Value, &q) == nil && slices.Equal(q.Waiting(), []string{"c1"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting caller was never stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sys.Root.StopFuture(pid).Wait()
	pid = spawn()
	if s := stats(pid); s.Waiting != 1 {
		t.Fatalf("a new activation sees %d waiting, want the stored caller", s.Waiting)
	}

	// A twin wrote the state meanwhile: this activation's next write is
	// fenced, and it stops rather than overwrite.
	if _, err := st.Put(context.Background(), Key("sales"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{})
	sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(pid)
		case *actor.Terminated:
			close(gone)
		}
	}))
	sys.Root.Send(pid, &pb.QueueReport{QueueId: "sales", CallId: "c1", Kind: "left"})
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("a fenced activation went on")
	}
}
