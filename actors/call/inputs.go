package call

import "time"

// The inputs of Call.Step: what the edges, the media and the clock tell a call.

// Lookup carries the facts the adapter gathered for routing the dialed string.
type Lookup struct {
	Target        *Party    // a user found by extension, id or owned number
	Contacts      []Contact // the target's registrations (when there is no Plan)
	IsE164        bool      // the dialed string is +E.164
	OutboundTrunk *Contact  // where external numbers go; nil when none is configured
	// Plan is the target's ring plan; Parties and UserContacts hold every
	// user it names. Nil: the target alone, on Contacts.
	Plan         *RingPlan
	Parties      map[string]Party
	UserContacts map[string][]Contact
	// CallerViewers and CallerNames: the delegates who see the caller's own
	// line (its history is theirs too).
	CallerViewers []string
	CallerNames   map[string]string
	// Queue: the dialed string is a queue that took the caller in.
	// Finale: it ends the call by itself (a queue's overflow to a message
	// or to disconnect). Forward: the system routes the call on (a queue's
	// overflow), so an outside number is rung for a trunk's caller too.
	Queue   *QueueRoute
	Finale  string
	Forward bool
	// Group: the dialed string is a shared line group (group.go); its
	// Plan rings the free members. RingFor: how long the plan rings (0:
	// the node's no-answer time); Then: where the call goes when nobody
	// answered (RouteTo). Pickup: a pickup group rings too after its delay.
	Group   *GroupRoute
	RingFor time.Duration
	Then    *Target
	Pickup  *PickupRing
}

// OnBehalf is a call placed by a delegate on a delegator's line (SIP
// P-Preferred-Identity or REST on_behalf_of).
type OnBehalf struct {
	Line    Party  // the delegator, as the far end must see them
	Access  Access // the caller's rights on that line
	Names   map[string]string
	Viewers []string
}

// Start is the caller's INVITE.
type Start struct {
	CallerLeg string
	NodeID    string
	NodeAddr  string
	From      Party
	Dialed    string
	Lookup    Lookup
	OfferCode int  // nonzero: the caller's SDP was refused with this SIP code
	Draining  bool // the node refuses new calls
	OnBehalf  *OnBehalf
	// CallerSRTP: the caller's policy requires SRTP; OfferSRTP: the
	// caller's offer is SRTP (media/sdp says).
	CallerSRTP bool
	OfferSRTP  bool
}

// Dial is a click-to-call (REST POST /v1/calls): From's registered Devices
// ring first; the one that answers dials Dialed exactly as From would from
// a phone (Lookup, OnBehalf as for Start).
type Dial struct {
	From     Party
	Dialed   string
	Devices  []Contact
	Lookup   Lookup
	OnBehalf *OnBehalf
	Draining bool
	FromSRTP bool // From's policy requires SRTP: a device must answer with it
}

// Rang: a callee sent 180/183.
type Rang struct{ Leg string }

// Answered: a callee sent 2xx.
type Answered struct {
	Leg string
	// Lookup, for a click-to-call device's answer: the target routed again
	// now, since phones and ring plans may have changed while the caller's
	// phones rang (nil: use the one taken at the request).
	Lookup *Lookup
	// SRTP, for a click-to-call device's answer: the answer is SRTP.
	SRTP bool
}

// Failed: a leg's INVITE got a final non-2xx, it could not be sent, or an
// established leg broke (no ACK, media refused).
type Failed struct {
	Leg  string
	Code int
}

// Cancelled: the caller cancelled its INVITE.
type Cancelled struct{ Leg string }

// Bye: the far end of a leg hung up.
type Bye struct{ Leg string }

// Reinvite: a leg's remote sent a new offer with this direction
// (sendrecv, sendonly, recvonly, inactive).
type Reinvite struct {
	Leg       string
	Direction string
}

// Control is a command on the call from REST (or a SIP feature code).
type Control struct {
	Action string // hold | resume | hangup | pickup | join | lock | unlock | transfer
	ByUser string
	Admin  bool
	Access Access // ByUser's rights on the call's line
	// A pickup over SIP arrives as the picker's own INVITE (Leg on Node);
	// over REST the picker's devices are rung (Contacts, as Party).
	Leg      string
	NodeID   string
	NodeAddr string
	Contacts []Contact
	Party    Party
	// For a SIP pickup: PartySRTP, the picker's policy requires SRTP;
	// OfferSRTP, the picker's INVITE offers it.
	PartySRTP bool
	OfferSRTP bool
	// Draining: Leg arrived at a node that drains.
	Draining bool
	// A transfer to To rings what Route routes it to, looked up as if the
	// transferor had dialled To: the target's ring plan (computed with the
	// transferor as the caller), or the outbound trunk for an outside number.
	To    string
	Route *Lookup
}

// DTMF: a digit (RFC 4733) arrived on a leg. The line's owner locks a call
// by pressing *5 during it and unlocks it with *6.
type DTMF struct {
	Leg   string
	Digit string
}

// LockLost: the lock could not be written to etcd (a stale twin, or etcd
// down); the lock is undone.
type LockLost struct{}

// Withdraw: stop ringing User's phones (a driver outside the call, a queue,
// moving on). Offer (ring.go) is its other half.
type Withdraw struct{ User string }

// MonitorLost: the monitoring slot could not be written to etcd (a stale
// twin holds it, or etcd is down); the monitoring it was for is undone.
type MonitorLost struct{}

// Tick is the wake-up the adapter schedules for the ringing's next deadline.
type Tick struct{}

// MediaTimeout: no RTP from any leg for the media worker's timeout.
type MediaTimeout struct{}
