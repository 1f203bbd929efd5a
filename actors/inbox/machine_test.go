package inbox

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func msg(id string, at time.Time) Message {
	return Message{ID: id, From: "+15550100", CallID: "call-" + id, ReceivedAt: at, DurationSeconds: 12}
}

// shared is alice's inbox with two messages (m1 older) and one user per
// level: bob access, carol download, dave delete, erin share.
func shared(t *testing.T) *Inbox {
	t.Helper()
	b := New("alice", KindUser)
	b.Access = map[string][]Level{
		"bob":   {LevelAccess},
		"carol": {LevelAccess, LevelDownload},
		"dave":  {LevelAccess, LevelDelete},
		"erin":  {LevelAccess, LevelShare},
	}
	for _, m := range []Message{msg("m1", t0), msg("m2", t0.Add(time.Minute))} {
		mustStep(t, b, Deposit{Message: m}, t0.Add(2*time.Minute))
	}
	return b
}

func mustStep(t *testing.T, b *Inbox, in any, now time.Time) []Effect {
	t.Helper()
	effs, err := b.Step(in, now)
	if err != nil {
		t.Fatalf("Step(%#v): %v", in, err)
	}
	return effs
}

// code is the refusal's code, "" for none; any other error fails the test.
func code(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %v is no *Refusal", err)
	}
	return r.Code
}

func find[T any](effs []Effect) (T, bool) {
	for _, e := range effs {
		if v, ok := e.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func ids(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

var viewers = []string{"alice", "bob", "carol", "dave", "erin"}

func TestAccessLevels(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	tests := []struct {
		name     string
		in       any
		wantCode string
		want     []Effect // nil: not compared
		left     []string // the messages after, newest first
	}{
		{name: "access lists newest first", in: List{By: "bob"},
			want: []Effect{Listed{Messages: []Message{withOwner(msg("m2", t0.Add(time.Minute))), withOwner(msg("m1", t0))}}}, left: []string{"m2", "m1"}},
		{name: "admin lists", in: List{Admin: true}, left: []string{"m2", "m1"}},
		{name: "stranger may not list", in: List{By: "mallory"}, wantCode: "not_allowed", left: []string{"m2", "m1"}},
		{name: "access streams", in: Fetch{By: "bob", ID: "m1"}, want: []Effect{Audio{Message: withOwner(msg("m1", t0))}}, left: []string{"m2", "m1"}},
		{name: "access does not download", in: Fetch{By: "bob", ID: "m1", Download: true}, wantCode: "not_allowed", left: []string{"m2", "m1"}},
		{name: "download downloads", in: Fetch{By: "carol", ID: "m1", Download: true}, want: []Effect{Audio{Message: withOwner(msg("m1", t0))}}, left: []string{"m2", "m1"}},
		{name: "unknown message", in: Fetch{By: "bob", ID: "m9"}, wantCode: "not_found", left: []string{"m2", "m1"}},
		{name: "stranger learns no ids", in: Fetch{By: "mallory", ID: "m9"}, wantCode: "not_allowed", left: []string{"m2", "m1"}},
		{name: "access does not delete", in: Delete{By: "bob", ID: "m1"}, wantCode: "not_allowed", left: []string{"m2", "m1"}},
		{name: "download does not delete", in: Delete{By: "carol", ID: "m1"}, wantCode: "not_allowed", left: []string{"m2", "m1"}},
		{name: "delete removes for everyone", in: Delete{By: "dave", ID: "m1"},
			want: []Effect{Persist{}, RemoveAudio{ID: "m1"}, Event{Type: EventDeleted, Users: viewers, Message: withOwner(msg("m1", t0))}, MWI{New: 1, Old: 0, Users: viewers}},
			left: []string{"m2"}},
		{name: "delete of a missing message", in: Delete{By: "dave", ID: "m9"}, wantCode: "not_found", left: []string{"m2", "m1"}},
		{name: "owner deletes", in: Delete{By: "alice", ID: "m2"}, left: []string{"m1"}},
		{name: "access does not share", in: Share{By: "bob", ID: "m1", To: "frank"}, wantCode: "not_allowed", left: []string{"m2", "m1"}},
		{name: "share copies", in: Share{By: "erin", ID: "m1", To: "frank"},
			want: []Effect{ShareTo{To: "frank", Message: withOwner(msg("m1", t0))}}, left: []string{"m2", "m1"}},
		{name: "share to nobody", in: Share{By: "erin", ID: "m1"}, wantCode: "invalid_field", left: []string{"m2", "m1"}},
		{name: "share to the owner", in: Share{By: "erin", ID: "m1", To: "alice"}, wantCode: "invalid_field", left: []string{"m2", "m1"}},
		{name: "owner shares", in: Share{By: "alice", ID: "m2", To: "frank"}, left: []string{"m2", "m1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := shared(t)
			effs, err := b.Step(tt.in, now)
			if got := code(t, err); got != tt.wantCode {
				t.Fatalf("refusal %q (%v), want %q", got, err, tt.wantCode)
			}
			if tt.want != nil && !reflect.DeepEqual(effs, tt.want) {
				t.Errorf("effects\n got %#v\nwant %#v", effs, tt.want)
			}
			if tt.wantCode != "" && len(effs) != 0 {
				t.Errorf("a refusal made effects %#v", effs)
			}
			if got := ids(b.newestFirst()); !slices.Equal(got, tt.left) {
				t.Errorf("messages after = %v, want %v", got, tt.left)
			}
			// Deleted for everyone: the owner's own list agrees.
			effs = mustStep(t, b, List{By: "alice"}, now)
			if l, _ := find[Listed](effs); !slices.Equal(ids(l.Messages), tt.left) {
				t.Errorf("the owner lists %v, want %v", ids(l.Messages), tt.left)
			}
		})
	}
}

func withOwner(m Message) Message {
	m.Owner = "alice"
	return m
}

func TestPlayedSync(t *testing.T) {
	b := shared(t)
	marked := t0.Add(3 * time.Hour)

	effs := mustStep(t, b, MarkPlayed{By: "bob", ID: "m1", Played: true}, marked)
	played := withOwner(msg("m1", t0))
	played.Played, played.PlayedBy, played.PlayedAt = true, "bob", marked
	want := []Effect{Persist{}, Event{Type: EventPlayed, Users: viewers, Message: played}, MWI{New: 1, Old: 1, Users: viewers}}
	if !reflect.DeepEqual(effs, want) {
		t.Fatalf("marking played:\n got %#v\nwant %#v", effs, want)
	}
	for _, who := range []string{"alice", "carol", "erin"} {
		l, _ := find[Listed](mustStep(t, b, List{By: who}, marked))
		if got := l.Messages[1]; !reflect.DeepEqual(got, played) {
			t.Errorf("%s sees %#v, want %#v", who, got, played)
		}
	}

	if effs := mustStep(t, b, MarkPlayed{By: "carol", ID: "m1", Played: true}, marked.Add(time.Minute)); len(effs) != 0 {
		t.Errorf("marking a played message played again made %#v", effs)
	}
	if got := b.Messages[0].PlayedBy; got != "bob" {
		t.Errorf("PlayedBy = %q after a second mark, want the first, bob", got)
	}

	effs = mustStep(t, b, MarkPlayed{By: "carol", ID: "m1"}, marked.Add(2*time.Minute))
	unplayed := withOwner(msg("m1", t0))
	want = []Effect{Persist{}, Event{Type: EventPlayed, Users: viewers, Message: unplayed}, MWI{New: 2, Old: 0, Users: viewers}}
	if !reflect.DeepEqual(effs, want) {
		t.Fatalf("marking unplayed:\n got %#v\nwant %#v", effs, want)
	}
	l, _ := find[Listed](mustStep(t, b, List{By: "bob"}, marked))
	if got := l.Messages[1]; !reflect.DeepEqual(got, unplayed) {
		t.Errorf("bob sees %#v after unplayed, want %#v", got, unplayed)
	}

	for _, tt := range []struct {
		in   MarkPlayed
		code string
	}{
		{MarkPlayed{By: "mallory", ID: "m1", Played: true}, "not_allowed"},
		{MarkPlayed{By: "bob", ID: "m9", Played: true}, "not_found"},
	} {
		if _, err := b.Step(tt.in, marked); code(t, err) != tt.code {
			t.Errorf("%#v: %v, want %s", tt.in, err, tt.code)
		}
	}
}

func TestOwnerRights(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	locked := Settings{VoicemailDownload: false, VoicemailDelete: false}
	tests := []struct {
		name     string
		settings *Settings
		in       any
		wantCode string
	}{
		{name: "owner lists", in: List{By: "alice"}},
		{name: "owner lists with download and delete off", settings: &locked, in: List{By: "alice"}},
		{name: "owner marks played", settings: &locked, in: MarkPlayed{By: "alice", ID: "m1", Played: true}},
		{name: "owner downloads by default", in: Fetch{By: "alice", ID: "m1", Download: true}},
		{name: "owner's download off", settings: &locked, in: Fetch{By: "alice", ID: "m1", Download: true}, wantCode: "not_allowed"},
		{name: "owner streams with download off", settings: &locked, in: Fetch{By: "alice", ID: "m1"}},
		{name: "owner's delete off", settings: &locked, in: Delete{By: "alice", ID: "m1"}, wantCode: "not_allowed"},
		{name: "owner's delete back on", settings: &Settings{VoicemailDelete: true}, in: Delete{By: "alice", ID: "m1"}},
		{name: "owner's access cannot be revoked", in: Revoke{Admin: true, User: "alice"}, wantCode: "owner_access"},
		{name: "nor revoked by the owner", in: Revoke{By: "alice", User: "alice"}, wantCode: "owner_access"},
		{name: "nor granted away", in: Grant{Admin: true, User: "alice", Levels: []Level{LevelDownload}}, wantCode: "owner_access"},
		{name: "nor emptied", in: Grant{Admin: true, User: "alice", Levels: []Level{}}, wantCode: "owner_access"},
		{name: "granting the owner access changes nothing", in: Grant{Admin: true, User: "alice", Levels: []Level{LevelAccess}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := shared(t)
			if tt.settings != nil {
				mustStep(t, b, *tt.settings, now)
			}
			_, err := b.Step(tt.in, now)
			if got := code(t, err); got != tt.wantCode {
				t.Fatalf("refusal %q (%v), want %q", got, err, tt.wantCode)
			}
			if !b.May("alice", LevelAccess, false) || b.Viewers()[0] != "alice" {
				t.Errorf("the owner lost access: viewers %v", b.Viewers())
			}
		})
	}
}

func TestGrantRevoke(t *testing.T) {
	now := t0.Add(2 * time.Hour)
	tests := []struct {
		name     string
		kind     string
		in       any
		wantCode string
		persist  bool
		user     string // whose levels to check after
		levels   []Level
	}{
		{name: "owner grants", kind: KindUser, in: Grant{By: "alice", User: "bob", Levels: []Level{LevelShare, LevelAccess, LevelShare}},
			persist: true, user: "bob", levels: []Level{LevelAccess, LevelShare}},
		{name: "admin grants", kind: KindUser, in: Grant{Admin: true, User: "frank", Levels: []Level{LevelAccess, LevelDelete}},
			persist: true, user: "frank", levels: []Level{LevelAccess, LevelDelete}},
		{name: "same levels again", kind: KindUser, in: Grant{By: "alice", User: "carol", Levels: []Level{LevelDownload, LevelAccess}},
			user: "carol", levels: []Level{LevelAccess, LevelDownload}},
		{name: "another user may not grant", kind: KindUser, in: Grant{By: "erin", User: "frank", Levels: []Level{LevelAccess}}, wantCode: "not_allowed",
			user: "frank"},
		{name: "nor grant themselves more", kind: KindUser, in: Grant{By: "bob", User: "bob", Levels: []Level{LevelAccess, LevelDelete}}, wantCode: "not_allowed",
			user: "bob", levels: []Level{LevelAccess}},
		{name: "unknown level", kind: KindUser, in: Grant{By: "alice", User: "bob", Levels: []Level{LevelAccess, "burn"}}, wantCode: "invalid_field",
			user: "bob", levels: []Level{LevelAccess}},
		{name: "levels without access", kind: KindUser, in: Grant{By: "alice", User: "bob", Levels: []Level{LevelDelete}}, wantCode: "invalid_field",
			user: "bob", levels: []Level{LevelAccess}},
		{name: "no user", kind: KindUser, in: Grant{By: "alice", Levels: []Level{LevelAccess}}, wantCode: "invalid_field"},
		{name: "owner revokes", kind: KindUser, in: Revoke{By: "alice", User: "carol"}, persist: true, user: "carol"},
		{name: "admin revokes", kind: KindUser, in: Revoke{Admin: true, User: "dave"}, persist: true, user: "dave"},
		{name: "revoking one with nothing", kind: KindUser, in: Revoke{By: "alice", User: "frank"}, user: "frank"},
		{name: "another user may not revoke", kind: KindUser, in: Revoke{By: "bob", User: "carol"}, wantCode: "not_allowed",
			user: "carol", levels: []Level{LevelAccess, LevelDownload}},
		{name: "admin grants on a queue", kind: KindQueue, in: Grant{Admin: true, User: "frank", Levels: []Level{LevelAccess}},
			persist: true, user: "frank", levels: []Level{LevelAccess}},
		{name: "nobody else on a queue", kind: KindQueue, in: Grant{By: "bob", User: "frank", Levels: []Level{LevelAccess}}, wantCode: "not_allowed",
			user: "frank"},
		{name: "a user named as the group is no owner", kind: KindSharedLineGroup, in: Grant{By: "alice", User: "frank", Levels: []Level{LevelAccess}}, wantCode: "not_allowed",
			user: "frank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("alice", tt.kind)
			b.Access = map[string][]Level{"bob": {LevelAccess}, "carol": {LevelAccess, LevelDownload}, "dave": {LevelAccess, LevelDelete}}
			effs, err := b.Step(tt.in, now)
			if got := code(t, err); got != tt.wantCode {
				t.Fatalf("refusal %q (%v), want %q", got, err, tt.wantCode)
			}
			if _, ok := find[Persist](effs); ok != tt.persist {
				t.Errorf("Persist = %v, want %v (effects %#v)", ok, tt.persist, effs)
			}
			if _, ok := find[MWI](effs); ok {
				t.Errorf("access changes made an MWI: %#v", effs)
			}
			if tt.user != "" && !slices.Equal(b.Access[tt.user], tt.levels) {
				t.Errorf("%s has %v, want %v", tt.user, b.Access[tt.user], tt.levels)
			}
			if want := len(tt.levels) > 0; tt.user != "" && b.May(tt.user, LevelAccess, false) != want {
				t.Errorf("May(%s, access) = %v with levels %v", tt.user, !want, tt.levels)
			}
		})
	}
}

func TestRevokedUserLosesAccess(t *testing.T) {
	b := shared(t)
	mustStep(t, b, Revoke{By: "alice", User: "bob"}, t0.Add(2*time.Hour))
	if _, err := b.Step(List{By: "bob"}, t0.Add(2*time.Hour)); code(t, err) != "not_allowed" {
		t.Errorf("a revoked user lists: %v", err)
	}
	effs := mustStep(t, b, Deposit{Message: msg("m3", t0.Add(3*time.Hour))}, t0.Add(3*time.Hour))
	ev, _ := find[Event](effs)
	if want := []string{"alice", "carol", "dave", "erin"}; !slices.Equal(ev.Users, want) {
		t.Errorf("a deposit's event goes to %v, want %v", ev.Users, want)
	}
}

func TestRetention(t *testing.T) {
	day := 24 * time.Hour
	b := New("q1", KindQueue)
	b.Access = map[string][]Level{"bob": {LevelAccess}}
	if effs := mustStep(t, b, Settings{Retention: day}, t0); !reflect.DeepEqual(effs, []Effect{Persist{}}) {
		t.Fatalf("setting retention on an empty inbox: %#v", effs)
	}
	effs := mustStep(t, b, Deposit{Message: msg("m1", t0)}, t0)
	if w, _ := find[WakeAt](effs); !w.At.Equal(t0.Add(day)) {
		t.Errorf("first deposit wakes at %v, want %v", w.At, t0.Add(day))
	}
	effs = mustStep(t, b, Deposit{Message: msg("m2", t0.Add(time.Hour))}, t0.Add(time.Hour))
	if _, ok := find[WakeAt](effs); ok {
		t.Errorf("a newer message moved the wake-up: %#v", effs)
	}

	tests := []struct {
		name string
		at   time.Time
		want []Effect
		left []string
	}{
		// A tick that came early asks for the same deadline again.
		{name: "before the deadline nothing goes", at: t0.Add(day - time.Second), want: []Effect{WakeAt{At: t0.Add(day)}}, left: []string{"m2", "m1"}},
		{name: "at the deadline the older goes", at: t0.Add(day), left: []string{"m2"}, want: []Effect{
			Persist{}, RemoveAudio{ID: "m1"},
			Event{Type: EventDeleted, Users: []string{"bob"}, Message: Message{ID: "m1", Owner: "q1", From: "+15550100", CallID: "call-m1", ReceivedAt: t0, DurationSeconds: 12}},
			MWI{New: 1, Users: []string{"bob"}}, WakeAt{At: t0.Add(time.Hour + day)},
		}},
		{name: "then the newer", at: t0.Add(time.Hour + day), left: nil, want: []Effect{
			Persist{}, RemoveAudio{ID: "m2"},
			Event{Type: EventDeleted, Users: []string{"bob"}, Message: Message{ID: "m2", Owner: "q1", From: "+15550100", CallID: "call-m2", ReceivedAt: t0.Add(time.Hour), DurationSeconds: 12}},
			MWI{Users: []string{"bob"}}, // the fired timer was the last: nothing to cancel
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			effs := mustStep(t, b, Tick{}, tt.at)
			if !reflect.DeepEqual(effs, tt.want) {
				t.Errorf("tick effects\n got %#v\nwant %#v", effs, tt.want)
			}
			if got := ids(b.newestFirst()); !slices.Equal(got, tt.left) {
				t.Errorf("left %v, want %v", got, tt.left)
			}
		})
	}
}

func TestRetentionAtOtherInputs(t *testing.T) {
	b := shared(t)
	mustStep(t, b, Settings{VoicemailDownload: true, VoicemailDelete: true, Retention: time.Hour}, t0.Add(30*time.Minute))
	// m1 (t0) is due at t0+1h: a List then neither shows it nor keeps it.
	effs := mustStep(t, b, List{By: "bob"}, t0.Add(time.Hour))
	l, _ := find[Listed](effs)
	if got := ids(l.Messages); !slices.Equal(got, []string{"m2"}) {
		t.Errorf("listed %v past the retention, want [m2]", got)
	}
	if _, ok := find[RemoveAudio](effs); !ok {
		t.Errorf("no RemoveAudio for the expired message: %#v", effs)
	}
	// Turned off, nothing more expires and no wake-up is pending.
	effs = mustStep(t, b, Settings{VoicemailDownload: true, VoicemailDelete: true}, t0.Add(time.Hour))
	if w, ok := find[WakeAt](effs); !ok || !w.At.IsZero() {
		t.Errorf("retention off: effects %#v, want WakeAt{} to cancel", effs)
	}
	if _, err := b.Step(Settings{Retention: -time.Second}, t0); code(t, err) != "invalid_field" {
		t.Errorf("negative retention: %v", err)
	}
}

func TestMWI(t *testing.T) {
	b := New("alice", KindUser)
	b.Access = map[string][]Level{"bob": {LevelAccess, LevelDelete}}
	users := []string{"alice", "bob"}
	steps := []struct {
		name string
		in   any
		want *MWI // nil: no MWI
	}{
		{"first message", Deposit{Message: msg("m1", t0)}, &MWI{New: 1, Old: 0, Users: users}},
		{"second message", Deposit{Message: msg("m2", t0)}, &MWI{New: 2, Old: 0, Users: users}},
		{"the same message again", Deposit{Message: msg("m2", t0)}, nil},
		{"a listing", List{By: "bob"}, nil},
		{"played", MarkPlayed{By: "bob", ID: "m1", Played: true}, &MWI{New: 1, Old: 1, Users: users}},
		{"played again", MarkPlayed{By: "alice", ID: "m1", Played: true}, nil},
		{"a grant", Grant{By: "alice", User: "carol", Levels: []Level{LevelAccess}}, nil},
		{"the played one deleted", Delete{By: "bob", ID: "m1"}, &MWI{New: 1, Old: 0, Users: []string{"alice", "bob", "carol"}}},
		{"unplayed of an unplayed", MarkPlayed{By: "bob", ID: "m2"}, nil},
		{"the last deleted", Delete{By: "alice", ID: "m2"}, &MWI{New: 0, Old: 0, Users: []string{"alice", "bob", "carol"}}},
	}
	for _, st := range steps {
		effs := mustStep(t, b, st.in, t0.Add(time.Minute))
		got, ok := find[MWI](effs)
		switch {
		case st.want == nil && ok:
			t.Errorf("%s: made %#v, want no MWI", st.name, got)
		case st.want != nil && !reflect.DeepEqual(got, *st.want):
			t.Errorf("%s: MWI %#v, want %#v", st.name, got, *st.want)
		}
	}
}

func TestDeposit(t *testing.T) {
	tests := []struct {
		name     string
		m        Message
		wantCode string
		want     []Effect
		kept     bool
	}{
		{name: "sub-second dropped", m: Message{ID: "m1", ReceivedAt: t0, DurationSeconds: 0.9}, want: []Effect{RemoveAudio{ID: "m1"}}},
		{name: "empty dropped", m: Message{ID: "m1", ReceivedAt: t0}, want: []Effect{RemoveAudio{ID: "m1"}}},
		{name: "one second kept", m: Message{ID: "m1", ReceivedAt: t0, DurationSeconds: 1}, kept: true, want: []Effect{
			Persist{}, Event{Type: EventReceived, Users: []string{"alice"}, Message: Message{ID: "m1", Owner: "alice", ReceivedAt: t0, DurationSeconds: 1}},
			MWI{New: 1, Users: []string{"alice"}},
		}},
		{name: "owner and played state are the inbox's", kept: true,
			m: Message{ID: "m1", Owner: "mallory", ReceivedAt: t0, DurationSeconds: 5, Played: true, PlayedBy: "x", PlayedAt: t0},
			want: []Effect{
				Persist{}, Event{Type: EventReceived, Users: []string{"alice"}, Message: Message{ID: "m1", Owner: "alice", ReceivedAt: t0, DurationSeconds: 5}},
				MWI{New: 1, Users: []string{"alice"}},
			}},
		{name: "received now when unset", m: Message{ID: "m1", DurationSeconds: 5}, kept: true, want: []Effect{
			Persist{}, Event{Type: EventReceived, Users: []string{"alice"}, Message: Message{ID: "m1", Owner: "alice", ReceivedAt: t0.Add(time.Hour), DurationSeconds: 5}},
			MWI{New: 1, Users: []string{"alice"}},
		}},
		{name: "no id", m: Message{DurationSeconds: 5}, wantCode: "invalid_field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("alice", KindUser)
			effs, err := b.Step(Deposit{Message: tt.m}, t0.Add(time.Hour))
			if got := code(t, err); got != tt.wantCode {
				t.Fatalf("refusal %q (%v), want %q", got, err, tt.wantCode)
			}
			if !reflect.DeepEqual(effs, tt.want) {
				t.Errorf("effects\n got %#v\nwant %#v", effs, tt.want)
			}
			if kept := len(b.Messages) == 1; kept != tt.kept {
				t.Errorf("kept = %v, want %v", kept, tt.kept)
			}
		})
	}

	t.Run("duplicate id is a no-op", func(t *testing.T) {
		b := New("alice", KindUser)
		mustStep(t, b, Deposit{Message: msg("m1", t0)}, t0)
		mustStep(t, b, MarkPlayed{By: "alice", ID: "m1", Played: true}, t0)
		again := msg("m1", t0.Add(time.Hour))
		again.DurationSeconds = 0.5 // not even its audio goes: it is the kept one's
		if effs := mustStep(t, b, Deposit{Message: again}, t0.Add(time.Hour)); len(effs) != 0 {
			t.Errorf("a duplicate made %#v", effs)
		}
		if len(b.Messages) != 1 || !b.Messages[0].Played || !b.Messages[0].ReceivedAt.Equal(t0) {
			t.Errorf("a duplicate changed the inbox: %#v", b.Messages)
		}
	})
}

func TestUnknownInput(t *testing.T) {
	b := shared(t)
	effs, err := b.Step(struct{}{}, t0)
	if effs != nil || err != nil {
		t.Errorf("an unknown input: %#v, %v", effs, err)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	b := shared(t)
	mustStep(t, b, MarkPlayed{By: "bob", ID: "m1", Played: true}, t0.Add(2*time.Hour))
	mustStep(t, b, Settings{VoicemailDownload: false, VoicemailDelete: true, Retention: 30 * 24 * time.Hour}, t0.Add(2*time.Hour))
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var got Inbox
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	got.wake = b.wake // not persisted, by design
	if !reflect.DeepEqual(&got, b) {
		t.Errorf("round trip\n got %#v\nwant %#v", &got, b)
	}
	// A reloaded inbox has no timer: its first step asks for one.
	got.wake = time.Time{}
	effs := mustStep(t, &got, Tick{}, t0.Add(3*time.Hour))
	if w, _ := find[WakeAt](effs); !w.At.Equal(t0.Add(30 * 24 * time.Hour)) {
		t.Errorf("reloaded inbox's first step: %#v, want a WakeAt at the retention deadline", effs)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("unmarshal to a map: %v", err)
	}
	for _, k := range []string{"owner", "owner_kind", "messages", "access", "voicemail_download", "voicemail_delete", "retention"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("field %q missing from %s", k, raw)
		}
	}
}

func TestListOrder(t *testing.T) {
	b := New("alice", KindUser)
	for _, m := range []Message{msg("a", t0.Add(time.Minute)), msg("b", t0), msg("c", t0.Add(time.Minute)), msg("d", t0.Add(2*time.Minute))} {
		mustStep(t, b, Deposit{Message: m}, t0.Add(time.Hour))
	}
	l, _ := find[Listed](mustStep(t, b, List{By: "alice"}, t0.Add(time.Hour)))
	// Newest first; of two received at the same instant, the later deposited.
	if got, want := ids(l.Messages), []string{"d", "c", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
}
