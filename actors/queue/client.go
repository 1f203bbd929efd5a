package queue

import (
	"github.com/switchboard/switchboard/cluster/ask"
	pb "github.com/switchboard/switchboard/proto"
)

// Client reaches queue grains: calls, lines, REST and the node ask a queue
// only through it.
type Client struct{ r ask.Requester }

// NewClient returns a client over the cluster's grain requests.
func NewClient(r ask.Requester) Client { return Client{r: r} }

// Arrive asks queue to take call in: the answer's Overflow is unset when
// the caller waits there, else where it goes at once.
func (c Client) Arrive(queue, call string) (*pb.QueueArriveResult, error) {
	return ask.Grain[*pb.QueueArriveResult](c.r, KindName, queue, &pb.QueueArrive{QueueId: queue, CallId: call})
}

// Member opts m.User in or out of m.QueueId; the answer carries the member
// entry as JSON, or a refusal's status and code.
func (c Client) Member(m *pb.QueueMember) (*pb.QueueResult, error) {
	return ask.Grain[*pb.QueueResult](c.r, KindName, m.QueueId, m)
}

// Stats are queue's real-time numbers as JSON.
func (c Client) Stats(queue string) (*pb.QueueResult, error) {
	return ask.Grain[*pb.QueueResult](c.r, KindName, queue, &pb.QueueStats{QueueId: queue})
}
