package call

import (
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/actors/monitoring"
	"github.com/switchboard/switchboard/cluster/history"
	pb "github.com/switchboard/switchboard/proto"
)

// The grain carries out a Ready by obligation. When a media change fails
// (the callee's answer cannot be used), what was built on it (the caller's
// 200) must not be sent, while the legs the step ended are still ended; the
// failure comes back to the core, which ends the call with a final answer.

type noHistory struct{}

func (noHistory) Append(string, history.Entry) error { return nil }

// mediaFailing answers every op but one kind, which fails with 488.
func (n *fakeNode) mediaFailing(kind pb.MediaOp_Kind) {
	local := n.d.Local.Load()
	local.Media = func(req *pb.MediaRequest) *pb.MediaResponse {
		n.mu.Lock()
		defer n.mu.Unlock()
		n.media = append(n.media, req)
		res := &pb.MediaResponse{}
		for _, op := range req.Ops {
			r := &pb.MediaResult{}
			if op.Kind == kind {
				r.Code = 488
			}
			res.Results = append(res.Results, r)
		}
		return res
	}
}

func TestMediaFailureDropsWhatWasBuiltOnIt(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	node := &fakeNode{}
	node.d = node.deps(testAddr)
	node.d.Index, node.d.History, node.d.Now, node.d.Settings = NewIndex(), noHistory{}, time.Now, testSettings
	node.mediaFailing(pb.MediaOp_ACCEPT_ANSWER)

	here := func(c Contact) Contact { c.NodeAddr = testAddr; return c }
	c := New(callID, time.Now())
	in := start(alice, "102", Lookup{Target: &bob, Contacts: []Contact{here(desk), here(soft)}})
	in.NodeAddr = testAddr
	if _, err := c.Step(in, time.Now(), testSettings); err != nil {
		t.Fatal(err)
	}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &grain{d: node.d, call: c, mediaNode: testAddr, sdp: map[string][]byte{}, offers: map[string][]byte{}}
	}))
	sys.Root.Send(pid, &pb.LegEvent{CallId: callID, LegId: lb1, Kind: pb.LegEvent_ANSWERED, Sdp: []byte("v=0\r\n")})

	// The failure comes back through the mailbox and ends the call: wait
	// for the grain to stop, then read what the edge was told.
	deadline := time.Now().Add(5 * time.Second)
	for {
		node.mu.Lock()
		// The caller's INVITE is still unanswered: ending its leg (LegEnd
		// with a code) is its final answer.
		done := slices.ContainsFunc(node.edge, func(m any) bool {
			e, ok := m.(*pb.LegEnd)
			return ok && e.LegId == la && e.Code >= 300
		})
		node.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the caller never got a final answer; edge told %v", node.edge)
		}
		time.Sleep(10 * time.Millisecond)
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	var ended []string
	for _, m := range node.edge {
		switch m := m.(type) {
		case *pb.LegRespond:
			if m.LegId == la && m.Code < 300 {
				t.Errorf("the caller was answered %d on an answer the relay refused", m.Code)
			}
		case *pb.LegEnd:
			ended = append(ended, m.LegId)
		}
	}
	// b2 stopped ringing in the step that failed; b1, whose answer was
	// refused, is hung up when the failure comes back, and so is the caller.
	if want := []string{lb2, lb1, la}; !slices.Equal(ended, want) {
		t.Errorf("legs ended %v, want %v", ended, want)
	}
}

func TestHearOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Hear
		want []*pb.MediaOp
	}{
		{"two talkers are a bridge", bridge("a", "b"), []*pb.MediaOp{{Kind: pb.MediaOp_BRIDGE, Leg: "a", Peer: "b"}}},
		{"three talkers are mixed", mix("a", "b", "c"), []*pb.MediaOp{
			{Kind: pb.MediaOp_MIX, Leg: "a", Legs: []string{"b", "c"}},
			{Kind: pb.MediaOp_MIX, Leg: "b", Legs: []string{"a", "c"}},
			{Kind: pb.MediaOp_MIX, Leg: "c", Legs: []string{"a", "b"}}}},
		{"a listener is mixed", Hear{Routes: Routes([]Participant{{Leg: "a", Mode: Talk}, {Leg: "b", Mode: Talk}, {Leg: "s", Mode: Listen}})}, []*pb.MediaOp{
			{Kind: pb.MediaOp_MIX, Leg: "a", Legs: []string{"b"}},
			{Kind: pb.MediaOp_MIX, Leg: "b", Legs: []string{"a"}},
			{Kind: pb.MediaOp_MIX, Leg: "s", Legs: []string{"a", "b"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hearOps(tc.h.Routes)
			if len(got) != len(tc.want) {
				t.Fatalf("ops %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i].Kind != tc.want[i].Kind || got[i].Leg != tc.want[i].Leg || got[i].Peer != tc.want[i].Peer || !slices.Equal(got[i].Legs, tc.want[i].Legs) {
					t.Fatalf("op %d %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// A refusal answers a phone that asked over SIP with the code a phone
// understands.
func TestRefusalSIP(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   int
	}{{403, 403}, {409, 486}, {404, 404}, {503, 503}, {500, 503}, {400, 403}} {
		if got, reason := (&Refusal{Status: tc.status}).SIP(); got != tc.code || reason == "" {
			t.Errorf("refusal %d: SIP %d %q, want %d", tc.status, got, reason, tc.code)
		}
	}
}

// srtpRouter says every user's policy requires SRTP.
type srtpRouter struct{}

func (srtpRouter) Lookup(dialed string, _ bool) (*Party, bool, bool, *Contact) {
	return &Party{UserID: dialed, Number: dialed}, true, false, nil
}

// A user whose policy requires SRTP cannot move an answered call to plain
// RTP by re-INVITE: 488, and the media worker is not asked to change
// anything (the session goes on as it was).
func TestPlainReinviteRefusedBySRTPPolicy(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	for _, tc := range []struct {
		name string
		sdp  string
		code int32
	}{
		{"plain RTP", offerSDP("RTP/AVP", ""), 488},
		{"SRTP", offerSDP("RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := &fakeNode{}
			node.d = node.deps(testAddr)
			node.d.Index, node.d.History, node.d.Now, node.d.Settings, node.d.Router = NewIndex(), noHistory{}, time.Now, testSettings, srtpRouter{}
			c := New(callID, time.Now())
			for _, in := range []any{startToBob, Answered{Leg: lb1}} {
				if _, err := c.Step(in, time.Now(), testSettings); err != nil {
					t.Fatal(err)
				}
			}
			pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
				return &grain{d: node.d, call: c, mediaNode: testAddr, sdp: map[string][]byte{}, offers: map[string][]byte{}}
			}))
			defer sys.Root.Stop(pid)
			res, err := sys.Root.RequestFuture(pid, &pb.LegReinvite{CallId: callID, LegId: la, Sdp: []byte(tc.sdp)}, 5*time.Second).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := res.(*pb.LegReinviteResult).Code; got != tc.code {
				t.Fatalf("re-INVITE answered %d, want %d", got, tc.code)
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			if asked := len(node.media) > 0; asked != (tc.code == 200) {
				t.Errorf("media asked %v for a re-INVITE answered %d", node.media, tc.code)
			}
		})
	}
}

func offerSDP(proto, extra string) string {
	return "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 " + proto + " 0\r\na=rtpmap:0 PCMU/8000\r\n" + extra
}

// plainRouter knows every user, none requiring SRTP.
type plainRouter struct{}

func (plainRouter) Lookup(dialed string, _ bool) (*Party, bool, bool, *Contact) {
	return &Party{UserID: dialed, Number: dialed}, false, false, nil
}

// fence is etcd's compare-and-put on one key, as the node's PersistMonitor
// does it: a write names the revision it last saw.
type fence struct {
	mu  sync.Mutex
	rev int64
}

func (f *fence) write(_, _, _ string, rev int64) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev != f.rev {
		return 0, ErrFenced
	}
	f.rev++
	return f.rev, nil
}

// Two twins of one call's grain (as protoactor may briefly run during a
// membership change) each take a supervisor's *1 INVITE: the monitoring
// slot is fenced, so exactly one wins; the other's supervisor is refused
// (409 already_monitored, the INVITE ends with 486) and nothing of theirs
// reaches the media worker.
func TestMonitoringSlotIsFenced(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	slot := &fence{}
	facts := func(actor.Context, string, string) (monitoring.Facts, error) {
		return monitoring.Facts{Groups: []monitoring.Group{{ID: "g", Supervisors: []string{"sue", "tom"}, Members: []string{"bob"}, Modes: monitoring.Modes}}}, nil
	}
	twin := func() (*fakeNode, *actor.PID) {
		node := &fakeNode{}
		node.d = node.deps(testAddr)
		node.d.Index, node.d.History, node.d.Now, node.d.Settings, node.d.Router = NewIndex(), noHistory{}, time.Now, testSettings, plainRouter{}
		node.d.MonitorFacts, node.d.PersistMonitor = facts, slot.write
		c := New(callID, time.Now())
		here := func(ct Contact) Contact { ct.NodeAddr = testAddr; return ct }
		in := start(alice, "102", Lookup{Target: &bob, Contacts: []Contact{here(desk)}})
		in.NodeAddr = testAddr
		for _, in := range []any{in, Answered{Leg: lb1}} {
			if _, err := c.Step(in, time.Now(), testSettings); err != nil {
				t.Fatal(err)
			}
		}
		pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &grain{d: node.d, call: c, mediaNode: testAddr, sdp: map[string][]byte{}, offers: map[string][]byte{}}
		}))
		t.Cleanup(func() { sys.Root.Stop(pid) })
		return node, pid
	}
	ask := func(pid *actor.PID, by, leg string) *pb.CallControlResult {
		res, err := sys.Root.RequestFuture(pid, &pb.CallControl{CallId: callID, Action: "monitor", Mode: "listen", ByUser: by, LegId: leg,
			Node: &pb.Node{Id: "n1", Address: testAddr}, Offer: []byte(offerSDP("RTP/AVP", ""))}, 5*time.Second).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res.(*pb.CallControlResult)
	}
	nodeA, a := twin()
	nodeB, b := twin()
	if r := ask(a, "sue", "k-m1"); r.Status != 202 {
		t.Fatalf("the first supervisor: %v", r)
	}
	if r := ask(b, "tom", "k-m2"); r.Status != 409 || r.Code != "already_monitored" {
		t.Fatalf("the twin's supervisor: %v, want 409 already_monitored", r)
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	eventually("the twin's supervisor INVITE ended with 486", func() bool {
		nodeB.mu.Lock()
		defer nodeB.mu.Unlock()
		return slices.ContainsFunc(nodeB.edge, func(m any) bool {
			e, ok := m.(*pb.LegEnd)
			return ok && e.LegId == "k-m2" && e.Code == 486
		})
	})
	nodeB.mu.Lock()
	for _, req := range nodeB.media {
		for _, op := range req.Ops {
			if op.Leg == "k-m2" && op.Kind != pb.MediaOp_REMOVE_LEG {
				t.Errorf("the losing twin asked the media worker %v for its supervisor", op)
			}
		}
	}
	nodeB.mu.Unlock()
	nodeA.mu.Lock()
	defer nodeA.mu.Unlock()
	if !slices.ContainsFunc(nodeA.edge, func(m any) bool {
		r, ok := m.(*pb.LegRespond)
		return ok && r.LegId == "k-m1" && r.Code == 200
	}) {
		t.Errorf("the winner's supervisor was not answered: %v", nodeA.edge)
	}
}

// effectsOf lists r in the order the grain carries it out, for stories to
// compare with the effects they expect.
func effectsOf(r Ready) []Effect {
	var out []Effect
	out = append(out, r.Persist...)
	out = append(out, r.Media...)
	for _, e := range r.End {
		out = append(out, e)
	}
	out = append(out, r.Send...)
	if r.Wake != nil {
		out = append(out, *r.Wake)
	}
	for _, e := range r.Events {
		out = append(out, e)
	}
	if r.Finished != nil {
		out = append(out, *r.Finished)
	}
	return out
}

// empty: the step asks nothing of the grain.
func empty(r Ready) bool { return len(effectsOf(r)) == 0 }
