// Package ask is what the grain kinds' typed clients are built on: a
// request to a grain whose answer has the type the client promises, so
// that callers never spell a kind or type-assert an answer themselves.
package ask

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
)

// Requester sends a request to a grain and waits for its answer
// (cluster.Cluster.Request).
type Requester interface {
	Request(identity, kind string, message any, option ...cluster.GrainCallOption) (any, error)
}

// Grain sends msg to the grain identity of kind and returns its answer as an
// R. An answer of another type is an error, as is none.
func Grain[R any](r Requester, kind, identity string, msg any) (R, error) {
	var zero R
	ans, err := r.Request(identity, kind, msg)
	if err != nil {
		return zero, fmt.Errorf("%s %s: %T: %w", kind, identity, msg, err)
	}
	res, ok := ans.(R)
	if !ok {
		return zero, fmt.Errorf("%s %s: %T answered with %T, want %T", kind, identity, msg, ans, zero)
	}
	return res, nil
}

// Actor sends msg to the actor named name on the member at addr (a node's
// well-known actor, not a grain) and returns its answer as an R.
func Actor[R any](root *actor.RootContext, addr, name string, msg any, timeout time.Duration) (R, error) {
	var zero R
	ans, err := root.RequestFuture(actor.NewPID(addr, name), msg, timeout).Result()
	if err != nil {
		return zero, fmt.Errorf("%s on %s: %T: %w", name, addr, msg, err)
	}
	res, ok := ans.(R)
	if !ok {
		return zero, fmt.Errorf("%s on %s: %T answered with %T, want %T", name, addr, msg, ans, zero)
	}
	return res, nil
}
