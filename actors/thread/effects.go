package thread

import "time"

// The effects of Thread.Step, in the order the grain carries them out:
// Persist first (nothing is sent or announced before the state is stored),
// then Notify and Send, WakeAt last.

// Persist: the state changed; the grain writes it, fenced, before anything
// else.
type Persist struct{}

// Send texts the peer: From is the owner's number the peer sees, To the
// peer.
type Send struct{ From, To, Text string }

// Notify is an SSE notice (sms.received, sms.claimed or sms.released) to
// Users. Thread is the thread as it stood when the notice was made; Reason
// is set for sms.released, Message for sms.received.
type Notify struct {
	Type    string
	Users   []string
	Thread  Summary
	Reason  string
	Message *Message
}

// WakeAt asks for a Tick at At, the claim's release (zero: none pending).
type WakeAt struct{ At time.Time }

// Effect is one of the types above.
type Effect = any
