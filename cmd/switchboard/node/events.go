package node

import (
	"encoding/json"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/cluster/events"
	pb "github.com/switchboard/switchboard/proto"
)

// eventsActor is the well-known name of the actor that takes other nodes'
// events into this node's hub.
const eventsActor = "events"

// fanout publishes an event on this node and sends it to every other member.
type fanout struct{ n *Node }

// Listening: a subscriber here, or another member whose subscribers might be.
func (f fanout) Listening(typ string) bool {
	return f.n.events.Listening(typ) || f.n.cluster.MemberList.Members().Len() > 1
}

func (f fanout) Publish(e events.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	f.n.events.Publish(e)
	self := f.n.system.Address()
	var msg *pb.DomainEvent
	for _, m := range f.n.cluster.MemberList.Members().Members() {
		if m.Address() == self {
			continue
		}
		if msg == nil {
			data, err := json.Marshal(e.Data)
			if err != nil {
				return
			}
			msg = &pb.DomainEvent{Type: e.Type, Subject: e.Subject, Users: e.Users, UnixNano: e.Time.UnixNano(), Data: data}
		}
		f.n.system.Root.Send(actor.NewPID(m.Address(), eventsActor), msg)
	}
}

// eventsProps receives other nodes' events into the local hub.
func eventsProps(hub *events.Hub) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*pb.DomainEvent); ok {
			hub.Publish(events.Event{Type: m.Type, Subject: m.Subject, Users: m.Users, Time: time.Unix(0, m.UnixNano).UTC(), Data: json.RawMessage(m.Data)})
		}
	})
}
