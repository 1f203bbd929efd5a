package line

import (
	"github.com/switchboard/switchboard/cluster/ask"
	pb "github.com/switchboard/switchboard/proto"
)

// Client reaches line grains: edges, other grains and the node ask a line
// only through it.
type Client struct{ r ask.Requester }

// NewClient returns a client over the cluster's grain requests.
func NewClient(r ask.Requester) Client { return Client{r: r} }

// Register adds, refreshes or removes a binding of m.UserId's line.
func (c Client) Register(m *pb.Register) (*pb.RegisterResult, error) {
	return ask.Grain[*pb.RegisterResult](c.r, KindName, m.UserId, m)
}

// Contacts are the user's registered bindings.
func (c Client) Contacts(user string) ([]*pb.Binding, error) {
	res, err := ask.Grain[*pb.ContactsResult](c.r, KindName, user, &pb.GetContacts{UserId: user})
	if err != nil {
		return nil, err
	}
	return res.Bindings, nil
}

// Calls are the calls on a line now.
func (c Client) Calls(lineID string) ([]*pb.LineCall, error) {
	res, err := ask.Grain[*pb.LineCalls](c.r, KindName, lineID, &pb.LineGet{Line: lineID})
	if err != nil {
		return nil, err
	}
	return res.Calls, nil
}

// CallToTake is the call a pickup (join: a join) of the line would take;
// false when there is none.
func (c Client) CallToTake(lineID string, join bool) (*pb.LineCall, bool, error) {
	res, err := ask.Grain[*pb.LineCalls](c.r, KindName, lineID, &pb.LineCallFind{Line: lineID, Join: join})
	if err != nil || len(res.Calls) == 0 {
		return nil, false, err
	}
	return res.Calls[0], true, nil
}

// Claim asks m.User's line grain to take, serve, release or wrap up the
// member for a queue's call (agent.go); ok is whether a "ring" claim holds.
func (c Client) Claim(m *pb.AgentClaim) (bool, error) {
	res, err := ask.Grain[*pb.AgentClaimResult](c.r, KindName, m.User, m)
	if err != nil {
		return false, err
	}
	return res.Ok, nil
}

// OnCall: the user talks on a call, on their own line or another.
func (c Client) OnCall(user string) (bool, error) {
	res, err := ask.Grain[*pb.LineCalls](c.r, KindName, user, &pb.LineGet{Line: user})
	if err != nil {
		return false, err
	}
	return res.OnCall, nil
}
