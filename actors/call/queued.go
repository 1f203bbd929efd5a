package call

import (
	"maps"
	"time"
)

// A call in a queue: the media worker answers the caller with the queue's
// greeting and music, and the queue grain (actors/queue) drives the rest
// from outside: it offers the call to members (Offer), withdraws offers
// (Withdraw) and, after max_wait_seconds, sends the caller elsewhere
// (Overflow). The call rings what it is told and tells the queue what
// happened (TellQueue): a member answered or declined, the caller left, the
// served call ended.

// Queued is a call waiting in a queue: answered, hearing music, no member
// has taken it yet. It shows as ringing (INTERFACE: a caller is waiting
// until a member answers).
const Queued State = "queued"

// Queueing is the queue a call is in, and the member who took it.
type Queueing struct {
	ID, Name string
	Admins   []string // see the call in their history, labelled for the queue
	Member   string   // the member who answered; "" while the caller waits
}

// QueueRoute is a queue that took the caller in (the queue grain said so).
type QueueRoute struct {
	ID, Name string
	Admins   []string
	Names    map[string]string // the members' and admins' names, for labels
}

// Prompts a caller hears (the media worker generates them).
const (
	PromptQueue   = "queue"   // the greeting, then music while waiting
	PromptMessage = "message" // the greeting, then the call ends
)

// Finales: a routing that ends the call by itself (a queue's overflow).
const (
	FinaleMessage    = "message"    // the greeting once, then hang up
	FinaleDisconnect = "disconnect" // hang up
)

// Wait answers Leg alone (its own codecs: nobody else is on the call yet)
// unless Answered, and plays it Prompt.
type Wait struct {
	Leg      string
	Prompt   string
	Answered bool
}

// TellQueue reports to the queue grain: kind answered | declined (User's
// phones) | left (the caller, before a member answered) | ended (the
// served call).
type TellQueue struct {
	Queue, Kind, User string
}

// Overflow: the queue sends its waiting caller to Route (max_wait_seconds
// passed): another queue, a user or number rung while the caller hears
// music, the greeting and hang-up, or hang-up.
type Overflow struct{ Route Lookup }

// PromptDone: the greeting of a message finale has played on Leg.
type PromptDone struct{ Leg string }

// enqueue puts the caller in q: answered (when not already) with the
// greeting and music, waiting for the queue's offers.
func (c *Call) enqueue(q QueueRoute) []Effect {
	cl := c.caller()
	answered := cl.State == LegAnswered
	c.Queued = &Queueing{ID: q.ID, Name: q.Name, Admins: q.Admins}
	maps.Copy(c.names, q.Names)
	c.To = Party{Number: c.Dialed, Display: q.Name}
	c.State = Queued
	cl.State = LegAnswered
	effs := []Effect{Wait{Leg: cl.ID, Prompt: PromptQueue, Answered: answered}}
	if !answered {
		effs = append(effs, Respond{Leg: cl.ID, Code: 200, Reason: "OK", WithSDP: true})
	}
	return append(effs, Event{Type: "call.queued"})
}

// finale ends the call by itself: the greeting then hang-up, or hang-up at
// once (an unanswered caller hears 480).
func (c *Call) finale(kind string, now time.Time) []Effect {
	cl := c.caller()
	if kind != FinaleMessage {
		if cl.State != LegAnswered {
			return c.refuse(480, "Temporarily Unavailable", "missed", now)
		}
		return c.hangupAll("missed", now)
	}
	answered := cl.State == LegAnswered
	cl.State = LegAnswered
	c.State = Queued
	effs := []Effect{Wait{Leg: cl.ID, Prompt: PromptMessage, Answered: answered}}
	if !answered {
		effs = append(effs, Respond{Leg: cl.ID, Code: 200, Reason: "OK", WithSDP: true})
	}
	return effs
}

// queueOffer rings a member's phones for the waiting caller, offering the
// caller's codecs. A member with no phone to ring declines at once.
func (c *Call) queueOffer(in Offer) []Effect {
	q := c.Queued
	if c.State != Queued || q == nil || q.Member != "" || c.Transfer != nil {
		return nil
	}
	if len(in.Contacts) == 0 {
		return []Effect{TellQueue{Queue: q.ID, Kind: "declined", User: in.Party.UserID}}
	}
	cl := c.caller()
	who := c.Shown.Display
	if who == "" {
		who = c.Shown.Number
	}
	var effs []Effect
	for _, ct := range in.Contacts {
		l := &Leg{ID: c.nextLegID(), Role: Callee, Party: in.Party, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
		c.Legs = append(c.Legs, l)
		o := Originate{Leg: l.ID, Contact: ct, FromUser: c.Shown.Number, Display: who + " for " + q.Name, ToUser: in.Party.Number, Peer: cl.ID}
		if o.FromUser == "" {
			o.FromUser = c.Shown.UserID
		}
		if o.ToUser == "" {
			o.ToUser = in.Party.UserID
		}
		effs = append(effs, o)
	}
	return effs
}

// queueWithdraw stops a member's phones: the queue moved on.
func (c *Call) queueWithdraw(in Withdraw) []Effect {
	if c.State != Queued {
		return nil
	}
	return c.stopLegs(c.memberLegs(in.User), "")
}

// memberLegs are the ids of user's callee legs still up.
func (c *Call) memberLegs(user string) []string {
	var ids []string
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded && o.Party.UserID == user && !c.transferRings(o.ID) {
			ids = append(ids, o.ID)
		}
	}
	return ids
}

// memberAnswered: a member's phone answered: it talks with the caller, every
// other phone stops, and the queue learns who took the call.
func (c *Call) memberAnswered(l *Leg, now time.Time) []Effect {
	q := c.Queued
	l.State = LegAnswered
	c.AnsweredLeg, c.AnsweredAt, c.AnsweredBy = l.ID, now, l.Party.UserID
	c.State = Active
	q.Member = l.Party.UserID
	c.setSides(c.caller().ID, l.ID)
	effs := []Effect{AcceptAnswer{Leg: l.ID}, c.hear()}
	for _, o := range c.Legs {
		if o.Role == Callee && o.ID != l.ID && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	return append(effs, TellQueue{Queue: q.ID, Kind: "answered", User: q.Member}, Event{Type: "call.answered"})
}

// memberGone: a member's phone declined or failed; once none of theirs
// rings, the queue moves on.
func (c *Call) memberGone(l *Leg) []Effect {
	if len(c.memberLegs(l.Party.UserID)) > 0 {
		return nil
	}
	return []Effect{TellQueue{Queue: c.Queued.ID, Kind: "declined", User: l.Party.UserID}}
}

// overflow sends the waiting caller where the queue says, its members'
// phones stopped: into another queue, to the greeting and hang-up, or
// ringing a user's plan or a number while the caller hears music (as a
// transfer with nobody to give the call back to).
func (c *Call) overflow(in Overflow, now time.Time, s Settings) []Effect {
	q := c.Queued
	if c.State != Queued || q == nil || q.Member != "" || c.Transfer != nil {
		return nil
	}
	var effs []Effect
	for _, o := range c.Legs {
		if o.Role == Callee && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: o.ID})
		}
	}
	c.Queued = nil
	lk := in.Route
	if lk.Queue != nil {
		return append(effs, c.enqueue(*lk.Queue)...)
	}
	if lk.Finale != "" {
		return append(effs, c.finale(lk.Finale, now)...)
	}
	ring, r := transferRinger(Control{Route: &lk, To: c.Dialed}, now)
	if r != nil || !ring.more() {
		return append(effs, c.hangupAll("missed", now)...)
	}
	cl := c.caller()
	c.Transfer = &Transfer{Keep: cl.ID, Ring: ring}
	effs = append(effs, c.transferStage(now, s)...)
	return append(effs, c.Transfer.Ring.wake(), Event{Type: "call.transferring"})
}

// queueReport is what the queue learns when the call ends: the caller left
// before a member answered, or the served call ended.
func (c *Call) queueReport() []Effect {
	q := c.Queued
	if q == nil {
		return nil
	}
	if q.Member != "" {
		return []Effect{TellQueue{Queue: q.ID, Kind: "ended", User: q.Member}}
	}
	return []Effect{TellQueue{Queue: q.ID, Kind: "left"}}
}

// queueHistory: the member who answered and the queue's admins see the
// call, labelled "Answered by <member> for <queue>" for the admins.
func (c *Call) queueHistory(add func(owner, direction, peer, line, label string)) {
	q := c.Queued
	if q == nil {
		return
	}
	peer := c.peerOf(c.Shown)
	if q.Member != "" {
		add(q.Member, "inbound", peer, "", "Answered by you for "+q.Name)
	}
	for _, a := range q.Admins {
		label := ""
		if q.Member != "" {
			label = "Answered by " + c.name(q.Member) + " for " + q.Name
		}
		add(a, "inbound", peer, "", label)
	}
}

// isQueueLeg: l is a member's phone rung by the queue for this call.
func (c *Call) isQueueLeg(l *Leg) bool {
	return c.Queued != nil && l.Role == Callee && !c.transferRings(l.ID)
}
