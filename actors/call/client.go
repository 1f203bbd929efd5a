package call

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/cluster/ask"
	pb "github.com/switchboard/switchboard/proto"
)

// Client reaches call grains: edges and the node ask a call only through
// it.
type Client struct{ r ask.Requester }

// NewClient returns a client over the cluster's grain requests.
func NewClient(r ask.Requester) Client { return Client{r: r} }

// Get is the call's state; Found is false for a call that is not up.
func (c Client) Get(id string) (*pb.CallInfo, error) {
	return ask.Grain[*pb.CallInfo](c.r, KindName, id, &pb.CallGet{CallId: id})
}

// Control carries out a hold, resume, pickup, lock, transfer... on m.CallId.
func (c Client) Control(m *pb.CallControl) (*pb.CallControlResult, error) {
	return ask.Grain[*pb.CallControlResult](c.r, KindName, m.CallId, m)
}

// Dial starts a click-to-call as the new call m.CallId.
func (c Client) Dial(m *pb.CallDial) (*pb.CallControlResult, error) {
	return ask.Grain[*pb.CallControlResult](c.r, KindName, m.CallId, m)
}

// Reinvite hands a leg's re-INVITE offer to its call and returns the answer.
func (c Client) Reinvite(m *pb.LegReinvite) (*pb.LegReinviteResult, error) {
	return ask.Grain[*pb.LegReinviteResult](c.r, KindName, m.CallId, m)
}

// OnNode lists the calls whose grains run on the member at addr, and how
// many grains of every kind it holds (its IndexActor answers).
func OnNode(root *actor.RootContext, addr string, timeout time.Duration) (*pb.NodeCallsResult, error) {
	return ask.Actor[*pb.NodeCallsResult](root, addr, IndexActor, &pb.NodeCalls{}, timeout)
}
