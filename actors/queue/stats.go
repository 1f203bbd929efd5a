package queue

import (
	"math"
	"slices"
	"time"
)

// Member states in the stats (INTERFACE.md §5).
const (
	StateAvailable = "available"
	StateRinging   = "ringing"
	StateOnCall    = "on_call"
	StateWrapUp    = "wrap_up"
	StateOptedOut  = "opted_out"
	StateOffline   = "offline"
)

// Stats is the queue's real-time numbers (GET /v1/queues/{id}/stats and
// the queue.updated event).
type Stats struct {
	Waiting             int           `json:"waiting"`
	LongestWaitSeconds  int           `json:"longest_wait_seconds"`
	Completed           int           `json:"completed"`
	Abandoned           int           `json:"abandoned"`
	Overflowed          int           `json:"overflowed"`
	AverageWaitSeconds  int           `json:"average_wait_seconds"`
	ServiceLevelPercent float64       `json:"service_level_percent"`
	Members             []MemberStats `json:"members"`
}

// MemberStats is one member's state in the stats.
type MemberStats struct {
	User   string `json:"user"`
	State  string `json:"state"` // available|ringing|on_call|wrap_up|opted_out|offline
	Reason string `json:"reason"`
}

// Stats is the numbers at now. A caller counts as waiting until a member
// answers; the longest wait is of those waiting now; the average wait is
// over answered calls; the service level is the share of answered and
// abandoned calls answered within service_level_seconds, 100 before the
// first.
func (q *Queue) Stats(now time.Time) Stats {
	st := Stats{
		Waiting:             len(q.Callers),
		Completed:           q.Completed,
		Abandoned:           q.Abandoned,
		Overflowed:          q.Overflowed,
		ServiceLevelPercent: 100,
		Members:             make([]MemberStats, 0, len(q.Config.Members)),
	}
	if len(q.Callers) > 0 {
		// Callers keep arrival order: the first has waited longest.
		st.LongestWaitSeconds = max(0, int(now.Sub(q.Callers[0].Arrived)/time.Second))
	}
	if q.Answered > 0 {
		st.AverageWaitSeconds = int((q.TotalWait / time.Duration(q.Answered)).Round(time.Second) / time.Second)
	}
	if n := q.Answered + q.Abandoned; n > 0 {
		st.ServiceLevelPercent = math.Round(10000*float64(q.AnsweredInSL)/float64(n)) / 100
	}
	for _, m := range q.Config.Members {
		a := q.Agents[m.User]
		st.Members = append(st.Members, MemberStats{User: m.User, State: a.state(q, now), Reason: a.Reason})
	}
	return st
}

// state is what the stats show of a member, the first that holds of:
// opted out, offline, ringing, on a call, wrapping up, available.
func (a *Agent) state(q *Queue, now time.Time) string {
	switch {
	case !a.OptedIn:
		return StateOptedOut
	case !a.Registered:
		return StateOffline
	case a.Ringing != "":
		return StateRinging
	case a.Serving != "" || a.OnCall || a.Elsewhere:
		return StateOnCall
	case now.Before(a.wrapEnd()):
		return StateWrapUp
	}
	return StateAvailable
}

// sameStats compares what Changed announces; the longest wait grows with
// the clock alone and is left out.
func sameStats(x, y Stats) bool {
	return x.Waiting == y.Waiting && x.Completed == y.Completed && x.Abandoned == y.Abandoned &&
		x.Overflowed == y.Overflowed && x.AverageWaitSeconds == y.AverageWaitSeconds &&
		x.ServiceLevelPercent == y.ServiceLevelPercent && slices.Equal(x.Members, y.Members)
}

// MemberEntry is a member as the opt-in and opt-out answers show them.
type MemberEntry struct {
	User    string `json:"user"`
	Order   int    `json:"order"`
	OptedIn bool   `json:"opted_in"`
	Reason  string `json:"reason"`
}

// Member is user's entry, if they are a member.
func (q *Queue) Member(user string) (MemberEntry, bool) {
	i := slices.IndexFunc(q.Config.Members, func(m Member) bool { return m.User == user })
	if i < 0 {
		return MemberEntry{}, false
	}
	a := q.Agents[user]
	return MemberEntry{User: user, Order: q.Config.Members[i].Order, OptedIn: a.OptedIn, Reason: a.Reason}, true
}

// Waiting lists the waiting calls, the longest-waiting first.
func (q *Queue) Waiting() []string {
	calls := make([]string, len(q.Callers))
	for i, c := range q.Callers {
		calls[i] = c.Call
	}
	return calls
}
