package thread

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/store/storetest"
	pb "github.com/switchboard/switchboard/proto"
)

// The adapter with a real etcd: of many first replies at once exactly one
// claims; the claim outlives the activation and is released on time by the
// next one; a write fenced by a twin stops the grain.

type world struct {
	mu     sync.Mutex
	sent   []string // "from>to text"
	events chan events.Event
}

func (w *world) out(_ actor.Context, from, to, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent = append(w.sent, from+">"+to+" "+text)
}

func (w *world) Publish(e events.Event) { w.events <- e }

func (w *world) outbox() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.sent)
}

// next is the next event of type typ (others are skipped).
func (w *world) next(t *testing.T, typ string) events.Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-w.events:
			if e.Type == typ {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s", typ)
		}
	}
}

func TestGrain(t *testing.T) {
	const (
		owner, peer, number = "help", "+14155550777", "+14155550400"
		agents              = 12
		claimRelease        = 2 * time.Second
	)
	st := storetest.New(t)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	w := &world{events: make(chan events.Event, 1000)}
	d := &Deps{Store: st, Out: w.out, Events: w, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	id := ID(owner, peer)
	var team []string
	for i := range agents {
		team = append(team, fmt.Sprint("agent", i))
	}
	spawn := func() *actor.PID {
		pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &grain{d: d, id: id} }))
		t.Cleanup(func() { sys.Root.Stop(pid) })
		return pid
	}
	command := func(pid *actor.PID, action, by, text string) *pb.ThreadResult {
		t.Helper()
		res, err := sys.Root.RequestFuture(pid, &pb.ThreadCommand{ThreadId: id, Owner: owner, OwnerKind: KindQueue, Peer: peer, OwnerNumber: number,
			Action: action, By: by, Text: text, Members: team, Admins: []string{"boss"}, ClaimReleaseNano: int64(claimRelease)}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(*pb.ThreadResult)
	}
	view := func(res *pb.ThreadResult) View {
		t.Helper()
		var v View
		if res.Status != 200 || json.Unmarshal(res.Json, &v) != nil {
			t.Fatalf("answer %d %s %s", res.Status, res.Code, res.Message)
		}
		return v
	}
	storedThread := func() Thread {
		t.Helper()
		kv, err := st.Get(context.Background(), Key(owner, peer))
		if err != nil {
			t.Fatal(err)
		}
		var th Thread
		if err := json.Unmarshal(kv.Value, &th); err != nil {
			t.Fatal(err)
		}
		return th
	}

	pid := spawn()
	if res := command(pid, "get", "agent0", ""); res.Status != 404 {
		t.Fatalf("a thread never written: %d %s", res.Status, res.Code)
	}
	pid = spawn()
	view(command(pid, "inbound", "", "my order is late"))
	if e := w.next(t, "sms.received"); len(e.Users) != agents || e.Data.(Notice).Message.Text != "my order is late" {
		t.Fatalf("sms.received to %v: %+v", e.Users, e.Data)
	}

	// Every agent's first reply at once: exactly one claims, and only its
	// text goes out; the others are told who holds the thread.
	results := make([]*pb.ThreadResult, agents)
	var wg sync.WaitGroup
	for i, a := range team {
		wg.Go(func() { results[i] = command(pid, "reply", a, "reply from "+a) })
	}
	wg.Wait()
	var winner string
	for i, r := range results {
		if r.Status == 200 {
			if winner != "" {
				t.Fatalf("both %s and %s claimed the thread", winner, team[i])
			}
			winner = team[i]
		}
	}
	if winner == "" {
		t.Fatal("nobody claimed the thread")
	}
	for i, r := range results {
		if team[i] != winner && (r.Status != 409 || r.Code != "thread_claimed" || r.Holder != winner) {
			t.Fatalf("%s's reply: %d %s holder %q, want 409 thread_claimed holder %s", team[i], r.Status, r.Code, r.Holder, winner)
		}
	}
	if got := w.outbox(); !slices.Equal(got, []string{number + ">" + peer + " reply from " + winner}) {
		t.Fatalf("sent %v", got)
	}
	if th := storedThread(); th.ClaimedBy != winner || th.Outbound != 1 {
		t.Fatalf("stored: claimed by %q, %d out", th.ClaimedBy, th.Outbound)
	}
	if e := w.next(t, "sms.claimed"); e.Data.(Notice).ClaimedBy != winner || len(e.Users) != agents+1 {
		t.Fatalf("sms.claimed to %v: %+v", e.Users, e.Data)
	}

	// A new activation (another node) keeps the claim and releases it
	// claim_release after the last message.
	sys.Root.StopFuture(pid).Wait()
	pid = spawn()
	v := view(command(pid, "get", "boss", ""))
	if v.ClaimedBy != winner {
		t.Fatalf("the new activation sees the thread claimed by %q", v.ClaimedBy)
	}
	e := w.next(t, "sms.released")
	if n := e.Data.(Notice); n.Reason != "timeout" || n.ClaimedBy != "" {
		t.Fatalf("sms.released %+v", n)
	}
	if due := v.LastActivityAt.Add(claimRelease); e.Time.Before(due) || e.Time.After(due.Add(time.Second)) {
		t.Fatalf("released at %v, due at %v", e.Time, due)
	}
	if th := storedThread(); th.ClaimedBy != "" || th.TimeoutReleases != 1 {
		t.Fatalf("stored after the release: claimed by %q, %d timeouts", th.ClaimedBy, th.TimeoutReleases)
	}

	// A claim whose grain is gone lists as released once due, and counts
	// as a timeout, without waking the grain.
	view(command(pid, "reply", "agent1", "agent1 here"))
	sys.Root.StopFuture(pid).Wait()
	time.Sleep(claimRelease)
	list, err := List(context.Background(), st, owner)
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].ClaimedBy != "" || len(list[0].Messages) != 3 {
		t.Fatalf("List: %v %+v", err, list)
	}
	stats, err := Stats(context.Background(), st, owner)
	if err != nil || stats.Inbound != 1 || stats.Outbound != 2 || stats.TimeoutReleased != 2 || stats.ManualReleased != 0 || stats.AverageFirstReplySeconds <= 0 {
		t.Fatalf("Stats: %v %+v", err, stats)
	}
	if other, err := List(context.Background(), st, "hel"); err != nil || len(other) != 0 {
		t.Fatalf("another owner's list: %v %+v", err, other)
	}

	// A twin wrote the thread meanwhile: this activation's next write is
	// fenced; it answers 503 and stops rather than overwrite.
	pid = spawn()
	view(command(pid, "get", "boss", ""))
	th := storedThread()
	b, _ := json.Marshal(th)
	if _, err := st.Put(context.Background(), Key(owner, peer), b); err != nil {
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
	sent := len(w.outbox())
	if res := command(pid, "reply", "agent2", "agent2 here"); res.Status != 503 || res.Code != "unavailable" {
		t.Fatalf("a fenced reply: %d %s", res.Status, res.Code)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("a fenced activation went on")
	}
	if len(w.outbox()) != sent {
		t.Fatal("a reply that was not stored went out")
	}
}

// A thread grain with nothing to do stops: its state is in etcd, and a
// node must not keep a grain for every thread it ever touched.
func TestGrainStopsWhenIdle(t *testing.T) {
	defer func(d time.Duration) { IdleAfter = d }(IdleAfter)
	IdleAfter = 200 * time.Millisecond
	st := storetest.New(t)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	w := &world{events: make(chan events.Event, 10)}
	d := &Deps{Store: st, Out: w.out, Events: w, Now: time.Now, Log: slog.New(slog.DiscardHandler)}
	id := ID("help", "+14155550777")
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &grain{d: d, id: id} }))
	gone := make(chan struct{})
	sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(pid)
		case *actor.Terminated:
			close(gone)
		}
	}))
	res, err := sys.Root.RequestFuture(pid, &pb.ThreadCommand{ThreadId: id, Owner: "help", OwnerKind: KindQueue, Peer: "+14155550777",
		OwnerNumber: "+14155550400", Action: "inbound", Text: "hi", Members: []string{"ann"}}, 5*time.Second).Result()
	if err != nil || res.(*pb.ThreadResult).Status != 200 {
		t.Fatalf("inbound: %v %v", res, err)
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("an idle thread grain stayed")
	}
}
