package call

import (
	"sort"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/switchboard/switchboard/proto"
)

// IndexActor is the well-known name of the node actor that lists the calls
// whose grains live on this node; GET /v1/calls asks every member's.
const IndexActor = "calls"

// Index is the node's view of its live call grains, kept by the grains
// themselves after each step.
type Index struct {
	mu    sync.RWMutex
	calls map[string]*pb.CallInfo
}

func NewIndex() *Index { return &Index{calls: map[string]*pb.CallInfo{}} }

func (x *Index) Put(ci *pb.CallInfo) {
	x.mu.Lock()
	x.calls[ci.Id] = ci
	x.mu.Unlock()
}

func (x *Index) Delete(id string) {
	x.mu.Lock()
	delete(x.calls, id)
	x.mu.Unlock()
}

// List returns the calls, oldest first.
func (x *Index) List() []*pb.CallInfo {
	x.mu.RLock()
	out := make([]*pb.CallInfo, 0, len(x.calls))
	for _, c := range x.calls {
		out = append(out, c)
	}
	x.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedUnixNano < out[j].CreatedUnixNano })
	return out
}

func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.calls)
}

// IndexProps is the "calls" actor serving NodeCalls from the index.
func IndexProps(x *Index, actors func() int) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*pb.NodeCalls); ok {
			ctx.Respond(&pb.NodeCallsResult{Calls: x.List(), Actors: int32(actors())})
		}
	})
}

// callJSON is the INTERFACE.md shape of a call, for events.
func callJSON(ci *pb.CallInfo) map[string]any {
	legs := make([]map[string]any, 0, len(ci.Legs))
	for _, l := range ci.Legs {
		legs = append(legs, map[string]any{"id": l.Id, "party": l.Party, "state": l.State, "node": l.Node})
	}
	m := map[string]any{
		"id": ci.Id, "state": ci.State, "line": ci.Line, "legs": legs, "locked": ci.Locked,
		"monitors": monitorsJSON(ci.Monitors), "answered_by": ci.AnsweredBy, "node": ci.Node, "grain_node": ci.GrainNode,
		"created_at": time.Unix(0, ci.CreatedUnixNano).UTC(),
	}
	if ci.AnsweredUnixNano != 0 {
		m["answered_at"] = time.Unix(0, ci.AnsweredUnixNano).UTC()
	}
	return m
}

// monitorsJSON is a call's monitors as INTERFACE.md shows them:
// [{user, mode, since}], never null.
func monitorsJSON(ms []*pb.MonitorInfo) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, map[string]any{"user": m.User, "mode": m.Mode, "since": time.Unix(0, m.SinceUnixNano).UTC()})
	}
	return out
}
