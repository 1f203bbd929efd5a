package node

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
)

// The placement actor's mailbox runs on the pool's workers; any other root
// spawn keeps the dispatcher it asked for.
func TestPlacementActorRunsOnPool(t *testing.T) {
	sys := actor.NewActorSystem()
	sys.Root.WithSpawnMiddleware(placementOnPool)
	onPool := func(name string) bool {
		got := make(chan bool, 1)
		props := actor.PropsFromFunc(func(ctx actor.Context) {
			if _, ok := ctx.Message().(string); ok {
				buf := make([]byte, 64<<10)
				got <- strings.Contains(string(buf[:runtime.Stack(buf, false)]), "switchboard/cluster/dispatch.(*Pool).")
			}
		})
		pid, err := sys.Root.SpawnNamed(props, name)
		if err != nil {
			t.Fatal(err)
		}
		defer sys.Root.Stop(pid)
		sys.Root.Send(pid, "where")
		select {
		case v := <-got:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("actor did not run")
			return false
		}
	}
	if !onPool(disthash.PartitionActivatorActorName) {
		t.Error("the placement actor does not run on the pool")
	}
	if onPool("other") {
		t.Error("another actor was moved onto the pool")
	}
}
