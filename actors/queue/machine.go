// Package queue is the call queue grain: one virtual actor per queue. It
// owns the callers waiting (first come, first served), its members' state
// and its counters, and decides which member(s) each waiting call is
// offered to. machine.go is the pure core (settings, inputs and the clock
// in; new state and effects out); grain.go is the adapter, client.go the
// typed client. The call grain rings what it is told and reports answers,
// declines and hang-ups back.
package queue

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/actors/hours"
)

// Distributions (INTERFACE.md §5 "Call queues").
const (
	Simultaneous  = "simultaneous"
	Sequential    = "sequential"
	Rotating      = "rotating"
	GroupRotating = "group_rotating"
	LongestIdle   = "longest_idle"
)

// Target is where an overflowing caller goes: Kind is voicemail | user |
// queue | number | message | disconnect; ID names the user, queue or
// number.
type Target struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// Member is a queue member as configured: lower Order rings first.
type Member struct {
	User  string
	Order int
}

// Config is a queue's settings (from the directory).
type Config struct {
	ID, Name           string
	Members            []Member
	Distribution       string
	Ring               time.Duration // ring_seconds: one offer's time
	MaxWait            time.Duration
	MaxCalls           int
	WrapUp             time.Duration
	ReceiveWhileOnCall bool
	ServiceLevel       time.Duration
	Hours              hours.Schedule
	Admins             []string // queue admins: they opt members in and out
	Business, Closed   Target // overflow targets
}

// Queue is the core's whole state. The grain persists it whole as JSON, so
// every deadline is derived from a stored instant.
type Queue struct {
	Config  Config            `json:"config"`
	Callers []Caller          `json:"callers"` // waiting, in arrival order
	Agents  map[string]*Agent `json:"agents"`  // by user: every configured member
	Served  map[string]string `json:"served"`  // call -> the member serving it

	Completed    int           `json:"completed"`
	Abandoned    int           `json:"abandoned"`
	Overflowed   int           `json:"overflowed"`
	Answered     int           `json:"answered"`
	AnsweredInSL int           `json:"answered_in_sl"` // waited at most ServiceLevel
	TotalWait    time.Duration `json:"total_wait"`     // of answered calls

	// Rotation memory: rotating starts after LastAnswered (else
	// LastOffered); group_rotating gives the next caller the group after
	// LastGroup.
	LastAnswered string `json:"last_answered"`
	LastOffered  string `json:"last_offered"`
	LastGroup    *int   `json:"last_group"`

	// wake is the deadline the grain's timer is set for (zero: none), and
	// shown the stats last announced with Changed. Neither is persisted: a
	// reloaded queue has no timer, so its first step asks for one, and it
	// takes the stats at its first step as shown.
	wake  time.Time
	shown *Stats
}

// Caller is a waiting call. It rings the members in Ringing until
// RingUntil; Passed are the members passed over for it this round.
type Caller struct {
	Call      string    `json:"call"`
	Arrived   time.Time `json:"arrived"`
	Ringing   []string  `json:"ringing"`
	RingUntil time.Time `json:"ring_until"`
	Passed    []string  `json:"passed"`
	// Group is the order value of the group that rang first for it
	// (group_rotating): each round goes round the groups from there.
	Group *int `json:"group,omitempty"`
}

// Agent is a member's state as this queue knows it.
type Agent struct {
	OptedIn    bool   `json:"opted_in"`
	Reason     string `json:"reason"`
	Registered bool   `json:"registered"`
	OnCall     bool   `json:"on_call"`   // on a call that is not a queue's
	Elsewhere  bool   `json:"elsewhere"` // taken by a queue's call (see Presence)
	// WrapUntil is the wrap-up after this queue's call; OtherWrap the one
	// the member's line reports (after any queue's call).
	WrapUntil time.Time `json:"wrap_until"`
	OtherWrap time.Time `json:"other_wrap"`
	Ringing   string    `json:"ringing"` // the call offered to them now
	Serving   string    `json:"serving"` // this queue's call they answered
	// IdleSince is when their last queue call (with its wrap-up) ended, or
	// when they were first seen available (longest_idle).
	IdleSince time.Time `json:"idle_since"`
}

// MayOpt says whether by (the admin token when admin) may opt user in or
// out of the queue: the member themselves, the admin, or a queue admin.
func (q *Queue) MayOpt(by string, admin bool, user string) bool {
	return admin || by == user || slices.Contains(q.Config.Admins, by)
}

// New is a queue with nobody waiting; its members are opted in and offline
// until their first Presence.
func New(cfg Config, now time.Time) *Queue {
	q := &Queue{Agents: map[string]*Agent{}, Served: map[string]string{}}
	q.adopt(cfg)
	st := q.Stats(now)
	q.shown = &st
	return q
}

// adopt takes cfg as the settings and gives each new member its state.
func (q *Queue) adopt(cfg Config) {
	q.Config = cfg
	for _, m := range cfg.Members {
		if q.Agents[m.User] == nil {
			q.Agents[m.User] = &Agent{OptedIn: true}
		}
	}
}

// Step applies one input at now and returns the effects for the grain to
// carry out, in order. Deadlines already past are acted on first, whatever
// the input; then the input; then the offers that became possible;
// Changed and WakeAt come last. An unknown input changes nothing.
func (q *Queue) Step(in any, now time.Time) []Effect {
	switch in.(type) {
	case Arrive, Answered, Declined, Refused, Left, Ended, Presence, OptOut, OptIn, Configure, Tick:
	default:
		return nil
	}
	if q.shown == nil { // reloaded
		st := q.Stats(now)
		q.shown = &st
	}
	if _, ok := in.(Tick); ok {
		q.wake = time.Time{} // that timer has fired
	}
	s := &machineStep{q: q, now: now}
	s.expire()
	s.apply(in)
	s.dispatch()
	return s.finish()
}

// machineStep is one Step's work: the queue, the instant and the effects.
type machineStep struct {
	q   *Queue
	now time.Time
	out []Effect
}

func (s *machineStep) emit(e Effect) { s.out = append(s.out, e) }

func (q *Queue) caller(call string) int {
	return slices.IndexFunc(q.Callers, func(c Caller) bool { return c.Call == call })
}

// expire acts on the deadlines reached: a caller who waited max_wait
// overflows; an offer unanswered for ring_seconds passes its members over.
func (s *machineStep) expire() {
	q := s.q
	for i := 0; i < len(q.Callers); {
		c := &q.Callers[i]
		if q.Config.MaxWait > 0 && !s.now.Before(c.Arrived.Add(q.Config.MaxWait)) {
			call := c.Call
			s.remove(i)
			q.Overflowed++
			s.emit(Overflow{Call: call, Target: orDisconnect(q.Config.Business)})
			continue
		}
		if len(c.Ringing) > 0 && !s.now.Before(c.RingUntil) {
			for _, u := range c.Ringing {
				if a := q.Agents[u]; a != nil {
					a.Ringing = ""
				}
				s.emit(Withdraw{Call: c.Call, User: u})
			}
			c.Passed = append(c.Passed, c.Ringing...)
			c.Ringing = nil
		}
		i++
	}
}

// remove takes caller i out of the queue, withdrawing its offers.
func (s *machineStep) remove(i int) {
	q := s.q
	c := q.Callers[i]
	for _, u := range c.Ringing {
		if a := q.Agents[u]; a != nil {
			a.Ringing = ""
		}
		s.emit(Withdraw{Call: c.Call, User: u})
	}
	q.Callers = slices.Delete(q.Callers, i, i+1)
}

func (s *machineStep) apply(in any) {
	q := s.q
	switch in := in.(type) {
	case Arrive:
		s.arrive(in.Call)
	case Answered:
		s.answered(in.Call, in.User)
	case Declined:
		s.passOver(in.Call, in.User, false)
	case Refused:
		s.passOver(in.Call, in.User, true)
	case Left:
		if i := q.caller(in.Call); i >= 0 {
			q.Abandoned++
			s.remove(i)
		}
	case Ended:
		s.ended(in.Call)
	case Presence:
		a := q.Agents[in.User]
		if a == nil {
			return
		}
		a.Registered, a.OnCall, a.Elsewhere, a.OtherWrap = in.Registered, in.OnCall, in.Elsewhere, in.WrapUntil
		// A wrap-up reported by the line ends a queue call of another
		// queue: idle from its end, for longest_idle.
		if in.WrapUntil.After(a.IdleSince) {
			a.IdleSince = in.WrapUntil
		}
	case OptOut:
		if a := q.Agents[in.User]; a != nil {
			a.OptedIn, a.Reason = false, in.Reason
			s.withdraw(in.User, a)
		}
	case OptIn:
		if a := q.Agents[in.User]; a != nil {
			a.OptedIn, a.Reason = true, ""
		}
	case Configure:
		keep := map[string]bool{}
		for _, m := range in.Config.Members {
			keep[m.User] = true
		}
		for _, m := range q.Config.Members {
			if a := q.Agents[m.User]; a != nil && !keep[m.User] {
				s.withdraw(m.User, a)
				delete(q.Agents, m.User)
			}
		}
		q.adopt(in.Config)
	}
}

func (s *machineStep) arrive(call string) {
	q := s.q
	if q.caller(call) >= 0 || q.Served[call] != "" {
		s.emit(Arrived{Call: call}) // a repeat: it is already ours
		return
	}
	switch {
	case !q.Config.Hours.Open(s.now):
		t := orDisconnect(q.Config.Closed)
		q.Overflowed++
		s.emit(Arrived{Call: call, Overflow: &t})
	case q.Config.MaxCalls > 0 && len(q.Callers) >= q.Config.MaxCalls:
		t := orDisconnect(q.Config.Business)
		q.Overflowed++
		s.emit(Arrived{Call: call, Overflow: &t})
	default:
		q.Callers = append(q.Callers, Caller{Call: call, Arrived: s.now})
		s.emit(Arrived{Call: call})
	}
}

// answered: the first member to answer takes the call; an answer that lost
// the race (the caller gone, or the offer withdrawn) is ignored, and the
// call grain hangs that leg up itself.
func (s *machineStep) answered(call, user string) {
	q := s.q
	i := q.caller(call)
	if i < 0 || !slices.Contains(q.Callers[i].Ringing, user) {
		return
	}
	c := q.Callers[i]
	q.Callers = slices.Delete(q.Callers, i, i+1)
	wait := s.now.Sub(c.Arrived)
	q.Answered++
	q.TotalWait += wait
	if wait <= q.Config.ServiceLevel {
		q.AnsweredInSL++
	}
	for _, u := range c.Ringing {
		if a := q.Agents[u]; a != nil {
			a.Ringing = ""
		}
		if u != user {
			s.emit(Withdraw{Call: call, User: u})
		}
	}
	q.Agents[user].Serving = call
	if q.Served == nil {
		q.Served = map[string]string{}
	}
	q.Served[call] = user
	q.LastAnswered = user
	s.emit(Serve{Call: call, User: user})
}

// passOver: user's offer of call ended without an answer (declined, or
// refused by their line because another queue holds them).
func (s *machineStep) passOver(call, user string, refused bool) {
	q := s.q
	i := q.caller(call)
	a := q.Agents[user]
	if i < 0 || a == nil || a.Ringing != call {
		return
	}
	c := &q.Callers[i]
	c.Ringing = slices.DeleteFunc(c.Ringing, func(u string) bool { return u == user })
	c.Passed = append(c.Passed, user)
	a.Ringing = ""
	if refused {
		a.Elsewhere = true // until their line's next Presence
		return
	}
	// A declined offer still holds the member's line: let it go.
	s.emit(Withdraw{Call: call, User: user})
}

// withdraw ends the offer ringing for a (opted out, removed): passed over.
func (s *machineStep) withdraw(user string, a *Agent) {
	q := s.q
	if a.Ringing == "" {
		return
	}
	if i := q.caller(a.Ringing); i >= 0 {
		c := &q.Callers[i]
		c.Ringing = slices.DeleteFunc(c.Ringing, func(u string) bool { return u == user })
		c.Passed = append(c.Passed, user)
	}
	s.emit(Withdraw{Call: a.Ringing, User: user})
	a.Ringing = ""
}

// ended: a served call is over; its member wraps up (in every queue: the
// grain tells their line), then is idle.
func (s *machineStep) ended(call string) {
	q := s.q
	user, ok := q.Served[call]
	if !ok {
		return
	}
	delete(q.Served, call)
	q.Completed++
	var until time.Time
	if q.Config.WrapUp > 0 {
		until = s.now.Add(q.Config.WrapUp)
	}
	if a := q.Agents[user]; a != nil {
		a.Serving = ""
		a.WrapUntil = until
		a.IdleSince = s.now.Add(q.Config.WrapUp)
	}
	s.emit(WrapUp{Call: call, User: user, Until: until})
}

// available: the member may be offered a call now.
func (q *Queue) available(a *Agent, now time.Time) bool {
	return a.OptedIn && a.Registered && a.Ringing == "" && a.Serving == "" && !a.Elsewhere &&
		(!a.OnCall || q.Config.ReceiveWhileOnCall) && !now.Before(a.wrapEnd())
}

// wrapEnd is when the member's wrap-up, in any queue, ends.
func (a *Agent) wrapEnd() time.Time {
	if a.OtherWrap.After(a.WrapUntil) {
		return a.OtherWrap
	}
	return a.WrapUntil
}

// candidate is an available member.
type candidate struct {
	Member
	a *Agent
}

// dispatch offers the available members to the callers ringing nobody, the
// longest-waiting first: a later caller gets only whom the earlier left.
func (s *machineStep) dispatch() {
	q := s.q
	waiting := slices.ContainsFunc(q.Callers, func(c Caller) bool { return len(c.Ringing) == 0 })
	free := make([]candidate, 0, len(q.Config.Members))
	for _, m := range q.Config.Members {
		a := q.Agents[m.User]
		if !q.available(a, s.now) {
			continue
		}
		if a.IdleSince.IsZero() {
			a.IdleSince = s.now
		}
		if waiting {
			free = append(free, candidate{m, a})
		}
	}
	slices.SortFunc(free, func(x, y candidate) int { return compareMembers(x.Member, y.Member) })
	for i := range q.Callers {
		c := &q.Callers[i]
		if len(c.Ringing) > 0 {
			continue
		}
		free = slices.DeleteFunc(free, func(x candidate) bool { return x.a.Ringing != "" })
		if len(free) == 0 {
			return
		}
		c.RingUntil = s.now.Add(q.Config.Ring)
		for _, x := range q.pick(c, free) {
			x.a.Ringing = c.Call
			c.Ringing = append(c.Ringing, x.User)
			q.LastOffered = x.User
			s.emit(Ring{Call: c.Call, User: x.User})
		}
	}
}

// compareMembers is ring order: by Order, ties by user id.
func compareMembers(x, y Member) int {
	if x.Order != y.Order {
		return cmp.Compare(x.Order, y.Order)
	}
	return strings.Compare(x.User, y.User)
}

// pick chooses whom c rings now from free (in ring order, not empty) by the
// distribution. Once every free member has been passed over for c, a new
// round starts.
func (q *Queue) pick(c *Caller, free []candidate) []candidate {
	cand := slices.DeleteFunc(slices.Clone(free), func(x candidate) bool { return slices.Contains(c.Passed, x.User) })
	if len(cand) == 0 {
		c.Passed = nil
		cand = free
	}
	switch q.Config.Distribution {
	case Sequential:
		return cand[:1]
	case Rotating:
		last := q.LastAnswered
		if last == "" {
			last = q.LastOffered
		}
		if i := slices.IndexFunc(q.Config.Members, func(m Member) bool { return m.User == last }); i >= 0 {
			if j := slices.IndexFunc(cand, func(x candidate) bool { return compareMembers(x.Member, q.Config.Members[i]) > 0 }); j >= 0 {
				return cand[j : j+1]
			}
		}
		return cand[:1]
	case LongestIdle:
		best := cand[0]
		for _, x := range cand[1:] {
			if x.a.IdleSince.Before(best.a.IdleSince) {
				best = x
			}
		}
		return []candidate{best}
	case GroupRotating:
		return q.pickGroup(c, cand)
	default: // Simultaneous
		return cand
	}
}

// pickGroup rings one order value's members together: for a new caller the
// group after the previous caller's, else the caller's own group or the
// next one with anybody not passed over.
func (q *Queue) pickGroup(c *Caller, cand []candidate) []candidate {
	from, strict := c.Group, false
	if from == nil {
		from, strict = q.LastGroup, true
	}
	g := cand[0].Order
	if from != nil {
		if j := slices.IndexFunc(cand, func(x candidate) bool {
			return x.Order > *from || (!strict && x.Order == *from)
		}); j >= 0 {
			g = cand[j].Order
		}
	}
	if c.Group == nil {
		own, turn := g, g
		c.Group, q.LastGroup = &own, &turn
	}
	return slices.DeleteFunc(slices.Clone(cand), func(x candidate) bool { return x.Order != g })
}

// finish announces what changed: Changed when the stats moved, WakeAt when
// the next deadline did.
func (s *machineStep) finish() []Effect {
	q := s.q
	st := q.Stats(s.now)
	if !sameStats(*q.shown, st) {
		q.shown = &st
		s.emit(Changed{})
	}
	if next := q.next(s.now); !next.Equal(q.wake) {
		q.wake = next
		s.emit(WakeAt{At: next})
	}
	return s.out
}

// next is the earliest deadline: an offer's end, a caller's max wait, or
// the end of a wrap-up the stats show (the member then becomes available).
func (q *Queue) next(now time.Time) time.Time {
	var t time.Time
	earlier := func(d time.Time) {
		if t.IsZero() || d.Before(t) {
			t = d
		}
	}
	for _, c := range q.Callers {
		if len(c.Ringing) > 0 {
			earlier(c.RingUntil)
		}
		if q.Config.MaxWait > 0 {
			earlier(c.Arrived.Add(q.Config.MaxWait))
		}
	}
	for _, a := range q.Agents {
		if a.state(q, now) == StateWrapUp {
			earlier(a.wrapEnd())
		}
	}
	return t
}

// orDisconnect is t, or disconnect when unset (the default overflow).
func orDisconnect(t Target) Target {
	if t.Kind == "" {
		return Target{Kind: "disconnect"}
	}
	return t
}
