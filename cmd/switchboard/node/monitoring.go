package node

import (
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/actors/delegator"
	"github.com/switchboard/switchboard/actors/monitoring"
	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

// monitorFacts gathers what actors/monitoring's rule needs to answer
// whether supervisor s may monitor user g's call: the call grain's
// question (its Deps.MonitorFacts), over REST and SIP alike.
func (n *Node) monitorFacts(_ actor.Context, s, g string) (monitoring.Facts, error) {
	f, err := gatherFacts(s, g, n.dir.MonitoringGroupsOf, n.isUser, n.delegators.Access)
	f.SharedLine = err == nil && n.shareMonitoredLine(s, g)
	return f, err
}

// shareMonitoredLine: s and g are members of one shared line group with
// monitoring on.
func (n *Node) shareMonitoredLine(s, g string) bool {
	for _, id := range n.dir.SharedLineGroupsOf(s) {
		if grp, ok := n.dir.SharedLineGroupByID(id); ok && grp.Monitoring && slices.Contains(grp.Members, g) {
			return true
		}
	}
	return false
}

// MonitorFacts is what a call grain of this node is told about supervisor
// s and user g, for the end-to-end tests.
func (n *Node) MonitorFacts(s, g string) (monitoring.Facts, error) { return n.monitorFacts(nil, s, g) }

func (n *Node) isUser(id string) bool {
	_, ok := n.dir.UserByID(id)
	return ok
}

// gatherFacts reads the monitoring groups naming s as a supervisor (the
// directory's cache: no etcd read) and asks the delegator grains of g and s
// whether the other is their accepted delegate. (The call grain adds what
// only the call knows: its queue's admins.) Someone who is not a user (a
// carrier's caller) has no relation, and no grain is asked.
func gatherFacts(s, g string, groups func(supervisor string) []directory.MonitoringGroup, isUser func(string) bool,
	access func(line, user string) (*pb.Access, error)) (monitoring.Facts, error) {
	var f monitoring.Facts
	if !isUser(s) || !isUser(g) {
		return f, nil
	}
	for _, grp := range groups(s) {
		f.Groups = append(f.Groups, monitoring.Group{ID: grp.ID, Supervisors: grp.Supervisors, Members: grp.Members,
			Modes: grp.Modes, NotifyAgent: grp.NotifyAgent, BargeTone: grp.BargeTone})
	}
	for _, pair := range [][2]string{{g, s}, {s, g}} {
		a, err := access(pair[0], pair[1])
		if err != nil {
			return monitoring.Facts{}, fmt.Errorf("monitoring: is %s a delegate of %s: %w", pair[1], pair[0], err)
		}
		if a.GetRole() == string(delegator.Delegate) {
			f.Delegation = true
			break
		}
	}
	return f, nil
}
