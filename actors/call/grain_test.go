package call

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchboard/switchboard/proto"
)

// A message that reaches a call grain with no call (its call ended, or the
// grain was activated afresh on another node) must not step a nil call: a
// request gets its "no such call" answer, a leg or media worker still up
// for the lost call is ended on the node that reported it, and the grain
// stops. Each row sends one message to a fresh grain on an in-process
// actor system whose SIP edge and media service are fakes.

// fakeNode records what a grain sends this node's SIP edge and media service.
type fakeNode struct {
	mu     sync.Mutex
	edge   []any
	media  []*pb.MediaRequest
	queues []TellQueue // what the queues were told
	d      *Deps
}

// The fake node's queues only hear reports.
func (n *fakeNode) Find(string) (QueueRoute, bool) { return QueueRoute{}, false }
func (n *fakeNode) Arrive(actor.Context, string, string) (*pb.QueueTarget, error) {
	return nil, nil
}
func (n *fakeNode) Report(_ actor.Context, _ string, r TellQueue) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queues = append(n.queues, r)
}
func (n *fakeNode) Release(_ actor.Context, queue, _, user string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.queues = append(n.queues, TellQueue{Queue: queue, Kind: "release", User: user})
}

func (n *fakeNode) deps(addr string) *Deps {
	d := &Deps{Log: slog.New(slog.DiscardHandler), Queues: n}
	d.Local.Store(&Local{
		Addr: addr,
		Edge: func(msg any, _ *actor.PID) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.edge = append(n.edge, msg)
		},
		Media: func(req *pb.MediaRequest) *pb.MediaResponse {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.media = append(n.media, req)
			res := &pb.MediaResponse{}
			for range req.Ops {
				res.Results = append(res.Results, &pb.MediaResult{})
			}
			return res
		},
	})
	return d
}

// failures is a supervisor that records what a grain panicked with and
// stops it.
type failures struct{ reasons chan any }

func (f failures) HandleFailure(_ *actor.ActorSystem, s actor.Supervisor, child *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	f.reasons <- reason
	s.StopChildren(child)
}

// How a row's message reaches the grain: from the edge's or the media
// service's actor (as they send reports), as a request (a future is the
// sender), or from nobody.
const (
	fromEdge = iota
	fromMedia
	asRequest
	fromNobody
)

type noCallRow struct {
	name     string
	msg      any
	from     int
	response proto.Message // the answer a request must get
	edge     []any         // what the edge must be told
	release  bool          // the media service must release the call's worker
	queues   []TellQueue   // what the queues must be told
}

func noCallRows() []noCallRow {
	const k = "k"
	orphanEnd := func(leg string) []any { return []any{&pb.LegEnd{CallId: k, LegId: leg, Code: 481}} }
	return []noCallRow{
		{name: "a callee's answer: its dialog is hung up", msg: &pb.LegEvent{CallId: k, LegId: "k-b1", Kind: pb.LegEvent_ANSWERED, Sdp: []byte("v=0")},
			from: fromEdge, edge: orphanEnd("k-b1")},
		{name: "a callee ringing: its INVITE is cancelled", msg: &pb.LegEvent{CallId: k, LegId: "k-b2", Kind: pb.LegEvent_EARLY},
			from: fromEdge, edge: orphanEnd("k-b2")},
		{name: "a leg's report from nobody: nothing to end it on", msg: &pb.LegEvent{CallId: k, LegId: "k-b1", Kind: pb.LegEvent_BYE},
			from: fromNobody},
		{name: "a re-INVITE: 481, and the leg is ended", msg: &pb.LegReinvite{CallId: k, LegId: "k-a", Sdp: []byte("v=0")},
			from: asRequest, response: &pb.LegReinviteResult{Code: 481}, edge: orphanEnd("k-a")},
		{name: "a REST control: 404", msg: &pb.CallControl{CallId: k, Action: "hold", ByUser: "alice"},
			from: asRequest, response: &pb.CallControlResult{Status: 404, Code: "not_found", Message: "no such call"}},
		{name: "a pickup over SIP: 404, and the picker's INVITE gets its final answer", msg: &pb.CallControl{CallId: k, Action: "pickup", ByUser: "bob", LegId: "k-p1", Node: &pb.Node{Id: "n1", Address: testAddr}},
			from: asRequest, response: &pb.CallControlResult{Status: 404, Code: "not_found", Message: "no such call"},
			edge: []any{&pb.LegEnd{CallId: k, LegId: "k-p1", Code: 404}}},
		{name: "a REST read: an empty answer", msg: &pb.CallGet{CallId: k},
			from: asRequest, response: &pb.CallInfo{Id: k}},
		{name: "media silence: the worker is released", msg: &pb.MediaEvent{CallId: k, LegId: "k-a", Kind: "rtp_timeout"},
			from: fromMedia, release: true},
		{name: "a digit: the worker is released", msg: &pb.MediaEvent{CallId: k, LegId: "k-a", Kind: "dtmf", Digit: "5"},
			from: fromMedia, release: true},
		{name: "media from nobody: nothing to release it on", msg: &pb.MediaEvent{CallId: k, LegId: "k-a", Kind: "rtp_timeout"},
			from: fromNobody},
		{name: "a queue's offer: the queue hears the caller is not waiting, and the member is let go", msg: &pb.QueueOffer{CallId: k, QueueId: "sales", User: "bob"},
			from: fromNobody, queues: []TellQueue{{Queue: "sales", Kind: "left"}, {Queue: "sales", Kind: "release", User: "bob"}}},
		{name: "an input deferred by a call that ended", msg: &deferred{in: Failed{Leg: "k-b1", Code: 488}}, from: fromNobody},
		{name: "a ring timer of a call that ended", msg: wake{gen: 0}, from: fromNobody},
		{name: "a settle timer of a call that ended", msg: settleTimeout{}, from: fromNobody},
	}
}

// testAddr is the in-process actor system's address (not remote).
const testAddr = "nonhost"

func TestGrainWithoutCall(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return slog.New(slog.DiscardHandler) }))
	if sys.Address() != testAddr {
		t.Fatalf("the in-process system's address is %q", sys.Address())
	}
	for _, row := range noCallRows() {
		t.Run(row.name, func(t *testing.T) {
			node := &fakeNode{}
			sup := failures{reasons: make(chan any, 1)}
			props := actor.PropsFromProducer(func() actor.Actor { return &grain{d: node.deps(testAddr)} }, actor.WithGuardian(sup))
			pid := sys.Root.Spawn(props)
			gone := make(chan struct{})
			sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
				switch ctx.Message().(type) {
				case *actor.Started:
					ctx.Watch(pid)
				case *actor.Terminated:
					close(gone)
				}
			}))

			var fut *actor.Future
			switch row.from {
			case fromEdge:
				sys.Root.RequestWithCustomSender(pid, row.msg, actor.NewPID(testAddr, EdgeActor))
			case fromMedia:
				sys.Root.RequestWithCustomSender(pid, row.msg, actor.NewPID(testAddr, MediaActor))
			case asRequest:
				fut = sys.Root.RequestFuture(pid, row.msg, 5*time.Second)
			default:
				sys.Root.Send(pid, row.msg)
			}
			// Stopping is part of the answer: a grain without a call does
			// not linger. The deadline only bounds a broken grain.
			select {
			case <-gone:
			case <-time.After(5 * time.Second):
				t.Fatal("the grain did not stop")
			}
			select {
			case r := <-sup.reasons:
				t.Fatalf("the grain panicked: %v", r)
			default:
			}
			if fut != nil {
				got, err := fut.Result()
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				if m, ok := got.(proto.Message); !ok || !proto.Equal(m, row.response) {
					t.Errorf("answer %v, want %v", got, row.response)
				}
			}
			node.mu.Lock()
			defer node.mu.Unlock()
			if !equalMessages(node.edge, row.edge) {
				t.Errorf("edge told %v, want %v", node.edge, row.edge)
			}
			var want []*pb.MediaRequest
			if row.release {
				want = []*pb.MediaRequest{{CallId: "k", Ops: []*pb.MediaOp{{Kind: pb.MediaOp_RELEASE}}}}
			}
			if !slices.EqualFunc(node.media, want, func(a, b *pb.MediaRequest) bool { return proto.Equal(a, b) }) {
				t.Errorf("media asked %v, want %v", node.media, want)
			}
			if !slices.Equal(node.queues, row.queues) {
				t.Errorf("queues told %v, want %v", node.queues, row.queues)
			}
		})
	}
}

func equalMessages(got, want []any) bool {
	return slices.EqualFunc(got, want, func(a, b any) bool {
		ma, ok1 := a.(proto.Message)
		mb, ok2 := b.(proto.Message)
		return ok1 && ok2 && proto.Equal(ma, mb)
	})
}

// Every message type the grain's Receive handles either makes a call, is
// the actor's lifecycle, or has a row above: a new message type without
// the no-call guard fails here until it gets one.
func TestGrainWithoutCallCoversEveryMessage(t *testing.T) {
	exempt := map[string]string{
		"*cluster.ClusterInit":      "lifecycle",
		"*actor.Stopped":            "lifecycle",
		"*actor.DeadLetterResponse": "needs no call",
		"*pb.CallStart":             "makes the call",
		"*pb.CallDial":              "makes the call",
	}
	rows := map[string]bool{}
	for _, r := range noCallRows() {
		rows[strings.TrimPrefix(strings.Replace(reflect.TypeOf(r.msg).String(), "*call.", "*", 1), "call.")] = true
	}
	cases := receiveCases(t)
	for _, c := range cases {
		if exempt[c] == "" && !rows[c] {
			t.Errorf("Receive handles %s, but no row sends it to a grain without a call", c)
		}
	}
	for r := range rows {
		if !slices.Contains(cases, r) {
			t.Errorf("a row sends %s, which Receive does not handle", r)
		}
	}
}

// receiveCases lists the types of the type switch in grain.Receive, as
// written in grain.go.
func receiveCases(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "grain.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Receive" || fn.Recv == nil {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			sw, ok := n.(*ast.TypeSwitchStmt)
			if !ok {
				return true
			}
			for _, s := range sw.Body.List {
				for _, e := range s.(*ast.CaseClause).List {
					out = append(out, exprString(e))
				}
			}
			return false
		})
	}
	if len(out) == 0 {
		t.Fatal("no type switch found in grain.Receive")
	}
	return out
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.Ident:
		return e.Name
	}
	return fmt.Sprintf("%T", e)
}
