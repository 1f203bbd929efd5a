// Package monitoring is the one rule of who may monitor whose calls, and
// with what grant. It is pure: an adapter gathers the Facts about a
// supervisor S and a monitored party G (the monitoring groups, the
// delegation between them, queues and shared line groups) and May decides.
// The call grain asks it for a monitoring request, over REST or SIP alike.
package monitoring

import (
	"fmt"
	"slices"
	"strings"
)

// Mode is how a supervisor takes part in a monitored call.
type Mode string

const (
	// Listen: S hears both sides; nobody hears S.
	Listen Mode = "listen"
	// Whisper: S hears both sides; only G hears S.
	Whisper Mode = "whisper"
	// Barge: S, G and the caller all hear each other.
	Barge Mode = "barge"
	// Takeover: G leaves the call; the caller and S talk alone.
	Takeover Mode = "takeover"
)

// Modes are every mode, in the order a Grant lists them.
var Modes = []Mode{Listen, Whisper, Barge, Takeover}

// Valid reports whether m is one of Modes.
func (m Mode) Valid() bool { return slices.Contains(Modes, m) }

// Group is a monitoring group as the rule reads it: its supervisors may
// monitor its members in its modes.
type Group struct {
	ID          string
	Supervisors []string
	Members     []string
	Modes       []Mode
	NotifyAgent bool
	BargeTone   bool
}

// Facts are what an adapter knows about S and G. Groups may hold any
// groups (the adapter passes those naming S as a supervisor); the rule
// itself checks that S supervises and G is a member.
type Facts struct {
	Groups []Group
	// Delegation: S and G are a delegator and an accepted delegate of
	// each other, either way round.
	Delegation bool
	// QueueAdmin: S is an admin of the queue whose call this is, and G the
	// member serving it.
	QueueAdmin bool
	// SharedLine: S and G are members of one shared line group with
	// monitoring on.
	SharedLine bool
}

// Grant is what S may do on G's call.
type Grant struct {
	// Modes allowed, in the order of Modes.
	Modes []Mode
	// NotifyAgent: G hears the notice tone and gets the SSE event when
	// monitoring starts.
	NotifyAgent bool
	// BargeTone: the caller and G hear the entry tone when S barges.
	BargeTone bool
}

// Refusal is a monitoring request the rules refuse, with its HTTP status
// and code (INTERFACE: 403 not_allowed, 403 mode_not_allowed).
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// May answers whether supervisor s may monitor g's calls, and how.
//
// A group covers the pair when it names s among its supervisors and g among
// its members. A delegation, a queue's admin over its member, or fellow
// members of a shared line group with monitoring on are covered too: those
// relations allow every mode, with no agent notice and with the barge tone.
// When several cover the pair their grants add up: the modes are the union,
// and the agent notice and the barge tone are on when any says so, so a
// second relation never takes away a notice the people monitored were
// promised.
func May(s, g string, f Facts) (Grant, *Refusal) {
	switch {
	case s == "" || g == "":
		return Grant{}, notAllowed("Only a user may monitor a user's calls.")
	case s == g:
		return Grant{}, notAllowed(fmt.Sprintf("%s cannot monitor their own calls.", s))
	}
	var (
		modes   = map[Mode]bool{}
		grant   Grant
		covered bool
	)
	for _, grp := range f.Groups {
		if !slices.Contains(grp.Supervisors, s) || !slices.Contains(grp.Members, g) {
			continue
		}
		covered = true
		for _, m := range grp.Modes {
			modes[m] = true
		}
		grant.NotifyAgent = grant.NotifyAgent || grp.NotifyAgent
		grant.BargeTone = grant.BargeTone || grp.BargeTone
	}
	if f.Delegation || f.QueueAdmin || f.SharedLine {
		covered = true
		for _, m := range Modes {
			modes[m] = true
		}
		grant.BargeTone = true
	}
	if !covered {
		return Grant{}, notAllowed(fmt.Sprintf("%s may not monitor %s's calls: no monitoring group, queue, shared line group or delegation lets them.", s, g))
	}
	grant.Modes = []Mode{}
	for _, m := range Modes {
		if modes[m] {
			grant.Modes = append(grant.Modes, m)
		}
	}
	return grant, nil
}

// Allows reports whether the grant includes mode m.
func (gr Grant) Allows(m Mode) bool { return slices.Contains(gr.Modes, m) }

// Check refuses a mode the grant does not include (403 mode_not_allowed).
func (gr Grant) Check(m Mode) *Refusal {
	if gr.Allows(m) {
		return nil
	}
	names := make([]string, len(gr.Modes))
	for i, x := range gr.Modes {
		names[i] = string(x)
	}
	allowed := "only " + strings.Join(names, ", ")
	if len(names) == 0 {
		allowed = "no mode is"
	}
	return &Refusal{Status: 403, Code: "mode_not_allowed", Message: fmt.Sprintf("Mode %s is not allowed on this call: %s.", m, allowed)}
}

func notAllowed(msg string) *Refusal { return &Refusal{Status: 403, Code: "not_allowed", Message: msg} }
