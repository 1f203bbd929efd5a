package delegator

import (
	"github.com/switchboard/switchboard/cluster/ask"
	pb "github.com/switchboard/switchboard/proto"
)

// Client reaches delegator grains: edges, other grains and the node ask a
// delegator only through it.
type Client struct{ r ask.Requester }

// NewClient returns a client over the cluster's grain requests.
func NewClient(r ask.Requester) Client { return Client{r: r} }

// Command carries out a REST command on cmd.Delegator's delegation.
func (c Client) Command(cmd *pb.DelegatorCommand) (*pb.DelegatorResult, error) {
	return ask.Grain[*pb.DelegatorResult](c.r, KindName, cmd.Delegator, cmd)
}

// RingPlan is who rings, in which order, for a call to req.Delegator.
func (c Client) RingPlan(req *pb.RingPlanRequest) (Plan, error) {
	m, err := ask.Grain[*pb.RingPlan](c.r, KindName, req.Delegator, req)
	if err != nil {
		return Plan{}, err
	}
	return PlanOf(m), nil
}

// Access is what user may do on lineID's line.
func (c Client) Access(lineID, user string) (*pb.Access, error) {
	return ask.Grain[*pb.Access](c.r, KindName, lineID, &pb.AccessRequest{Delegator: lineID, User: user})
}
