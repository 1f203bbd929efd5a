package directory

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func pickup(id string, p PickupGroupPatch) PickupGroupInput {
	return PickupGroupInput{ID: id, PickupGroupPatch: p}
}

func TestPickupGroups(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "ann", "bob")
	g, err := d.CreatePickupGroup(ctx(t), pickup("floor", PickupGroupPatch{}))
	if want := (PickupGroup{ID: "floor", Members: []string{}, DelaySeconds: 10}); err != nil || !reflect.DeepEqual(g, want) {
		t.Fatalf("created %+v %v, want %+v", g, err, want)
	}
	if _, err := d.CreatePickupGroup(ctx(t), pickup("floor", PickupGroupPatch{})); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "pickup group floor") {
		t.Fatalf("duplicate: %v", err)
	}
	for _, tc := range []struct {
		name  string
		id    string
		p     PickupGroupPatch
		field string
		code  string
	}{
		{"no id", "", PickupGroupPatch{}, "id", ""},
		{"id not a slug", "Floor 1", PickupGroupPatch{}, "id", ""},
		{"delay -1", "g", PickupGroupPatch{DelaySeconds: ptr(-1)}, "delay_seconds", ""},
		{"delay 121", "g", PickupGroupPatch{DelaySeconds: ptr(121)}, "delay_seconds", ""},
		{"a member twice", "g", PickupGroupPatch{Members: &[]string{"ann", "bob", "ann"}}, "members[2]", ""},
		{"an unknown member", "g", PickupGroupPatch{Members: &[]string{"ghost"}}, "members[0]", "unknown_user"},
	} {
		_, err := d.CreatePickupGroup(ctx(t), pickup(tc.id, tc.p))
		var fe *FieldError
		var re *RuleError
		switch {
		case tc.code == "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		case tc.code != "" && (!errors.As(err, &re) || re.Field != tc.field || re.Code != tc.code):
			t.Errorf("%s: %v, want %s on %s", tc.name, err, tc.code, tc.field)
		}
	}
	g, err = d.UpdatePickupGroup(ctx(t), "floor", PickupGroupPatch{Members: &[]string{"bob", "ann"}, DelaySeconds: ptr(0)})
	if want := (PickupGroup{ID: "floor", Members: []string{"bob", "ann"}}); err != nil || !reflect.DeepEqual(g, want) {
		t.Fatalf("patched %+v %v", g, err)
	}
	if g, err = d.UpdatePickupGroup(ctx(t), "floor", PickupGroupPatch{DelaySeconds: ptr(120)}); err != nil || len(g.Members) != 2 || g.DelaySeconds != 120 {
		t.Fatalf("a patch of the delay alone: %+v %v", g, err)
	}
	if _, err := d.UpdatePickupGroup(ctx(t), "nope", PickupGroupPatch{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("patch unknown: %v", err)
	}
	if got, err := d.GetPickupGroup(ctx(t), "floor"); err != nil || got.DelaySeconds != 120 {
		t.Fatalf("read %+v %v", got, err)
	}
	gs, next, err := d.ListPickupGroups(ctx(t), "", 0)
	if err != nil || len(gs) != 1 || next != "" {
		t.Fatalf("list %+v %q %v", gs, next, err)
	}
}

// A user in several groups has them all, in id order, on every node.
func TestPickupGroupsOfFollowChanges(t *testing.T) {
	stores := newStores(t, 2)
	d, other := startDir(t, stores[0]), startDir(t, stores[1])
	withUsers(t, d, "ann", "bob")
	for _, id := range []string{"b-floor", "a-desk"} {
		if _, err := d.CreatePickupGroup(ctx(t), pickup(id, PickupGroupPatch{Members: &[]string{"ann", "bob"}})); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(gs []PickupGroup) (out []string) {
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return out
	}
	if got := ids(d.PickupGroupsOf("ann")); !slices.Equal(got, []string{"a-desk", "b-floor"}) {
		t.Fatalf("ann's groups: %v", got)
	}
	eventually(t, "the other node sees both groups", func() bool {
		return slices.Equal(ids(other.PickupGroupsOf("bob")), []string{"a-desk", "b-floor"})
	})
	if _, err := other.UpdatePickupGroup(ctx(t), "b-floor", PickupGroupPatch{Members: &[]string{"bob"}, DelaySeconds: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann leaves b-floor everywhere", func() bool {
		gs := d.PickupGroupsOf("bob")
		return slices.Equal(ids(d.PickupGroupsOf("ann")), []string{"a-desk"}) && len(gs) == 2 && gs[1].DelaySeconds == 5
	})
	if err := d.DeletePickupGroup(ctx(t), "a-desk"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeletePickupGroup(ctx(t), "a-desk"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	eventually(t, "the deleted group is gone everywhere", func() bool {
		return len(other.PickupGroupsOf("ann")) == 0 && slices.Equal(ids(other.PickupGroupsOf("bob")), []string{"b-floor"})
	})
}
