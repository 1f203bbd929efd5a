package line

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// KindName is the cluster kind of line grains; the identity is the user id.
const KindName = "line"

// Deps is what every line grain on a node shares.
type Deps struct {
	Store  store.Store
	Events Publisher
	Now    func() time.Time
	Log    *slog.Logger
	// QueuesOf lists the queues user is a member of; Presence tells one of
	// them how the member stands (agentgrain.go). Nil: no queues.
	QueuesOf func(user string) []string
	Presence func(*pb.AgentPresence)
}

// Publisher delivers domain events to SSE clients of the whole cluster.
type Publisher interface{ Publish(events.Event) }

// NewKind returns the cluster kind for line grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

type grain struct {
	d      *Deps
	line   *Line
	leases map[string]store.LeaseID // contact -> lease of its stored binding
	loaded bool
	calls  Calls                        // live calls on the line, as their call grains report them
	agent  Agent                        // the user as a member of call queues
	sent   map[string]*pb.AgentPresence // what each queue was last told, by queue
	// talking: calls on other lines the user talks on (as a caller, or a
	// group's member), answered or held.
	talking map[string]bool
	lapse   *time.Timer // wakes the grain when a ring claim would lapse
}

// stored is a binding as kept in etcd under registrations/<user>/<hash>.
type stored struct {
	Contact   string    `json:"contact"`
	Expires   time.Time `json:"expires"`
	NodeID    string    `json:"node_id"`
	NodeAddr  string    `json:"node_addr"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	// UserAgent is absent from bindings stored before it was recorded.
	UserAgent string `json:"user_agent,omitempty"`
}

// Registered counts the bindings of every line in the cluster: etcd drops
// a binding when its lease ends, so this count cannot drift from it.
func Registered(ctx context.Context, st store.Store) (int64, error) {
	return st.Count(ctx, regPrefix)
}

func regKey(user, contact string) string {
	h := sha1.Sum([]byte(contact))
	return store.Key("registrations", user, hex.EncodeToString(h[:10]))
}

func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.line = New(m.Identity.Identity)
		g.leases = map[string]store.LeaseID{}
		g.calls = Calls{}
		g.talking = map[string]bool{}
		g.sent = map[string]*pb.AgentPresence{}
		metrics.Actors.WithLabelValues(KindName).Inc()
	case *actor.Stopped:
		if g.lapse != nil {
			g.lapse.Stop()
		}
		metrics.Actors.WithLabelValues(KindName).Dec()
	case *pb.Register:
		if err := g.load(); err != nil {
			ctx.Respond(&pb.RegisterResult{Status: 500, Reason: "Registrar storage unavailable"})
			return
		}
		ctx.Respond(g.register(m))
		g.tellQueues()
	case *pb.LineCall:
		if m.Talking {
			g.talk(m.CallId, m.State)
			return
		}
		c := Call{ID: m.CallId, State: m.State, Peer: m.Peer, Locked: m.Locked, Since: time.Unix(0, m.SinceUnixNano), Viewers: m.Viewers}
		if g.calls.Update(c) {
			g.publish(c)
			g.tellQueues()
		}
	case *pb.AgentClaim:
		ctx.Respond(g.claim(ctx, m))
	case lapseCheck:
		g.tellQueues()
	case *pb.LineGet:
		ctx.Respond(&pb.LineCalls{Calls: g.callsPB(), OnCall: g.onCall()})
	case *pb.LineCallFind:
		find := g.calls.ToPickUp
		if m.Join {
			find = g.calls.ToJoin
		}
		c, ok := find()
		if !ok {
			ctx.Respond(&pb.LineCalls{})
			return
		}
		ctx.Respond(&pb.LineCalls{Calls: []*pb.LineCall{lineCallPB(g.line.User, c)}})
	case *pb.GetContacts:
		if err := g.load(); err != nil {
			g.d.Log.Warn("line: load failed", "user", g.line.User, "err", err)
		}
		ctx.Respond(&pb.ContactsResult{Bindings: toPB(g.line.Contacts(g.d.Now()))})
	}
}

// load rebuilds the bindings from etcd the first time the grain needs them
// (after activation here or on another node after a crash).
func (g *grain) load() error {
	if g.loaded {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kvs, err := g.d.Store.List(ctx, regPrefix+g.line.User+"/", "", 0)
	if err != nil {
		return fmt.Errorf("line %s: load registrations: %w", g.line.User, err)
	}
	for _, kv := range kvs {
		b, ok := decodeStored(kv.Value)
		if !ok {
			continue
		}
		g.line.Bindings[b.Contact] = b
		g.leases[b.Contact] = kv.Lease
	}
	g.loaded = true
	return nil
}

func (g *grain) register(m *pb.Register) *pb.RegisterResult {
	now := g.d.Now()
	b := m.GetBinding()
	in := Register{ExpiresIn: int(m.Expires), RemoveAll: m.RemoveAll}
	if b != nil {
		in.Binding = Binding{Contact: b.Contact, NodeID: b.Node.GetId(), NodeAddr: b.Node.GetAddress(), Source: b.Source,
			Transport: b.Transport, CallID: b.RegCallId, CSeq: b.Cseq, UserAgent: b.UserAgent}
	}
	// Keep a copy so a failed write leaves the line as it was.
	prev := make(map[string]Binding, len(g.line.Bindings))
	for k, v := range g.line.Bindings {
		prev[k] = v
	}
	res := g.line.Step(in, now)
	if res.Status == 200 {
		if err := g.persist(res); err != nil {
			g.d.Log.Warn("line: persist failed", "user", g.line.User, "err", err)
			g.line.Bindings = prev
			return &pb.RegisterResult{Status: 500, Reason: "Registrar storage unavailable"}
		}
	}
	return &pb.RegisterResult{Status: int32(res.Status), Reason: res.Reason, Bindings: toPB(g.line.Contacts(now))}
}

// persist writes bindings with a lease that ends with them (durable before
// the 200 OK), and removes the ones that went.
func (g *grain) persist(res Result) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, b := range res.Persist {
		ttl := time.Until(b.Expires)
		lease, err := g.d.Store.Grant(ctx, ttl)
		if err != nil {
			return err
		}
		v, _ := json.Marshal(stored(b))
		if _, err := g.d.Store.Txn(ctx, nil, []store.Op{{Key: regKey(g.line.User, b.Contact), Value: v, Lease: lease}}); err != nil {
			return err
		}
		if old := g.leases[b.Contact]; old != 0 {
			g.revoke(old)
		}
		g.leases[b.Contact] = lease
	}
	for _, c := range res.Remove {
		if err := g.d.Store.Delete(ctx, regKey(g.line.User, c)); err != nil {
			return err
		}
		if old := g.leases[c]; old != 0 {
			g.revoke(old)
		}
		delete(g.leases, c)
	}
	return nil
}

// revoke drops a replaced lease off the mailbox's path; if it fails the
// lease simply runs out.
func (g *grain) revoke(id store.LeaseID) {
	st := g.d.Store
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = st.Revoke(ctx, id)
	}()
}

func toPB(bs []Binding) []*pb.Binding {
	out := make([]*pb.Binding, 0, len(bs))
	for _, b := range bs {
		out = append(out, &pb.Binding{Contact: b.Contact, ExpiresUnix: b.Expires.Unix(), Node: &pb.Node{Id: b.NodeID, Address: b.NodeAddr},
			Source: b.Source, Transport: strings.ToLower(b.Transport), RegCallId: b.CallID, Cseq: b.CSeq, UserAgent: b.UserAgent})
	}
	return out
}

func lineCallPB(line string, c Call) *pb.LineCall {
	return &pb.LineCall{Line: line, CallId: c.ID, State: c.State, Peer: c.Peer, Locked: c.Locked, Viewers: c.Viewers, SinceUnixNano: c.Since.UnixNano()}
}

func (g *grain) callsPB() []*pb.LineCall {
	var out []*pb.LineCall
	for _, c := range g.calls.List() {
		out = append(out, lineCallPB(g.line.User, c))
	}
	return out
}

// CallView is a call on a line as REST and SSE show it.
type CallView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Peer   string `json:"peer"`
	Locked bool   `json:"locked"`
}

// Update is a line.updated event's data: the call that changed and every
// call on the line after it (SSE sends it as JSON; lamps read it as is).
type Update struct {
	Line  string     `json:"line"`
	Call  CallView   `json:"call"`
	Calls []CallView `json:"calls"`
}

// publish tells the owner and the line's delegates how the line stands.
func (g *grain) publish(c Call) {
	if g.d.Events == nil {
		return
	}
	calls := []CallView{}
	for _, x := range g.calls.List() {
		calls = append(calls, CallView{ID: x.ID, State: x.State, Peer: x.Peer, Locked: x.Locked})
	}
	users := append([]string{g.line.User}, c.Viewers...)
	g.d.Events.Publish(events.Event{Type: "line.updated", Subject: g.line.User, Users: users, Time: g.d.Now(),
		Data: Update{Line: g.line.User, Call: CallView{ID: c.ID, State: c.State, Peer: c.Peer, Locked: c.Locked}, Calls: calls}})
}
