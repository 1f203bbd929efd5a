package inbox

import "slices"

// Level is one right on an inbox (DOMAIN §12 access levels).
type Level string

// The access levels. LevelAccess lists and plays; the others add to it.
const (
	LevelAccess   Level = "access"
	LevelDownload Level = "download"
	LevelDelete   Level = "delete"
	LevelShare    Level = "share"
)

// levels is every level, in the order listings show them.
var levels = []Level{LevelAccess, LevelDownload, LevelDelete, LevelShare}

// May is the one access rule. The admin token may everything. The owner of a
// user inbox always has access and share, and download and delete as their
// VoicemailDownload and VoicemailDelete settings say. Everyone else has what
// Access grants them; download, delete and share each need access as well,
// so a user whose access is gone keeps no other right (Grant refuses a list
// without access, and this holds for any state however it was stored).
func (b *Inbox) May(user string, level Level, admin bool) bool {
	if admin {
		return true
	}
	if user == "" {
		return false
	}
	if b.userOwned(user) {
		switch level {
		case LevelAccess, LevelShare:
			return true
		case LevelDownload:
			return b.VoicemailDownload
		case LevelDelete:
			return b.VoicemailDelete
		}
		return false
	}
	granted := b.Access[user]
	return slices.Contains(granted, LevelAccess) && slices.Contains(granted, level)
}

// Viewers is everyone with access, the owner of a user inbox first, then the
// others sorted: who gets the inbox's events and message-waiting counts.
func (b *Inbox) Viewers() []string {
	var out []string
	if b.OwnerKind == KindUser {
		out = append(out, b.Owner)
	}
	var others []string
	for user := range b.Access {
		if !b.userOwned(user) && b.May(user, LevelAccess, false) {
			others = append(others, user)
		}
	}
	slices.Sort(others)
	return append(out, others...)
}

// UserLevels is one user's rights as GET …/access lists them.
type UserLevels struct {
	User   string  `json:"user"`
	Levels []Level `json:"levels"`
}

// Grants lists everyone with access and their levels as May sees them: the
// owner of a user inbox first (rights from the settings), then the others
// sorted.
func (b *Inbox) Grants() []UserLevels {
	out := []UserLevels{}
	for _, user := range b.Viewers() {
		var have []Level
		for _, l := range levels {
			if b.May(user, l, false) {
				have = append(have, l)
			}
		}
		out = append(out, UserLevels{User: user, Levels: have})
	}
	return out
}

// userOwned is whether user owns this inbox as a user: a queue's or a
// group's inbox has no owner among the users.
func (b *Inbox) userOwned(user string) bool {
	return b.OwnerKind == KindUser && user == b.Owner
}
