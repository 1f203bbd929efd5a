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

	"github.com/switchboard/switchboard/api/metrics"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// KindName is the cluster kind of line grains; the identity is the user id.
const KindName = "line"

// Deps is what every line grain on a node shares.
type Deps struct {
	Store store.Store
	Now   func() time.Time
	Log   *slog.Logger
}

// NewKind returns the cluster kind for line grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

type grain struct {
	d      *Deps
	line   *Line
	leases map[string]store.LeaseID // contact -> lease of its stored binding
	loaded bool
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
		metrics.Actors.WithLabelValues(KindName).Inc()
	case *actor.Stopped:
		metrics.Actors.WithLabelValues(KindName).Dec()
		if g.line != nil {
			metrics.Registrations.Sub(float64(len(g.line.Bindings)))
		}
	case *pb.Register:
		if err := g.load(); err != nil {
			ctx.Respond(&pb.RegisterResult{Status: 500, Reason: "Registrar storage unavailable"})
			return
		}
		ctx.Respond(g.register(m))
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
	kvs, err := g.d.Store.List(ctx, store.Key("registrations", g.line.User)+"/", "", 0)
	if err != nil {
		return fmt.Errorf("line %s: load registrations: %w", g.line.User, err)
	}
	for _, kv := range kvs {
		var s stored
		if json.Unmarshal(kv.Value, &s) != nil {
			continue
		}
		g.line.Bindings[s.Contact] = Binding(s)
		g.leases[s.Contact] = kv.Lease
	}
	metrics.Registrations.Add(float64(len(g.line.Bindings)))
	g.loaded = true
	return nil
}

func (g *grain) register(m *pb.Register) *pb.RegisterResult {
	now := g.d.Now()
	before := len(g.line.Bindings)
	b := m.GetBinding()
	in := Register{ExpiresIn: int(m.Expires), RemoveAll: m.RemoveAll}
	if b != nil {
		in.Binding = Binding{Contact: b.Contact, NodeID: b.Node.GetId(), NodeAddr: b.Node.GetAddress(), Source: b.Source,
			Transport: b.Transport, CallID: b.RegCallId, CSeq: b.Cseq}
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
	metrics.Registrations.Add(float64(len(g.line.Bindings) - before))
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
			Source: b.Source, Transport: strings.ToLower(b.Transport), RegCallId: b.CallID, Cseq: b.CSeq})
	}
	return out
}
