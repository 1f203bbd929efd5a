package call

import (
	"fmt"
	"maps"
	"time"
)

// Click-to-call: the caller's own phones ring first; when one answers, the
// target is dialled as if that phone had dialled it.

// dial starts a click-to-call: From's devices ring with our offer; the
// first to answer becomes the caller's leg and the dialed string is routed
// as if From had dialed it (calledBack). A refusal answers the REST
// request; nothing has rung then.
func (c *Call) dial(in Dial, now time.Time, s Settings) ([]Effect, error) {
	lk := in.Lookup
	if len(c.Legs) > 0 {
		return nil, &Refusal{Status: 409, Code: "call_exists", Message: "this call has already been placed"}
	}
	if in.Draining {
		return nil, &Refusal{Status: 503, Code: "draining", Message: "this node is draining and takes no new calls"}
	}
	if in.OnBehalf != nil {
		if r := mayPlace(in.OnBehalf.Access); r != nil {
			return nil, r
		}
	}
	switch {
	case lk.Target == nil && !lk.outbound(in.From):
		return nil, &Refusal{Status: 404, Code: "not_found", Message: fmt.Sprintf("to: %q is neither a user nor a number that can be called", in.Dialed)}
	case !lk.reachable(in.From):
		return nil, &Refusal{Status: 409, Code: "unreachable", Message: fmt.Sprintf("to: nobody %q rings can be reached now", in.Dialed)}
	case len(in.Devices) == 0:
		return nil, &Refusal{Status: 409, Code: "no_devices", Message: "from_user has no registered device to ring"}
	}
	c.From, c.Shown, c.Dialed, c.Line = in.From, in.From, in.Dialed, in.From.UserID
	c.names = maps.Clone(lk.CallerNames)
	if c.names == nil {
		c.names = map[string]string{}
	}
	c.callerViews = lk.CallerViewers
	c.placeFor(in.OnBehalf)
	c.CalledBack, c.callerSRTP = true, in.FromSRTP
	c.Callback = &Callback{Lookup: lk}
	display := "Call to " + in.Dialed
	if c.OnBehalfOf != "" {
		display += " for " + c.name(c.OnBehalfOf)
	}
	to := in.From.Number
	if to == "" {
		to = in.From.UserID
	}
	var effs []Effect
	for _, ct := range in.Devices {
		l := &Leg{ID: c.nextLegID(), Role: Device, Party: in.From, State: LegTrying, NodeID: ct.NodeID, NodeAddr: ct.NodeAddr}
		c.Legs = append(c.Legs, l)
		c.Callback.Legs = append(c.Callback.Legs, l.ID)
		// No Peer: there is no other leg yet, the relay offers its own codecs.
		effs = append(effs, Originate{Leg: l.ID, Contact: ct, FromUser: in.Dialed, Display: display, ToUser: to})
	}
	return c.ring(effs, now, s), nil
}

// calledBack: a device of the caller answered a click-to-call. It is the
// caller's leg from now on (media takes its answer to our offer), the other
// devices stop, and the dialed string rings as from a phone. An answer in
// plain RTP from a caller whose policy requires SRTP ends it all instead:
// every device stops and nobody else rings.
func (c *Call) calledBack(l *Leg, in Answered, now time.Time, s Settings) []Effect {
	cb := c.Callback
	c.Callback = nil
	if plainRefused(c.callerSRTP, in.SRTP) {
		return c.endUnanswered(0, "", "failed", now)
	}
	if in.Lookup != nil {
		cb.Lookup = *in.Lookup
	}
	l.Role, l.State = Caller, LegAnswered
	effs := []Effect{AcceptAnswer{Leg: l.ID}}
	for _, id := range cb.Legs {
		if o := c.Leg(id); id != l.ID && o.State != LegEnded {
			o.State = LegEnded
			effs = append(effs, EndLeg{Leg: id})
		}
	}
	return append(effs, c.route(cb.Lookup, now, s)...)
}

// deviceGone: a device of a click-to-call failed; with none left ringing
// the call is over before it reached anybody.
func (c *Call) deviceGone(now time.Time) []Effect {
	if c.Callback == nil {
		return nil // a device that lost the race
	}
	for _, id := range c.Callback.Legs {
		if c.Leg(id).State != LegEnded {
			return nil
		}
	}
	c.Callback = nil
	return c.finish(nil, "missed", now)
}
