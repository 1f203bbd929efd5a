package call

import (
	"reflect"
	"testing"
)

// bridge is the Hear of two talkers: each hears the other.
func bridge(a, b string) Hear { return mix(a, b) }

// mix is the Hear of talkers: each hears all the others.
func mix(legs ...string) Hear {
	var ps []Participant
	for _, l := range legs {
		ps = append(ps, Participant{Leg: l, Mode: Talk})
	}
	return Hear{Routes: Routes(ps)}
}

// Who hears whom, for every mode: talkers hear each other and whoever
// whispers to them; listeners and whisperers hear the talkers; nobody hears
// a listener, and only its target hears a whisperer.
func TestRoutes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []Participant
		want []Route
	}{
		{"two talkers", []Participant{{Leg: "a", Mode: Talk}, {Leg: "b", Mode: Talk}},
			[]Route{{Leg: "a", Hears: []string{"b"}}, {Leg: "b", Hears: []string{"a"}}}},
		{"three talkers", []Participant{{Leg: "a", Mode: Talk}, {Leg: "b", Mode: Talk}, {Leg: "c", Mode: Talk}},
			[]Route{{Leg: "a", Hears: []string{"b", "c"}}, {Leg: "b", Hears: []string{"a", "c"}}, {Leg: "c", Hears: []string{"a", "b"}}}},
		{"a listener", []Participant{{Leg: "a", Mode: Talk}, {Leg: "b", Mode: Talk}, {Leg: "s", Mode: Listen}},
			[]Route{{Leg: "a", Hears: []string{"b"}}, {Leg: "b", Hears: []string{"a"}}, {Leg: "s", Hears: []string{"a", "b"}}}},
		{"a whisper to b", []Participant{{Leg: "a", Mode: Talk}, {Leg: "b", Mode: Talk}, {Leg: "s", Mode: Whisper, To: "b"}},
			[]Route{{Leg: "a", Hears: []string{"b"}}, {Leg: "b", Hears: []string{"a", "s"}}, {Leg: "s", Hears: []string{"a", "b"}}}},
		{"a listener does not hear a whisper", []Participant{{Leg: "a", Mode: Talk}, {Leg: "b", Mode: Talk}, {Leg: "s", Mode: Whisper, To: "b"}, {Leg: "l", Mode: Listen}},
			[]Route{{Leg: "a", Hears: []string{"b"}}, {Leg: "b", Hears: []string{"a", "s"}}, {Leg: "s", Hears: []string{"a", "b"}}, {Leg: "l", Hears: []string{"a", "b"}}}},
		{"one talker alone", []Participant{{Leg: "a", Mode: Talk}}, []Route{{Leg: "a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Routes(tc.ps); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("routes\n got  %+v\n want %+v", got, tc.want)
			}
		})
	}
}
