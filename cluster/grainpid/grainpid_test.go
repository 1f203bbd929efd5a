package grainpid

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// A fake placement over a plain actor system: it activates a grain the first
// time it is asked, and again once that activation has stopped, counting
// how often it is asked.
type placement struct {
	system *actor.ActorSystem
	asked  int
	active map[string]*actor.PID
	remote *actor.PID // answered for identity "far"
}

func (p *placement) get(identity, kind string) *actor.PID {
	p.asked++
	if identity == "far" {
		return p.remote
	}
	if pid := p.active[kind+"/"+identity]; pid != nil {
		if _, ok := p.system.ProcessRegistry.GetLocal(pid.Id); ok {
			return pid
		}
	}
	pid := p.system.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	p.active[kind+"/"+identity] = pid
	return pid
}

func TestGetAsksPlacementOnlyWhenTheActivationIsGone(t *testing.T) {
	system := actor.NewActorSystem()
	defer system.Shutdown()
	p := &placement{system: system, active: map[string]*actor.PID{},
		remote: actor.NewPID("10.0.0.9:4000", "line/far")}
	c := New(system, p.get)

	first := c.Get("alice", "line")
	if again := c.Get("alice", "line"); !again.Equal(first) || p.asked != 1 {
		t.Fatalf("second Get: %v (first %v), placement asked %d times; want the same PID, asked once", again, first, p.asked)
	}
	if other := c.Get("alice", "delegator"); other.Equal(first) || p.asked != 2 {
		t.Fatalf("another kind with the same identity shared the PID %v (asked %d)", other, p.asked)
	}

	// The placement actor stops an activation when a join moves its grain.
	if err := system.Root.StopFuture(first).Wait(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, ok := system.ProcessRegistry.GetLocal(first.Id); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stopped activation still registered")
		}
		time.Sleep(time.Millisecond)
	}
	moved := c.Get("alice", "line")
	if moved.Equal(first) || p.asked != 3 {
		t.Fatalf("after the activation stopped: %v (old %v), asked %d; want a new PID from the placement", moved, first, p.asked)
	}

	// A topology change forgets every PID, running or not.
	before := p.asked
	system.EventStream.Publish(&cluster.ClusterTopology{})
	if again := c.Get("alice", "line"); !again.Equal(moved) || p.asked != before+1 {
		t.Fatalf("after a topology change: %v, asked %d times more; want the placement asked again", again, p.asked-before)
	}

	// A PID on another member cannot be checked from here: never kept.
	for range 2 {
		if got := c.Get("far", "line"); !got.Equal(p.remote) {
			t.Fatalf("remote grain: %v", got)
		}
	}
	if p.asked != 6 {
		t.Fatalf("placement asked %d times; a remote PID must be asked for each time (want 6)", p.asked)
	}
}
