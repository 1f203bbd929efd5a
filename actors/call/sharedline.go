package call

import (
	"slices"
	"time"
)

// The rules of a call on a shared line (delegation, 000): who may pick up a
// held or ringing call or join an active one, locking, and the history
// labels of both sides. Access comes from the delegator grain; the call
// decides.

// mayTouch checks the line rights common to pickup and join: the owner may;
// a delegate needs the privilege and an unlocked call (000 L303-319).
func (c *Call) mayTouch(in Control, privilege, what string) error {
	if in.Admin {
		return nil
	}
	switch in.Access.Role {
	case "owner":
		return nil
	case "member":
		// A shared line group's members pick up its held and ringing
		// calls; a call locked under the group's lock policy is theirs who
		// locked it (002).
		if privilege != "pickup_hold" {
			return &Refusal{Status: 403, Code: "forbidden", Message: "a shared line group's members may pick up its calls, not " + what + " them"}
		}
		if c.Locked {
			return &Refusal{Status: 409, Code: "call_locked", Message: "a member of the group has locked this call", SIPStatus: 403}
		}
		return nil
	case "delegate":
		if !in.Access.has(privilege) {
			return &Refusal{Status: 403, Code: "missing_privilege", Message: "a delegate needs the " + privilege + " privilege to " + what + " calls on this line"}
		}
		if c.Locked {
			return &Refusal{Status: 403, Code: "call_locked", Message: "the line's owner has locked this call"}
		}
		return nil
	}
	return &Refusal{Status: 403, Code: "forbidden", Message: "only the line's owner and its delegates may " + what + " its calls"}
}

// pickup takes a held call (the holder's leg ends and the picker talks with
// the held party), answers a call ringing the line for the picker (the
// line's phones stop), or joins an active one (a three-way mix). Over SIP
// the picker's INVITE is the new leg; over REST the picker's devices ring
// and the call is promised to them until one answers (a ringing call's
// own phones ring on meanwhile, and the first to answer has it).
func (c *Call) pickup(in Control, now time.Time) ([]Effect, error) {
	join := in.Action == "join"
	privilege, what := "pickup_hold", "pick up"
	if join {
		privilege, what = "join_merge", "join"
	}
	if err := c.mayTouch(in, privilege, what); err != nil {
		return nil, err
	}
	ringing := !join && c.ringsLine()
	switch {
	case !join && c.State != Held && !ringing:
		return nil, &Refusal{Status: 409, Code: "call_not_held", Message: "only a held call, or one ringing the line, can be picked up"}
	case join && c.State != Active:
		return nil, &Refusal{Status: 409, Code: "call_not_active", Message: "only an active call can be joined"}
	case c.Pickup != nil || c.Transfer != nil || (join && c.joined() != ""):
		return nil, &Refusal{Status: 409, Code: "already_picked_up", Message: "someone else is already picking up this call"}
	}
	if in.Leg != "" && plainRefused(in.PartySRTP, in.OfferSRTP) {
		return nil, &Refusal{Status: 488, Code: "srtp_required", Message: srtpWarning}
	}
	// A ringing call's only established leg is the caller's; the picker's
	// own ringing branch, if any, simply stops when the pickup answers.
	if l := c.partyLeg(in.ByUser); l != nil && !in.Admin && l.ID != c.HeldBy && (!ringing || l.Role == Caller) {
		return nil, &Refusal{Status: 409, Code: "already_on_call", Message: "you are already on this call"}
	}
	if join {
		c.chime = in.Access.JoinChime // for this join, and the leave that ends it
	}
	party := in.Party
	if party.UserID == "" {
		party.UserID = in.ByUser
	}
	if in.Leg != "" {
		l := &Leg{ID: in.Leg, Role: Callee, Party: party, State: LegAnswered, NodeID: in.NodeID, NodeAddr: in.NodeAddr}
		c.Legs = append(c.Legs, l)
		// The picker's own INVITE is answered with our SDP (Adopt), not
		// taken as an answer to our offer.
		adopt := Adopt{Leg: l.ID, Peer: c.pickupPeer(join)}
		if ringing {
			return append([]Effect{adopt}, c.answer(l, now, true)...), nil
		}
		c.Pickup = &Pickup{By: in.ByUser, Legs: []string{l.ID}, Join: join}
		return c.pickedUp(l, adopt), nil
	}
	if len(in.Contacts) == 0 {
		return nil, &Refusal{Status: 409, Code: "no_devices", Message: "the picker has no registered device to ring"}
	}
	c.Pickup = &Pickup{By: in.ByUser, Join: join}
	peer := c.pickupPeer(join)
	var effs []Effect
	for _, ct := range in.Contacts {
		l := &Leg{ID: c.nextLegID(), Role: Callee, Party: party, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
		c.Legs = append(c.Legs, l)
		c.Pickup.Legs = append(c.Pickup.Legs, l.ID)
		o := Originate{Leg: l.ID, Contact: ct, FromUser: c.peerOf(c.Shown), Display: "Pick up for " + c.name(c.Line), ToUser: party.Number, Peer: peer}
		if o.ToUser == "" {
			o.ToUser = party.UserID
		}
		effs = append(effs, o)
	}
	return append(effs, Event{Type: "call.pickup_ringing"}), nil
}

// ringsLine: the call is an inbound call ringing its line (not an outgoing
// one shown on the caller's line, nor a click-to-call whose caller's own
// phones ring), so the line's owner or a delegate may answer it by pickup.
func (c *Call) ringsLine() bool {
	return c.State == Ringing && c.Callback == nil && c.To.UserID != "" && c.To.UserID == c.Line
}

// picking: leg is one of the devices a pickup rings.
func (c *Call) picking(leg string) bool {
	return c.Pickup != nil && slices.Contains(c.Pickup.Legs, leg)
}

// pickerGone: a picker's device for a ringing call failed; with none left
// the pickup is over (the line's phones may still answer).
func (c *Call) pickerGone() {
	if !c.anyUp(c.Pickup.Legs) {
		c.Pickup = nil
	}
}

// pickupPeer is the leg whose codecs a picker's leg must share: the held
// party for a pickup, the caller for a join or a ringing call.
func (c *Call) pickupPeer(join bool) string {
	switch {
	case join:
		return c.side(0)
	case c.State == Ringing:
		return c.caller().ID
	}
	if o := c.other(c.HeldBy); o != nil {
		return o.ID
	}
	return c.side(0)
}

// pickedUp: the picker's leg is up (media is the effect that takes it:
// AcceptAnswer for a leg we rang, Adopt for one that called in). Other
// picker devices stop ringing; a pickup bridges the held party to the
// picker and ends the holder's leg; a join mixes all three, with a chime
// when the line's owner wants one (000 L114).
func (c *Call) pickedUp(l *Leg, media Effect) []Effect {
	p := c.Pickup
	c.Pickup = nil
	l.State = LegAnswered
	effs := append(c.stopLegs(p.Legs, l.ID), media)
	if p.Join {
		c.add(Participant{Leg: l.ID, Mode: Talk})
		effs = append(effs, c.hear())
		if c.chime {
			effs = append(effs, Chime{Legs: []string{c.side(0), c.side(1)}})
		}
		return append(effs, Event{Type: "call.joined"})
	}
	held := c.other(c.HeldBy)
	holder := c.Leg(c.HeldBy)
	c.setSides(held.ID, l.ID)
	// AnsweredBy stays: history names who answered the call, not who
	// picked it up later.
	c.State, c.HeldBy = Active, ""
	effs = append(effs, c.hear())
	if holder != nil && holder.State != LegEnded {
		holder.State = LegEnded
		effs = append(effs, EndLeg{Leg: holder.ID})
	}
	return append(effs, Event{Type: "call.picked_up"})
}

// pickupLegGone: one of the picker's devices failed; when none is left the
// pickup is over and the call stays as it was.
func (c *Call) pickupLegGone() []Effect {
	if c.anyUp(c.Pickup.Legs) {
		return nil
	}
	c.Pickup = nil
	return []Effect{Event{Type: "call.updated"}}
}

// unjoin: the third party left; the two sides go back to a plain bridge
// (and hear the chime again if they heard it on the join).
func (c *Call) unjoin() []Effect {
	c.drop(c.joined())
	effs := []Effect{c.hear()}
	if c.chime {
		effs = append(effs, Chime{Legs: []string{c.side(0), c.side(1)}})
	}
	return append(effs, Event{Type: "call.updated"})
}

// lock and unlock: only the line's owner (or the admin) may; the lock is
// durable (and fenced) before it is acknowledged.
func (c *Call) lock(in Control) ([]Effect, error) {
	if r := c.mayLockGroupCall(in); r != nil {
		return nil, r
	}
	if !in.Admin && in.Access.Role != "owner" && in.Access.Role != "member" {
		return nil, &Refusal{Status: 403, Code: "forbidden", Message: "only the line's owner may lock or unlock its calls"}
	}
	if c.State != Active && c.State != Held {
		return nil, &Refusal{Status: 409, Code: "call_not_active", Message: "a call is locked during the call"}
	}
	want := in.Action == "lock"
	switch {
	case want && c.Locked:
		return nil, &Refusal{Status: 409, Code: "already_locked", Message: "the call is already locked"}
	case !want && !c.Locked:
		return nil, &Refusal{Status: 409, Code: "not_locked", Message: "the call is not locked"}
	}
	c.Locked = want
	return []Effect{PersistLock{Locked: want}, Event{Type: "call.updated"}}, nil
}

// dtmf reads the in-call feature codes: *5 locks, *6 unlocks, for the
// line's owner only (delegates' digits are just audio).
func (c *Call) dtmf(in DTMF) []Effect {
	l := c.Leg(in.Leg)
	if m := c.Monitor; m != nil && l != nil && l.ID == m.Leg && !c.isSide(l.ID) {
		return c.monitorDigit(in.Digit)
	}
	if l == nil || !c.isSide(l.ID) || (c.State != Active && c.State != Held) {
		return nil
	}
	if in.Digit == "*" {
		c.star = l.ID
		return nil
	}
	prev := c.star
	c.star = ""
	if prev != l.ID || l.Party.UserID == "" || l.Party.UserID != c.Line {
		return nil
	}
	action := map[string]string{"5": "lock", "6": "unlock"}[in.Digit]
	if action == "" {
		return nil
	}
	effs, err := c.lock(Control{Action: action, ByUser: l.Party.UserID, Access: Access{Role: "owner"}})
	if err != nil {
		return nil // already locked (or unlocked): nothing to do
	}
	return effs
}

// LineState is how the call shows on its line: ringing, active, held or
// ended, and whether it is locked.
func (c *Call) LineState() (string, bool) {
	if c.State == Routing || c.State == Queued {
		return string(Ringing), c.Locked
	}
	return string(c.State), c.Locked
}

// Viewers are the users who see the call's line besides its owner.
func (c *Call) Viewers() []string {
	if c.OnBehalfOf != "" || (c.From.UserID != "" && c.Line == c.From.UserID) {
		return c.callerViews
	}
	return c.Ring.Plan.Viewers
}

// history writes one entry per person who sees the call: the parties, and
// the delegates of the line it was on, labelled as seed 000 (L338-356)
// words them. Each person gets one entry, their own party's first.
func (c *Call) history(outcome string) []HistoryEntry {
	var out []HistoryEntry
	add := func(owner, direction, peer, line, label string) {
		if owner == "" || IsGroupLine(owner) || slices.ContainsFunc(out, func(e HistoryEntry) bool { return e.Owner == owner }) {
			return
		}
		out = append(out, HistoryEntry{Owner: owner, Direction: direction, Peer: peer, Line: line, Label: label, Outcome: outcome})
	}
	if caller := c.From.UserID; caller != "" {
		peer := c.peerOf(c.To)
		if line := c.OnBehalfOf; line != "" && line != caller {
			add(caller, "outbound", peer, line, "Outgoing by you for "+c.name(line))
			add(line, "outbound", peer, line, "Outgoing by "+c.name(caller)+" for you")
			for _, v := range c.callerViews {
				add(v, "outbound", peer, line, "Outgoing by "+c.name(caller)+" for "+c.name(line))
			}
		} else {
			add(caller, "outbound", peer, caller, "")
			for _, v := range c.callerViews {
				add(v, "outbound", peer, caller, "Outgoing by "+c.name(caller))
			}
		}
	}
	if owner := c.To.UserID; owner != "" {
		peer, by := c.peerOf(c.Shown), c.AnsweredBy
		label := ""
		if by != "" && by != owner {
			label = "Answered by " + c.name(by) + " for you"
		}
		add(owner, "inbound", peer, owner, label)
		for _, v := range c.Ring.Plan.Viewers {
			switch {
			case by == "":
				label = ""
			case by == v:
				label = "Answered by you for " + c.name(owner)
			case by == owner:
				label = "Answered by " + c.name(owner)
			default:
				label = "Answered by " + c.name(by) + " for " + c.name(owner)
			}
			add(v, "inbound", peer, owner, label)
		}
	}
	c.queueHistory(add)
	if m := c.Monitor; m != nil && m.Mode == ModeTakeover {
		// The supervisor who took the call over has it in their history.
		if g := c.Leg(m.Target); g != nil && g.Role == Caller {
			add(m.By, "outbound", c.peerOf(c.To), c.Line, "Taken over from "+c.name(c.monitoredUser(m)))
		} else {
			add(m.By, "inbound", c.peerOf(c.Shown), c.Line, "Taken over from "+c.name(c.monitoredUser(m)))
		}
	}
	return out
}
