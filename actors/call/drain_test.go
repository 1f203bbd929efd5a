package call

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/switchboard/switchboard/proto"
)

// A new call is refused (503, nothing taken in: no offer accepted, nobody
// rung) when either node drains: the one whose edge took its INVITE, which
// would hold its caller and media, or the grain's own, wherever the
// cluster placed the grain.
func TestGrainRefusesStartWhenANodeDrains(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	for _, tc := range []struct {
		name              string
		edgeNode, ownNode bool // draining
	}{
		{"the edge's node drains, the grain's does not", true, false},
		{"the grain's node drains, the edge's does not", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := &fakeNode{}
			d := node.deps(testAddr)
			d.Index, d.History, d.Now, d.Settings = NewIndex(), noHistory{}, time.Now, DefaultSettings
			d.Draining = func() bool { return tc.ownNode }
			pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
			gone := make(chan struct{})
			sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
				switch ctx.Message().(type) {
				case *actor.Started:
					ctx.Watch(pid)
				case *actor.Terminated:
					close(gone)
				}
			}))
			sys.Root.Send(pid, &pb.CallStart{CallId: "k", LegId: "k-a", Node: &pb.Node{Id: "n1", Address: testAddr},
				From: &pb.Party{Number: "+14155550199", TrunkId: "carrier"}, To: "1002", Offer: []byte("v=0\r\n"), Draining: tc.edgeNode})
			// A refused call ends its grain; the deadline only bounds a broken one.
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Fatal("the grain did not stop")
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			want := []any{&pb.LegRespond{CallId: "k", LegId: "k-a", Code: 503, Reason: "Service Unavailable"}}
			if !equalMessages(node.edge, want) {
				t.Errorf("edge told %v, want %v", node.edge, want)
			}
			for _, req := range node.media {
				for _, op := range req.Ops {
					if op.Kind != pb.MediaOp_RELEASE {
						t.Errorf("media asked %v of a refused call", op.Kind)
					}
				}
			}
		})
	}
}
