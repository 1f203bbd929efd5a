package dispatch

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

func TestRunsEverything(t *testing.T) {
	p := New(10)
	var wg sync.WaitGroup
	var ran atomic.Int64
	for range 1000 {
		wg.Add(1)
		p.Schedule(func() { ran.Add(1); wg.Done() })
	}
	wg.Wait()
	if ran.Load() != 1000 {
		t.Fatalf("ran %d of 1000", ran.Load())
	}
}

// A mailbox run that waits for another must not starve it: the pool grows.
func TestBlockedRunDoesNotBlockOthers(t *testing.T) {
	p := New(10)
	release := make(chan struct{})
	done := make(chan struct{})
	p.Schedule(func() { <-release })
	p.Schedule(func() { close(release) })
	p.Schedule(func() { close(done) })
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a blocked run starved the others")
	}
}

// With every core worker blocked, the pool still grows.
func TestGrowsPastCore(t *testing.T) {
	p := New(10)
	release := make(chan struct{})
	defer close(release)
	for range core + 5 {
		p.Schedule(func() { <-release })
	}
	done := make(chan struct{})
	p.Schedule(func() { close(done) })
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("blocked core workers starved a run")
	}
	if n := p.cores.Load(); n != core {
		t.Fatalf("%d core workers, want %d", n, core)
	}
}

// TestAsProtoactorDispatcher: request/response between two actors on the
// pool, one waiting on the other inside its receive.
func TestAsProtoactorDispatcher(t *testing.T) {
	sys := actor.NewActorSystem()
	p := New(300)
	echo := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond(s + "!")
		}
	}, actor.WithDispatcher(p)))
	asker := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			r, err := c.RequestFuture(echo, s, time.Second).Result()
			if err != nil {
				c.Respond(err.Error())
				return
			}
			c.Respond(r)
		}
	}, actor.WithDispatcher(p)))
	for i := range 100 {
		r, err := sys.Root.RequestFuture(asker, "hi", time.Second).Result()
		if err != nil || r != "hi!" {
			t.Fatalf("request %d: %v %v", i, r, err)
		}
	}
}

//go:noinline
func deep(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%256])
}

// BenchmarkSchedule: a run that needs a 32 KiB stack, on fresh goroutines
// (protoactor's default) and on the pool.
func BenchmarkSchedule(b *testing.B) {
	for _, c := range []struct {
		name string
		d    actor.Dispatcher
	}{{"goroutine", actor.NewDefaultDispatcher(300)}, {"pool", New(300)}} {
		b.Run(c.name, func(b *testing.B) {
			done := make(chan struct{}, 1)
			for b.Loop() {
				c.d.Schedule(func() { deep(100); done <- struct{}{} })
				<-done
			}
		})
	}
}
