package node

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/switchboard/switchboard/actors/line"
	sipedge "github.com/switchboard/switchboard/api/sipedge"
)

// A lamp reads the same line state from the local line grain's Update and
// from the JSON another node sends for it; anything else is not a line.
func TestLineUpdateOf(t *testing.T) {
	u := line.Update{Line: "dan", Call: line.CallView{ID: "c2", State: "held"},
		Calls: []line.CallView{{ID: "c1", State: "active", Peer: "1004"}, {ID: "c2", State: "held", Locked: true}}}
	want := sipedge.LineUpdate{Line: "dan", Calls: []sipedge.LineCall{{ID: "c1", State: "active", Peer: "1004"}, {ID: "c2", State: "held", Locked: true}}}
	raw, _ := json.Marshal(u)
	for name, data := range map[string]any{"local": u, "from another node": json.RawMessage(raw)} {
		got, ok := lineUpdateOf(data)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %+v %v, want %+v", name, got, ok, want)
		}
	}
	for name, data := range map[string]any{"a map": map[string]any{"line": "dan"}, "bad JSON": json.RawMessage(`{"calls":7}`)} {
		if _, ok := lineUpdateOf(data); ok {
			t.Fatalf("%s read as a line update", name)
		}
	}
}
