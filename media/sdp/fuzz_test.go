package sdp

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse: Parse never panics, and whatever parses survives Marshal and
// Parse again unchanged. Seeds: testdata/*.sdp plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.sdp")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(phoneOffer))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		out := s.Marshal()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("marshalled form does not parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip differs\nin:  %#v\nout: %#v\n%q", s, again, out)
		}
	})
}
