package thread

import "time"

// The inputs of Thread.Step. Every input but Tick carries the owner's facts
// as they are now: Members (who may see and reply: a queue's members, or the
// owning user), Admins (a queue's admins, told of claims and releases) and
// ClaimRelease (the queue's claim_release_seconds; zero: as before).

// Inbound is a message from the peer. Number, when set, is the owner's
// number it was sent to (replies then go out from it); At, when set, is when
// the node took it. Internal: the peer is a user of the system, whose STOP
// or HELP is a word to a colleague, not a carrier keyword.
type Inbound struct {
	Text         string
	Internal     bool
	Number       string
	At           time.Time
	Members      []string
	Admins       []string
	ClaimRelease time.Duration
}

// Reply is a message By sends to the peer: a reply on the thread, a member's
// POST /v1/sms from the queue's number, or the owning user sending. On a
// queue's thread it claims the thread. Number, when set, is the owner's
// number the member chose to send from.
type Reply struct {
	By, Text     string
	Number       string
	Members      []string
	Admins       []string
	ClaimRelease time.Duration
}

// Release unclaims the thread: By is the holder, or Admin (the admin token
// or an admin of the queue).
type Release struct {
	By           string
	Admin        bool
	Members      []string
	Admins       []string
	ClaimRelease time.Duration
}

// Transfer gives By's claim to To, another member.
type Transfer struct {
	By, To       string
	Members      []string
	Admins       []string
	ClaimRelease time.Duration
}

// Get reads the thread: it changes nothing but what the facts (and the
// clock) change: a claim that ran out, a holder no longer a member.
type Get struct {
	Members      []string
	Admins       []string
	ClaimRelease time.Duration
}

// Tick is the wake-up the adapter schedules for the claim's release
// (WakeAt). A release already due is also made at any other input.
type Tick struct{}
