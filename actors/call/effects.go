package call

import "time"

// The effects Call.Step returns, for the grain to carry out in order.

// Respond answers the caller's INVITE. WithSDP: attach our answer SDP.
// Warning: why a refusal refuses, for the caller's phone to show.
type Respond struct {
	Leg     string
	Code    int
	Reason  string
	WithSDP bool
	Warning string
}

// Originate sends an INVITE on a new callee leg.
type Originate struct {
	Leg      string
	Contact  Contact
	FromUser string
	Display  string
	ToUser   string
	PAI      string // P-Asserted-Identity user part, "" for none
	Peer     string // the leg whose codecs the offer carries ("": the caller's)
}

// AcceptAnswer takes a pickup leg's 2xx answer into the media worker.
type AcceptAnswer struct{ Leg string }

// EndLeg ends a leg: CANCEL, final response or BYE as its state requires.
type EndLeg struct {
	Leg  string
	Code int
}

// Connect joins the caller with an answered callee in media (accept the
// callee's answer, answer the caller, bridge them). CallerUp: the caller's
// leg is already established (click-to-call), so it is not answered again.
// Adopted: the callee's leg called in (a *8 pickup of a ringing call) and
// Adopt answered it, so there is no answer of it to accept.
type Connect struct {
	Caller, Callee string
	CallerUp       bool
	Adopted        bool
}

// HoldMedia plays the hold tone to Held and silences Holder.
type HoldMedia struct{ Holder, Held string }

// BridgeMedia reconnects two legs after hold.
type BridgeMedia struct{ A, B string }

// Adopt makes an inbound leg (a SIP pickup) part of the call: accept its
// offer, answer it with Peer's codecs, bridge it with Peer.
type Adopt struct{ Leg, Peer string }

// Mix puts legs in a conference: each hears all the others.
type Mix struct{ Legs []string }

// Chime plays the join/leave chime to legs (000 L112-114).
type Chime struct{ Legs []string }

// PersistLock writes the call's lock to etcd, fenced, before the 200.
type PersistLock struct{ Locked bool }

// WakeAt asks for a Tick at At (zero: none pending).
type WakeAt struct{ At time.Time }

// Finished: the call is over; release media, write History, stop.
type Finished struct {
	Outcome string
	History []HistoryEntry
}

// Event is a domain event for SSE and line watchers.
type Event struct{ Type string }

// HistoryEntry is one party's record of the call.
type HistoryEntry struct {
	Owner     string
	Direction string // inbound | outbound
	Peer      string
	Line      string
	Label     string
	Outcome   string
}

// Refusal answers a REST control that the rules refuse.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// Effect is one of the effect types above.
type Effect any
