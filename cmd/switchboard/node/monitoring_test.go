package node

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/actors/monitoring"
	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

func TestGatherFacts(t *testing.T) {
	sales := directory.MonitoringGroup{ID: "sales", Name: "Sales", Supervisors: []string{"sue"}, Members: []string{"gus"},
		Modes: []monitoring.Mode{monitoring.Listen}, NotifyAgent: true}
	groups := func(s string) []directory.MonitoringGroup {
		if s == "sue" {
			return []directory.MonitoringGroup{sales}
		}
		return nil
	}
	users := []string{"sue", "gus", "dee", "del", "pam"}
	// Lines and who holds which role on them, as the delegator grains know.
	roles := map[[2]string]string{
		{"del", "dee"}: "delegate", // dee accepted del's invitation
		{"gus", "pam"}: "none",     // pam's invitation is pending
		{"gus", "gus"}: "owner",
	}
	down := errors.New("grain unreachable")
	for _, tc := range []struct {
		name  string
		s, g  string
		fail  string // the line whose grain fails
		want  monitoring.Facts
		asked []string // lines asked, in order
		err   bool
	}{
		{name: "a group", s: "sue", g: "gus", want: monitoring.Facts{Groups: []monitoring.Group{{ID: "sales", Supervisors: []string{"sue"},
			Members: []string{"gus"}, Modes: []monitoring.Mode{monitoring.Listen}, NotifyAgent: true}}}, asked: []string{"gus", "sue"}},
		{name: "the delegate monitors the delegator", s: "dee", g: "del", want: monitoring.Facts{Delegation: true}, asked: []string{"del"}},
		{name: "the delegator monitors the delegate", s: "del", g: "dee", want: monitoring.Facts{Delegation: true}, asked: []string{"dee", "del"}},
		{name: "a pending delegate is no delegate", s: "pam", g: "gus", want: monitoring.Facts{}, asked: []string{"gus", "pam"}},
		{name: "no relation", s: "gus", g: "dee", want: monitoring.Facts{}, asked: []string{"dee", "gus"}},
		{name: "a caller who is not a user", s: "sue", g: "+14155550100", want: monitoring.Facts{}},
		{name: "a supervisor who is not a user", s: "ghost", g: "gus", want: monitoring.Facts{}},
		{name: "a grain that cannot answer", s: "sue", g: "gus", fail: "sue", asked: []string{"gus", "sue"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			access := func(line, user string) (*pb.Access, error) {
				asked = append(asked, line)
				if line == tc.fail {
					return nil, down
				}
				role := roles[[2]string{line, user}]
				if role == "" {
					role = "none"
				}
				return &pb.Access{Role: role}, nil
			}
			got, err := gatherFacts(tc.s, tc.g, groups, func(id string) bool { return slices.Contains(users, id) }, access)
			if tc.err != (err != nil) || tc.err && !errors.Is(err, down) {
				t.Fatalf("error %v, want one: %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) || !slices.Equal(asked, tc.asked) {
				t.Fatalf("facts %+v asking %v, want %+v asking %v", got, asked, tc.want, tc.asked)
			}
		})
	}
}
