package line

import "time"

// The user as a member of call queues. A member may be in several queues,
// and each queue grain decides alone whom to offer its calls; the member's
// line grain is the one place that sees all of them, so it arbitrates: a
// queue claims the member before an offer, and the claim holds through the
// call and its wrap-up. No member is ever offered two queue calls at once,
// and wrap-up holds across every queue (INTERFACE.md §5).

// Agent is who holds the member now: a queue's call ringing for or served
// by them, and the wrap-up after the last one. The call grain lets an
// offer go once the member's phones have stopped (their CANCEL is sent), so
// the next offer never rings a phone that still rings for the last one; a
// ring claim whose release was lost (the call grain gone) lapses at
// RingUntil.
type Agent struct {
	Queue, Call string // the claim; "" when free
	Serving     bool
	RingUntil   time.Time
	WrapUntil   time.Time
}

// AgentFacts are what a claim is weighed against besides the agent itself.
type AgentFacts struct {
	Registered  bool // the member has a phone to ring
	OnCall      bool // a call (not a queue's) is up on their line
	AllowOnCall bool // the queue rings members on a call (receive_while_on_call)
}

// Claim takes the member for queue's call until until (or its serving)
// when they are free: registered, held by no other call, past their
// wrap-up, and not on a call unless the queue allows it. A repeated claim
// for the same call holds.
func (a *Agent) Claim(queue, call string, f AgentFacts, until, now time.Time) bool {
	a.lapse(now)
	switch {
	case a.Queue == queue && a.Call == call:
		return true
	case a.Call != "", now.Before(a.WrapUntil), !f.Registered, f.OnCall && !f.AllowOnCall:
		return false
	}
	a.Queue, a.Call, a.Serving, a.RingUntil = queue, call, false, until
	return true
}

// lapse frees a ring claim past its time.
func (a *Agent) lapse(now time.Time) {
	if a.Call != "" && !a.Serving && !a.RingUntil.IsZero() && !now.Before(a.RingUntil) {
		*a = Agent{WrapUntil: a.WrapUntil}
	}
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

// Presence is the member as the queues see them: taken while a queue's
// call holds them (the claiming queue's too: it knows its own offer, but
// not whether the phones have stopped ringing for it yet), and wrapping up
// until wrapUntil.
func (a *Agent) Presence(now time.Time) (taken bool, wrapUntil time.Time) {
	a.lapse(now)
	if now.Before(a.WrapUntil) {
		wrapUntil = a.WrapUntil
	}
	return a.Call != "", wrapUntil
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
