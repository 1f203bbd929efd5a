package delegator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/metrics"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// KindName is the cluster kind of delegator grains; the identity is the
// delegator's user id.
const KindName = "delegator"

// Publisher delivers domain events to SSE clients of the whole cluster.
type Publisher interface{ Publish(events.Event) }

// Deps is what every delegator grain on a node shares.
type Deps struct {
	Store store.Store
	// Person returns a user's facts from the directory.
	Person func(id string) (Person, bool)
	Events Publisher
	Now    func() time.Time
	Log    *slog.Logger
}

// NewKind returns the cluster kind for delegator grains.
func NewKind(d *Deps) *cluster.Kind {
	return cluster.NewKind(KindName, actor.PropsFromProducer(func() actor.Actor { return &grain{d: d} }))
}

// Key is where a delegator's state lives; DelegateKey indexes it by delegate
// (value: the status), so a delegate's lines are found without a scan.
func Key(delegator string) string { return store.Key("delegators", delegator) }

// DelegateKey is the reverse index entry of one delegation.
func DelegateKey(delegate, delegator string) string {
	return store.Key("delegates", delegate, delegator)
}

type grain struct {
	d      *Deps
	id     string
	state  *State
	rev    int64 // ModRevision of the stored state: the fence of every write
	loaded bool
}

func (g *grain) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.id = m.Identity.Identity
		metrics.Actors.WithLabelValues(KindName).Inc()
	case *actor.Stopped:
		metrics.Actors.WithLabelValues(KindName).Dec()
	case *pb.DelegatorCommand:
		ctx.Respond(g.command(m))
	case *pb.RingPlanRequest:
		ctx.Respond(g.ringPlan(m).PB())
	case *pb.AccessRequest:
		if err := g.load(); err != nil {
			ctx.Respond(&pb.Access{Role: string(Nobody)})
			return
		}
		role, ps := g.state.Access(m.User)
		a := &pb.Access{Role: string(role), JoinChime: g.state.Privacy.JoinChime}
		for _, p := range ps {
			a.Privileges = append(a.Privileges, string(p))
		}
		ctx.Respond(a)
	}
}

// load reads the state from etcd the first time it is needed, here or on
// another node after a crash.
func (g *grain) load() error {
	if g.loaded {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := g.d.Store.Get(ctx, Key(g.id))
	switch {
	case errors.Is(err, store.ErrNotFound):
		g.state, g.rev = NewState(g.id), 0
	case err != nil:
		return fmt.Errorf("delegator %s: load: %w", g.id, err)
	default:
		var s State
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			return fmt.Errorf("delegator %s: decode: %w", g.id, err)
		}
		g.state, g.rev = &s, kv.ModRevision
	}
	g.loaded = true
	return nil
}

// clone is a deep copy, so a refused or unsaved change leaves no trace.
func (s *State) clone() *State {
	b, _ := json.Marshal(s)
	var c State
	_ = json.Unmarshal(b, &c)
	return &c
}

func result(status int, body any) *pb.DelegatorResult {
	r := &pb.DelegatorResult{Status: int32(status)}
	if body != nil {
		r.Body, _ = json.Marshal(body)
	}
	return r
}

func refusal(err error) *pb.DelegatorResult {
	var r *Refusal
	if errors.As(err, &r) {
		return &pb.DelegatorResult{Status: int32(r.Status), Code: r.Code, Message: r.Message}
	}
	return &pb.DelegatorResult{Status: 500, Code: "internal", Message: err.Error()}
}

// decodeBody reads the JSON the REST edge already validated for shape.
func decodeBody(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Refusal{Status: 400, Code: "invalid_json", Message: "The body could not be read: " + err.Error()}
	}
	return nil
}

// InviteBody is POST /v1/users/{id}/delegates.
type InviteBody struct {
	Delegate   string      `json:"delegate"`
	Privileges []Privilege `json:"privileges"`
	Order      int         `json:"order"`
}

// UpdateBody is PATCH /v1/users/{id}/delegates/{delegate}.
type UpdateBody struct {
	Privileges *[]Privilege `json:"privileges"`
	Order      *int         `json:"order"`
}

// VIPView is GET /v1/users/{id}/vip: the settings and the contacts.
type VIPView struct {
	VIP
	Contacts []string `json:"contacts"`
}

// ContactBody is POST /v1/users/{id}/vip/contacts.
type ContactBody struct {
	Contact string `json:"contact"`
}

func (g *grain) command(m *pb.DelegatorCommand) *pb.DelegatorResult {
	if err := g.load(); err != nil {
		g.d.Log.Warn("delegator: load failed", "delegator", g.id, "err", err)
		return &pb.DelegatorResult{Status: 503, Code: "unavailable", Message: "Delegation settings are unavailable; try again."}
	}
	by := Actor{User: m.ByUser, Admin: m.Admin}
	s := g.state.clone()
	var (
		body   any
		status = 200
		event  string
		err    error
	)
	switch m.Action {
	case "list":
		if !by.Admin && by.User != g.id {
			if _, ok := s.Delegation(by.User); !ok {
				return refusal(refuse(403, "forbidden", "Only %s, their delegates or an admin may list this line's delegates.", g.id))
			}
		}
		items := s.Delegations
		if items == nil {
			items = []Delegation{}
		}
		return result(200, map[string]any{"items": items, "next": ""})
	case "invite":
		var in InviteBody
		if err = decodeBody(m.Body, &in); err == nil {
			p, ok := g.d.Person(in.Delegate)
			if !ok {
				return refusal(refuse(404, "not_found", "User %s was not found.", in.Delegate))
			}
			body, err = s.Invite(by, p, in.Privileges, in.Order)
			status, event = 201, "delegation.invited"
		}
	case "update":
		var in UpdateBody
		if err = decodeBody(m.Body, &in); err == nil {
			body, err = s.Update(by, m.Delegate, in.Privileges, in.Order)
			event = "delegation.updated"
		}
	case "remove":
		err = s.Remove(by, m.Delegate)
		status, event = 204, "delegation.removed"
	case "accept", "decline", "opt_in", "opt_out":
		body, err = s.Respond(by, m.Delegate, m.Action)
		event = "delegation." + m.Action
	case "get_vip":
		if !by.Admin && by.User != g.id && !s.mayEditContacts(by) {
			return refusal(refuse(403, "forbidden", "Only %s, an admin or a delegate with manage_vip may read these VIP settings.", g.id))
		}
		return result(200, VIPView{VIP: s.VIP, Contacts: nonNil(s.Contacts)})
	case "put_vip":
		var in VIP
		if err = decodeBody(m.Body, &in); err == nil {
			me, _ := g.d.Person(g.id)
			_, err = s.PutVIP(by, me, in)
			body, event = VIPView{VIP: s.VIP, Contacts: nonNil(s.Contacts)}, "delegation.vip_updated"
		}
	case "add_contact":
		var in ContactBody
		if err = decodeBody(m.Body, &in); err == nil {
			err = s.AddContact(by, in.Contact)
			body, status, event = VIPView{VIP: s.VIP, Contacts: nonNil(s.Contacts)}, 201, "delegation.vip_updated"
		}
	case "remove_contact":
		err = s.RemoveContact(by, m.Delegate)
		status, event = 204, "delegation.vip_updated"
	case "get_privacy":
		if !s.MayReadPrivacy(by) {
			return refusal(refuse(403, "forbidden", "Only %s, their delegates or an admin may read these privacy settings.", g.id))
		}
		return result(200, s.Privacy)
	case "put_privacy":
		var in Privacy
		if err = decodeBody(m.Body, &in); err == nil {
			body, err = s.PutPrivacy(by, in)
			event = "delegation.privacy_updated"
		}
	default:
		return refusal(refuse(400, "invalid_action", "Unknown delegation action %q.", m.Action))
	}
	if err != nil {
		return refusal(err)
	}
	if err := g.save(s); err != nil {
		g.d.Log.Warn("delegator: save failed", "delegator", g.id, "action", m.Action, "err", err)
		if errors.Is(err, store.ErrConflict) {
			return refusal(refuse(409, "conflict", "The delegation settings changed meanwhile; read them and try again."))
		}
		return &pb.DelegatorResult{Status: 503, Code: "unavailable", Message: "Delegation settings could not be saved; try again."}
	}
	g.publish(event, m.Delegate, body)
	if status == 204 {
		body = nil
	}
	return result(status, body)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// save writes the new state fenced on the revision this grain read, with
// the reverse index of every delegation, in one transaction. A stale twin
// (rule 5) fails here and reloads.
func (g *grain) save(s *State) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ops := []store.Op{{Key: Key(g.id), Value: v}}
	kept := map[string]bool{}
	for _, d := range s.Delegations {
		kept[d.Delegate] = true
		ops = append(ops, store.Op{Key: DelegateKey(d.Delegate, g.id), Value: []byte(d.Status)})
	}
	for _, d := range g.state.Delegations {
		if !kept[d.Delegate] {
			ops = append(ops, store.Op{Key: DelegateKey(d.Delegate, g.id), Delete: true})
		}
	}
	rev, err := g.d.Store.Txn(ctx, []store.Cond{{Key: Key(g.id), ModRevision: g.rev}}, ops)
	if errors.Is(err, store.ErrConflict) {
		g.loaded = false // somebody else wrote: read again before the next change
	}
	if err != nil {
		return fmt.Errorf("delegator %s: save: %w", g.id, err)
	}
	g.state, g.rev = s, rev
	return nil
}

func (g *grain) publish(typ, delegate string, data any) {
	if g.d.Events == nil || typ == "" {
		return
	}
	users := []string{g.id}
	if delegate != "" && delegate != g.id {
		users = append(users, delegate)
	}
	if d, ok := data.(Delegation); ok && d.Delegate != g.id {
		users = append(users, d.Delegate)
	}
	g.d.Events.Publish(events.Event{Type: typ, Subject: g.id, Users: users, Time: g.d.Now(), Data: data})
}

func (g *grain) ringPlan(m *pb.RingPlanRequest) Plan {
	me, ok := g.d.Person(g.id)
	if err := g.load(); err != nil || !ok {
		// Without the settings the safe plan is the user's own devices.
		g.d.Log.Warn("delegator: ring plan without settings", "delegator", g.id, "err", err)
		return Plan{Stages: []Stage{{Users: []string{g.id}, Seconds: DefaultRingSeconds}}}
	}
	people := map[string]Person{g.id: me}
	for _, d := range g.state.Delegations {
		if p, ok := g.d.Person(d.Delegate); ok {
			people[d.Delegate] = p
		}
	}
	caller := Caller{User: m.CallerUser, Number: m.CallerNumber}
	if _, known := people[caller.User]; !known && caller.User != "" {
		if p, ok := g.d.Person(caller.User); ok {
			people[caller.User] = p // the VIP list may name the caller by number
		}
	}
	plan := g.state.RingPlan(me, people, caller, g.d.Now())
	plan.Viewers, plan.Names = g.state.Viewers(), map[string]string{}
	for id, p := range people {
		plan.Names[id] = p.Name
	}
	return plan
}
