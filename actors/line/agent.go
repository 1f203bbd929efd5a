package line

import "time"

// The user as a member of call queues. A member may be in several queues,
// and each queue grain decides alone whom to offer its calls; the member's
// line grain is the one place that sees all of them, so it arbitrates: a
// queue claims the member before an offer, and the claim holds through the
// call and its wrap-up. No member is ever offered two queue calls at once,
// and wrap-up holds across every queue (INTERFACE.md §5).

// Agent is who holds the member now: a queue's call ringing for or served
// by them, and the wrap-up after the last one.
type Agent struct {
	Queue, Call string // the claim; "" when free
	Serving     bool
	WrapUntil   time.Time
}

// AgentFacts are what a claim is weighed against besides the agent itself.
type AgentFacts struct {
	Registered  bool // the member has a phone to ring
	OnCall      bool // a call (not a queue's) is up on their line
	AllowOnCall bool // the queue rings members on a call (receive_while_on_call)
}

// Claim takes the member for queue's call when they are free: registered,
// held by no other call, past their wrap-up, and not on a call unless the
// queue allows it. A repeated claim for the same call holds.
func (a *Agent) Claim(queue, call string, f AgentFacts, now time.Time) bool {
	switch {
	case a.Queue == queue && a.Call == call:
		return true
	case a.Call != "", now.Before(a.WrapUntil), !f.Registered, f.OnCall && !f.AllowOnCall:
		return false
	}
	a.Queue, a.Call, a.Serving = queue, call, false
	return true
}

// Serve: the member answered the claimed call.
func (a *Agent) Serve(queue, call string) {
	if a.Queue == queue && a.Call == call {
		a.Serving = true
	}
}

// Release lets the member go when queue's call holds them (an offer
// withdrawn or declined).
func (a *Agent) Release(queue, call string) bool {
	if a.Queue != queue || a.Call != call {
		return false
	}
	*a = Agent{WrapUntil: a.WrapUntil}
	return true
}

// WrapUp ends the served call: the member is free after until.
func (a *Agent) WrapUp(queue, call string, until time.Time) {
	if a.Queue == queue && a.Call == call {
		*a = Agent{}
	}
	if until.After(a.WrapUntil) {
		a.WrapUntil = until
	}
}

// Presence is the member as one queue sees them: Elsewhere when another
// queue's call holds them.
func (a *Agent) Presence(queue string, now time.Time) (elsewhere bool, wrapUntil time.Time) {
	if now.Before(a.WrapUntil) {
		wrapUntil = a.WrapUntil
	}
	return a.Call != "" && a.Queue != queue, wrapUntil
}

// OnCall: a call on the line is up (answered or held); a ringing one does
// not take the member.
func (cs Calls) OnCall() bool {
	for _, c := range cs {
		if c.State == "active" || c.State == "held" {
			return true
		}
	}
	return false
}
