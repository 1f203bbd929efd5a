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
	// The phone says it rings, the edge's CANCEL goes out, the INVITE ends 487.
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb1, Kind: pb.LegEvent_RINGING})
	if got := told(); slices.Contains(got, release) {
		t.Fatalf("carol let go before her phone finished the INVITE: %v", got)
	}
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb1, Kind: pb.LegEvent_FAILED, Code: 487})
	if got := told(); !slices.Equal(got, []TellQueue{release}) {
		t.Fatalf("after the 487 the queue was told %v, want carol let go once", got)
	}

	// Offered again and withdrawn, her phone answers anyway (its 200
	// crossed the CANCEL): the core hangs it up, and she is let go only
	// after the BYE had time to leave.
	sys.Root.Send(pid, &pb.QueueOffer{CallId: callID, QueueId: "sales", User: "carol"})
	sys.Root.Send(pid, &pb.QueueOffer{CallId: callID, QueueId: "sales", User: "carol", Withdraw: true})
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb2, Kind: pb.LegEvent_ANSWERED, Sdp: []byte("v=0\r\n")})
	if got := told(); len(got) != 1 {
		t.Fatalf("carol let go with her late answer's BYE maybe still unsent: %v", got)
	}
	for deadline := time.Now().Add(2 * time.Second); len(told()) != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("carol never let go after her late answer")
		}
	}
}
