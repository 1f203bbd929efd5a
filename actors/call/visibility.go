package call

import "slices"

// Viewer is who asks to see a call: a user (Admin: the admin token) and
// the lines they see as an accepted delegate.
type Viewer struct {
	User   string
	Admin  bool
	Shared []string
}

// Visible answers whether v may see a call on line whose parties (the
// users with a leg on it) are given: the admin sees every call, a user the
// calls on their own line, on the lines they share as a delegate, and the
// calls they are on. REST's call listings and reads ask this one rule.
func Visible(v Viewer, line string, parties []string) bool {
	if v.Admin || (v.User != "" && (line == v.User || slices.Contains(v.Shared, line))) {
		return true
	}
	return v.User != "" && slices.Contains(parties, v.User)
}
