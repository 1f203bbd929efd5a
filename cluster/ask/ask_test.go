package ask

import (
	"errors"
	"strings"
	"testing"

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
