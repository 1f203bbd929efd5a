package call

import "slices"

// Parties: the legs in the conversation, each with a mode that says what it
// hears and who hears it. The first two are the call's sides (the caller's
// and the answerer's, until a pickup or transfer replaces one); a join adds
// a third talker. Who hears whom is computed from the modes, so a new way
// of taking part (a supervisor listening or whispering) is a new mode, not
// a new field.

// Mode is how a participant takes part.
type Mode string

const (
	// Talk: hears every other talker and is heard by them.
	Talk Mode = "talk"
	// Listen: hears the talkers; nobody hears it.
	Listen Mode = "listen"
	// Whisper: hears the talkers; only its To hears it.
	Whisper Mode = "whisper"
)

// Participant is one established leg taking part in the conversation.
type Participant struct {
	Leg  string
	Mode Mode
	To   string // Whisper: the one talker who hears this participant
}

// Route is what one leg hears: the legs named, mixed, and nobody else.
type Route struct {
	Leg   string
	Hears []string
}

// side is the leg of side i (0: the caller's, 1: the answerer's), "" before
// an answer.
func (c *Call) side(i int) string {
	if i < len(c.Parties) {
		return c.Parties[i].Leg
	}
	return ""
}

func (c *Call) isSide(id string) bool { return id != "" && (id == c.side(0) || id == c.side(1)) }

// setSides makes a and b the call's two sides, keeping everybody else who
// takes part.
func (c *Call) setSides(a, b string) {
	rest := []Participant{}
	if len(c.Parties) > 2 {
		rest = c.Parties[2:]
	}
	c.Parties = append([]Participant{{Leg: a, Mode: Talk}, {Leg: b, Mode: Talk}}, rest...)
}

// replaceSide puts leg in old's place (a pickup takes the holder's side).
func (c *Call) replaceSide(old, leg string) {
	for i := range c.Parties {
		if c.Parties[i].Leg == old {
			c.Parties[i] = Participant{Leg: leg, Mode: Talk}
		}
	}
}

// other is the leg on the other side from id, or nil before an answer.
func (c *Call) other(id string) *Leg {
	switch {
	case id == "" || len(c.Parties) < 2:
		return nil
	case id == c.side(0):
		return c.Leg(c.side(1))
	case id == c.side(1):
		return c.Leg(c.side(0))
	}
	return nil
}

// joined is the leg that joined the two sides as a third talker, or "".
func (c *Call) joined() string {
	for _, p := range c.Parties[min(2, len(c.Parties)):] {
		if p.Mode == Talk && (c.Monitor == nil || p.Leg != c.Monitor.Leg) {
			return p.Leg
		}
	}
	return ""
}

// takesPart: leg is one of the participants.
func (c *Call) takesPart(leg string) bool {
	return slices.ContainsFunc(c.Parties, func(p Participant) bool { return p.Leg == leg })
}

// add makes leg a participant in mode.
func (c *Call) add(p Participant) { c.Parties = append(c.Parties, p) }

// drop removes leg from the participants.
func (c *Call) drop(leg string) {
	c.Parties = slices.DeleteFunc(c.Parties, func(p Participant) bool { return p.Leg == leg })
}

// sideUsers are the users talking on the call's two sides.
func (c *Call) sideUsers() []string {
	var out []string
	for i := range 2 {
		if l := c.Leg(c.side(i)); l != nil && l.Party.UserID != "" && l.State != LegEnded {
			out = append(out, l.Party.UserID)
		}
	}
	return out
}

// hear is the media effect for the participants as they now are.
func (c *Call) hear() Hear { return Hear{Routes: Routes(c.Parties)} }

// Routes is who hears whom among ps: a talker hears the other talkers and
// whoever whispers to it; a listener or whisperer hears the talkers.
func Routes(ps []Participant) []Route {
	out := make([]Route, 0, len(ps))
	for _, p := range ps {
		r := Route{Leg: p.Leg}
		for _, q := range ps {
			switch {
			case q.Leg == p.Leg:
			case q.Mode == Talk, q.Mode == Whisper && q.To == p.Leg && p.Mode == Talk:
				r.Hears = append(r.Hears, q.Leg)
			}
		}
		out = append(out, r)
	}
	return out
}
