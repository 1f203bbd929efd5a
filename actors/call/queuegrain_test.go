package call

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	pb "github.com/switchboard/switchboard/proto"
)

// A member the queue claimed for a call is let go only once each of their
// phones has finished that call's INVITE: the SIP edge sends a withdrawn
// offer's CANCEL only after the phone says it rings, so a release at the
// withdrawal would let the next offer ring a phone still ringing for this
// one.
func TestQueueMemberReleasedWhenPhonesFinish(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	node := &fakeNode{}
	node.d = node.deps(testAddr)
	node.d.Index, node.d.History, node.d.Now, node.d.Settings, node.d.Router = NewIndex(), noHistory{}, time.Now, testSettings, plainRouter{}
	carolDesk := Contact{URI: "sip:carol@192.0.2.30:5060", Destination: "192.0.2.30:5060", Transport: "udp", NodeID: "n1", NodeAddr: testAddr}
	node.d.LineContacts = func(actor.Context, string) ([]Contact, error) { return []Contact{carolDesk}, nil }

	c := New(callID, time.Now())
	in := start(outside, "+14155550150", Lookup{Queue: &QueueRoute{ID: "sales", Name: "Sales"}})
	in.NodeAddr = testAddr
	if _, err := c.Step(in, time.Now(), testSettings); err != nil {
		t.Fatal(err)
	}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &grain{d: node.d, call: c, mediaNode: testAddr, sdp: map[string][]byte{}, offers: map[string][]byte{}}
	}))
	t.Cleanup(func() { sys.Root.Stop(pid) })
	told := func() []TellQueue {
		// A request after the sends: the grain has handled them by its answer.
		if _, err := sys.Root.RequestFuture(pid, &pb.CallGet{CallId: callID}, 5*time.Second).Result(); err != nil {
			t.Fatal(err)
		}
		node.mu.Lock()
		defer node.mu.Unlock()
		return slices.Clone(node.queues)
	}
	release := TellQueue{Queue: "sales", Kind: "release", User: "carol"}

	sys.Root.Send(pid, &pb.QueueOffer{CallId: callID, QueueId: "sales", User: "carol"})
	sys.Root.Send(pid, &pb.QueueOffer{CallId: callID, QueueId: "sales", User: "carol", Withdraw: true})
	if got := told(); slices.Contains(got, release) {
		t.Fatalf("carol let go while her phone may still ring: %v", got)
	}
	// The edge was asked to say when the phone is done with the leg.
	node.mu.Lock()
	asked := slices.ContainsFunc(node.edge, func(m any) bool {
		e, ok := m.(*pb.LegEnd)
		return ok && e.LegId == lb1 && e.Settle
	})
	node.mu.Unlock()
	if !asked {
		t.Fatal("the withdrawn leg was ended without asking the edge to report it settled")
	}
	// The phone says it rings, the edge's CANCEL goes out, the INVITE ends
	// 487: the edge reports the leg settled.
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb1, Kind: pb.LegEvent_RINGING})
	if got := told(); slices.Contains(got, release) {
		t.Fatalf("carol let go before her phone finished the INVITE: %v", got)
	}
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb1, Kind: pb.LegEvent_SETTLED, Code: 487})
	if got := told(); !slices.Equal(got, []TellQueue{release}) {
		t.Fatalf("after the 487 the queue was told %v, want carol let go once", got)
	}

	// Offered again and withdrawn, her phone answers anyway (its 200
	// crossed the CANCEL): the edge hangs it up, and she is let go once it
	// reports the BYE gone.
	sys.Root.Send(pid, &pb.QueueOffer{CallId: callID, QueueId: "sales", User: "carol"})
	sys.Root.Send(pid, &pb.QueueOffer{CallId: callID, QueueId: "sales", User: "carol", Withdraw: true})
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb2, Kind: pb.LegEvent_ANSWERED, Sdp: []byte("v=0\r\n")})
	if got := told(); len(got) != 1 {
		t.Fatalf("carol let go with her late answer's BYE maybe still unsent: %v", got)
	}
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb2, Kind: pb.LegEvent_SETTLED})
	if got := told(); len(got) != 2 {
		t.Fatalf("after the BYE left the queue was told %v, want carol let go again", got)
	}
}
