package delegator

import (
	"reflect"
	"testing"
)

func TestPlanCrossesTheCluster(t *testing.T) {
	for _, p := range []Plan{
		{Stages: []Stage{{Users: []string{"ann"}, Seconds: 20}, {Users: []string{"bob", "dan"}}},
			Viewers: []string{"bob", "dan"}, Names: map[string]string{"ann": "Ann", "bob": "Bob"}},
		{Voicemail: true},
	} {
		if got := PlanOf(p.PB()); !reflect.DeepEqual(got, p) {
			t.Errorf("%+v came back as %+v", p, got)
		}
	}
}
