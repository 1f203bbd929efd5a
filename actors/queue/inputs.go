package queue

import "time"

// The inputs of Queue.Step.

// Arrive: a call asks to wait in the queue. The core answers it at once
// with Overflow (closed hours, a holiday, max_calls callers waiting) or
// takes it in; Arrived says which.
type Arrive struct{ Call string }

// Answered: User answered the offer of Call: the caller stops waiting and
// the member serves it.
type Answered struct{ Call, User string }

// Declined: User's phones declined the offer of Call, or failed: the member
// is passed over for that call (Withdraw releases their line) and the
// offer moves on at once.
type Declined struct{ Call, User string }

// Refused: the offer of Call to User could not be made: the member is taken
// elsewhere (ringing for, serving or wrapping up another queue's call, as
// the member's line grain says when the offer is claimed). The member is
// busy until a Presence says otherwise; the call moves on at once.
type Refused struct{ Call, User string }

// Left: the caller hung up (or the call failed) before a member answered:
// abandoned.
type Left struct{ Call string }

// Ended: the queue call Call, served by a member, ended: the member wraps
// up for wrap_up_seconds, then is available again; completed.
type Ended struct{ Call string }

// Presence is what a member's line grain says of them, whenever it changes:
// registered phones, on a call (a call not from this queue), taken by a
// queue's call (Elsewhere: ringing for or serving it; this queue's own too,
// until the call lets the member go once their phones have stopped ringing
// for it), and wrapping up until WrapUntil (after any queue's call).
type Presence struct {
	User       string
	Registered bool
	OnCall     bool
	Elsewhere  bool
	WrapUntil  time.Time
}

// OptOut: the member stops receiving the queue's calls, with a reason
// (membership does not change). OptIn undoes it and clears the reason.
type OptOut struct{ User, Reason string }

// OptIn: see OptOut.
type OptIn struct{ User string }

// Configure: the queue's settings changed (or were first read). Members
// that stay keep their state; a removed member ringing for a call is
// withdrawn.
type Configure struct{ Config Config }

// Tick is the wake-up the adapter schedules for the core's next deadline
// (WakeAt). Deadlines already past are also acted on at any other input.
type Tick struct{}
