package queue

import "time"

// The effects of Queue.Step, in the order the grain carries them out.

// Arrived answers an Arrive: Overflow nil, the caller waits in the queue;
// else it goes to the Overflow target at once (the caller is not answered
// by the queue).
type Arrived struct {
	Call     string
	Overflow *Target
}

// Ring offers Call to User: the adapter claims the member on their line
// grain (never two offers at once across queues), then tells the call to
// ring the member's phones. A failed claim comes back as Refused.
type Ring struct{ Call, User string }

// Withdraw stops the offer of Call to User (no answer in ring_seconds, the
// member declined, the caller left, another member answered, the member
// opted out or left the queue). The adapter tells the call and releases
// the member's claim.
type Withdraw struct{ Call, User string }

// Serve: User answered Call; the member's claim becomes "serving".
type Serve struct{ Call, User string }

// WrapUp: User's queue call Call ended; the member wraps up until Until
// (zero: no wrap-up), across every queue they are in.
type WrapUp struct {
	Call, User string
	Until      time.Time
}

// Overflow sends a waiting caller (already answered, hearing music) to
// Target: max_wait_seconds passed.
type Overflow struct {
	Call   string
	Target Target
}

// WakeAt asks for a Tick at At (zero: none pending).
type WakeAt struct{ At time.Time }

// Changed: the stats changed (publish queue.updated; persist).
type Changed struct{}

// Effect is one of the types above.
type Effect = any
