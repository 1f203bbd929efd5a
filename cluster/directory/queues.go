package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboard/switchboard/actors/hours"
	"github.com/switchboard/switchboard/cluster/store"
)

const (
	kindQueues = "queues"
	// maxAdmins: a queue's supervisors, as many as a monitoring group's.
	maxAdmins = maxSupervisors
)

// Distributions are the ways a queue offers its calls (INTERFACE.md §5);
// the first is the default.
var Distributions = []string{"simultaneous", "sequential", "rotating", "group_rotating", "longest_idle"}

// Kinds of overflow Target.
const (
	TargetVoicemail  = "voicemail" // the owner's own inbox
	TargetUser       = "user"
	TargetQueue      = "queue"
	TargetNumber     = "number"     // an E.164 number, dialled out or to its owner
	TargetMessage    = "message"    // the greeting prompt, then hang up
	TargetDisconnect = "disconnect" // the default
)

// Target is where an overflowing call goes. ID names the user, queue or
// number, and is empty for the other kinds.
type Target struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// Overflow is where a queue's or group's calls go when it cannot take them
// (Business) and outside its hours (Closed).
type Overflow struct {
	Business Target `json:"business"`
	Closed   Target `json:"closed"`
}

// QueueMember is a member of a queue; a lower Order rings first.
type QueueMember struct {
	User  string `json:"user"`
	Order int    `json:"order"`
}

// Queue is a call queue's settings; its callers, members' state and
// counters are its grain's.
type Queue struct {
	ID                  string          `json:"id"`
	Name                string          `json:"name"`
	Extension           string          `json:"extension"` // "" when it has none
	Numbers             []string        `json:"numbers"`
	Members             []QueueMember   `json:"members"`
	Distribution        string          `json:"distribution"`
	RingSeconds         int             `json:"ring_seconds"`
	MaxWaitSeconds      int             `json:"max_wait_seconds"`
	MaxCalls            int             `json:"max_calls"`
	WrapUpSeconds       int             `json:"wrap_up_seconds"`
	ReceiveWhileOnCall  bool            `json:"receive_while_on_call"`
	ServiceLevelSeconds int             `json:"service_level_seconds"`
	ClaimReleaseSeconds int             `json:"claim_release_seconds"`
	Timezone            string          `json:"timezone"`
	BusinessHours       hours.Week      `json:"business_hours"` // nil: always open
	Holidays            []hours.Holiday `json:"holidays"`
	Overflow            Overflow        `json:"overflow"`
	Admins              []string        `json:"admins"`
	TeamSMS             bool            `json:"team_sms"`
}

// MemberUsers is the queue's members' user ids, in the order listed.
func (q Queue) MemberUsers() []string {
	out := make([]string, len(q.Members))
	for i, m := range q.Members {
		out[i] = m.User
	}
	return out
}

// QueuePatch is the body of PATCH /v1/queues/{id}; absent (or null) fields
// stay. A list sent replaces the whole list; an overflow target left out
// (or sent as {}) stays.
type QueuePatch struct {
	Name                *string          `json:"name"`
	Extension           *string          `json:"extension"`
	Numbers             *[]string        `json:"numbers"`
	Members             *[]QueueMember   `json:"members"`
	Distribution        *string          `json:"distribution"`
	RingSeconds         *int             `json:"ring_seconds"`
	MaxWaitSeconds      *int             `json:"max_wait_seconds"`
	MaxCalls            *int             `json:"max_calls"`
	WrapUpSeconds       *int             `json:"wrap_up_seconds"`
	ReceiveWhileOnCall  *bool            `json:"receive_while_on_call"`
	ServiceLevelSeconds *int             `json:"service_level_seconds"`
	ClaimReleaseSeconds *int             `json:"claim_release_seconds"`
	Timezone            *string          `json:"timezone"`
	BusinessHours       *hours.Week      `json:"business_hours"`
	Holidays            *[]hours.Holiday `json:"holidays"`
	Overflow            *Overflow        `json:"overflow"`
	Admins              *[]string        `json:"admins"`
	TeamSMS             *bool            `json:"team_sms"`
}

// QueueInput is the body of POST /v1/queues: the id, and the settings of a
// patch applied to the defaults.
type QueueInput struct {
	ID string `json:"id"`
	QueuePatch
}

// span is a whole-number setting's range and default.
type span struct {
	field       string
	def, lo, hi int
}

// set applies v (when sent) to dst within the span.
func (s span) set(dst *int, v *int) error {
	if v == nil {
		return nil
	}
	if *v < s.lo || *v > s.hi {
		return &FieldError{s.field, fmt.Sprintf("must be from %d to %d", s.lo, s.hi)}
	}
	*dst = *v
	return nil
}

// A queue's limits (INTERFACE.md §5 "Call queues").
var (
	queueRing         = span{"ring_seconds", 20, 5, 120}
	queueMaxWait      = span{"max_wait_seconds", 300, 10, 7200}
	queueMaxCalls     = span{"max_calls", 20, 1, 500}
	queueWrapUp       = span{"wrap_up_seconds", 0, 0, 600}
	queueServiceLevel = span{"service_level_seconds", 20, 5, 600}
	queueClaimRelease = span{"claim_release_seconds", 300, 10, 3600}
)

func disconnect() Overflow {
	return Overflow{Business: Target{Kind: TargetDisconnect}, Closed: Target{Kind: TargetDisconnect}}
}

// newQueue is a queue with every default.
func newQueue(id string) Queue {
	return Queue{ID: id, Name: id, Numbers: []string{}, Members: []QueueMember{}, Distribution: Distributions[0],
		RingSeconds: queueRing.def, MaxWaitSeconds: queueMaxWait.def, MaxCalls: queueMaxCalls.def, WrapUpSeconds: queueWrapUp.def,
		ServiceLevelSeconds: queueServiceLevel.def, ClaimReleaseSeconds: queueClaimRelease.def, Timezone: defaultTZ,
		Holidays: []hours.Holiday{}, Overflow: disconnect(), Admins: []string{}}
}

// apply returns q changed by the patch, checked field by field; what the
// fields name (users, queues) is checked by queueRules.
func (p QueuePatch) apply(q Queue) (Queue, error) {
	if p.Name != nil {
		q.Name = *p.Name
	}
	if err := checkName(q.Name); err != nil {
		return q, err
	}
	if p.Extension != nil {
		q.Extension = *p.Extension
	}
	if err := checkOptionalExt(q.Extension); err != nil {
		return q, err
	}
	var err error
	if p.Numbers != nil {
		if q.Numbers, err = checkNumbers(*p.Numbers, maxNumbers); err != nil {
			return q, err
		}
	}
	if p.Members != nil {
		if q.Members, err = checkQueueMembers(*p.Members); err != nil {
			return q, err
		}
	}
	if p.Distribution != nil {
		if !slices.Contains(Distributions, *p.Distribution) {
			return q, &FieldError{"distribution", "must be one of " + strings.Join(Distributions, ", ")}
		}
		q.Distribution = *p.Distribution
	}
	for _, s := range []struct {
		span
		dst, v *int
	}{
		{queueRing, &q.RingSeconds, p.RingSeconds},
		{queueMaxWait, &q.MaxWaitSeconds, p.MaxWaitSeconds},
		{queueMaxCalls, &q.MaxCalls, p.MaxCalls},
		{queueWrapUp, &q.WrapUpSeconds, p.WrapUpSeconds},
		{queueServiceLevel, &q.ServiceLevelSeconds, p.ServiceLevelSeconds},
		{queueClaimRelease, &q.ClaimReleaseSeconds, p.ClaimReleaseSeconds},
	} {
		if err := s.set(s.dst, s.v); err != nil {
			return q, err
		}
	}
	if p.ReceiveWhileOnCall != nil {
		q.ReceiveWhileOnCall = *p.ReceiveWhileOnCall
	}
	if p.TeamSMS != nil {
		q.TeamSMS = *p.TeamSMS
	}
	if err := setSchedule(&q.Timezone, &q.BusinessHours, &q.Holidays, p.Timezone, p.BusinessHours, p.Holidays); err != nil {
		return q, err
	}
	if err := setOverflow(&q.Overflow, p.Overflow); err != nil {
		return q, err
	}
	if p.Admins != nil {
		if q.Admins, err = checkIDs("admins", *p.Admins, maxAdmins); err != nil {
			return q, err
		}
	}
	return q, nil
}

func checkOptionalExt(ext string) error {
	if ext != "" && !validExt(ext) {
		return &FieldError{"extension", "must be 2 to 10 digits, or empty for none"}
	}
	return nil
}

func checkQueueMembers(ms []QueueMember) ([]QueueMember, error) {
	if len(ms) > maxMembers {
		return nil, &FieldError{"members", fmt.Sprintf("must list at most %d members", maxMembers)}
	}
	for i, m := range ms {
		field := "members[" + strconv.Itoa(i) + "]"
		switch {
		case m.User == "":
			return nil, &FieldError{field + ".user", "is required"}
		case slices.ContainsFunc(ms[:i], func(o QueueMember) bool { return o.User == m.User }):
			return nil, &FieldError{field + ".user", "is listed twice"}
		case m.Order < 0:
			return nil, &FieldError{field + ".order", "must be 0 or more"}
		}
	}
	if ms == nil {
		ms = []QueueMember{}
	}
	return ms, nil
}

// setSchedule applies the hours settings a patch sent: a time zone ("" is
// UTC), business hours (none on any day is always open, stored as null)
// and holidays.
func setSchedule(tz *string, week *hours.Week, hs *[]hours.Holiday, pTZ *string, pWeek *hours.Week, pHs *[]hours.Holiday) error {
	if pTZ != nil {
		*tz = *pTZ
		if *tz == "" {
			*tz = defaultTZ
		}
		if err := hours.CheckTimeZone("timezone", *tz); err != nil {
			return fromHours(err)
		}
	}
	if pWeek != nil {
		w, err := hours.CheckWeek("business_hours", *pWeek)
		if err != nil {
			return fromHours(err)
		}
		if w.Empty() {
			w = nil
		}
		*week = w
	}
	if pHs != nil {
		if err := hours.CheckHolidays("holidays", *pHs); err != nil {
			return fromHours(err)
		}
		*hs = slices.Clone(*pHs)
		if *hs == nil {
			*hs = []hours.Holiday{}
		}
	}
	return nil
}

// setOverflow applies the targets a patch sent and checks their form.
func setOverflow(o *Overflow, p *Overflow) error {
	if p == nil {
		return nil
	}
	for _, t := range []struct {
		field     string
		dst, sent *Target
	}{{"overflow.business", &o.Business, &p.Business}, {"overflow.closed", &o.Closed, &p.Closed}} {
		if *t.sent == (Target{}) {
			continue
		}
		if err := checkTarget(t.field, *t.sent); err != nil {
			return err
		}
		*t.dst = *t.sent
	}
	return nil
}

// checkTarget checks a target's form: a known kind, with an id exactly
// when the kind needs one.
func checkTarget(field string, t Target) error {
	switch t.Kind {
	case TargetUser, TargetQueue:
		if t.ID == "" {
			return &FieldError{field + ".id", "is required for kind " + t.Kind}
		}
	case TargetNumber:
		if !validE164(t.ID) {
			return &FieldError{field + ".id", e164Message}
		}
	case TargetVoicemail, TargetMessage, TargetDisconnect:
		if t.ID != "" {
			return &FieldError{field + ".id", "must be left out for kind " + t.Kind}
		}
	case "":
		return &FieldError{field + ".kind", "is required"}
	default:
		return &FieldError{field + ".kind", "must be voicemail, user, queue, number, message or disconnect"}
	}
	return nil
}

// sentTarget is a target with the field it is sent as.
type sentTarget struct {
	field string
	Target
}

// targets lists an overflow's two targets.
func (o Overflow) targets() []sentTarget {
	return []sentTarget{{"overflow.business", o.Business}, {"overflow.closed", o.Closed}}
}

// queueRules checks, against the directory, what the patch sent: the
// users named exist, and the overflow's targets are allowed (see
// checkOverflow). Its claims fence what the checks read.
func (d *Directory) queueRules(ctx context.Context, q Queue, p QueuePatch, old Overflow) (claims, error) {
	var c claims
	if p.Members != nil {
		for i, m := range q.Members {
			if err := d.userExists("members["+strconv.Itoa(i)+"].user", m.User); err != nil {
				return c, err
			}
		}
	}
	if p.Admins != nil {
		if err := d.usersExist("admins", q.Admins); err != nil {
			return c, err
		}
	}
	if p.Overflow != nil {
		if err := d.checkOverflow(ctx, &c, Dest{DestQueue, q.ID}, q.Overflow, old); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkOverflow checks the overflow of owner (a queue or a shared line
// group) against the rules: no voicemail until inboxes exist, a user or
// queue target that exists, and for a queue no chain of queue overflows
// that comes back to it. Each queue read is fenced in c, so the check
// still holds when the write commits; a queue newly targeted is rewritten
// unchanged, so that a delete of it racing this write loses its own fence
// rather than leave the overflow pointing nowhere.
func (d *Directory) checkOverflow(ctx context.Context, c *claims, owner Dest, o, old Overflow) error {
	read := map[string]*store.KV{} // queue id -> what etcd has (nil: none)
	get := func(id string) (*store.KV, error) {
		if kv, ok := read[id]; ok {
			return kv, nil
		}
		kv, err := d.st.Get(ctx, store.Key(kindQueues, id))
		if errors.Is(err, store.ErrNotFound) {
			read[id] = nil
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("directory: read queue %s: %w", id, err)
		}
		read[id] = &kv
		c.fence(kv.Key, kv.ModRevision)
		return &kv, nil
	}
	touched := map[string]bool{}
	for _, t := range o.targets() {
		field := t.field + ".id"
		switch t.Kind {
		case TargetVoicemail:
			return &RuleError{"voicemail_unavailable", t.field + ".kind", "voicemail overflow needs inboxes, which are not available yet"}
		case TargetUser:
			if err := d.userExists(field, t.ID); err != nil {
				return err
			}
		case TargetQueue:
			if owner == (Dest{DestQueue, t.ID}) {
				return &RuleError{"overflow_loop", field, fmt.Sprintf("sends queue %s's calls back to itself", t.ID)}
			}
			kv, err := get(t.ID)
			if err != nil {
				return err
			}
			if kv == nil {
				return &RuleError{"unknown_queue", field, fmt.Sprintf("is not a queue: no queue has the id %q", t.ID)}
			}
			wasTarget := old.Business == t.Target || old.Closed == t.Target
			if !wasTarget && !touched[t.ID] {
				touched[t.ID] = true
				c.ops = append(c.ops, store.Op{Key: kv.Key, Value: kv.Value})
			}
			if owner.Kind != DestQueue {
				continue
			}
			loop, err := d.loopBack(owner.ID, []string{owner.ID, t.ID}, get, map[string]bool{})
			if err != nil {
				return err
			}
			if loop != nil {
				return &RuleError{"overflow_loop", field, "makes a loop of overflows: queue " + strings.Join(loop, " → ")}
			}
		}
	}
	return nil
}

// loopBack follows the queue overflows from the last queue of path and
// returns the path that reaches self again, or nil.
func (d *Directory) loopBack(self string, path []string, get func(string) (*store.KV, error), seen map[string]bool) ([]string, error) {
	at := path[len(path)-1]
	if seen[at] {
		return nil, nil
	}
	seen[at] = true
	kv, err := get(at)
	if err != nil || kv == nil {
		return nil, err // a queue gone meanwhile ends the chain
	}
	var q Queue
	if err := json.Unmarshal(kv.Value, &q); err != nil {
		return nil, fmt.Errorf("directory: queue %s unreadable: %w", at, err)
	}
	for _, t := range q.Overflow.targets() {
		if t.Kind != TargetQueue {
			continue
		}
		next := append(slices.Clone(path), t.ID)
		if t.ID == self {
			return next, nil
		}
		if loop, err := d.loopBack(self, next, get, seen); loop != nil || err != nil {
			return loop, err
		}
	}
	return nil, nil
}

// ---- the cache ------------------------------------------------------------

func (d *Directory) putQueueLocked(q Queue) {
	d.queues[q.ID] = q
	d.queuesOf.add(q.ID, q.MemberUsers())
	d.putDestsLocked(Dest{DestQueue, q.ID}, q.Extension, q.Numbers)
}

func (d *Directory) dropQueueLocked(id string) {
	old, ok := d.queues[id]
	if !ok {
		return
	}
	delete(d.queues, id)
	d.queuesOf.remove(id, old.MemberUsers())
	d.dropDestsLocked(Dest{DestQueue, id}, old.Extension, old.Numbers)
}

// QueueByID returns a queue from the cache alone (no etcd read: the node
// asks on every queue call). A queue written on another node is seen once
// its watch event arrives. Its lists are the cache's: read them only.
func (d *Directory) QueueByID(id string) (Queue, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	q, ok := d.queues[id]
	return q, ok
}

// QueuesOf returns the ids of the queues user is a member of, in order,
// from the cache.
func (d *Directory) QueuesOf(user string) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.queuesOf.of(user)
}

// ---- reads and writes -------------------------------------------------------

// GetQueue reads a queue from etcd, so that a queue written on another node
// a moment ago is found; ErrNotFound when there is none.
func (d *Directory) GetQueue(ctx context.Context, id string) (Queue, error) {
	return getSetting[Queue](ctx, d.st, kindQueues, "queue", id)
}

// getSetting reads the JSON setting kind/id from etcd.
func getSetting[T any](ctx context.Context, st store.Store, kind, what, id string) (T, error) {
	var v T
	if !validID(id) {
		return v, ErrNotFound
	}
	kv, err := st.Get(ctx, store.Key(kind, id))
	if errors.Is(err, store.ErrNotFound) {
		return v, ErrNotFound
	}
	if err != nil {
		return v, fmt.Errorf("directory: read %s %s: %w", what, id, err)
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return v, fmt.Errorf("directory: %s %s unreadable: %w", what, id, err)
	}
	return v, nil
}

// CreateQueue validates and stores a queue with its extension and numbers
// claimed: ErrExists when the id or a name is taken, a *FieldError or a
// *RuleError when the input does not pass.
func (d *Directory) CreateQueue(ctx context.Context, in QueueInput) (Queue, error) {
	if in.ID == "" {
		return Queue{}, &FieldError{"id", "is required"}
	}
	if in.Name != nil && *in.Name == "" {
		in.Name = nil // the id, as when absent
	}
	q, err := writeSetting(ctx, d, kindQueues, "queue", in.ID, true, func(*Queue) (*Queue, claims, error) {
		return d.changeQueue(ctx, newQueue(in.ID), in.QueuePatch, nil)
	})
	if err == nil {
		d.log.Info("queue created", "id", q.ID, "extension", q.Extension, "members", len(q.Members))
	}
	return q, err
}

// UpdateQueue applies a patch, fenced on the queue's revision.
func (d *Directory) UpdateQueue(ctx context.Context, id string, p QueuePatch) (Queue, error) {
	return writeSetting(ctx, d, kindQueues, "queue", id, false, func(old *Queue) (*Queue, claims, error) {
		return d.changeQueue(ctx, *old, p, old)
	})
}

// changeQueue is q with the patch applied and checked, and the claims of
// its names (those of old, when it is stored, released).
func (d *Directory) changeQueue(ctx context.Context, q Queue, p QueuePatch, old *Queue) (*Queue, claims, error) {
	next, err := p.apply(q)
	if err != nil {
		return nil, claims{}, err
	}
	var was Queue // nothing claimed, nothing targeted
	if old != nil {
		was = *old
	}
	c, err := d.queueRules(ctx, next, p, was.Overflow)
	if err != nil {
		return nil, claims{}, err
	}
	c.names(Dest{DestQueue, next.ID}, was.Extension, was.Numbers, next.Extension, next.Numbers)
	return &next, c, nil
}

// DeleteQueue removes a queue and frees its names. A queue that another
// queue or a shared line group overflows to stays (ErrExists names who).
func (d *Directory) DeleteQueue(ctx context.Context, id string) error {
	_, err := writeSetting(ctx, d, kindQueues, "queue", id, false, func(old *Queue) (*Queue, claims, error) {
		by, err := d.overflowsTo(ctx, id)
		if err != nil {
			return nil, claims{}, err
		}
		if by != "" {
			return nil, claims{}, fmt.Errorf("queue %s is the overflow of %s: %w", id, by, ErrExists)
		}
		var c claims
		c.names(Dest{DestQueue, id}, old.Extension, old.Numbers, "", nil)
		return nil, c, nil
	})
	if err == nil {
		d.log.Info("queue deleted", "id", id)
	}
	return err
}

// overflowsTo names a queue or shared line group whose overflow sends calls
// to queue id, or is "".
func (d *Directory) overflowsTo(ctx context.Context, id string) (string, error) {
	target := Target{Kind: TargetQueue, ID: id}
	by := ""
	err := each(ctx, d.st, kindQueues, func(q Queue) error {
		if by == "" && (q.Overflow.Business == target || q.Overflow.Closed == target) {
			by = "queue " + q.ID
		}
		return nil
	})
	if err != nil || by != "" {
		return by, err
	}
	err = each(ctx, d.st, kindSLGs, func(g SharedLineGroup) error {
		if by == "" && (g.Overflow.Business == target || g.Overflow.Closed == target) {
			by = "shared line group " + g.ID
		}
		return nil
	})
	return by, err
}

// ListQueues pages queues in id order from etcd.
func (d *Directory) ListQueues(ctx context.Context, after string, limit int) ([]Queue, string, error) {
	return list[Queue](ctx, d.st, kindQueues, after, limit)
}

// forgetInQueues takes a user being deleted out of every queue's members
// and admins, and turns an overflow to them into a disconnect, so that a
// user created later with the same id inherits none of it.
func (d *Directory) forgetInQueues(ctx context.Context, user string) error {
	return each(ctx, d.st, kindQueues, func(q Queue) error {
		if !forgetInQueue(&q, user) {
			return nil
		}
		_, err := writeSetting(ctx, d, kindQueues, "queue", q.ID, false, func(old *Queue) (*Queue, claims, error) {
			forgetInQueue(old, user)
			return old, claims{}, nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("directory: take %s out of queue %s: %w", user, q.ID, err)
		}
		return nil
	})
}

// forgetInQueue removes user from q and reports whether q named them.
func forgetInQueue(q *Queue, user string) bool {
	n := len(q.Members) + len(q.Admins)
	q.Members = slices.DeleteFunc(q.Members, func(m QueueMember) bool { return m.User == user })
	q.Admins = slices.DeleteFunc(q.Admins, func(a string) bool { return a == user })
	return forgetTarget(&q.Overflow, user) || n != len(q.Members)+len(q.Admins)
}

// forgetTarget turns an overflow to user into a disconnect and reports
// whether there was one.
func forgetTarget(o *Overflow, user string) bool {
	changed := false
	for _, t := range []*Target{&o.Business, &o.Closed} {
		if *t == (Target{Kind: TargetUser, ID: user}) {
			*t, changed = Target{Kind: TargetDisconnect}, true
		}
	}
	return changed
}
