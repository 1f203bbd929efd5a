package directory

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/actors/monitoring"
)

// withUsers creates users with these ids (extensions 2001, 2002, ...).
func withUsers(t *testing.T, d *Directory, ids ...string) {
	t.Helper()
	for i, id := range ids {
		if _, _, err := d.CreateUser(ctx(t), UserInput{ID: id, Name: id, Extension: strconv.Itoa(2001 + i), SIPPassword: id + "-secret"}); err != nil {
			t.Fatal(err)
		}
	}
}

func groupIDs(gs []MonitoringGroup) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.ID)
	}
	return out
}

func TestMonitoringGroupDefaults(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "sue", "gus")
	g, err := d.CreateMonitoringGroup(ctx(t), MonitoringGroupInput{ID: "sales", Supervisors: []string{"sue"}, Members: []string{"gus"}})
	if err != nil {
		t.Fatal(err)
	}
	want := MonitoringGroup{ID: "sales", Name: "sales", Supervisors: []string{"sue"}, Members: []string{"gus"}, Modes: monitoring.Modes, BargeTone: true}
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("created %+v, want %+v", g, want)
	}
	off := false
	g, err = d.CreateMonitoringGroup(ctx(t), MonitoringGroupInput{ID: "quiet", Name: "Quiet team", Modes: []monitoring.Mode{monitoring.Whisper, monitoring.Listen},
		NotifyAgent: true, BargeTone: &off})
	if err != nil {
		t.Fatal(err)
	}
	// Modes are a set, kept in the order of monitoring.Modes; no users is
	// an empty list, not null.
	want = MonitoringGroup{ID: "quiet", Name: "Quiet team", Supervisors: []string{}, Members: []string{}, Modes: []monitoring.Mode{monitoring.Listen, monitoring.Whisper}, NotifyAgent: true}
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("created %+v, want %+v", g, want)
	}
	if got, ok := d.MonitoringGroupByID("quiet"); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("by id: %+v %v", got, ok)
	}
	if _, err := d.CreateMonitoringGroup(ctx(t), MonitoringGroupInput{ID: "quiet"}); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "quiet") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestMonitoringGroupValidation(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "sue", "gus")
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "u" + strconv.Itoa(i)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		in    MonitoringGroupInput
		field string
	}{
		{"no id", MonitoringGroupInput{}, "id"},
		{"id not a slug", MonitoringGroupInput{ID: "Sales Team"}, "id"},
		{"a name with a line break", MonitoringGroupInput{ID: "g", Name: "a\nb"}, "name"},
		{"a blank name", MonitoringGroupInput{ID: "g", Name: "   "}, "name"},
		{"an unknown supervisor", MonitoringGroupInput{ID: "g", Supervisors: []string{"sue", "nobody"}}, "supervisors[1]"},
		{"a supervisor twice", MonitoringGroupInput{ID: "g", Supervisors: []string{"sue", "sue"}}, "supervisors[1]"},
		{"an unknown member", MonitoringGroupInput{ID: "g", Members: []string{"ghost"}}, "members[0]"},
		{"a member twice", MonitoringGroupInput{ID: "g", Members: []string{"gus", "sue", "gus"}}, "members[2]"},
		{"too many supervisors", MonitoringGroupInput{ID: "g", Supervisors: many(maxSupervisors + 1)}, "supervisors"},
		{"too many members", MonitoringGroupInput{ID: "g", Members: many(maxMembers + 1)}, "members"},
		{"no mode", MonitoringGroupInput{ID: "g", Modes: []monitoring.Mode{}}, "modes"},
		{"not a mode", MonitoringGroupInput{ID: "g", Modes: []monitoring.Mode{"listen", "shout"}}, "modes[1]"},
		{"a mode twice", MonitoringGroupInput{ID: "g", Modes: []monitoring.Mode{"barge", "barge"}}, "modes[1]"},
	} {
		var fe *FieldError
		if _, err := d.CreateMonitoringGroup(ctx(t), tc.in); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		}
	}
	if gs, _, err := d.ListMonitoringGroups(ctx(t), "", 0); err != nil || len(gs) != 0 {
		t.Fatalf("an invalid group was stored: %+v %v", gs, err)
	}
}

// A change on one node is in every node's cache; the index by supervisor
// follows changes of the supervisors.
func TestMonitoringGroupsOfFollowChanges(t *testing.T) {
	stores := newStores(t, 2)
	d, other := startDir(t, stores[0]), startDir(t, stores[1])
	withUsers(t, d, "sue", "sam", "gus", "gia")
	for _, in := range []MonitoringGroupInput{
		{ID: "b-support", Supervisors: []string{"sue"}, Members: []string{"gus"}},
		{ID: "a-sales", Supervisors: []string{"sam", "sue"}, Members: []string{"gia"}},
	} {
		if _, err := d.CreateMonitoringGroup(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	// The writer's own cache holds its write at once.
	if got := groupIDs(d.MonitoringGroupsOf("sue")); !slices.Equal(got, []string{"a-sales", "b-support"}) {
		t.Fatalf("sue's groups: %v", got)
	}
	eventually(t, "the other node sees both groups", func() bool {
		return slices.Equal(groupIDs(other.MonitoringGroupsOf("sue")), []string{"a-sales", "b-support"})
	})

	none := []monitoring.Mode{monitoring.Listen}
	g, err := other.UpdateMonitoringGroup(ctx(t), "a-sales", MonitoringGroupPatch{Supervisors: &[]string{"sam"}, Modes: &none})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Supervisors, []string{"sam"}) || !slices.Equal(g.Members, []string{"gia"}) || !slices.Equal(g.Modes, none) || !g.BargeTone {
		t.Fatalf("patched %+v", g)
	}
	eventually(t, "sue leaves a-sales everywhere", func() bool {
		return slices.Equal(groupIDs(d.MonitoringGroupsOf("sue")), []string{"b-support"}) &&
			slices.Equal(groupIDs(d.MonitoringGroupsOf("sam")), []string{"a-sales"}) &&
			slices.Equal(d.MonitoringGroupsOf("sam")[0].Modes, none)
	})

	if err := d.DeleteMonitoringGroup(ctx(t), "b-support"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteMonitoringGroup(ctx(t), "b-support"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	eventually(t, "the deleted group is gone everywhere", func() bool {
		_, ok := other.MonitoringGroupByID("b-support")
		return len(other.MonitoringGroupsOf("sue")) == 0 && !ok
	})
}

func TestMonitoringGroupPatch(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "sue", "gus")
	if _, err := d.CreateMonitoringGroup(ctx(t), MonitoringGroupInput{ID: "sales", Supervisors: []string{"sue"}, Members: []string{"gus"}}); err != nil {
		t.Fatal(err)
	}
	name, notify, tone := "Sales floor", true, false
	g, err := d.UpdateMonitoringGroup(ctx(t), "sales", MonitoringGroupPatch{Name: &name, NotifyAgent: &notify, BargeTone: &tone})
	want := MonitoringGroup{ID: "sales", Name: name, Supervisors: []string{"sue"}, Members: []string{"gus"}, Modes: monitoring.Modes, NotifyAgent: true}
	if err != nil || !reflect.DeepEqual(g, want) {
		t.Fatalf("patched %+v %v, want %+v", g, err, want)
	}
	var fe *FieldError
	for field, p := range map[string]MonitoringGroupPatch{
		"members[1]": {Members: &[]string{"gus", "ghost"}},
		"modes":      {Modes: &[]monitoring.Mode{}},
		"name":       {Name: new(string)},
	} {
		if _, err := d.UpdateMonitoringGroup(ctx(t), "sales", p); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("patch %s: %v", field, err)
		}
	}
	for _, id := range []string{"nope", "Not A Slug"} {
		if _, err := d.UpdateMonitoringGroup(ctx(t), id, MonitoringGroupPatch{Name: &name}); !errors.Is(err, ErrNotFound) {
			t.Errorf("patch %q: %v", id, err)
		}
	}
	if got, _ := d.MonitoringGroupByID("sales"); !reflect.DeepEqual(got, want) {
		t.Fatalf("a refused patch changed the group: %+v", got)
	}
}

// A deleted user leaves every group, so that a user created later under
// the same id monitors nobody and is monitored by nobody.
func TestDeletedUserLeavesGroups(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "sue", "sam", "gus")
	for _, in := range []MonitoringGroupInput{
		{ID: "sales", Supervisors: []string{"sue", "sam"}, Members: []string{"gus", "sam"}},
		{ID: "other", Supervisors: []string{"sue"}, Members: []string{"gus"}},
	} {
		if _, err := d.CreateMonitoringGroup(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DeleteUser(ctx(t), "sam"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteUser(ctx(t), "sam"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	g, _ := d.MonitoringGroupByID("sales")
	if !slices.Equal(g.Supervisors, []string{"sue"}) || !slices.Equal(g.Members, []string{"gus"}) {
		t.Fatalf("sales after sam left: %+v", g)
	}
	if _, _, err := d.CreateUser(ctx(t), UserInput{ID: "sam", Name: "Another Sam", Extension: "2099", SIPPassword: "sam-secret"}); err != nil {
		t.Fatal(err)
	}
	if gs := d.MonitoringGroupsOf("sam"); len(gs) != 0 {
		t.Fatalf("a new sam inherited %v", groupIDs(gs))
	}
	if g, _ := d.MonitoringGroupByID("other"); !slices.Equal(g.Supervisors, []string{"sue"}) || !slices.Equal(g.Members, []string{"gus"}) {
		t.Fatalf("a group without sam changed: %+v", g)
	}
}

func TestListMonitoringGroupsPages(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	for _, id := range []string{"c", "a", "b"} {
		if _, err := d.CreateMonitoringGroup(ctx(t), MonitoringGroupInput{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	gs, next, err := d.ListMonitoringGroups(ctx(t), "", 2)
	if err != nil || !slices.Equal(groupIDs(gs), []string{"a", "b"}) || next != "b" {
		t.Fatalf("first page: %v %q %v", groupIDs(gs), next, err)
	}
	gs, next, err = d.ListMonitoringGroups(ctx(t), next, 2)
	if err != nil || !slices.Equal(groupIDs(gs), []string{"c"}) || next != "" {
		t.Fatalf("second page: %v %q %v", groupIDs(gs), next, err)
	}
}
