package line

import (
	"testing"
	"time"
)

func TestLineCalls(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	steps := []struct {
		name    string
		update  Call
		changed bool
		pickup  string // id ToPickUp must give ("" none)
		join    string // id ToJoin must give ("" none)
	}{
		{"a call rings", Call{ID: "c1", State: "ringing", Since: t0}, true, "c1", ""},
		{"the same report again", Call{ID: "c1", State: "ringing", Since: t0}, false, "c1", ""},
		{"it is answered", Call{ID: "c1", State: "active", Since: t0}, true, "", "c1"},
		{"a second call rings", Call{ID: "c2", State: "ringing", Since: t0.Add(time.Second)}, true, "c2", "c1"},
		{"the first is held: held beats ringing, and is not joined", Call{ID: "c1", State: "held", Since: t0}, true, "c1", ""},
		{"a newer held call: the oldest held first", Call{ID: "c3", State: "held", Since: t0.Add(2 * time.Second)}, true, "c1", ""},
		{"locking shows", Call{ID: "c1", State: "held", Locked: true, Since: t0}, true, "c1", ""},
		{"the newest is resumed: it is the one to join", Call{ID: "c3", State: "active", Since: t0.Add(2 * time.Second)}, true, "c1", "c3"},
		{"the first ends", Call{ID: "c1", State: "ended"}, true, "c2", "c3"},
		{"ending an unknown call changes nothing", Call{ID: "zz", State: "ended"}, false, "c2", "c3"},
		{"the active call ends", Call{ID: "c3", State: "ended"}, true, "c2", ""},
	}
	cs := Calls{}
	for _, st := range steps {
		if got := cs.Update(st.update); got != st.changed {
			t.Fatalf("%s: changed=%v, want %v", st.name, got, st.changed)
		}
		c, ok := cs.ToPickUp()
		if (st.pickup == "") == ok || c.ID != st.pickup {
			t.Fatalf("%s: pickup %q (%v), want %q", st.name, c.ID, ok, st.pickup)
		}
		if c, ok := cs.ToJoin(); (st.join == "") == ok || c.ID != st.join {
			t.Fatalf("%s: join %q (%v), want %q", st.name, c.ID, ok, st.join)
		}
	}
	if l := cs.List(); len(l) != 1 || l[0].ID != "c2" {
		t.Fatalf("left: %+v", l)
	}
}
