package call

import (
	"fmt"
	"time"
)

// The effects of a step. Call.Step returns them as a Ready, sorted by the
// obligation each puts on the grain (as raft's Ready sorts what to persist
// before what to send); within one obligation they keep the order the rules
// produced them in.

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

// Adopt makes an inbound leg (a SIP pickup) part of the call: accept its
// offer, answer it with Peer's codecs, bridge it with Peer.
type Adopt struct{ Leg, Peer string }

// Hear sets who hears whom among the call's participants (parties.go
// computes it): each route's Leg hears the legs it names, and nobody else.
type Hear struct{ Routes []Route }

// Chime plays the join/leave chime to legs (000 L112-114).
type Chime struct{ Legs []string }

// Tone plays a named tone (ToneEntry, ToneNotice) once to legs.
type Tone struct {
	Name string
	Legs []string
}

// PersistLock writes the call's lock to etcd, fenced, before the 200.
type PersistLock struct{ Locked bool }

// PersistMonitor writes the call's monitoring slot to etcd, fenced: By
// monitors in Mode ("" By: the slot is free again). Of two twins of the
// grain, only one can hold it.
type PersistMonitor struct{ By, Mode string }

// WakeAt asks for a Tick at At (zero: none pending).
type WakeAt struct{ At time.Time }

// Finished: the call is over; release media, write History, stop.
type Finished struct {
	Outcome string
	History []HistoryEntry
}

// Event is a domain event for SSE and line watchers: those who see the
// call get it, and Also, but not Hide.
type Event struct {
	Type string
	Also []string
	Hide []string
}

// HistoryEntry is one party's record of the call.
type HistoryEntry struct {
	Owner     string
	Direction string // inbound | outbound
	Peer      string
	Line      string
	Label     string
	Outcome   string
}

// Refusal answers a REST control that the rules refuse. Status is the HTTP
// status, but for 488: an offer refused by the SRTP policy, which only a
// SIP request (a *8 pickup's INVITE) can make.
type Refusal struct {
	Status  int
	Code    string
	Message string
	// SIPStatus, when set, is how a phone is answered instead of the
	// status's usual mapping (SIP).
	SIPStatus int
}

func (r *Refusal) Error() string { return r.Message }

// asRefusal is err as the rules' refusal; any other error is an internal one.
func asRefusal(err error) *Refusal {
	if r, ok := err.(*Refusal); ok {
		return r
	}
	return &Refusal{Status: 500, Code: "internal", Message: err.Error()}
}

// SIP is how a refusal answers a phone that asked over SIP (a *8 pickup's
// INVITE): a call that cannot be taken now is busy; a target that does not
// exist is not found; what is down is unavailable; an offer the SRTP policy
// refuses is not acceptable; the rest is forbidden.
func (r *Refusal) SIP() (code int, reason string) {
	if r.SIPStatus == 403 {
		return 403, "Forbidden"
	}
	switch r.Status {
	case 488:
		return 488, "Not Acceptable Here"
	case 409:
		return 486, "Busy Here"
	case 404:
		return 404, "Not Found"
	case 500, 503:
		return 503, "Service Unavailable"
	}
	return 403, "Forbidden"
}

// Effect is one of the effect types above.
type Effect any

// Ready is one step's effects by obligation, in the order the grain
// carries them out:
//  1. Persist: durable, fenced facts (a lock, the monitoring slot),
//     written before anything that acknowledges them. When one cannot be
//     written, the step's Media and Send are dropped as after a media
//     failure (its End still happens) and the core hears why (LockLost,
//     MonitorLost) and undoes what it can;
//  2. Media: the media worker's changes, in order (Connect, AcceptAnswer,
//     Adopt, HoldMedia, Hear, Chime). SIP answers built on them (a 200 with
//     the relay's SDP) come after. When one fails, the rest of Media and all
//     of Send are dropped and the failure comes back to the core as Failed;
//  3. End: legs to end, carried out even after a media failure (each one
//     frees a phone or a trunk channel);
//  4. Send: SIP toward the phones: responses and new INVITEs;
//  5. Wake, Events, Finished: the timer, what watchers learn, the end.
type Ready struct {
	Persist  []Effect
	Media    []Effect
	End      []EndLeg
	Send     []Effect
	Wake     *WakeAt // the step's last word on the timer; nil: unchanged
	Events   []Event
	Finished *Finished
}

// readyOf sorts the effects the rules produced, in their order, into
// obligations.
func readyOf(effs []Effect) Ready {
	var r Ready
	for _, e := range effs {
		switch e := e.(type) {
		case PersistLock, PersistMonitor:
			r.Persist = append(r.Persist, e)
		case Connect, AcceptAnswer, Adopt, HoldMedia, Hear, Chime, Tone, Wait:
			r.Media = append(r.Media, e)
		case EndLeg:
			r.End = append(r.End, e)
		case Respond, Originate, TellQueue, RouteTo:
			r.Send = append(r.Send, e)
		case WakeAt:
			r.Wake = &e
		case Event:
			r.Events = append(r.Events, e)
		case Finished:
			r.Finished = &e
		default:
			panic(fmt.Sprintf("call: an effect of no obligation: %T", e))
		}
	}
	return r
}
