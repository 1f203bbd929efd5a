package directory

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/actors/hours"
)

func slg(id string, p SharedLineGroupPatch) SharedLineGroupInput {
	return SharedLineGroupInput{ID: id, SharedLineGroupPatch: p}
}

func TestSharedLineGroupDefaults(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	g, err := d.CreateSharedLineGroup(ctx(t), slg("front", SharedLineGroupPatch{}))
	if err != nil {
		t.Fatal(err)
	}
	want := SharedLineGroup{ID: "front", Name: "front", Numbers: []string{}, Members: []string{}, RingSeconds: 30, Timezone: "UTC",
		Holidays: []hours.Holiday{}, Overflow: Overflow{Business: Target{Kind: "disconnect"}, Closed: Target{Kind: "disconnect"}}}
	if !reflect.DeepEqual(g, want) {
		t.Fatalf("created %+v, want %+v", g, want)
	}
	if got, err := d.GetSharedLineGroup(ctx(t), "front"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v %v", got, err)
	}
	if got, ok := d.SharedLineGroupByID("front"); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("cached %+v %v", got, ok)
	}
	if _, err := d.CreateSharedLineGroup(ctx(t), slg("front", SharedLineGroupPatch{})); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "shared line group front") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestSharedLineGroupValidation(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	ten := make([]string, maxSLGMembers)
	for i := range ten {
		ten[i] = fmt.Sprintf("u%d", i)
	}
	withUsers(t, d, ten...)
	if _, err := d.CreateQueue(ctx(t), queue("sales", QueuePatch{})); err != nil {
		t.Fatal(err)
	}
	numbers := func(n int) *[]string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("+1415555%04d", i)
		}
		return &out
	}
	over := func(business, closed Target) SharedLineGroupPatch {
		return SharedLineGroupPatch{Overflow: &Overflow{Business: business, Closed: closed}}
	}
	for _, tc := range []struct {
		name  string
		p     SharedLineGroupPatch
		field string
		code  string // "" for a FieldError
	}{
		{"an 11th member", SharedLineGroupPatch{Members: ptr(append(slices.Clone(ten), "u10"))}, "members", "too_many_members"},
		{"an 11th number", SharedLineGroupPatch{Numbers: numbers(maxSLGNumbers + 1)}, "numbers", "too_many_numbers"},
		{"a member twice", SharedLineGroupPatch{Members: &[]string{"u1", "u1"}}, "members[1]", ""},
		{"an unknown member", SharedLineGroupPatch{Members: &[]string{"u1", "ghost"}}, "members[1]", "unknown_user"},
		{"a number not E.164", SharedLineGroupPatch{Numbers: &[]string{"+1"}}, "numbers[0]", ""},
		{"an extension of letters", SharedLineGroupPatch{Extension: ptr("front")}, "extension", ""},
		{"a blank name", SharedLineGroupPatch{Name: ptr(" ")}, "name", ""},
		{"ring 4", SharedLineGroupPatch{RingSeconds: ptr(4)}, "ring_seconds", ""},
		{"ring 301", SharedLineGroupPatch{RingSeconds: ptr(301)}, "ring_seconds", ""},
		{"an unknown zone", SharedLineGroupPatch{Timezone: ptr("Mars/Olympus")}, "timezone", ""},
		{"hours of one time", SharedLineGroupPatch{BusinessHours: &hours.Week{"sun": {{"10:00"}}}}, "business_hours.sun[0]", ""},
		{"a holiday twice", SharedLineGroupPatch{Holidays: &[]hours.Holiday{{Date: "2026-01-01"}, {Date: "2026-01-01"}}}, "holidays[1].date", ""},
		{"an unknown kind", over(Target{Kind: "ivr"}, Target{}), "overflow.business.kind", ""},
		{"an unknown queue", over(Target{Kind: "queue", ID: "support"}, Target{}), "overflow.business.id", "unknown_queue"},
		{"an unknown user", over(Target{}, Target{Kind: "user", ID: "ghost"}), "overflow.closed.id", "unknown_user"},
		{"voicemail", over(Target{Kind: "voicemail"}, Target{}), "overflow.business.kind", "voicemail_unavailable"},
	} {
		_, err := d.CreateSharedLineGroup(ctx(t), slg("g", tc.p))
		var fe *FieldError
		var re *RuleError
		switch {
		case tc.code == "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		case tc.code != "" && (!errors.As(err, &re) || re.Field != tc.field || re.Code != tc.code):
			t.Errorf("%s: %v, want %s on %s", tc.name, err, tc.code, tc.field)
		}
	}
	// Ten of each is the most.
	g, err := d.CreateSharedLineGroup(ctx(t), slg("g", SharedLineGroupPatch{Members: &ten, Numbers: numbers(maxSLGNumbers), LockPolicy: ptr(true),
		Monitoring: ptr(true), RingSeconds: ptr(300), Overflow: &Overflow{Business: Target{Kind: "queue", ID: "sales"}, Closed: Target{Kind: "message"}}}))
	if err != nil || len(g.Members) != 10 || len(g.Numbers) != 10 || !g.LockPolicy || !g.Monitoring || g.RingSeconds != 300 ||
		g.Overflow.Business != (Target{"queue", "sales"}) {
		t.Fatalf("ten of each: %+v %v", g, err)
	}
	var re *RuleError
	if _, err := d.UpdateSharedLineGroup(ctx(t), "g", SharedLineGroupPatch{Members: ptr(append(slices.Clone(ten), "u10"))}); !errors.As(err, &re) || re.Code != "too_many_members" {
		t.Fatalf("an 11th member by patch: %v", err)
	}
	// A patch changes only what it sends.
	g, err = d.UpdateSharedLineGroup(ctx(t), "g", SharedLineGroupPatch{Members: &[]string{"u3"}, LockPolicy: ptr(false)})
	if err != nil || !slices.Equal(g.Members, []string{"u3"}) || g.LockPolicy || !g.Monitoring || len(g.Numbers) != 10 {
		t.Fatalf("patched %+v %v", g, err)
	}
}

func TestSharedLineGroupCacheFollowsChanges(t *testing.T) {
	stores := newStores(t, 2)
	d, other := startDir(t, stores[0]), startDir(t, stores[1])
	withUsers(t, d, "ann", "bob")
	if _, err := d.CreateSharedLineGroup(ctx(t), slg("front", SharedLineGroupPatch{Extension: ptr("7000"), Members: &[]string{"ann", "bob"}})); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other node sees the group", func() bool {
		dest, _ := other.Destination("7000")
		return slices.Equal(other.SharedLineGroupsOf("ann"), []string{"front"}) && dest == Dest{DestSharedLineGroup, "front"}
	})
	if _, err := other.UpdateSharedLineGroup(ctx(t), "front", SharedLineGroupPatch{Members: &[]string{"bob"}, Numbers: &[]string{"+14155550170"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann leaves the group everywhere", func() bool {
		dest, _ := d.Destination("+14155550170")
		return len(d.SharedLineGroupsOf("ann")) == 0 && slices.Equal(d.SharedLineGroupsOf("bob"), []string{"front"}) && dest == Dest{DestSharedLineGroup, "front"}
	})
	if err := d.DeleteSharedLineGroup(ctx(t), "front"); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteSharedLineGroup(ctx(t), "front"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	eventually(t, "the deleted group is gone everywhere", func() bool {
		_, ok := other.SharedLineGroupByID("front")
		_, dest := other.Destination("7000")
		return !ok && !dest && len(other.SharedLineGroupsOf("bob")) == 0
	})
	// Its names are free again.
	if _, _, err := d.CreateUser(ctx(t), UserInput{ID: "cat", Name: "Cat", Extension: "7000", Numbers: []string{"+14155550170"}, SIPPassword: "cat-secret"}); err != nil {
		t.Fatal(err)
	}
}
