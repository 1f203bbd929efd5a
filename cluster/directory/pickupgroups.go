package directory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

const kindPickups = "pickup-groups"

// PickupGroup lets its members answer each other's calls: a call ringing a
// member unanswered for DelaySeconds rings the other members too.
type PickupGroup struct {
	ID           string   `json:"id"`
	Members      []string `json:"members"`
	DelaySeconds int      `json:"delay_seconds"`
}

// PickupGroupPatch is the body of PATCH /v1/pickup-groups/{id}; absent (or
// null) fields stay.
type PickupGroupPatch struct {
	Members      *[]string `json:"members"`
	DelaySeconds *int      `json:"delay_seconds"`
}

// PickupGroupInput is the body of POST /v1/pickup-groups.
type PickupGroupInput struct {
	ID string `json:"id"`
	PickupGroupPatch
}

var pickupDelay = span{"delay_seconds", 10, 0, 120}

// change is g with the patch applied and checked (the members sent must be
// users).
func (p PickupGroupPatch) change(d *Directory, g PickupGroup) (*PickupGroup, claims, error) {
	if p.Members != nil {
		var err error
		if g.Members, err = checkIDs("members", *p.Members, maxMembers); err != nil {
			return nil, claims{}, err
		}
	}
	if err := pickupDelay.set(&g.DelaySeconds, p.DelaySeconds); err != nil {
		return nil, claims{}, err
	}
	if p.Members != nil {
		if err := d.usersExist("members", g.Members); err != nil {
			return nil, claims{}, err
		}
	}
	return &g, claims{}, nil
}

// ---- the cache ------------------------------------------------------------

func (d *Directory) putPickupLocked(g PickupGroup) {
	d.pickups[g.ID] = g
	d.pickupsOf.add(g.ID, g.Members)
}

func (d *Directory) dropPickupLocked(id string) {
	old, ok := d.pickups[id]
	if !ok {
		return
	}
	delete(d.pickups, id)
	d.pickupsOf.remove(id, old.Members)
}

// PickupGroupsOf returns the pickup groups user is a member of, in id
// order, from the cache alone (asked for every call that rings a user).
// Their lists are the cache's: read them only.
func (d *Directory) PickupGroupsOf(user string) []PickupGroup {
	d.mu.RLock()
	defer d.mu.RUnlock()
	ids := d.pickupsOf[user]
	out := make([]PickupGroup, 0, len(ids))
	for _, id := range ids {
		out = append(out, d.pickups[id])
	}
	slices.SortFunc(out, func(a, b PickupGroup) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ---- reads and writes -------------------------------------------------------

// GetPickupGroup reads a group from etcd; ErrNotFound when there is none.
func (d *Directory) GetPickupGroup(ctx context.Context, id string) (PickupGroup, error) {
	return getSetting[PickupGroup](ctx, d.st, kindPickups, "pickup group", id)
}

// CreatePickupGroup validates and stores a group: ErrExists when the id is
// taken, a *FieldError or a *RuleError when the input does not pass.
func (d *Directory) CreatePickupGroup(ctx context.Context, in PickupGroupInput) (PickupGroup, error) {
	if in.ID == "" {
		return PickupGroup{}, &FieldError{"id", "is required"}
	}
	g, err := writeSetting(ctx, d, kindPickups, "pickup group", in.ID, true, func(*PickupGroup) (*PickupGroup, claims, error) {
		return in.change(d, PickupGroup{ID: in.ID, Members: []string{}, DelaySeconds: pickupDelay.def})
	})
	if err == nil {
		d.log.Info("pickup group created", "id", g.ID, "members", len(g.Members))
	}
	return g, err
}

// UpdatePickupGroup applies a patch, fenced on the group's revision.
func (d *Directory) UpdatePickupGroup(ctx context.Context, id string, p PickupGroupPatch) (PickupGroup, error) {
	return writeSetting(ctx, d, kindPickups, "pickup group", id, false, func(old *PickupGroup) (*PickupGroup, claims, error) {
		return p.change(d, *old)
	})
}

// DeletePickupGroup removes a group.
func (d *Directory) DeletePickupGroup(ctx context.Context, id string) error {
	_, err := writeSetting(ctx, d, kindPickups, "pickup group", id, false, func(*PickupGroup) (*PickupGroup, claims, error) {
		return nil, claims{}, nil
	})
	if err == nil {
		d.log.Info("pickup group deleted", "id", id)
	}
	return err
}

// ListPickupGroups pages groups in id order from etcd.
func (d *Directory) ListPickupGroups(ctx context.Context, after string, limit int) ([]PickupGroup, string, error) {
	return list[PickupGroup](ctx, d.st, kindPickups, after, limit)
}

// forgetInPickups takes a user being deleted out of every pickup group.
func (d *Directory) forgetInPickups(ctx context.Context, user string) error {
	return each(ctx, d.st, kindPickups, func(g PickupGroup) error {
		if !slices.Contains(g.Members, user) {
			return nil
		}
		_, err := writeSetting(ctx, d, kindPickups, "pickup group", g.ID, false, func(old *PickupGroup) (*PickupGroup, claims, error) {
			old.Members = slices.DeleteFunc(old.Members, func(m string) bool { return m == user })
			return old, claims{}, nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("directory: take %s out of pickup group %s: %w", user, g.ID, err)
		}
		return nil
	})
}
