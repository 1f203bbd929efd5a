// Package call is the call grain: one virtual actor per call. machine.go is
// its pure core (state in, command and time in, new state and effects out);
// grain.go is the adapter that talks to the SIP edges, media and etcd.
package call

import (
	"fmt"
	"maps"
	"slices"
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
	// Device is one of the caller's own phones rung by a click-to-call;
	// the first to answer becomes the caller's leg.
	Device Role = "device"
	// Supervisor is a monitoring supervisor's leg (monitor.go).
	Supervisor Role = "supervisor"
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
	AnsweredBy  string        // user who answered (a delegate answering for the line's owner)
	Parties     []Participant // who talks, listens or whispers (parties.go); the first two are the sides
	HeldBy      string        // leg that put the call on hold
	Locked      bool          // the line's owner locked the call: delegates can neither pick it up nor join
	OnBehalfOf  string        // the delegator an outgoing call was placed for
	Ring        Ringer        // who rings, stage by stage, and until when
	Pickup      *Pickup       // a pickup under way: the call is promised to it
	Transfer    *Transfer     // a transfer under way: the target rings while the other side hears music
	Monitor     *Monitoring   // a supervisor monitoring the call, or ringing to
	Queued      *Queueing     // the queue the call waits in, or was served from (queued.go)
	Shown       Party         // who the far end sees calling: the caller, or the delegator it calls for
	Callback    *Callback     // a click-to-call whose caller's devices ring
	CalledBack  bool          // click-to-call: the caller's leg is one we placed, so it gets EndLeg, never a response
	callerSRTP  bool          // click-to-call: the caller's policy requires SRTP of the device that answers
	chime       bool          // the line's owner wants the join/leave chime (000 L114), as the last join asked
	names       map[string]string
	callerViews []string // delegates who see the caller's line
	star        string   // leg whose last DTMF digit was '*'
	CreatedAt   time.Time
	AnsweredAt  time.Time
	EndedAt     time.Time
	Outcome     string
	ringingSent bool
	sawBusy     bool          // a branch answered busy: the caller hears busy, not unavailable
	sawRefusal  bool          // a branch refused the offer (488/606): the caller hears why
	ringFor     time.Duration // the route's own no-answer time (a group's ring_seconds); 0: the node's
	then        *Target       // where the call goes when nobody answers (a group's overflow)
	pickupAt    *pickupRing   // a pickup group's ring, once its delay has passed
	legSeq      int
}

// Pickup is a pickup (or join) of this call under way: the picker's
// devices ring.
type Pickup struct {
	By   string   // user picking up
	Legs []string // the picker's ringing legs
	Join bool     // join the call (three-way) instead of taking the holder's place
}

// Callback is a click-to-call whose caller's devices ring: Lookup is
// routed once one of Legs answers.
type Callback struct {
	Legs   []string
	Lookup Lookup
}

// Access is what a user may do on the call's line, from the delegator grain.
type Access struct {
	Role       string // owner | delegate | member (of a shared line group) | none
	Privileges []string
	JoinChime  bool // the line's owner wants a chime when someone joins or leaves (000 L114)
	LockPolicy bool // a group's: its members may lock their calls (002 L10462)
}

func (a Access) has(p string) bool {
	for _, x := range a.Privileges {
		if x == p {
			return true
		}
	}
	return false
}

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

func (c *Call) nextLegID() string {
	c.legSeq++
	return fmt.Sprintf("%s-b%d", c.ID, c.legSeq)
}

// Step applies one input at time now and returns what the grain must carry
// out, by obligation. A REST control the rules refuse returns a *Refusal
// error.
func (c *Call) Step(in any, now time.Time, s Settings) (Ready, error) {
	effs, err := c.step(in, now, s)
	if err == nil {
		effs = append(effs, c.monitoredLeft()...)
	}
	r := readyOf(effs)
	c.pickupWake(&r)
	return r, err
}

func (c *Call) step(in any, now time.Time, s Settings) ([]Effect, error) {
	if c.State == Ended {
		if _, ok := in.(Control); ok {
			return nil, &Refusal{Status: 409, Code: "call_ended", Message: "the call has ended"}
		}
		return nil, nil
	}
	switch in := in.(type) {
	case Start:
		return c.start(in, now, s), nil
	case Dial:
		return c.dial(in, now, s)
	case Rang:
		return c.ringing(in), nil
	case Answered:
		return c.answered(in, now, s), nil
	case Failed:
		return c.failed(in, now, s), nil
	case Cancelled:
		return c.cancelled(in, now), nil
	case Bye:
		return c.bye(in, now), nil
	case Reinvite:
		return c.reinvite(in), nil
	case Control:
		return c.control(in, now, s)
	case Monitor:
		return c.monitor(in, now)
	case Unmonitor:
		return c.unmonitor(in)
	case Tick:
		if c.Transfer != nil {
			return c.transferTick(now, s), nil
		}
		if c.State != Ringing {
			return nil, nil
		}
		effs := c.pickupTick(now)
		switch stageOver, over := c.Ring.due(now); {
		case over:
			return append(effs, c.unanswered(480, "Temporarily Unavailable", "missed", now, s)...), nil
		case stageOver:
			return append(effs, c.advance(now, s)...), nil
		}
		return effs, nil
	case Offer:
		if c.Queued != nil {
			return c.queueOffer(in), nil
		}
		return c.offer(in), nil
	case Withdraw:
		if c.Queued != nil {
			return c.queueWithdraw(in), nil
		}
		return c.withdraw(in, now, s), nil
	case Overflow:
		return c.overflow(in, now, s), nil
	case Routed:
		if c.State != Routing || c.caller().State == LegEnded {
			return nil, nil // the caller hung up meanwhile
		}
		return c.route(in.Route, now, s), nil
	case PromptDone:
		if c.State == Queued && c.Queued == nil && in.Leg == c.caller().ID {
			return c.hangupAll("missed", now), nil // a message finale has played
		}
		return nil, nil
	case DTMF:
		return c.dtmf(in), nil
	case MonitorLost:
		return c.monitorLost(now), nil
	case LockLost:
		c.Locked = !c.Locked
		return []Effect{Event{Type: "call.updated"}}, nil
	case MediaTimeout:
		if c.State == Active || c.State == Queued {
			return c.hangupAll("rtp_timeout", now), nil
		}
		return nil, nil
	}
	return nil, fmt.Errorf("call: unknown input %T", in)
}

func (c *Call) start(in Start, now time.Time, s Settings) []Effect {
	c.From, c.Shown = in.From, in.From
	c.Dialed = in.Dialed
	c.names = map[string]string{}
	c.Legs = append(c.Legs, &Leg{ID: in.CallerLeg, Role: Caller, Party: in.From, State: LegTrying, NodeID: in.NodeID, NodeAddr: in.NodeAddr})
	if c.From.UserID != "" {
		c.Line = c.From.UserID
	}
	if in.Draining {
		return c.refuse(503, "Service Unavailable", "failed", now)
	}
	if in.OfferCode != 0 {
		return c.refuse(in.OfferCode, "Not Acceptable Here", "failed", now)
	}
	if plainRefused(in.CallerSRTP, in.OfferSRTP) {
		return c.refusePlain(now)
	}
	c.callerViews = in.Lookup.CallerViewers
	maps.Copy(c.names, in.Lookup.CallerNames)
	if ob := in.OnBehalf; ob != nil {
		if mayPlace(ob.Access) != nil {
			return c.refuse(403, "Forbidden", "failed", now)
		}
		c.placeFor(ob)
	}
	return c.route(in.Lookup, now, s)
}

// mayPlace: a call on a delegator's line is placed by its owner or by a
// delegate with Place Calls; the far end sees the delegator (000 L194, L218).
func mayPlace(a Access) *Refusal {
	switch {
	case a.Role == "owner", a.Role == "member", a.Role == "delegate" && a.has("place_calls"):
		return nil
	case a.Role == "delegate":
		return &Refusal{Status: 403, Code: "missing_privilege", Message: "a delegate needs the place_calls privilege to call on this line"}
	}
	return &Refusal{Status: 403, Code: "forbidden", Message: "only the line's owner and its delegates may call on this line"}
}

// placeFor puts the call on the delegator's line a delegate calls for.
func (c *Call) placeFor(ob *OnBehalf) {
	if ob == nil {
		return
	}
	c.OnBehalfOf, c.Line, c.Shown = ob.Line.UserID, ob.Line.UserID, ob.Line
	c.callerViews = ob.Viewers
	maps.Copy(c.names, ob.Names)
}

// route rings what the caller dialed: the target's ring plan, or the
// outbound trunk for an outside number; else the caller hears why not.
func (c *Call) route(lk Lookup, now time.Time, s Settings) []Effect {
	switch {
	case lk.Queue != nil:
		return c.enqueue(*lk.Queue)
	case lk.Finale != "":
		return c.finale(lk.Finale, now)
	case lk.Group != nil:
		return c.routeGroup(lk, now, s)
	case lk.Target != nil:
		c.ringFor, c.then = lk.RingFor, lk.Then
		c.To = *lk.Target
		c.startPickup(lk.Pickup, now)
		if c.OnBehalfOf == "" || lk.Target.UserID == c.OnBehalfOf {
			c.Line = lk.Target.UserID
		}
		if lk.Plan != nil {
			c.Ring = newRinger(*lk.Plan, lk.UserContacts, lk.Parties, now)
			maps.Copy(c.names, lk.Plan.Names)
		} else {
			c.Ring = alone(*lk.Target, lk.Contacts, now)
		}
		if !c.Ring.more() {
			if c.then != nil {
				return c.unanswered(480, "Temporarily Unavailable", "missed", now, s)
			}
			if c.Ring.Plan.Voicemail {
				// No voicemail service yet: the caller hears unavailable.
				return c.refuse(480, "Temporarily Unavailable", "voicemail", now)
			}
			return c.refuse(480, "Temporarily Unavailable", "missed", now)
		}
		c.State = Ringing
		effs := c.nextStage(now, s)
		return append(effs, c.Ring.wake(), Event{Type: "call.ringing"})
	case lk.outbound(c.From):
		c.To = Party{Number: c.Dialed, TrunkID: lk.OutboundTrunk.URI}
		return c.ring([]Effect{c.addCallee(*lk.OutboundTrunk, c.To, true)}, now, s)
	default:
		return c.refuse(404, "Not Found", "failed", now)
	}
}

// outbound: the dialed string is an outside number a user may call out to.
func (lk Lookup) outbound(from Party) bool {
	return lk.IsE164 && (from.UserID != "" || lk.Forward) && lk.OutboundTrunk != nil
}

// reachable: somebody the lookup routes to can be rung now.
func (lk Lookup) reachable(from Party) bool {
	switch {
	case lk.Target == nil:
		return lk.outbound(from)
	case lk.Plan == nil:
		return len(lk.Contacts) > 0
	}
	for _, st := range lk.Plan.Stages {
		for _, u := range st.Users {
			if len(lk.UserContacts[u]) > 0 {
				return true
			}
		}
	}
	return false
}

// refuse ends a call that rang nobody: the caller hears code.
func (c *Call) refuse(code int, reason, outcome string, now time.Time) []Effect {
	cl := c.caller()
	cl.State = LegEnded
	return c.finish([]Effect{c.final(cl, code, reason)}, outcome, now)
}

// final is the caller's last word: the final response to its INVITE, or,
// for a click-to-call whose caller's leg is ours, its end (BYE).
func (c *Call) final(cl *Leg, code int, reason string) Effect {
	if c.CalledBack {
		cl.State = LegEnded
		return EndLeg{Leg: cl.ID}
	}
	return Respond{Leg: cl.ID, Code: code, Reason: reason}
}

// addCallee creates a callee leg; toTrunk sends the caller's number in From
// and P-Asserted-Identity as carriers expect.
func (c *Call) addCallee(ct Contact, to Party, toTrunk bool) Effect {
	l := &Leg{ID: c.nextLegID(), Role: Callee, Party: to, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
	c.Legs = append(c.Legs, l)
	o := Originate{Leg: l.ID, Contact: ct, FromUser: c.Shown.Number, Display: c.Shown.Display, ToUser: to.Number}
	if o.ToUser == "" {
		o.ToUser = to.UserID
	}
	if toTrunk {
		if c.Shown.External != "" {
			o.FromUser = c.Shown.External
		}
		o.PAI = o.FromUser
	}
	if to.UserID != "" && c.Line != "" && to.UserID != c.Line && to.UserID != c.From.UserID {
		// A delegate's phone shows whose line rings (000 L222-230).
		who := o.Display
		if who == "" {
			who = o.FromUser
		}
		o.Display = who + " for " + c.name(c.Line)
	}
	return o
}

func (c *Call) name(user string) string {
	if n := c.names[user]; n != "" {
		return n
	}
	return user
}

func (c *Call) ringing(in Rang) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.Role != Callee || l.State != LegTrying || (c.State != Ringing && c.State != Queued) {
		return nil
	}
	l.State = LegRinging
	if c.ringingSent || c.CalledBack || c.State == Queued {
		return nil // relayed once; a click-to-call's or a queue's caller is already answered
	}
	c.ringingSent = true
	return []Effect{Respond{Leg: c.caller().ID, Code: 180, Reason: "Ringing"}}
}

func (c *Call) answered(in Answered, now time.Time, s Settings) []Effect {
	l := c.Leg(in.Leg)
	if l != nil && l.Role == Device {
		if c.Callback != nil && l.State != LegEnded {
			return c.calledBack(l, in, now, s)
		}
		// Another device won and our CANCEL crossed this 2xx.
		l.State = LegEnded
		return []Effect{EndLeg{Leg: l.ID}}
	}
	if l != nil && l.Role == Supervisor {
		if m := c.Monitor; m != nil && m.Leg == "" && slices.Contains(m.Ringing, l.ID) && l.State != LegEnded {
			return c.monitorUp(l, AcceptAnswer{Leg: l.ID}, now)
		}
		if l.State == LegEnded || !c.takesPart(l.ID) {
			l.State = LegEnded
			return []Effect{EndLeg{Leg: l.ID}} // lost the race, or monitoring ended meanwhile
		}
		return nil
	}
	if l == nil || l.Role != Callee || l.ID == c.AnsweredLeg || c.takesPart(l.ID) {
		return nil // not a branch, or a repeated answer of the winner
	}
	if c.transferRings(l.ID) && l.State != LegEnded {
		return c.transferred(l)
	}
	if c.picking(l.ID) && l.State != LegEnded && c.State != Ringing {
		return c.pickedUp(l, AcceptAnswer{Leg: l.ID})
	}
	if c.State == Queued && c.isQueueLeg(l) && l.State != LegEnded {
		return c.memberAnswered(l, now)
	}
	if c.State != Ringing || l.State == LegEnded {
		// Another branch won the race and our CANCEL crossed this 2xx:
		// RFC 3261 13.2.2.4, the branch is acknowledged and hung up.
		l.State = LegEnded
		return []Effect{EndLeg{Leg: l.ID}}
	}
	return c.answer(l, now, false)
}

// answer connects the caller with l, the first branch of a ringing call
// to answer (a picker's leg too: adopted for a *8 pickup); the other
// branches stop, a pickup's other devices with them.
func (c *Call) answer(l *Leg, now time.Time, adopted bool) []Effect {
	c.Pickup = nil
	l.State = LegAnswered
	c.AnsweredLeg = l.ID
	c.AnsweredAt = now
	c.State = Active
	c.Ring.stop()
	c.AnsweredBy = l.Party.UserID
	cl := c.caller()
	c.setSides(cl.ID, l.ID)
	cl.State = LegAnswered
	effs := []Effect{Connect{Caller: cl.ID, Callee: l.ID, CallerUp: c.CalledBack, Adopted: adopted}}
	if !c.CalledBack {
		effs = append(effs, Respond{Leg: cl.ID, Code: 200, Reason: "OK", WithSDP: true})
	}
	for _, o := range c.Legs {
		if o.Role == Callee && o.ID != l.ID && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	return append(effs, WakeAt{}, Event{Type: "call.answered"})
}

func (c *Call) failed(in Failed, now time.Time, s Settings) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.State == LegEnded {
		return nil
	}
	wasAnswered := l.State == LegAnswered
	l.State = LegEnded
	// An established leg that our side gave up on (its answer unusable, no
	// ACK) is still a dialog at the far end until it gets a BYE.
	var bye []Effect
	if wasAnswered {
		bye = []Effect{EndLeg{Leg: l.ID}}
	}
	if l.Role == Device {
		return append(bye, c.deviceGone(now)...)
	}
	if l.Role == Supervisor && !c.isSide(l.ID) {
		return append(bye, c.supervisorGone(l)...)
	}
	switch in.Code {
	case 486, 600, 603:
		c.sawBusy = true
	case 488, 606:
		c.sawRefusal = true // an SRTP-only phone offered plain RTP, say
	}
	if c.transferRings(l.ID) {
		return append(bye, c.transferLegGone(now, s)...)
	}
	if c.picking(l.ID) {
		if c.State != Ringing {
			return append(bye, c.pickupLegGone()...)
		}
		// The picker's phones ring beside the line's: the call rings on
		// as when any branch fails.
		c.pickerGone()
	}
	if l.ID == c.joined() {
		return append(bye, c.unjoin()...)
	}
	if c.State == Queued && c.isQueueLeg(l) {
		return append(bye, c.memberGone(l)...)
	}
	if l.Role == Caller || wasAnswered {
		// A failure on an established leg (no ACK, transport gone) ends the call.
		return append(bye, c.hangupAll("failed", now)...)
	}
	if c.State != Ringing {
		return nil
	}
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded {
			return nil // others still ring
		}
	}
	if c.Ring.more() {
		// Everybody in this stage declined: ring the next one now.
		return append(c.nextStage(now, s), c.Ring.wake())
	}
	if c.then != nil {
		return append(bye, c.unanswered(480, "Temporarily Unavailable", "missed", now, s)...)
	}
	code, reason, outcome := 480, "Temporarily Unavailable", "missed"
	switch {
	case c.sawBusy:
		code, reason, outcome = 486, "Busy Here", "busy"
	case c.sawRefusal:
		code, reason, outcome = 488, "Not Acceptable Here", "failed"
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
	return c.finish([]Effect{c.final(c.caller(), code, reason)}, outcome, now)
}

func (c *Call) cancelled(in Cancelled, now time.Time) []Effect {
	l := c.Leg(in.Leg)
	if l == nil || l.Role != Caller || (c.State != Ringing && c.State != Routing && c.State != Queued) {
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
	if l.Role == Device {
		if c.Callback != nil {
			// The phone answered and hung up before its answer was taken:
			// the caller gave up.
			return c.endUnanswered(0, "", "cancelled", now)
		}
		return nil // a device that lost the race
	}
	if l.Role == Supervisor && !c.isSide(l.ID) {
		return c.supervisorGone(l)
	}
	if l.ID == c.joined() {
		return c.unjoin()
	}
	if t := c.Transfer; t != nil && l.ID == t.Drop {
		return nil // a blind transfer: the target still rings for the one who stays
	}
	if c.CalledBack && c.State == Ringing && l.Role == Caller {
		return c.endUnanswered(0, "", "cancelled", now) // hung up while the target rang
	}
	if !c.isSide(l.ID) && l.Role != Caller {
		return nil // a leg that already left the conversation
	}
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
		var effs []Effect
		if t := c.Transfer; t != nil {
			// The transferor took the call back while the target rang:
			// the transfer is off and its phones stop.
			c.Transfer = nil
			effs = append(c.stopLegs(t.Legs, ""), WakeAt{})
		}
		c.State, c.HeldBy = Active, ""
		return append(effs, c.hear(), Event{Type: "call.resumed"})
	}
	return nil
}

// partyLeg finds the established leg of a user taking part in the call.
func (c *Call) partyLeg(user string) *Leg {
	for _, l := range c.Legs {
		if l.Party.UserID == user && l.State != LegEnded && (c.takesPart(l.ID) || len(c.Parties) == 0) && (l.Role != Supervisor || c.isSide(l.ID)) {
			return l
		}
	}
	return nil
}

func (c *Call) control(in Control, now time.Time, s Settings) ([]Effect, error) {
	if in.Leg != "" && in.Draining {
		// A *8 or *7 INVITE would be a new leg on a node that is leaving.
		return nil, &Refusal{Status: 503, Code: "draining", Message: "this node is draining and takes no new calls"}
	}
	switch in.Action {
	case "pickup", "join":
		return c.pickup(in, now)
	case "lock", "unlock":
		return c.lock(in)
	case "transfer":
		return c.transfer(in, now, s)
	}
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

// endUnanswered stops every ringing branch (and a click-to-call's ringing
// devices) and answers the caller with code.
func (c *Call) endUnanswered(code int, reason, outcome string, now time.Time) []Effect {
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role != Caller && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	if cl := c.caller(); cl != nil && cl.State != LegEnded {
		cl.State = LegEnded
		effs = append(effs, c.final(cl, code, reason))
	}
	return c.finish(effs, outcome, now)
}

// stopLegs ends those of legs still up, but keep: the devices that lost to
// the one that answered, or a stage whose time is over.
func (c *Call) stopLegs(legs []string, keep string) []Effect {
	var effs []Effect
	for _, id := range legs {
		if o := c.Leg(id); id != keep && o != nil && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: id})
		}
	}
	return effs
}

// anyUp: one of legs is still ringing or up.
func (c *Call) anyUp(legs []string) bool {
	return slices.ContainsFunc(legs, func(id string) bool {
		l := c.Leg(id)
		return l != nil && l.State != LegEnded
	})
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
	c.State, c.Outcome, c.EndedAt = Ended, outcome, now
	c.Ring.stop()
	effs = append(effs, c.queueReport()...)
	return append(effs, WakeAt{}, Event{Type: "call.ended"}, Finished{Outcome: outcome, History: c.history(outcome)})
}

// peerOf is how a party appears in the other side's history.
func (c *Call) peerOf(p Party) string {
	if p.Number != "" {
		return p.Number
	}
	if p.UserID != "" {
		return p.UserID
	}
	return c.Dialed
}
