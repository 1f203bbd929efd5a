package inbox

import (
	"reflect"
	"testing"
)

func TestMay(t *testing.T) {
	user := New("alice", KindUser)
	user.Access = map[string][]Level{
		"bob":   {LevelAccess},
		"carol": {LevelAccess, LevelDownload, LevelDelete, LevelShare},
		"dave":  {LevelDownload, LevelDelete}, // stored without access: no right at all
	}
	locked := New("alice", KindUser)
	locked.VoicemailDownload, locked.VoicemailDelete = false, false
	queue := New("q1", KindQueue)
	queue.Access = map[string][]Level{"bob": {LevelAccess, LevelShare}}

	tests := []struct {
		name  string
		b     *Inbox
		user  string
		level Level
		admin bool
		want  bool
	}{
		{"admin may delete", queue, "", LevelDelete, true, true},
		{"admin may share", user, "zed", LevelShare, true, true},
		{"nobody without a name", user, "", LevelAccess, false, false},
		{"owner has access", locked, "alice", LevelAccess, false, true},
		{"owner may share", locked, "alice", LevelShare, false, true},
		{"owner downloads by default", user, "alice", LevelDownload, false, true},
		{"owner deletes by default", user, "alice", LevelDelete, false, true},
		{"owner's download off", locked, "alice", LevelDownload, false, false},
		{"owner's delete off", locked, "alice", LevelDelete, false, false},
		{"owner of nothing: unknown level", user, "alice", Level("burn"), false, false},
		{"access only: lists", user, "bob", LevelAccess, false, true},
		{"access only: no download", user, "bob", LevelDownload, false, false},
		{"access only: no delete", user, "bob", LevelDelete, false, false},
		{"access only: no share", user, "bob", LevelShare, false, false},
		{"all levels: download", user, "carol", LevelDownload, false, true},
		{"all levels: delete", user, "carol", LevelDelete, false, true},
		{"all levels: share", user, "carol", LevelShare, false, true},
		{"download without access", user, "dave", LevelDownload, false, false},
		{"delete without access", user, "dave", LevelDelete, false, false},
		{"stranger", user, "mallory", LevelAccess, false, false},
		{"queue member granted share", queue, "bob", LevelShare, false, true},
		{"queue member not granted delete", queue, "bob", LevelDelete, false, false},
		{"a user named as the queue owns nothing", queue, "q1", LevelAccess, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.May(tt.user, tt.level, tt.admin); got != tt.want {
				t.Errorf("May(%q, %s, admin=%v) = %v, want %v", tt.user, tt.level, tt.admin, got, tt.want)
			}
		})
	}
}

func TestViewersAndGrants(t *testing.T) {
	b := New("alice", KindUser)
	b.VoicemailDelete = false
	b.Access = map[string][]Level{
		"erin": {LevelAccess, LevelShare},
		"bob":  {LevelAccess},
		"dave": {LevelDelete}, // no access: not a viewer
	}
	if got, want := b.Viewers(), []string{"alice", "bob", "erin"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Viewers() = %v, want %v", got, want)
	}
	want := []UserLevels{
		{User: "alice", Levels: []Level{LevelAccess, LevelDownload, LevelShare}},
		{User: "bob", Levels: []Level{LevelAccess}},
		{User: "erin", Levels: []Level{LevelAccess, LevelShare}},
	}
	if got := b.Grants(); !reflect.DeepEqual(got, want) {
		t.Errorf("Grants() = %v, want %v", got, want)
	}

	q := New("q1", KindQueue)
	if got := q.Viewers(); len(got) != 0 {
		t.Errorf("an ungranted queue inbox's Viewers() = %v, want none", got)
	}
	if got := q.Grants(); got == nil || len(got) != 0 {
		t.Errorf("an ungranted queue inbox's Grants() = %#v, want an empty list", got)
	}
}
