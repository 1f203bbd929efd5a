package ask

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

type fake struct {
	ans any
	err error
	got struct{ identity, kind string }
}

func (f *fake) Request(identity, kind string, _ any, _ ...cluster.GrainCallOption) (any, error) {
	f.got.identity, f.got.kind = identity, kind
	return f.ans, f.err
}

type answer struct{ n int }

func TestGrain(t *testing.T) {
	f := &fake{ans: &answer{n: 7}}
	got, err := Grain[*answer](f, "line", "alice", "hello")
	if err != nil || got.n != 7 || f.got.identity != "alice" || f.got.kind != "line" {
		t.Fatalf("Ask: %+v, %v, asked %+v", got, err, f.got)
	}
	for name, tc := range map[string]struct {
		f    *fake
		want string
	}{
		"an error":         {&fake{err: errors.New("timeout")}, "line alice: string: timeout"},
		"another type":     {&fake{ans: 3}, "answered with int, want *ask.answer"},
		"no answer at all": {&fake{}, "answered with <nil>"},
	} {
		if _, err := Grain[*answer](tc.f, "line", "alice", "hello"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}

// Actor reaches a node's named actor and types its answer; a wrong type or
// no answer is an error naming the actor.
func TestActor(t *testing.T) {
	sys := actor.NewActorSystem()
	if _, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(string); ok {
			ctx.Respond(&answer{n: 3})
		}
	}), "counter"); err != nil {
		t.Fatal(err)
	}
	got, err := Actor[*answer](sys.Root, sys.Address(), "counter", "how many", time.Second)
	if err != nil || got.n != 3 {
		t.Fatalf("Actor: %+v, %v", got, err)
	}
	if _, err := Actor[*strings.Builder](sys.Root, sys.Address(), "counter", "how many", time.Second); err == nil || !strings.Contains(err.Error(), "counter") {
		t.Fatalf("a wrong answer type: %v", err)
	}
	if _, err := Actor[*answer](sys.Root, sys.Address(), "nobody", "how many", 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("no such actor: %v", err)
	}
}
