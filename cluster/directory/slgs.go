package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/switchboard/switchboard/actors/hours"
)

const (
	kindSLGs = "shared-line-groups"
	// A shared line group is a small team on one line (INTERFACE.md §5).
	maxSLGMembers = 10
	maxSLGNumbers = 10
)

// SharedLineGroup is a line its members share: a call to it rings every
// free member at once.
type SharedLineGroup struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Extension     string          `json:"extension"` // "" when it has none
	Numbers       []string        `json:"numbers"`
	Members       []string        `json:"members"`
	RingSeconds   int             `json:"ring_seconds"`
	LockPolicy    bool            `json:"lock_policy"`
	Monitoring    bool            `json:"monitoring"`
	Timezone      string          `json:"timezone"`
	BusinessHours hours.Week      `json:"business_hours"` // nil: always open
	Holidays      []hours.Holiday `json:"holidays"`
	Overflow      Overflow        `json:"overflow"`
}

// SharedLineGroupPatch is the body of PATCH /v1/shared-line-groups/{id};
// absent (or null) fields stay, as in QueuePatch.
type SharedLineGroupPatch struct {
	Name          *string          `json:"name"`
	Extension     *string          `json:"extension"`
	Numbers       *[]string        `json:"numbers"`
	Members       *[]string        `json:"members"`
	RingSeconds   *int             `json:"ring_seconds"`
	LockPolicy    *bool            `json:"lock_policy"`
	Monitoring    *bool            `json:"monitoring"`
	Timezone      *string          `json:"timezone"`
	BusinessHours *hours.Week      `json:"business_hours"`
	Holidays      *[]hours.Holiday `json:"holidays"`
	Overflow      *Overflow        `json:"overflow"`
}

// SharedLineGroupInput is the body of POST /v1/shared-line-groups: the id,
// and the settings of a patch applied to the defaults.
type SharedLineGroupInput struct {
	ID string `json:"id"`
	SharedLineGroupPatch
}

var slgRing = span{"ring_seconds", 30, 5, 300}

func newSLG(id string) SharedLineGroup {
	return SharedLineGroup{ID: id, Name: id, Numbers: []string{}, Members: []string{}, RingSeconds: slgRing.def,
		Timezone: defaultTZ, Holidays: []hours.Holiday{}, Overflow: disconnect()}
}

// apply returns g changed by the patch, checked field by field; the users
// and queues it names are checked by slgRules.
func (p SharedLineGroupPatch) apply(g SharedLineGroup) (SharedLineGroup, error) {
	if p.Name != nil {
		g.Name = *p.Name
	}
	if err := checkName(g.Name); err != nil {
		return g, err
	}
	if p.Extension != nil {
		g.Extension = *p.Extension
	}
	if err := checkOptionalExt(g.Extension); err != nil {
		return g, err
	}
	var err error
	if p.Numbers != nil {
		if len(*p.Numbers) > maxSLGNumbers {
			return g, &RuleError{"too_many_numbers", "numbers", fmt.Sprintf("a shared line group has at most %d numbers", maxSLGNumbers)}
		}
		if g.Numbers, err = checkNumbers(*p.Numbers, maxSLGNumbers); err != nil {
			return g, err
		}
	}
	if p.Members != nil {
		if len(*p.Members) > maxSLGMembers {
			return g, &RuleError{"too_many_members", "members", fmt.Sprintf("a shared line group has at most %d members", maxSLGMembers)}
		}
		if g.Members, err = checkIDs("members", *p.Members, maxSLGMembers); err != nil {
			return g, err
		}
	}
	if err := slgRing.set(&g.RingSeconds, p.RingSeconds); err != nil {
		return g, err
	}
	if p.LockPolicy != nil {
		g.LockPolicy = *p.LockPolicy
	}
	if p.Monitoring != nil {
		g.Monitoring = *p.Monitoring
	}
	if err := setSchedule(&g.Timezone, &g.BusinessHours, &g.Holidays, p.Timezone, p.BusinessHours, p.Holidays); err != nil {
		return g, err
	}
	return g, setOverflow(&g.Overflow, p.Overflow)
}

// ---- the cache ------------------------------------------------------------

func (d *Directory) putSLGLocked(g SharedLineGroup) {
	d.slgs[g.ID] = g
	d.slgsOf.add(g.ID, g.Members)
	d.putDestsLocked(Dest{DestSharedLineGroup, g.ID}, g.Extension, g.Numbers)
}

func (d *Directory) dropSLGLocked(id string) {
	old, ok := d.slgs[id]
	if !ok {
		return
	}
	delete(d.slgs, id)
	d.slgsOf.remove(id, old.Members)
	d.dropDestsLocked(Dest{DestSharedLineGroup, id}, old.Extension, old.Numbers)
}

// SharedLineGroupByID returns a group from the cache alone, as QueueByID
// does. Its lists are the cache's: read them only.
func (d *Directory) SharedLineGroupByID(id string) (SharedLineGroup, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	g, ok := d.slgs[id]
	return g, ok
}

// SharedLineGroupsOf returns the ids of the groups user is a member of, in
// order, from the cache.
func (d *Directory) SharedLineGroupsOf(user string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.slgsOf.of(user)
}

// ---- reads and writes -------------------------------------------------------

// GetSharedLineGroup reads a group from etcd; ErrNotFound when there is none.
func (d *Directory) GetSharedLineGroup(ctx context.Context, id string) (SharedLineGroup, error) {
	return getSetting[SharedLineGroup](ctx, d.st, kindSLGs, "shared line group", id)
}

// CreateSharedLineGroup validates and stores a group with its extension
// and numbers claimed, as CreateQueue does a queue.
func (d *Directory) CreateSharedLineGroup(ctx context.Context, in SharedLineGroupInput) (SharedLineGroup, error) {
	if in.ID == "" {
		return SharedLineGroup{}, &FieldError{"id", "is required"}
	}
	if in.Name != nil && *in.Name == "" {
		in.Name = nil // the id, as when absent
	}
	g, err := writeSetting(ctx, d, kindSLGs, "shared line group", in.ID, true, func(*SharedLineGroup) (*SharedLineGroup, claims, error) {
		return d.changeSLG(ctx, newSLG(in.ID), in.SharedLineGroupPatch, nil)
	})
	if err == nil {
		d.log.Info("shared line group created", "id", g.ID, "extension", g.Extension, "members", len(g.Members))
	}
	return g, err
}

// UpdateSharedLineGroup applies a patch, fenced on the group's revision.
func (d *Directory) UpdateSharedLineGroup(ctx context.Context, id string, p SharedLineGroupPatch) (SharedLineGroup, error) {
	return writeSetting(ctx, d, kindSLGs, "shared line group", id, false, func(old *SharedLineGroup) (*SharedLineGroup, claims, error) {
		return d.changeSLG(ctx, *old, p, old)
	})
}

// changeSLG is g with the patch applied and checked against the directory
// (the members exist, the overflow is allowed), and the claims of its
// names (those of old, when it is stored, released).
func (d *Directory) changeSLG(ctx context.Context, g SharedLineGroup, p SharedLineGroupPatch, old *SharedLineGroup) (*SharedLineGroup, claims, error) {
	next, err := p.apply(g)
	if err != nil {
		return nil, claims{}, err
	}
	var was SharedLineGroup
	if old != nil {
		was = *old
	}
	var c claims
	if p.Members != nil {
		if err := d.usersExist("members", next.Members); err != nil {
			return nil, claims{}, err
		}
	}
	if p.Overflow != nil {
		if err := d.checkOverflow(ctx, &c, Dest{DestSharedLineGroup, next.ID}, next.Overflow, was.Overflow); err != nil {
			return nil, claims{}, err
		}
	}
	c.names(Dest{DestSharedLineGroup, next.ID}, was.Extension, was.Numbers, next.Extension, next.Numbers)
	return &next, c, nil
}

// DeleteSharedLineGroup removes a group and frees its names.
func (d *Directory) DeleteSharedLineGroup(ctx context.Context, id string) error {
	_, err := writeSetting(ctx, d, kindSLGs, "shared line group", id, false, func(old *SharedLineGroup) (*SharedLineGroup, claims, error) {
		var c claims
		c.names(Dest{DestSharedLineGroup, id}, old.Extension, old.Numbers, "", nil)
		return nil, c, nil
	})
	if err == nil {
		d.log.Info("shared line group deleted", "id", id)
	}
	return err
}

// ListSharedLineGroups pages groups in id order from etcd.
func (d *Directory) ListSharedLineGroups(ctx context.Context, after string, limit int) ([]SharedLineGroup, string, error) {
	return list[SharedLineGroup](ctx, d.st, kindSLGs, after, limit)
}

// forgetInSLGs takes a user being deleted out of every group, and turns an
// overflow to them into a disconnect.
func (d *Directory) forgetInSLGs(ctx context.Context, user string) error {
	return each(ctx, d.st, kindSLGs, func(g SharedLineGroup) error {
		if !forgetInSLG(&g, user) {
			return nil
		}
		_, err := writeSetting(ctx, d, kindSLGs, "shared line group", g.ID, false, func(old *SharedLineGroup) (*SharedLineGroup, claims, error) {
			forgetInSLG(old, user)
			return old, claims{}, nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("directory: take %s out of shared line group %s: %w", user, g.ID, err)
		}
		return nil
	})
}

// forgetInSLG removes user from g and reports whether g named them.
func forgetInSLG(g *SharedLineGroup, user string) bool {
	n := len(g.Members)
	g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == user })
	return forgetTarget(&g.Overflow, user) || n != len(g.Members)
}
