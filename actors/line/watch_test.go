package line

import "testing"

func TestMayWatch(t *testing.T) {
	for _, tc := range []struct {
		user, line string
		want       bool
	}{
		{"ann", "bob", true},
		{"ann", "ann", true},
		{"", "bob", false}, // a trunk, or nobody authenticated
		{"ann", "", false}, // no such line
	} {
		if got := MayWatch(tc.user, tc.line); got != tc.want {
			t.Errorf("MayWatch(%q, %q) = %v, want %v", tc.user, tc.line, got, tc.want)
		}
	}
}
