package line

import (
	"slices"
	"strings"
	"time"
)

// Call is one call on the line as the line shows it (Lines tab, BLF).
type Call struct {
	ID      string
	State   string // ringing | active | held
	Peer    string
	Locked  bool
	Since   time.Time
	Viewers []string
}

// Calls is the calls on a line, keyed by call id.
type Calls map[string]Call

// Update applies a call grain's report; "ended" removes the call. It says
// whether anything changed.
func (cs Calls) Update(c Call) bool {
	old, had := cs[c.ID]
	if c.State == "ended" {
		delete(cs, c.ID)
		return had
	}
	cs[c.ID] = c
	return !had || old.State != c.State || old.Locked != c.Locked || old.Peer != c.Peer
}

// List is the calls oldest first.
func (cs Calls) List() []Call {
	out := make([]Call, 0, len(cs))
	for _, c := range cs {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Call) int {
		if d := a.Since.Compare(b.Since); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// ToPickUp is the call a pickup of the line (*8<ext>) takes: the oldest
// held call, else the oldest ringing one.
func (cs Calls) ToPickUp() (Call, bool) {
	list := cs.List()
	for _, want := range []string{"held", "ringing"} {
		for _, c := range list {
			if c.State == want {
				return c, true
			}
		}
	}
	return Call{}, false
}

// ToJoin is the call a join of the line (*7<ext>) takes: the oldest
// active one (a held call is picked up, not joined).
func (cs Calls) ToJoin() (Call, bool) {
	for _, c := range cs.List() {
		if c.State == "active" {
			return c, true
		}
	}
	return Call{}, false
}
