// Package delegator is the delegator grain: one virtual actor per user who
// shares their line. machine.go is its pure core: the delegates with their
// privileges and order, invitations, opt-in/out, the VIP list and settings,
// and the ring plan they add up to. grain.go persists it and answers the
// REST edge and the call grains.
package delegator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard/switchboard/actors/hours"
)

// Privilege is one of the seven a delegator grants a delegate (000 L94-106).
type Privilege string

const (
	PlaceCalls    Privilege = "place_calls"
	AnswerCalls   Privilege = "answer_calls"
	JoinMerge     Privilege = "join_merge"
	OptInOut      Privilege = "opt_in_out"
	PickupHold    Privilege = "pickup_hold"
	BusinessHours Privilege = "business_hours"
	ManageVIP     Privilege = "manage_vip"
)

// Privileges is every privilege, in INTERFACE.md's order.
var Privileges = []Privilege{PlaceCalls, AnswerCalls, JoinMerge, OptInOut, PickupHold, BusinessHours, ManageVIP}

// Status of an invitation.
type Status string

const (
	Pending  Status = "pending"
	Accepted Status = "accepted"
	Declined Status = "declined"
)

// Delegation is one delegate of the delegator.
type Delegation struct {
	Delegator  string      `json:"delegator"`
	Delegate   string      `json:"delegate"`
	Privileges []Privilege `json:"privileges"`
	Order      int         `json:"order"`
	Status     Status      `json:"status"`
	OptedIn    bool        `json:"opted_in"`
}

// Has says whether the delegation grants p.
func (d Delegation) Has(p Privilege) bool { return slices.Contains(d.Privileges, p) }

// VIP modes and everybody-else modes (001 L25-35).
const (
	MeOnly          = "me_only"
	MeThenDelegates = "me_then_delegates"
	Simultaneous    = "simultaneous"
	DelegatesThenMe = "delegates_then_me"
	DelegatesOnly   = "delegates_only"
	Voicemail       = "voicemail"
)

var (
	vipModes       = []string{MeOnly, MeThenDelegates}
	everybodyModes = []string{Simultaneous, DelegatesThenMe, MeThenDelegates, DelegatesOnly, MeOnly, Voicemail}
)

// VIP is the VIP delegation setting; off for a new user.
type VIP struct {
	Enabled       bool   `json:"enabled"`
	VIPMode       string `json:"vip_mode"`
	EverybodyElse string `json:"everybody_else"`
	RingSeconds   int    `json:"ring_seconds"`
}

// Ring stage bounds; the seed gives no duration (001, [VAGUE]).
const (
	DefaultRingSeconds = 20
	MinRingSeconds     = 5
	MaxRingSeconds     = 120
)

// DefaultVIP is what a missing field of a PUT takes.
var DefaultVIP = VIP{VIPMode: MeOnly, EverybodyElse: Simultaneous, RingSeconds: DefaultRingSeconds}

// Privacy is the delegator's optional privacy settings (000 L110-114).
// Call locking needs no setting here: the owner locks a call during it.
// The chime is off until the delegator turns it on, as the seed lists it
// among the optional settings (and a state stored before it existed
// reads as off).
type Privacy struct {
	JoinChime bool `json:"join_chime"` // a chime when someone joins or leaves a call on the line
}

// State is everything the delegator grain owns.
type State struct {
	Delegator   string       `json:"delegator"`
	Delegations []Delegation `json:"delegations"`
	VIP         VIP          `json:"vip"`
	Contacts    []string     `json:"vip_contacts"`
	Privacy     Privacy      `json:"privacy"`
}

// NewState is a user who shares nothing yet.
func NewState(delegator string) *State {
	return &State{Delegator: delegator, VIP: DefaultVIP}
}

// Person is what the rules need to know of a user: the directory's facts.
type Person struct {
	ID               string
	Name             string
	Numbers          []string
	Extension        string
	Timezone         string
	Hours            map[string][][]string // "mon" -> [["08:00","17:00"]]
	PowerPack        bool
	VoicemailEnabled bool
}

// Actor is who asks: a user (by id) or the admin.
type Actor struct {
	User  string
	Admin bool
}

// Refusal is an action the rules refuse, with its HTTP status and code.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

func refuse(status int, code, format string, args ...any) *Refusal {
	return &Refusal{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (s *State) find(delegate string) int {
	return slices.IndexFunc(s.Delegations, func(d Delegation) bool { return d.Delegate == delegate })
}

// Delegation returns the delegation of delegate, if any.
func (s *State) Delegation(delegate string) (Delegation, bool) {
	if i := s.find(delegate); i >= 0 {
		return s.Delegations[i], true
	}
	return Delegation{}, false
}

func (s *State) sort() {
	slices.SortStableFunc(s.Delegations, func(a, b Delegation) int {
		if a.Order != b.Order {
			return a.Order - b.Order
		}
		return strings.Compare(a.Delegate, b.Delegate)
	})
}

// hasAnsweringDelegate: an accepted delegate with Answer Calls exists, which
// every mode that rings delegates needs (001 L23, L29).
func (s *State) hasAnsweringDelegate() bool {
	return slices.ContainsFunc(s.Delegations, func(d Delegation) bool { return d.Status == Accepted && d.Has(AnswerCalls) })
}

func checkPrivileges(ps []Privilege) error {
	seen := map[Privilege]bool{}
	for i, p := range ps {
		if !slices.Contains(Privileges, p) {
			return refuse(400, "invalid_field", "privileges[%d]: %q is not a privilege (use %s).", i, p, joinPrivileges())
		}
		if seen[p] {
			return refuse(400, "invalid_field", "privileges[%d]: %q is listed twice.", i, p)
		}
		seen[p] = true
	}
	return nil
}

func joinPrivileges() string {
	s := make([]string, len(Privileges))
	for i, p := range Privileges {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// Invite adds a pending delegate (or re-invites one who declined). Only the
// delegator or the admin invites.
func (s *State) Invite(by Actor, delegate Person, privileges []Privilege, order int) (Delegation, error) {
	if !by.Admin && by.User != s.Delegator {
		return Delegation{}, refuse(403, "forbidden", "Only %s or an admin may invite delegates to this line.", s.Delegator)
	}
	if delegate.ID == s.Delegator {
		return Delegation{}, refuse(422, "self_delegation", "A user cannot be their own delegate.")
	}
	if err := checkPrivileges(privileges); err != nil {
		return Delegation{}, err
	}
	if order < 0 {
		return Delegation{}, refuse(400, "invalid_field", "order: must be 0 or more.")
	}
	if i := s.find(delegate.ID); i >= 0 && s.Delegations[i].Status != Declined {
		return Delegation{}, refuse(409, "already_delegate", "%s is already invited to this line.", delegate.ID)
	} else if i >= 0 {
		s.Delegations = slices.Delete(s.Delegations, i, i+1)
	}
	d := Delegation{Delegator: s.Delegator, Delegate: delegate.ID, Privileges: slices.Clone(privileges), Order: order, Status: Pending, OptedIn: true}
	if d.Privileges == nil {
		d.Privileges = []Privilege{}
	}
	s.Delegations = append(s.Delegations, d)
	s.sort()
	return d, nil
}

// Update changes a delegate's privileges or order (the delegator or admin).
func (s *State) Update(by Actor, delegate string, privileges *[]Privilege, order *int) (Delegation, error) {
	if !by.Admin && by.User != s.Delegator {
		return Delegation{}, refuse(403, "forbidden", "Only %s or an admin may change this line's delegates.", s.Delegator)
	}
	i := s.find(delegate)
	if i < 0 {
		return Delegation{}, refuse(404, "not_found", "%s is not a delegate of %s.", delegate, s.Delegator)
	}
	if privileges != nil {
		if err := checkPrivileges(*privileges); err != nil {
			return Delegation{}, err
		}
		s.Delegations[i].Privileges = slices.Clone(*privileges)
	}
	if order != nil {
		if *order < 0 {
			return Delegation{}, refuse(400, "invalid_field", "order: must be 0 or more.")
		}
		s.Delegations[i].Order = *order
	}
	d := s.Delegations[i]
	s.sort()
	return d, nil
}

// Remove ends a delegation; the delegator, the admin or the delegate may.
func (s *State) Remove(by Actor, delegate string) error {
	if !by.Admin && by.User != s.Delegator && by.User != delegate {
		return refuse(403, "forbidden", "Only %s, %s or an admin may end this delegation.", s.Delegator, delegate)
	}
	i := s.find(delegate)
	if i < 0 {
		return refuse(404, "not_found", "%s is not a delegate of %s.", delegate, s.Delegator)
	}
	s.Delegations = slices.Delete(s.Delegations, i, i+1)
	return nil
}

// Respond is the delegate's side: accept, decline, opt_in or opt_out. The
// admin may do each for the delegate (force-accept, 001 L39).
func (s *State) Respond(by Actor, delegate, action string) (Delegation, error) {
	i := s.find(delegate)
	if i < 0 {
		return Delegation{}, refuse(404, "not_found", "%s has no invitation from %s.", delegate, s.Delegator)
	}
	if !by.Admin && by.User != delegate {
		return Delegation{}, refuse(403, "forbidden", "Only %s or an admin may answer this invitation.", delegate)
	}
	d := &s.Delegations[i]
	switch action {
	case "accept":
		if d.Status == Accepted {
			return *d, nil
		}
		d.Status = Accepted
	case "decline":
		d.Status = Declined
	case "opt_in", "opt_out":
		if d.Status != Accepted {
			return Delegation{}, refuse(409, "not_accepted", "The invitation from %s has not been accepted.", s.Delegator)
		}
		if !by.Admin && !d.Has(OptInOut) {
			return Delegation{}, refuse(403, "missing_privilege", "%s has not been granted the opt_in_out privilege on %s's line.", delegate, s.Delegator)
		}
		d.OptedIn = action == "opt_in"
	default:
		return Delegation{}, refuse(400, "invalid_action", "Unknown action %q.", action)
	}
	return *d, nil
}

// PutVIP replaces the VIP settings (the delegator or admin). me is the
// delegator as the directory knows them (Power Pack, voicemail).
func (s *State) PutVIP(by Actor, me Person, v VIP) (VIP, error) {
	if !by.Admin && by.User != s.Delegator {
		return VIP{}, refuse(403, "forbidden", "Only %s or an admin may change these VIP settings.", s.Delegator)
	}
	if v.VIPMode == "" {
		v.VIPMode = DefaultVIP.VIPMode
	}
	if v.EverybodyElse == "" {
		v.EverybodyElse = DefaultVIP.EverybodyElse
	}
	if v.RingSeconds == 0 {
		v.RingSeconds = DefaultVIP.RingSeconds
	}
	switch {
	case !slices.Contains(vipModes, v.VIPMode):
		return VIP{}, refuse(400, "invalid_field", "vip_mode: must be one of %s.", strings.Join(vipModes, ", "))
	case !slices.Contains(everybodyModes, v.EverybodyElse):
		return VIP{}, refuse(400, "invalid_field", "everybody_else: must be one of %s.", strings.Join(everybodyModes, ", "))
	case v.RingSeconds < MinRingSeconds || v.RingSeconds > MaxRingSeconds:
		return VIP{}, refuse(400, "invalid_field", "ring_seconds: must be from %d to %d.", MinRingSeconds, MaxRingSeconds)
	}
	if v.Enabled {
		if !me.PowerPack {
			return VIP{}, refuse(422, "power_pack_required", "VIP delegation needs a Power Pack license, and %s has none.", s.Delegator)
		}
		if !s.hasAnsweringDelegate() {
			if v.VIPMode != MeOnly {
				return VIP{}, refuse(422, "needs_answering_delegate", "vip_mode %q rings delegates, but %s has no accepted delegate with answer_calls.", v.VIPMode, s.Delegator)
			}
			if v.EverybodyElse != MeOnly && v.EverybodyElse != Voicemail {
				return VIP{}, refuse(422, "needs_answering_delegate", "everybody_else %q rings delegates, but %s has no accepted delegate with answer_calls: only me_only and voicemail are allowed.", v.EverybodyElse, s.Delegator)
			}
		}
		if v.EverybodyElse == Voicemail && !me.VoicemailEnabled {
			return VIP{}, refuse(422, "voicemail_disabled", "everybody_else voicemail needs voicemail, which is not enabled for %s.", s.Delegator)
		}
	}
	s.VIP = v
	return v, nil
}

// PutPrivacy replaces the privacy settings (the delegator or admin).
func (s *State) PutPrivacy(by Actor, p Privacy) (Privacy, error) {
	if !by.Admin && by.User != s.Delegator {
		return Privacy{}, refuse(403, "forbidden", "Only %s or an admin may change these privacy settings.", s.Delegator)
	}
	s.Privacy = p
	return p, nil
}

// MayReadPrivacy: the delegator, the admin, and the line's accepted
// delegates, who are the ones a chime announces.
func (s *State) MayReadPrivacy(by Actor) bool {
	if by.Admin || by.User == s.Delegator {
		return true
	}
	d, ok := s.Delegation(by.User)
	return ok && d.Status == Accepted
}

// mayEditContacts: the delegator, the admin, or a delegate with Manage VIP.
func (s *State) mayEditContacts(by Actor) bool {
	if by.Admin || by.User == s.Delegator {
		return true
	}
	d, ok := s.Delegation(by.User)
	return ok && d.Status == Accepted && d.Has(ManageVIP)
}

// AddContact puts a user id or E.164 number on the VIP list.
func (s *State) AddContact(by Actor, contact string) error {
	if !s.mayEditContacts(by) {
		return refuse(403, "forbidden", "Only %s, an admin or a delegate with manage_vip may edit this VIP list.", s.Delegator)
	}
	if !s.VIP.Enabled {
		return refuse(422, "vip_disabled", "VIP contacts cannot be added while VIP delegation is off for %s.", s.Delegator)
	}
	if slices.Contains(s.Contacts, contact) {
		return refuse(409, "already_vip", "%s is already a VIP contact.", contact)
	}
	s.Contacts = append(s.Contacts, contact)
	slices.Sort(s.Contacts)
	return nil
}

// RemoveContact takes a contact off the VIP list.
func (s *State) RemoveContact(by Actor, contact string) error {
	if !s.mayEditContacts(by) {
		return refuse(403, "forbidden", "Only %s, an admin or a delegate with manage_vip may edit this VIP list.", s.Delegator)
	}
	i := slices.Index(s.Contacts, contact)
	if i < 0 {
		return refuse(404, "not_found", "%s is not a VIP contact.", contact)
	}
	s.Contacts = slices.Delete(s.Contacts, i, i+1)
	return nil
}

// Role of a user on the delegator's line.
type Role string

const (
	Owner    Role = "owner"
	Delegate Role = "delegate"
	Nobody   Role = "none"
)

// Access is what a user may do on the line: the owner may do everything; an
// accepted delegate what they were granted; anyone else nothing.
func (s *State) Access(user string) (Role, []Privilege) {
	if user == s.Delegator {
		return Owner, slices.Clone(Privileges)
	}
	if d, ok := s.Delegation(user); ok && d.Status == Accepted {
		return Delegate, slices.Clone(d.Privileges)
	}
	return Nobody, nil
}

// Viewers are the accepted delegates: the line appears on their devices.
func (s *State) Viewers() []string {
	var out []string
	for _, d := range s.Delegations {
		if d.Status == Accepted {
			out = append(out, d.Delegate)
		}
	}
	return out
}

// ---- ring plans ----------------------------------------------------------------

// Stage is a set of users who ring together for Seconds (0: until the
// call's no-answer time).
type Stage struct {
	Users   []string
	Seconds int
}

// Plan is who rings, in what order, for how long. No stages and Voicemail:
// the call goes to voicemail. Viewers are the line's accepted delegates
// (they see its calls and history); Names are display names of the people
// it names, for alerts and history labels. It is the one type of a ring
// plan: the call core rings it as it is (call.RingPlan).
type Plan struct {
	Stages    []Stage
	Voicemail bool
	Viewers   []string
	Names     map[string]string
}

// Caller identifies who calls, for the VIP list: a user id and/or a number.
type Caller struct {
	User   string
	Number string
}

// isVIP: the caller is on the list by user id, extension or number.
func (s *State) isVIP(c Caller, people map[string]Person) bool {
	for _, v := range s.Contacts {
		if v == c.User && c.User != "" || v == c.Number && c.Number != "" {
			return true
		}
		if p, ok := people[c.User]; ok && c.User != "" && slices.Contains(p.Numbers, v) {
			return true
		}
	}
	return false
}

// inHours says whether t falls within p's business hours in p's time zone.
// A person with no hours at all is always in hours.
func inHours(p Person, t time.Time) bool {
	week := hours.Week(p.Hours)
	if week.Empty() {
		week = nil
	}
	return hours.Schedule{TimeZone: p.Timezone, Business: week}.Open(t)
}

// ringingDelegates are the delegates who may ring now, grouped by order
// (primary first, then backup, 000 L385-389). Never ringing: pending or
// declined, opted out, without Answer Calls, or outside their own hours
// when Set Business Hours is granted (000 L321-331, L404, L421).
func (s *State) ringingDelegates(people map[string]Person, now time.Time) [][]string {
	var groups [][]string
	last := -1
	for _, d := range s.Delegations {
		p, known := people[d.Delegate]
		if !known || d.Status != Accepted || !d.OptedIn || !d.Has(AnswerCalls) {
			continue
		}
		if d.Has(BusinessHours) && !inHours(p, now) {
			continue
		}
		if len(groups) == 0 || d.Order != last {
			groups = append(groups, nil)
			last = d.Order
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], d.Delegate)
	}
	return groups
}

// RingPlan computes the plan for a call from caller at now. me is the
// delegator; people holds every delegate the directory knows. The caller
// never rings themself: a delegate reaches the delegator only where the plan
// rings the delegator for them (001 L18), else voicemail.
func (s *State) RingPlan(me Person, people map[string]Person, caller Caller, now time.Time) Plan {
	p := s.plan(me, people, caller, now)
	if caller.User == "" {
		return p
	}
	var kept []Stage
	for _, st := range p.Stages {
		users := slices.DeleteFunc(slices.Clone(st.Users), func(u string) bool { return u == caller.User })
		if len(users) > 0 {
			kept = append(kept, Stage{Users: users, Seconds: st.Seconds})
		}
	}
	if len(kept) == 0 && len(p.Stages) > 0 {
		return Plan{Voicemail: true}
	}
	p.Stages = kept
	return p
}

func (s *State) plan(me Person, people map[string]Person, caller Caller, now time.Time) Plan {
	secs := s.VIP.RingSeconds
	if secs == 0 {
		secs = DefaultRingSeconds
	}
	groups := s.ringingDelegates(people, now)
	var all []string
	for _, g := range groups {
		all = append(all, g...)
	}
	meStage := Stage{Users: []string{s.Delegator}, Seconds: secs}
	stages := func(ss ...[]Stage) Plan {
		var p Plan
		for _, x := range ss {
			p.Stages = append(p.Stages, x...)
		}
		return p
	}
	var delegates []Stage
	for _, g := range groups {
		delegates = append(delegates, Stage{Users: g, Seconds: secs})
	}
	// Nobody else to ring: voicemail where the mode allows it, else the
	// delegator themself (001 L16: no delegate, calls reach the user).
	meOrVoicemail := func() Plan {
		if me.VoicemailEnabled {
			return Plan{Voicemail: true}
		}
		return stages([]Stage{meStage})
	}
	if !s.VIP.Enabled || !me.PowerPack {
		// Plain delegation: the delegator and every delegate at once (000 L222).
		return stages([]Stage{{Users: append([]string{s.Delegator}, all...), Seconds: secs}})
	}
	if s.isVIP(caller, people) {
		if s.VIP.VIPMode == MeThenDelegates {
			return stages([]Stage{meStage}, delegates)
		}
		return stages([]Stage{meStage})
	}
	switch s.VIP.EverybodyElse {
	case Simultaneous:
		return stages([]Stage{{Users: append([]string{s.Delegator}, all...), Seconds: secs}})
	case DelegatesThenMe:
		return stages(delegates, []Stage{meStage})
	case MeThenDelegates:
		return stages([]Stage{meStage}, delegates)
	case DelegatesOnly:
		if len(delegates) == 0 {
			return meOrVoicemail()
		}
		return stages(delegates)
	case Voicemail:
		return meOrVoicemail()
	}
	return stages([]Stage{meStage})
}
