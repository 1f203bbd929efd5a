// Package call is the call grain: one virtual actor per call. machine.go is
// its pure core (state in, command and time in, new state and effects out);
// grain.go is the adapter that talks to the SIP edges, media and etcd.
package call

import (
	"fmt"
	"time"
)

// State of a call as INTERFACE.md names it.
type State string

const (
	Routing State = "routing" // INVITE received, nobody rings yet
	Ringing State = "ringing"
	Active  State = "active"
	Held    State = "held"
	Ended   State = "ended"
)

// LegState of one SIP leg.
type LegState string

const (
	LegTrying   LegState = "trying"
	LegRinging  LegState = "ringing"
	LegAnswered LegState = "answered"
	LegEnded    LegState = "ended"
)

// Role of a leg in the call.
type Role string

const (
	Caller Role = "caller"
	Callee Role = "callee"
)

// Party is one end of the call as the rules see it.
type Party struct {
	UserID   string
	Number   string // extension for users, E.164 for outside numbers
	External string // E.164 caller id a user shows towards carriers
	Display  string
	TrunkID  string
}

// Label is how the party is shown: user id, else number.
func (p Party) Label() string {
	if p.UserID != "" {
		return p.UserID
	}
	return p.Number
}

// Contact is one place a callee can be rung: a registration or a trunk.
type Contact struct {
	URI         string
	Destination string // host:port to send to
	Transport   string
	NodeID      string
	NodeAddr    string
}

// Leg is one SIP leg of the call.
type Leg struct {
	ID       string
	Role     Role
	Party    Party
	State    LegState
	NodeID   string
	NodeAddr string
}

// Settings are the tunables of the call rules.
type Settings struct {
	NoAnswer time.Duration // how long callees ring before the caller gets 480
}

// DefaultSettings are used when the node has no override.
var DefaultSettings = Settings{NoAnswer: 60 * time.Second}

// Call is the whole state of one call.
type Call struct {
	ID          string
	State       State
	From        Party
	To          Party
	Dialed      string
	Line        string // user id whose line the call is on ("" for trunk-to-trunk)
	Legs        []*Leg
	AnsweredLeg string
	HeldBy      string // leg that put the call on hold
	CreatedAt   time.Time
	AnsweredAt  time.Time
	EndedAt     time.Time
	Outcome     string
	RingUntil   time.Time
	ringingSent bool
	sawBusy     bool // a branch answered busy: the caller hears busy, not unavailable
	legSeq      int
}

// ---- inputs ----------------------------------------------------------------

// Lookup carries the facts the adapter gathered for routing the dialed string.
type Lookup struct {
	Target        *Party    // a user found by extension, id or owned number
	Contacts      []Contact // the target's registrations
	IsE164        bool      // the dialed string is +E.164
	OutboundTrunk *Contact  // where external numbers go; nil when none is configured
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
}

// Rang: a callee sent 180/183.
type Rang struct{ Leg string }

// Answered: a callee sent 2xx.
type Answered struct{ Leg string }

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

// Control is a REST command on the call.
type Control struct {
	Action string // hold | resume | hangup
	ByUser string
	Admin  bool
}

// Tick is the wake-up the adapter schedules for RingUntil.
type Tick struct{}

// MediaTimeout: no RTP from any leg for the media worker's timeout.
type MediaTimeout struct{}

// ---- effects -----------------------------------------------------------------

// Respond answers the caller's INVITE. WithSDP: attach our answer SDP.
type Respond struct {
	Leg     string
	Code    int
	Reason  string
	WithSDP bool
}

// Originate sends an INVITE on a new callee leg.
type Originate struct {
	Leg      string
	Contact  Contact
	FromUser string
	Display  string
	ToUser   string
	PAI      string // P-Asserted-Identity user part, "" for none
}

// EndLeg ends a leg: CANCEL, final response or BYE as its state requires.
type EndLeg struct {
	Leg  string
	Code int
}

// Connect joins the caller with an answered callee in media (accept the
// callee's answer, answer the caller, bridge them).
type Connect struct{ Caller, Callee string }

// HoldMedia plays the hold tone to Held and silences Holder.
type HoldMedia struct{ Holder, Held string }

// BridgeMedia reconnects two legs after hold.
type BridgeMedia struct{ A, B string }

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

// ---- the machine ---------------------------------------------------------------

// New returns a call in Routing state.
func New(id string, now time.Time) *Call {
	return &Call{ID: id, State: Routing, CreatedAt: now}
}

// Leg returns the leg with that id, or nil.
func (c *Call) Leg(id string) *Leg {
	for _, l := range c.Legs {
		if l.ID == id {
			return l
		}
	}
	return nil
}

func (c *Call) caller() *Leg {
	for _, l := range c.Legs {
		if l.Role == Caller {
			return l
		}
	}
	return nil
}

func (c *Call) other(id string) *Leg {
	if c.AnsweredLeg == "" {
		return nil
	}
	cl := c.caller()
	if cl == nil {
		return nil
	}
	switch id {
	case cl.ID:
		return c.Leg(c.AnsweredLeg)
	case c.AnsweredLeg:
		return cl
	}
	return nil
}

func (c *Call) nextLegID() string {
	c.legSeq++
	return fmt.Sprintf("%s-b%d", c.ID, c.legSeq)
}

// Step applies one input at time now and returns the effects to carry out,
// in order. A REST control the rules refuse returns a *Refusal error.
func (c *Call) Step(in any, now time.Time, s Settings) ([]Effect, error) {
	if c.State == Ended {
		if _, ok := in.(Control); ok {
			return nil, &Refusal{Status: 409, Code: "call_ended", Message: "the call has ended"}
		}
		return nil, nil
	}
	switch in := in.(type) {
	case Start:
		return c.start(in, now, s), nil
	case Rang:
		return c.ringing(in), nil
	case Answered:
		return c.answered(in, now), nil
	case Failed:
		return c.failed(in, now), nil
	case Cancelled:
		return c.cancelled(in, now), nil
	case Bye:
		return c.bye(in, now), nil
	case Reinvite:
		return c.reinvite(in), nil
	case Control:
		return c.control(in, now)
	case Tick:
		if c.State == Ringing && !c.RingUntil.IsZero() && !now.Before(c.RingUntil) {
			return c.endUnanswered(480, "Temporarily Unavailable", "missed", now), nil
		}
		return nil, nil
	case MediaTimeout:
		if c.State == Active {
			return c.hangupAll("rtp_timeout", now), nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("call: unknown input %T", in)
}

func (c *Call) start(in Start, now time.Time, s Settings) []Effect {
	c.From = in.From
	c.Dialed = in.Dialed
	c.Legs = append(c.Legs, &Leg{ID: in.CallerLeg, Role: Caller, Party: in.From, State: LegTrying, NodeID: in.NodeID, NodeAddr: in.NodeAddr})
	if c.From.UserID != "" {
		c.Line = c.From.UserID
	}
	refuse := func(code int, reason, outcome string) []Effect {
		return c.finish([]Effect{Respond{Leg: in.CallerLeg, Code: code, Reason: reason}}, outcome, now)
	}
	if in.Draining {
		return refuse(503, "Service Unavailable", "failed")
	}
	if in.OfferCode != 0 {
		return refuse(in.OfferCode, "Not Acceptable Here", "failed")
	}
	lk := in.Lookup
	switch {
	case lk.Target != nil:
		c.To = *lk.Target
		c.Line = lk.Target.UserID
		if len(lk.Contacts) == 0 {
			return refuse(480, "Temporarily Unavailable", "missed")
		}
		var effs []Effect
		for _, ct := range lk.Contacts {
			effs = append(effs, c.addCallee(ct, c.To, false))
		}
		return c.ring(effs, now, s)
	case lk.IsE164 && in.From.UserID != "" && lk.OutboundTrunk != nil:
		c.To = Party{Number: in.Dialed, TrunkID: lk.OutboundTrunk.URI}
		return c.ring([]Effect{c.addCallee(*lk.OutboundTrunk, c.To, true)}, now, s)
	default:
		return refuse(404, "Not Found", "failed")
	}
}

// addCallee creates a callee leg; toTrunk sends the caller's number in From
// and P-Asserted-Identity as carriers expect.
func (c *Call) addCallee(ct Contact, to Party, toTrunk bool) Effect {
	l := &Leg{ID: c.nextLegID(), Role: Callee, Party: to, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
	c.Legs = append(c.Legs, l)
	o := Originate{Leg: l.ID, Contact: ct, FromUser: c.From.Number, Display: c.From.Display, ToUser: to.Number}
	if o.ToUser == "" {
		o.ToUser = to.UserID
	}
	if toTrunk {
		if c.From.External != "" {
			o.FromUser = c.From.External
		}
		o.PAI = o.FromUser
	}
	return o
}

func (c *Call) ring(effs []Effect, now time.Time, s Settings) []Effect {
	c.State = Ringing
	c.RingUntil = now.Add(s.NoAnswer)
	return append(effs, WakeAt{At: c.RingUntil}, Event{Type: "call.ringing"})
}

func (c *Call) ringing(in Rang) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.Role != Callee || l.State != LegTrying || c.State != Ringing {
		return nil
	}
	l.State = LegRinging
	if c.ringingSent {
		return nil
	}
	c.ringingSent = true
	return []Effect{Respond{Leg: c.caller().ID, Code: 180, Reason: "Ringing"}}
}

func (c *Call) answered(in Answered, now time.Time) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.Role != Callee || l.ID == c.AnsweredLeg {
		return nil // not a branch, or a repeated answer of the winner
	}
	if c.State != Ringing || l.State == LegEnded {
		// Another branch won the race and our CANCEL crossed this 2xx:
		// RFC 3261 13.2.2.4, the branch is acknowledged and hung up.
		l.State = LegEnded
		return []Effect{EndLeg{Leg: l.ID}}
	}
	l.State = LegAnswered
	c.AnsweredLeg = l.ID
	c.AnsweredAt = now
	c.State = Active
	c.RingUntil = time.Time{}
	c.To = l.Party
	cl := c.caller()
	cl.State = LegAnswered
	effs := []Effect{Connect{Caller: cl.ID, Callee: l.ID}, Respond{Leg: cl.ID, Code: 200, Reason: "OK", WithSDP: true}}
	for _, o := range c.Legs {
		if o.Role == Callee && o.ID != l.ID && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	return append(effs, WakeAt{}, Event{Type: "call.answered"})
}

func (c *Call) failed(in Failed, now time.Time) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.State == LegEnded {
		return nil
	}
	wasAnswered := l.State == LegAnswered
	l.State = LegEnded
	if in.Code == 486 || in.Code == 600 || in.Code == 603 {
		c.sawBusy = true
	}
	if l.Role == Caller || wasAnswered {
		// A failure on an established leg (no ACK, transport gone) ends the call.
		return c.hangupAll("failed", now)
	}
	if c.State != Ringing {
		return nil
	}
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded {
			return nil // others still ring
		}
	}
	code, reason, outcome := 480, "Temporarily Unavailable", "missed"
	if c.sawBusy {
		code, reason, outcome = 486, "Busy Here", "busy"
	}
	if c.To.TrunkID != "" && in.Code >= 400 && in.Code != 408 {
		switch in.Code {
		case 401, 407, 503:
			// The caller can answer neither the carrier's challenge nor its
			// overload; a 503 is not forwarded (RFC 3261 16.7).
			code, reason = 500, "Server Internal Error"
		default:
			// A carrier's answer says more than ours would: pass it through.
			code, reason = in.Code, ""
		}
	}
	return c.finish([]Effect{Respond{Leg: c.caller().ID, Code: code, Reason: reason}}, outcome, now)
}

func (c *Call) cancelled(in Cancelled, now time.Time) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.Role != Caller || (c.State != Ringing && c.State != Routing) {
		return nil
	}
	l.State = LegEnded // the edge already answered 487
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	return c.finish(effs, "cancelled", now)
}

func (c *Call) bye(in Bye, now time.Time) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.State == LegEnded {
		return nil
	}
	l.State = LegEnded
	return c.hangupAll("answered", now)
}

func (c *Call) reinvite(in Reinvite) []Effect {
	l := c.Leg(in.Leg)
	other := c.other(in.Leg)
	if l == nil || other == nil {
		return nil
	}
	hold := in.Direction == "sendonly" || in.Direction == "inactive"
	switch {
	case hold && c.State == Active:
		c.State, c.HeldBy = Held, l.ID
		return []Effect{HoldMedia{Holder: l.ID, Held: other.ID}, Event{Type: "call.held"}}
	case !hold && c.State == Held && c.HeldBy == l.ID:
		c.State, c.HeldBy = Active, ""
		return []Effect{BridgeMedia{A: l.ID, B: other.ID}, Event{Type: "call.resumed"}}
	}
	return nil
}

// partyLeg finds the established leg of a user taking part in the call.
func (c *Call) partyLeg(user string) *Leg {
	for _, l := range c.Legs {
		if l.Party.UserID == user && l.State != LegEnded && (l.Role == Caller || l.ID == c.AnsweredLeg || c.AnsweredLeg == "") {
			return l
		}
	}
	return nil
}

func (c *Call) control(in Control, now time.Time) ([]Effect, error) {
	var leg *Leg
	if !in.Admin {
		leg = c.partyLeg(in.ByUser)
		if leg == nil {
			return nil, &Refusal{Status: 403, Code: "forbidden", Message: "only a party to the call or an admin may control it"}
		}
	}
	switch in.Action {
	case "hangup":
		if c.State == Ringing || c.State == Routing {
			return c.endUnanswered(480, "Temporarily Unavailable", "cancelled", now), nil
		}
		return c.hangupAll("answered", now), nil
	case "hold":
		if c.State != Active {
			return nil, &Refusal{Status: 409, Code: "call_not_active", Message: "only an active call can be put on hold"}
		}
		holder := leg
		if holder == nil || c.other(holder.ID) == nil {
			holder = c.Leg(c.AnsweredLeg) // an admin holds on behalf of the answering side
		}
		return c.reinvite(Reinvite{Leg: holder.ID, Direction: "sendonly"}), nil
	case "resume":
		if c.State != Held {
			return nil, &Refusal{Status: 409, Code: "call_not_held", Message: "the call is not on hold"}
		}
		if leg != nil && leg.ID != c.HeldBy {
			// As over SIP (a sendrecv re-INVITE resumes only from the holder):
			// the held party gets the call back by pickup, not by resume.
			return nil, &Refusal{Status: 403, Code: "not_holder", Message: "only the party who put the call on hold may resume it"}
		}
		return c.reinvite(Reinvite{Leg: c.HeldBy, Direction: "sendrecv"}), nil
	}
	return nil, &Refusal{Status: 400, Code: "invalid_action", Message: fmt.Sprintf("unknown action %q", in.Action)}
}

// endUnanswered stops every ringing branch and answers the caller with code.
func (c *Call) endUnanswered(code int, reason, outcome string, now time.Time) []Effect {
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	if cl := c.caller(); cl != nil && cl.State != LegEnded {
		cl.State = LegEnded
		effs = append(effs, Respond{Leg: cl.ID, Code: code, Reason: reason})
	}
	return c.finish(effs, outcome, now)
}

// hangupAll ends every leg still up (BYE or CANCEL) and finishes the call.
func (c *Call) hangupAll(outcome string, now time.Time) []Effect {
	var effs []Effect
	for _, o := range c.Legs {
		if o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID, Code: 480})
		}
	}
	return c.finish(effs, outcome, now)
}

func (c *Call) finish(effs []Effect, outcome string, now time.Time) []Effect {
	if c.AnsweredAt.IsZero() && outcome == "answered" {
		outcome = "missed"
	}
	c.State, c.Outcome, c.EndedAt, c.RingUntil = Ended, outcome, now, time.Time{}
	return append(effs, WakeAt{}, Event{Type: "call.ended"}, Finished{Outcome: outcome, History: c.history(outcome)})
}

// history writes one entry per user taking part; delegation labels come with
// the delegation rules.
func (c *Call) history(outcome string) []HistoryEntry {
	var out []HistoryEntry
	if c.From.UserID != "" {
		out = append(out, HistoryEntry{Owner: c.From.UserID, Direction: "outbound", Peer: c.peerOf(c.To), Line: c.From.UserID, Outcome: outcome})
	}
	if c.To.UserID != "" && c.To.UserID != c.From.UserID {
		out = append(out, HistoryEntry{Owner: c.To.UserID, Direction: "inbound", Peer: c.peerOf(c.From), Line: c.To.UserID, Outcome: outcome})
	}
	return out
}

func (c *Call) peerOf(p Party) string {
	if p.Number != "" {
		return p.Number
	}
	if p.UserID != "" {
		return p.UserID
	}
	return c.Dialed
}
