package directory

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/actors/hours"
)

func ptr[T any](v T) *T { return &v }

func queue(id string, p QueuePatch) QueueInput { return QueueInput{ID: id, QueuePatch: p} }

// toQueue sends q's overflow to queue target, for the business or closed
// hours.
func toQueue(target string, closed bool) *Overflow {
	o := &Overflow{}
	if closed {
		o.Closed = Target{Kind: TargetQueue, ID: target}
	} else {
		o.Business = Target{Kind: TargetQueue, ID: target}
	}
	return o
}

func TestQueueDefaults(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	q, err := d.CreateQueue(ctx(t), queue("sales", QueuePatch{Name: ptr("")}))
	if err != nil {
		t.Fatal(err)
	}
	want := Queue{ID: "sales", Name: "sales", Numbers: []string{}, Members: []QueueMember{}, Distribution: "simultaneous",
		RingSeconds: 20, MaxWaitSeconds: 300, MaxCalls: 20, WrapUpSeconds: 0, ServiceLevelSeconds: 20, ClaimReleaseSeconds: 300,
		Timezone: "UTC", Holidays: []hours.Holiday{}, Admins: []string{},
		Overflow: Overflow{Business: Target{Kind: "disconnect"}, Closed: Target{Kind: "disconnect"}}}
	if !reflect.DeepEqual(q, want) {
		t.Fatalf("created %+v, want %+v", q, want)
	}
	for name, get := range map[string]func() (Queue, error){
		"etcd": func() (Queue, error) { return d.GetQueue(ctx(t), "sales") },
		"cache": func() (Queue, error) {
			q, ok := d.QueueByID("sales")
			if !ok {
				return q, ErrNotFound
			}
			return q, nil
		},
	} {
		if got, err := get(); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("read from %s: %+v %v", name, got, err)
		}
	}
	// The shape the API shows: no hours is null (always open), and the
	// default overflow is spelled out.
	b, _ := json.Marshal(q)
	for _, part := range []string{`"business_hours":null`, `"overflow":{"business":{"kind":"disconnect"},"closed":{"kind":"disconnect"}}`, `"extension":""`} {
		if !strings.Contains(string(b), part) {
			t.Errorf("%s lacks %s", b, part)
		}
	}
	if _, err := d.CreateQueue(ctx(t), queue("sales", QueuePatch{})); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "queue sales") {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestQueueSettings(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "ann", "bob", "sue")
	if _, err := d.CreateQueue(ctx(t), queue("backup", QueuePatch{})); err != nil {
		t.Fatal(err)
	}
	week := hours.Week{"mon": {{"08:00", "17:00"}}}
	q, err := d.CreateQueue(ctx(t), queue("sales", QueuePatch{Name: ptr("Sales"), Extension: ptr("5000"), Numbers: &[]string{"+14155550150"},
		Members: &[]QueueMember{{User: "bob", Order: 2}, {User: "ann"}}, Distribution: ptr("group_rotating"),
		RingSeconds: ptr(5), MaxWaitSeconds: ptr(7200), MaxCalls: ptr(1), WrapUpSeconds: ptr(600), ReceiveWhileOnCall: ptr(true),
		ServiceLevelSeconds: ptr(600), ClaimReleaseSeconds: ptr(10), Timezone: ptr("Europe/Paris"), BusinessHours: &week,
		Holidays: &[]hours.Holiday{{Date: "2026-12-25", Name: "Noël"}}, Admins: &[]string{"sue"}, TeamSMS: ptr(true),
		Overflow: &Overflow{Business: Target{Kind: "queue", ID: "backup"}, Closed: Target{Kind: "number", ID: "+14155550199"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "Sales" || q.Extension != "5000" || q.Members[0] != (QueueMember{"bob", 2}) || q.Distribution != "group_rotating" ||
		q.RingSeconds != 5 || q.MaxWaitSeconds != 7200 || q.MaxCalls != 1 || q.WrapUpSeconds != 600 || !q.ReceiveWhileOnCall ||
		q.ServiceLevelSeconds != 600 || q.ClaimReleaseSeconds != 10 || q.Timezone != "Europe/Paris" || len(q.BusinessHours) != 7 ||
		len(q.BusinessHours["tue"]) != 0 || q.Holidays[0].Name != "Noël" || !slices.Equal(q.Admins, []string{"sue"}) || !q.TeamSMS ||
		q.Overflow.Business != (Target{"queue", "backup"}) || q.Overflow.Closed != (Target{"number", "+14155550199"}) {
		t.Fatalf("created %+v", q)
	}

	// A patch changes what it sends; an overflow target left out stays.
	q, err = d.UpdateQueue(ctx(t), "sales", QueuePatch{MaxCalls: ptr(500), Overflow: &Overflow{Closed: Target{Kind: "message"}}})
	if err != nil || q.MaxCalls != 500 || q.RingSeconds != 5 || q.Overflow.Business != (Target{"queue", "backup"}) ||
		q.Overflow.Closed != (Target{Kind: "message"}) || q.Name != "Sales" || len(q.Members) != 2 {
		t.Fatalf("patched %+v %v", q, err)
	}
	// Hours with no range on any day are no hours: always open.
	if q, err = d.UpdateQueue(ctx(t), "sales", QueuePatch{BusinessHours: &hours.Week{"mon": {}}}); err != nil || q.BusinessHours != nil {
		t.Fatalf("emptied hours: %v %v", q.BusinessHours, err)
	}
	if q, err = d.UpdateQueue(ctx(t), "sales", QueuePatch{Timezone: ptr("")}); err != nil || q.Timezone != "UTC" {
		t.Fatalf("emptied zone: %q %v", q.Timezone, err)
	}
	before, _ := d.GetQueue(ctx(t), "sales")
	if _, err := d.UpdateQueue(ctx(t), "sales", QueuePatch{Name: ptr("New"), MaxCalls: ptr(501)}); err == nil {
		t.Fatal("max_calls 501 passed")
	}
	if after, _ := d.GetQueue(ctx(t), "sales"); !reflect.DeepEqual(after, before) {
		t.Fatalf("a refused patch changed the queue: %+v", after)
	}
	for _, id := range []string{"nope", "Not A Slug"} {
		if _, err := d.UpdateQueue(ctx(t), id, QueuePatch{Name: ptr("x")}); !errors.Is(err, ErrNotFound) {
			t.Errorf("patch %q: %v", id, err)
		}
		if _, err := d.GetQueue(ctx(t), id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get %q: %v", id, err)
		}
	}
}

func TestQueueValidation(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "ann", "bob")
	if _, err := d.CreateQueue(ctx(t), queue("other", QueuePatch{})); err != nil {
		t.Fatal(err)
	}
	members := func(ms ...QueueMember) QueuePatch { return QueuePatch{Members: &ms} }
	over := func(business, closed Target) QueuePatch {
		return QueuePatch{Overflow: &Overflow{Business: business, Closed: closed}}
	}
	many := make([]QueueMember, maxMembers+1)
	for i := range many {
		many[i] = QueueMember{User: fmt.Sprintf("u%d", i)}
	}
	for _, tc := range []struct {
		name  string
		id    string
		p     QueuePatch
		field string
		code  string // "" for a FieldError
	}{
		{"no id", "", QueuePatch{}, "id", ""},
		{"id not a slug", "Sales Team", QueuePatch{}, "id", ""},
		{"a name with a line break", "q", QueuePatch{Name: ptr("a\nb")}, "name", ""},
		{"an extension of letters", "q", QueuePatch{Extension: ptr("sales")}, "extension", ""},
		{"a one-digit extension", "q", QueuePatch{Extension: ptr("5")}, "extension", ""},
		{"a number not E.164", "q", QueuePatch{Numbers: &[]string{"0800"}}, "numbers[0]", ""},
		{"a number twice", "q", QueuePatch{Numbers: &[]string{"+14155550150", "+14155550150"}}, "numbers[1]", ""},
		{"a member without a user", "q", members(QueueMember{Order: 1}), "members[0].user", ""},
		{"a member twice", "q", members(QueueMember{User: "ann"}, QueueMember{User: "bob"}, QueueMember{User: "ann", Order: 3}), "members[2].user", ""},
		{"a negative order", "q", members(QueueMember{User: "ann"}, QueueMember{User: "bob", Order: -1}), "members[1].order", ""},
		{"too many members", "q", QueuePatch{Members: &many}, "members", ""},
		{"an unknown member", "q", members(QueueMember{User: "ann"}, QueueMember{User: "bob"}, QueueMember{User: "ghost"}), "members[2].user", "unknown_user"},
		{"an unknown distribution", "q", QueuePatch{Distribution: ptr("random")}, "distribution", ""},
		{"ring 4", "q", QueuePatch{RingSeconds: ptr(4)}, "ring_seconds", ""},
		{"ring 121", "q", QueuePatch{RingSeconds: ptr(121)}, "ring_seconds", ""},
		{"max wait 9", "q", QueuePatch{MaxWaitSeconds: ptr(9)}, "max_wait_seconds", ""},
		{"max wait 7201", "q", QueuePatch{MaxWaitSeconds: ptr(7201)}, "max_wait_seconds", ""},
		{"max calls 0", "q", QueuePatch{MaxCalls: ptr(0)}, "max_calls", ""},
		{"max calls 501", "q", QueuePatch{MaxCalls: ptr(501)}, "max_calls", ""},
		{"wrap-up -1", "q", QueuePatch{WrapUpSeconds: ptr(-1)}, "wrap_up_seconds", ""},
		{"wrap-up 601", "q", QueuePatch{WrapUpSeconds: ptr(601)}, "wrap_up_seconds", ""},
		{"service level 4", "q", QueuePatch{ServiceLevelSeconds: ptr(4)}, "service_level_seconds", ""},
		{"service level 601", "q", QueuePatch{ServiceLevelSeconds: ptr(601)}, "service_level_seconds", ""},
		{"claim release 9", "q", QueuePatch{ClaimReleaseSeconds: ptr(9)}, "claim_release_seconds", ""},
		{"claim release 3601", "q", QueuePatch{ClaimReleaseSeconds: ptr(3601)}, "claim_release_seconds", ""},
		{"an unknown zone", "q", QueuePatch{Timezone: ptr("Moon/Base")}, "timezone", ""},
		{"the node's zone", "q", QueuePatch{Timezone: ptr("Local")}, "timezone", ""},
		{"hours backwards", "q", QueuePatch{BusinessHours: &hours.Week{"mon": {{"17:00", "08:00"}}}}, "business_hours.mon[0]", ""},
		{"not a day", "q", QueuePatch{BusinessHours: &hours.Week{"someday": {}}}, "business_hours.someday", ""},
		{"a holiday not a date", "q", QueuePatch{Holidays: &[]hours.Holiday{{Date: "25/12"}}}, "holidays[0].date", ""},
		{"an admin twice", "q", QueuePatch{Admins: &[]string{"ann", "ann"}}, "admins[1]", ""},
		{"an unknown admin", "q", QueuePatch{Admins: &[]string{"ann", "ghost"}}, "admins[1]", "unknown_user"},
		{"a target without a kind", "q", over(Target{ID: "ann"}, Target{}), "overflow.business.kind", ""},
		{"an unknown kind", "q", over(Target{}, Target{Kind: "fax"}), "overflow.closed.kind", ""},
		{"a user target without an id", "q", over(Target{Kind: "user"}, Target{}), "overflow.business.id", ""},
		{"a queue target without an id", "q", over(Target{}, Target{Kind: "queue"}), "overflow.closed.id", ""},
		{"a number target not E.164", "q", over(Target{Kind: "number", ID: "555"}, Target{}), "overflow.business.id", ""},
		{"a disconnect with an id", "q", over(Target{Kind: "disconnect", ID: "ann"}, Target{}), "overflow.business.id", ""},
		{"a message with an id", "q", over(Target{}, Target{Kind: "message", ID: "x"}), "overflow.closed.id", ""},
		{"an unknown user target", "q", over(Target{Kind: "user", ID: "ghost"}, Target{}), "overflow.business.id", "unknown_user"},
		{"an unknown queue target", "q", over(Target{}, Target{Kind: "queue", ID: "nope"}), "overflow.closed.id", "unknown_queue"},
		{"voicemail", "q", over(Target{}, Target{Kind: "voicemail"}), "overflow.closed.kind", "voicemail_unavailable"},
		{"itself", "q", over(Target{Kind: "queue", ID: "q"}, Target{}), "overflow.business.id", "overflow_loop"},
	} {
		_, err := d.CreateQueue(ctx(t), queue(tc.id, tc.p))
		var fe *FieldError
		var re *RuleError
		switch {
		case tc.code == "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		case tc.code != "" && (!errors.As(err, &re) || re.Field != tc.field || re.Code != tc.code):
			t.Errorf("%s: %v, want %s on %s", tc.name, err, tc.code, tc.field)
		}
	}
	if qs, _, err := d.ListQueues(ctx(t), "", 0); err != nil || len(qs) != 1 {
		t.Fatalf("an invalid queue was stored: %+v %v", qs, err)
	}
}

// A queue's extension and numbers are claimed where users claim theirs:
// whoever comes second gets ErrExists, and a freed name is free for anyone.
func TestQueueNamesAreClaimed(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	if _, _, err := d.CreateUser(ctx(t), alice()); err != nil { // 1001, +14155550101
		t.Fatal(err)
	}
	if _, err := d.CreateSharedLineGroup(ctx(t), SharedLineGroupInput{ID: "front", SharedLineGroupPatch: SharedLineGroupPatch{
		Extension: ptr("7000"), Numbers: &[]string{"+14155550170"}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    QueuePatch
		what string
	}{
		{"a user's extension", QueuePatch{Extension: ptr("1001")}, "extension 1001"},
		{"a user's number", QueuePatch{Numbers: &[]string{"+14155550101"}}, "number +14155550101"},
		{"a group's extension", QueuePatch{Extension: ptr("7000")}, "extension 7000"},
		{"a group's number", QueuePatch{Numbers: &[]string{"+14155550170"}}, "number +14155550170"},
	} {
		if _, err := d.CreateQueue(ctx(t), queue("q", tc.p)); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), tc.what) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := d.CreateQueue(ctx(t), queue("sales", QueuePatch{Extension: ptr("5000"), Numbers: &[]string{"+14155550150"}})); err != nil {
		t.Fatal(err)
	}
	// The other way round: a user, a user's change, a group.
	for _, tc := range []struct {
		name string
		err  error
		what string
	}{
		{"a new user with the queue's extension", func() error {
			_, _, err := d.CreateUser(ctx(t), UserInput{ID: "bob", Name: "Bob", Extension: "5000", SIPPassword: "bob-secret"})
			return err
		}(), "extension 5000"},
		{"a new user whose id is the queue's extension", func() error {
			_, _, err := d.CreateUser(ctx(t), UserInput{ID: "5000", Name: "Bob", Extension: "1002", SIPPassword: "bob-secret"})
			return err
		}(), "5000"},
		{"a user taking the queue's number", func() error {
			_, err := d.UpdateUser(ctx(t), "alice", UserPatch{Numbers: &[]string{"+14155550150"}})
			return err
		}(), "number +14155550150"},
		{"a group taking the queue's extension", func() error {
			_, err := d.UpdateSharedLineGroup(ctx(t), "front", SharedLineGroupPatch{Extension: ptr("5000")})
			return err
		}(), "extension 5000"},
	} {
		if !errors.Is(tc.err, ErrExists) || !strings.Contains(tc.err.Error(), tc.what) {
			t.Errorf("%s: %v", tc.name, tc.err)
		}
	}
	for dialed, want := range map[string]Dest{
		"5000": {DestQueue, "sales"}, "+14155550150": {DestQueue, "sales"},
		"7000": {DestSharedLineGroup, "front"}, "+14155550170": {DestSharedLineGroup, "front"},
		"1001": {DestUser, "alice"}, "+14155550101": {DestUser, "alice"}, "alice": {DestUser, "alice"},
	} {
		if got, ok := d.Destination(dialed); !ok || got != want {
			t.Errorf("Destination(%s) = %v %v, want %v", dialed, got, ok, want)
		}
	}
	for _, dialed := range []string{"sales", "front", "9999", "+14155550999"} {
		if got, ok := d.Destination(dialed); ok {
			t.Errorf("Destination(%s) = %v", dialed, got)
		}
	}
	// The claim that names a queue is not a user, even after a cache miss.
	if u, ok := d.UserByExtension("5000"); ok {
		t.Fatalf("the queue's extension found user %+v", u)
	}

	// A change frees the old names; a delete frees the rest.
	if _, err := d.UpdateQueue(ctx(t), "sales", QueuePatch{Extension: ptr("5001"), Numbers: &[]string{"+14155550151"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Destination("5000"); ok {
		t.Fatal("the old extension still reaches the queue")
	}
	if _, _, err := d.CreateUser(ctx(t), UserInput{ID: "bob", Name: "Bob", Extension: "5000", Numbers: []string{"+14155550150"}, SIPPassword: "bob-secret"}); err != nil {
		t.Fatalf("the freed names: %v", err)
	}
	if err := d.DeleteQueue(ctx(t), "sales"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateSharedLineGroup(ctx(t), "front", SharedLineGroupPatch{Extension: ptr("5001"), Numbers: &[]string{"+14155550151"}}); err != nil {
		t.Fatalf("the deleted queue's names: %v", err)
	}
	if got, _ := d.Destination("5001"); got != (Dest{DestSharedLineGroup, "front"}) {
		t.Fatalf("5001 reaches %v", got)
	}
	if err := d.DeleteQueue(ctx(t), "sales"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestOverflowLoops(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	for _, id := range []string{"a", "b", "c"} {
		if _, err := d.CreateQueue(ctx(t), queue(id, QueuePatch{})); err != nil {
			t.Fatal(err)
		}
	}
	// a -> b -> c is a chain, not a loop.
	for _, step := range [][2]string{{"a", "b"}, {"b", "c"}} {
		if _, err := d.UpdateQueue(ctx(t), step[0], QueuePatch{Overflow: toQueue(step[1], false)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		id      string
		o       *Overflow
		field   string
		mention string
	}{
		{"c back to a when busy", "c", toQueue("a", false), "overflow.business.id", "c → a → b → c"},
		{"c back to a when closed", "c", toQueue("a", true), "overflow.closed.id", "c → a → b → c"},
		{"b back to a", "b", toQueue("a", true), "overflow.closed.id", "b → a → b"},
		{"a to itself", "a", toQueue("a", true), "overflow.closed.id", "itself"},
	} {
		var re *RuleError
		if _, err := d.UpdateQueue(ctx(t), tc.id, QueuePatch{Overflow: tc.o}); !errors.As(err, &re) || re.Code != "overflow_loop" ||
			re.Field != tc.field || !strings.Contains(re.Message, tc.mention) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// A queue that is some overflow's target stays.
	if err := d.DeleteQueue(ctx(t), "c"); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "queue b") {
		t.Fatalf("deleting a target: %v", err)
	}
	if _, err := d.CreateSharedLineGroup(ctx(t), SharedLineGroupInput{ID: "desk", SharedLineGroupPatch: SharedLineGroupPatch{Overflow: toQueue("a", true)}}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteQueue(ctx(t), "a"); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "shared line group desk") {
		t.Fatalf("deleting a group's target: %v", err)
	}
	if _, err := d.UpdateQueue(ctx(t), "b", QueuePatch{Overflow: &Overflow{Business: Target{Kind: "disconnect"}}}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteQueue(ctx(t), "c"); err != nil {
		t.Fatalf("deleting a queue nobody overflows to: %v", err)
	}
}

// Two queues made to overflow to each other at the same moment: the checks
// are fenced on what they read, so at most one is saved.
func TestOverflowLoopRace(t *testing.T) {
	stores := newStores(t, 2)
	dirs := []*Directory{startDir(t, stores[0]), startDir(t, stores[1])}
	for round := range 5 {
		a, b := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		for _, id := range []string{a, b} {
			if _, err := dirs[0].CreateQueue(ctx(t), queue(id, QueuePatch{})); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, step := range [][2]string{{a, b}, {b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = dirs[i].UpdateQueue(ctx(t), step[0], QueuePatch{Overflow: toQueue(step[1], false)})
			}()
		}
		wg.Wait()
		saved := 0
		for _, err := range errs {
			var re *RuleError
			switch {
			case err == nil:
				saved++
			case !errors.As(err, &re) || re.Code != "overflow_loop":
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if saved != 1 {
			t.Fatalf("round %d: %d of the two overflows saved (%v)", round, saved, errs)
		}
	}
}

// A change on one node is in every node's cache: the queue, its members'
// index and the names it claims.
func TestQueueCacheFollowsChanges(t *testing.T) {
	stores := newStores(t, 2)
	d, other := startDir(t, stores[0]), startDir(t, stores[1])
	withUsers(t, d, "ann", "bob")
	for _, in := range []QueueInput{
		queue("b-support", QueuePatch{Extension: ptr("5001"), Members: &[]QueueMember{{User: "ann"}}}),
		queue("a-sales", QueuePatch{Extension: ptr("5000"), Members: &[]QueueMember{{User: "bob"}, {User: "ann"}}}),
	} {
		if _, err := d.CreateQueue(ctx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	// The writer's own cache holds its write at once.
	if got := d.QueuesOf("ann"); !slices.Equal(got, []string{"a-sales", "b-support"}) {
		t.Fatalf("ann's queues: %v", got)
	}
	eventually(t, "the other node sees both queues", func() bool {
		dest, _ := other.Destination("5000")
		return slices.Equal(other.QueuesOf("ann"), []string{"a-sales", "b-support"}) && dest == Dest{DestQueue, "a-sales"}
	})
	if _, err := other.UpdateQueue(ctx(t), "a-sales", QueuePatch{Members: &[]QueueMember{{User: "bob"}}, Extension: ptr("5002"), MaxCalls: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann leaves a-sales everywhere", func() bool {
		q, _ := d.QueueByID("a-sales")
		_, old := d.Destination("5000")
		dest, _ := d.Destination("5002")
		return slices.Equal(d.QueuesOf("ann"), []string{"b-support"}) && slices.Equal(d.QueuesOf("bob"), []string{"a-sales"}) &&
			q.MaxCalls == 3 && !old && dest == Dest{DestQueue, "a-sales"}
	})
	if err := d.DeleteQueue(ctx(t), "b-support"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted queue is gone everywhere", func() bool {
		_, ok := other.QueueByID("b-support")
		_, dest := other.Destination("5001")
		return !ok && !dest && len(other.QueuesOf("ann")) == 0
	})
}

// A deleted user leaves every queue, group and pickup group, and an
// overflow to them becomes a disconnect.
func TestDeletedUserLeavesQueuesAndGroups(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	withUsers(t, d, "ann", "sam")
	toSam := &Overflow{Business: Target{Kind: "user", ID: "sam"}}
	if _, err := d.CreateQueue(ctx(t), queue("sales", QueuePatch{Members: &[]QueueMember{{User: "sam"}, {User: "ann"}}, Admins: &[]string{"sam"}, Overflow: toSam})); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateSharedLineGroup(ctx(t), SharedLineGroupInput{ID: "desk", SharedLineGroupPatch: SharedLineGroupPatch{Members: &[]string{"ann", "sam"}, Overflow: toSam}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreatePickupGroup(ctx(t), PickupGroupInput{ID: "floor", PickupGroupPatch: PickupGroupPatch{Members: &[]string{"sam", "ann"}}}); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteUser(ctx(t), "sam"); err != nil {
		t.Fatal(err)
	}
	q, _ := d.GetQueue(ctx(t), "sales")
	g, _ := d.GetSharedLineGroup(ctx(t), "desk")
	p, _ := d.GetPickupGroup(ctx(t), "floor")
	disconnect := Target{Kind: "disconnect"}
	if !reflect.DeepEqual(q.Members, []QueueMember{{User: "ann"}}) || len(q.Admins) != 0 || q.Overflow.Business != disconnect {
		t.Errorf("queue after sam left: %+v", q)
	}
	if !slices.Equal(g.Members, []string{"ann"}) || g.Overflow.Business != disconnect {
		t.Errorf("group after sam left: %+v", g)
	}
	if !slices.Equal(p.Members, []string{"ann"}) {
		t.Errorf("pickup group after sam left: %+v", p)
	}
	if len(d.QueuesOf("sam"))+len(d.SharedLineGroupsOf("sam"))+len(d.PickupGroupsOf("sam")) != 0 {
		t.Error("sam is still indexed")
	}
}

func TestListQueuesPages(t *testing.T) {
	d := startDir(t, newStores(t, 1)[0])
	for _, id := range []string{"c", "a", "b"} {
		if _, err := d.CreateQueue(ctx(t), queue(id, QueuePatch{})); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(qs []Queue) (out []string) {
		for _, q := range qs {
			out = append(out, q.ID)
		}
		return out
	}
	qs, next, err := d.ListQueues(ctx(t), "", 2)
	if err != nil || !slices.Equal(ids(qs), []string{"a", "b"}) || next != "b" {
		t.Fatalf("first page: %v %q %v", ids(qs), next, err)
	}
	qs, next, err = d.ListQueues(ctx(t), next, 2)
	if err != nil || !slices.Equal(ids(qs), []string{"c"}) || next != "" {
		t.Fatalf("second page: %v %q %v", ids(qs), next, err)
	}
}
