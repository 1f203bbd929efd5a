package call

import "testing"

func TestVisible(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v       Viewer
		line    string
		parties []string
		want    bool
	}{
		{"the admin sees every call", Viewer{Admin: true}, "bob", nil, true},
		{"the line's owner", Viewer{User: "bob"}, "bob", []string{"ann", "dan"}, true},
		{"a delegate of the line", Viewer{User: "dan", Shared: []string{"bob"}}, "bob", []string{"ann"}, true},
		{"a party of the call", Viewer{User: "ann"}, "bob", []string{"ann", "bob"}, true},
		{"anyone else", Viewer{User: "eve", Shared: []string{"carol"}}, "bob", []string{"ann", "bob"}, false},
		{"nobody", Viewer{}, "", []string{""}, false},
	} {
		if got := Visible(tc.v, tc.line, tc.parties); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
