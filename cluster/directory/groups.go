package directory

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/switchboard/switchboard/actors/monitoring"
	"github.com/switchboard/switchboard/cluster/store"
)

const (
	kindGroups = "monitoring-groups"
	// A call centre's team; also keeps a group's write well inside the
	// request body limit.
	maxSupervisors = 50
	maxMembers     = 500
)

// MonitoringGroup lets its supervisors monitor its members' calls in its
// modes (the rule itself is actors/monitoring's).
type MonitoringGroup struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Supervisors []string          `json:"supervisors"`
	Members     []string          `json:"members"`
	Modes       []monitoring.Mode `json:"modes"`
	NotifyAgent bool              `json:"notify_agent"`
	BargeTone   bool              `json:"barge_tone"`
}

// MonitoringGroupInput is the body of POST /v1/monitoring-groups. Absent
// modes are all four, an absent name is the id, and barge_tone is on unless
// set false.
type MonitoringGroupInput struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Supervisors []string          `json:"supervisors"`
	Members     []string          `json:"members"`
	Modes       []monitoring.Mode `json:"modes"`
	NotifyAgent bool              `json:"notify_agent"`
	BargeTone   *bool             `json:"barge_tone"`
}

// MonitoringGroupPatch is the body of PATCH /v1/monitoring-groups/{id};
// absent (or null) fields stay.
type MonitoringGroupPatch struct {
	Name        *string            `json:"name"`
	Supervisors *[]string          `json:"supervisors"`
	Members     *[]string          `json:"members"`
	Modes       *[]monitoring.Mode `json:"modes"`
	NotifyAgent *bool              `json:"notify_agent"`
	BargeTone   *bool              `json:"barge_tone"`
}

// group validates the input and fills the defaults.
func (d *Directory) group(in MonitoringGroupInput) (MonitoringGroup, error) {
	if in.ID == "" {
		return MonitoringGroup{}, &FieldError{"id", "is required"}
	}
	if !validID(in.ID) {
		return MonitoringGroup{}, &FieldError{"id", slugMessage}
	}
	g := MonitoringGroup{ID: in.ID, Name: in.Name, Supervisors: in.Supervisors, Members: in.Members, Modes: in.Modes,
		NotifyAgent: in.NotifyAgent, BargeTone: in.BargeTone == nil || *in.BargeTone}
	if g.Name == "" {
		g.Name = g.ID
	}
	if g.Modes == nil {
		g.Modes = slices.Clone(monitoring.Modes)
	}
	return g, d.checkGroup(&g, true, true)
}

// apply returns g changed by the patch, validated. Only the user lists the
// patch sends are checked against the directory: a group naming a user
// deleted meanwhile can still be renamed.
func (p MonitoringGroupPatch) apply(d *Directory, g MonitoringGroup) (MonitoringGroup, error) {
	if p.Name != nil {
		g.Name = *p.Name
	}
	if p.Supervisors != nil {
		g.Supervisors = *p.Supervisors
	}
	if p.Members != nil {
		g.Members = *p.Members
	}
	if p.Modes != nil {
		g.Modes = *p.Modes
	}
	if p.NotifyAgent != nil {
		g.NotifyAgent = *p.NotifyAgent
	}
	if p.BargeTone != nil {
		g.BargeTone = *p.BargeTone
	}
	return g, d.checkGroup(&g, p.Supervisors != nil, p.Members != nil)
}

// checkGroup validates a group's name, modes (kept in the order of
// monitoring.Modes) and user lists (each user must exist when asked).
func (d *Directory) checkGroup(g *MonitoringGroup, supervisors, members bool) error {
	if err := checkName(g.Name); err != nil {
		return err
	}
	if supervisors {
		if err := d.checkUsers("supervisors", g.Supervisors, maxSupervisors); err != nil {
			return err
		}
	}
	if members {
		if err := d.checkUsers("members", g.Members, maxMembers); err != nil {
			return err
		}
	}
	if g.Supervisors == nil {
		g.Supervisors = []string{}
	}
	if g.Members == nil {
		g.Members = []string{}
	}
	if len(g.Modes) == 0 {
		return &FieldError{"modes", "must name at least one mode: listen, whisper, barge or takeover"}
	}
	for i, m := range g.Modes {
		field := "modes[" + strconv.Itoa(i) + "]"
		if !m.Valid() {
			return &FieldError{field, "must be listen, whisper, barge or takeover"}
		}
		if slices.Contains(g.Modes[:i], m) {
			return &FieldError{field, "is listed twice"}
		}
	}
	g.Modes = slices.DeleteFunc(slices.Clone(monitoring.Modes), func(m monitoring.Mode) bool { return !slices.Contains(g.Modes, m) })
	return nil
}

// checkUsers: every id names a user, once.
func (d *Directory) checkUsers(field string, ids []string, most int) error {
	if len(ids) > most {
		return &FieldError{field, fmt.Sprintf("must list at most %d users", most)}
	}
	for i, id := range ids {
		f := field + "[" + strconv.Itoa(i) + "]"
		if slices.Contains(ids[:i], id) {
			return &FieldError{f, "is listed twice"}
		}
		if _, ok := d.UserByID(id); !ok {
			return &FieldError{f, fmt.Sprintf("is not a user: no user has the id %q", id)}
		}
	}
	return nil
}

// ---- the cache ------------------------------------------------------------

// putGroupLocked caches a group and indexes it by supervisor.
func (d *Directory) putGroupLocked(g MonitoringGroup) {
	d.groups[g.ID] = g
	for _, s := range g.Supervisors {
		d.bySupervisor[s] = append(d.bySupervisor[s], g.ID)
	}
}

func (d *Directory) dropGroupLocked(id string) {
	old, ok := d.groups[id]
	if !ok {
		return
	}
	delete(d.groups, id)
	for _, s := range old.Supervisors {
		ids := slices.DeleteFunc(d.bySupervisor[s], func(x string) bool { return x == id })
		if len(ids) == 0 {
			delete(d.bySupervisor, s)
		} else {
			d.bySupervisor[s] = ids
		}
	}
}

// MonitoringGroupsOf returns the groups naming supervisor as a supervisor,
// in id order, from the cache alone: a call grain asks on every monitoring
// request. A group written on another node is seen once its watch event
// arrives. The groups share their lists with the cache: read them only.
func (d *Directory) MonitoringGroupsOf(supervisor string) []MonitoringGroup {
	d.mu.RLock()
	defer d.mu.RUnlock()
	ids := d.bySupervisor[supervisor]
	out := make([]MonitoringGroup, 0, len(ids))
	for _, id := range ids {
		out = append(out, d.groups[id])
	}
	slices.SortFunc(out, func(a, b MonitoringGroup) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// MonitoringGroupByID returns a group, reading etcd on a miss.
func (d *Directory) MonitoringGroupByID(id string) (MonitoringGroup, bool) {
	d.mu.RLock()
	g, ok := d.groups[id]
	d.mu.RUnlock()
	if ok || !validID(id) || !d.fetch(kindGroups, id) {
		return g, ok
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	g, ok = d.groups[id]
	return g, ok
}

// ---- writes ---------------------------------------------------------------

// CreateMonitoringGroup validates and stores a group; ErrExists when the id
// is taken.
func (d *Directory) CreateMonitoringGroup(ctx context.Context, in MonitoringGroupInput) (MonitoringGroup, error) {
	g, err := d.group(in)
	if err != nil {
		return MonitoringGroup{}, err
	}
	v, err := json.Marshal(g)
	if err != nil {
		return MonitoringGroup{}, fmt.Errorf("directory: encode monitoring group %s: %w", g.ID, err)
	}
	key := store.Key(kindGroups, g.ID)
	rev, err := d.st.Txn(ctx, []store.Cond{{Key: key}}, []store.Op{{Key: key, Value: v}})
	if errors.Is(err, store.ErrConflict) {
		return MonitoringGroup{}, fmt.Errorf("monitoring group %s: %w", g.ID, ErrExists)
	}
	if err != nil {
		return MonitoringGroup{}, fmt.Errorf("directory: create monitoring group %s: %w", g.ID, err)
	}
	d.applyEvent(kindGroups, store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: v, ModRevision: rev}})
	d.log.Info("monitoring group created", "id", g.ID, "supervisors", len(g.Supervisors), "members", len(g.Members))
	return g, nil
}

// UpdateMonitoringGroup applies a patch, fenced on the group's revision.
func (d *Directory) UpdateMonitoringGroup(ctx context.Context, id string, p MonitoringGroupPatch) (MonitoringGroup, error) {
	return d.changeGroup(ctx, id, func(old MonitoringGroup) (*MonitoringGroup, error) {
		g, err := p.apply(d, old)
		return &g, err
	})
}

// DeleteMonitoringGroup removes a group.
func (d *Directory) DeleteMonitoringGroup(ctx context.Context, id string) error {
	_, err := d.changeGroup(ctx, id, func(MonitoringGroup) (*MonitoringGroup, error) { return nil, nil })
	if err == nil {
		d.log.Info("monitoring group deleted", "id", id)
	}
	return err
}

// ListMonitoringGroups pages groups in id order from etcd.
func (d *Directory) ListMonitoringGroups(ctx context.Context, after string, limit int) ([]MonitoringGroup, string, error) {
	return list[MonitoringGroup](ctx, d.st, kindGroups, after, limit)
}

// changeGroup rewrites a group with fn's result (nil: delete), fenced on
// the revision it read; losing to a concurrent writer makes it read again.
func (d *Directory) changeGroup(ctx context.Context, id string, fn func(MonitoringGroup) (*MonitoringGroup, error)) (MonitoringGroup, error) {
	if !validID(id) {
		return MonitoringGroup{}, ErrNotFound
	}
	key := store.Key(kindGroups, id)
	for range writeAttempts {
		kv, err := d.st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return MonitoringGroup{}, ErrNotFound
		}
		if err != nil {
			return MonitoringGroup{}, fmt.Errorf("directory: read monitoring group %s: %w", id, err)
		}
		var old MonitoringGroup
		if err := json.Unmarshal(kv.Value, &old); err != nil {
			return MonitoringGroup{}, fmt.Errorf("directory: monitoring group %s unreadable: %w", id, err)
		}
		next, err := fn(old)
		if err != nil {
			return MonitoringGroup{}, err
		}
		op := store.Op{Key: key, Delete: true}
		if next != nil {
			if op.Value, err = json.Marshal(next); err != nil {
				return MonitoringGroup{}, fmt.Errorf("directory: encode monitoring group %s: %w", id, err)
			}
			op.Delete = false
		}
		rev, err := d.st.Txn(ctx, []store.Cond{{Key: key, ModRevision: kv.ModRevision}}, []store.Op{op})
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return MonitoringGroup{}, fmt.Errorf("directory: write monitoring group %s: %w", id, err)
		}
		if next == nil {
			d.applyEvent(kindGroups, store.Event{Type: store.EventDelete, KV: store.KV{Key: key, ModRevision: rev}})
			return old, nil
		}
		d.applyEvent(kindGroups, store.Event{Type: store.EventPut, KV: store.KV{Key: key, Value: op.Value, ModRevision: rev}})
		return *next, nil
	}
	return MonitoringGroup{}, fmt.Errorf("directory: monitoring group %s kept changing under %d attempts: %w", id, writeAttempts, store.ErrConflict)
}

// forgetInGroups takes a user being deleted out of every group, so that a
// user created later with the same id inherits no one's monitoring.
func (d *Directory) forgetInGroups(ctx context.Context, user string) error {
	for after := ""; ; {
		gs, next, err := list[MonitoringGroup](ctx, d.st, kindGroups, after, maxPage)
		if err != nil {
			return err
		}
		for _, g := range gs {
			if err := d.forgetInGroup(ctx, g, user); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// forgetInGroup takes user out of g, if g names them.
func (d *Directory) forgetInGroup(ctx context.Context, g MonitoringGroup, user string) error {
	if !slices.Contains(g.Supervisors, user) && !slices.Contains(g.Members, user) {
		return nil
	}
	_, err := d.changeGroup(ctx, g.ID, func(old MonitoringGroup) (*MonitoringGroup, error) {
		without := func(x string) bool { return x == user }
		old.Supervisors = slices.DeleteFunc(old.Supervisors, without)
		old.Members = slices.DeleteFunc(old.Members, without)
		return &old, nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("directory: take %s out of monitoring group %s: %w", user, g.ID, err)
	}
	return nil
}
