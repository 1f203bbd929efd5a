// Package inbox is the voicemail inbox: one per user, queue and shared line
// group, its ID the owner's ID. It keeps the messages, their played state
// (one state for everyone with access), who may do what (the access levels
// of access.go) and the retention. machine.go is the pure core: inputs and
// the clock in, new state and effects out.
package inbox

import (
	"fmt"
	"slices"
	"time"
)

// Owner kinds.
const (
	KindUser            = "user"
	KindQueue           = "queue"
	KindSharedLineGroup = "shared_line_group"
)

// MinDuration is the shortest message kept, in seconds.
const MinDuration = 1

// Inbox is the core's whole state, persisted whole as JSON.
type Inbox struct {
	Owner     string             `json:"owner"`
	OwnerKind string             `json:"owner_kind"`
	Messages  []Message          `json:"messages"` // in the order deposited
	Access    map[string][]Level `json:"access"`   // users other than the owner

	// The owner's own rights on a user inbox (default true).
	VoicemailDownload bool `json:"voicemail_download"`
	VoicemailDelete   bool `json:"voicemail_delete"`

	// Retention is how long a message is kept (zero: for ever).
	Retention time.Duration `json:"retention"`

	// wake is the deadline the adapter's timer is set for (zero: none). Not
	// persisted: a reloaded inbox has no timer, so its first step asks for
	// one.
	wake time.Time
}

// Message is one voicemail, as stored and as REST shows it. DurationSeconds
// runs from the end of the beep to the end of the recording.
type Message struct {
	ID              string    `json:"id"`
	Owner           string    `json:"owner"`
	From            string    `json:"from"`
	CallID          string    `json:"call_id"`
	ReceivedAt      time.Time `json:"received_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	Played          bool      `json:"played"`
	PlayedBy        string    `json:"played_by"`
	PlayedAt        time.Time `json:"played_at"`
}

// Refusal is an input the rules refuse, with the REST status and code.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// New is an empty inbox; the owner of a user inbox may download and delete
// until their settings say otherwise.
func New(owner, kind string) *Inbox {
	return &Inbox{Owner: owner, OwnerKind: kind, Access: map[string][]Level{}, VoicemailDownload: true, VoicemailDelete: true}
}

// Step applies one input at now and returns the effects for the adapter to
// carry out, in order, and the input's refusal, if refused. Messages past
// the retention are deleted before and after any input (effects even when
// the input is then refused). An unknown input changes nothing.
func (b *Inbox) Step(in any, now time.Time) ([]Effect, error) {
	s := &machineStep{b: b, now: now}
	s.newBefore, s.oldBefore = b.counts()
	s.expire()
	var err error
	switch in := in.(type) {
	case Deposit:
		err = s.deposit(in)
	case List:
		err = s.list(in)
	case Fetch:
		err = s.fetch(in)
	case MarkPlayed:
		err = s.markPlayed(in)
	case Delete:
		err = s.delete(in)
	case Share:
		err = s.share(in)
	case Grant:
		err = s.grant(in)
	case Revoke:
		err = s.revoke(in)
	case Settings:
		err = s.settings(in)
	case Tick:
		b.wake = time.Time{} // that timer has fired
	default:
		return nil, nil
	}
	s.expire()
	return s.finish(), err
}

// machineStep is one Step's work.
type machineStep struct {
	b                    *Inbox
	now                  time.Time
	changed              bool
	out                  []Effect
	newBefore, oldBefore int
}

func (s *machineStep) finish() []Effect {
	b := s.b
	var out []Effect
	if s.changed {
		out = append(out, Persist{})
	}
	out = append(out, s.out...)
	if n, o := b.counts(); n != s.newBefore || o != s.oldBefore {
		out = append(out, MWI{New: n, Old: o, Users: b.Viewers()})
	}
	if next := b.deadline(); !next.Equal(b.wake) {
		b.wake = next
		out = append(out, WakeAt{At: next})
	}
	return out
}

func (s *machineStep) event(typ string, m Message) {
	s.out = append(s.out, Event{Type: typ, Users: s.b.Viewers(), Message: m})
}

// expire deletes every message at or past the retention.
func (s *machineStep) expire() {
	b := s.b
	if b.Retention <= 0 {
		return
	}
	for _, m := range slices.Clone(b.Messages) {
		if !s.now.Before(m.ReceivedAt.Add(b.Retention)) {
			s.remove(m.ID)
		}
	}
}

// remove deletes message id for everyone, and its audio.
func (s *machineStep) remove(id string) {
	b := s.b
	i := b.index(id)
	m := b.Messages[i]
	b.Messages = slices.Delete(b.Messages, i, i+1)
	s.changed = true
	s.out = append(s.out, RemoveAudio{ID: id})
	s.event(EventDeleted, m)
}

func (s *machineStep) deposit(in Deposit) error {
	b, m := s.b, in.Message
	if m.ID == "" {
		return &Refusal{Status: 400, Code: "invalid_field", Message: "id: a message needs one."}
	}
	if b.index(m.ID) >= 0 {
		return nil // the same message again: its audio is the kept one's
	}
	if m.DurationSeconds < MinDuration {
		// Not kept, so its recording goes too.
		s.out = append(s.out, RemoveAudio{ID: m.ID})
		return nil
	}
	m.Owner = b.Owner
	m.Played, m.PlayedBy, m.PlayedAt = false, "", time.Time{}
	if m.ReceivedAt.IsZero() {
		m.ReceivedAt = s.now
	}
	b.Messages = append(b.Messages, m)
	s.changed = true
	s.event(EventReceived, m)
	return nil
}

func (s *machineStep) list(in List) error {
	if err := s.b.check(in.By, LevelAccess, in.Admin); err != nil {
		return err
	}
	s.out = append(s.out, Listed{Messages: s.b.newestFirst()})
	return nil
}

func (s *machineStep) fetch(in Fetch) error {
	level := LevelAccess
	if in.Download {
		level = LevelDownload
	}
	m, err := s.b.find(in.By, level, in.Admin, in.ID)
	if err != nil {
		return err
	}
	s.out = append(s.out, Audio{Message: m})
	return nil
}

func (s *machineStep) markPlayed(in MarkPlayed) error {
	b := s.b
	m, err := b.find(in.By, LevelAccess, in.Admin, in.ID)
	if err != nil {
		return err
	}
	if m.Played == in.Played {
		return nil
	}
	if in.Played {
		m.Played, m.PlayedBy, m.PlayedAt = true, in.By, s.now
	} else {
		m.Played, m.PlayedBy, m.PlayedAt = false, "", time.Time{}
	}
	b.Messages[b.index(m.ID)] = m
	s.changed = true
	s.event(EventPlayed, m)
	return nil
}

func (s *machineStep) delete(in Delete) error {
	if _, err := s.b.find(in.By, LevelDelete, in.Admin, in.ID); err != nil {
		return err
	}
	s.remove(in.ID)
	return nil
}

func (s *machineStep) share(in Share) error {
	b := s.b
	m, err := b.find(in.By, LevelShare, in.Admin, in.ID)
	if err != nil {
		return err
	}
	if in.To == "" || in.To == b.Owner {
		return &Refusal{Status: 400, Code: "invalid_field", Message: fmt.Sprintf("to: a user other than %s, the inbox's owner.", b.Owner)}
	}
	s.out = append(s.out, ShareTo{To: in.To, Message: m})
	return nil
}

func (s *machineStep) grant(in Grant) error {
	b := s.b
	if err := b.checkManager(in.By, in.Admin, in.User); err != nil {
		return err
	}
	set, err := normalize(in.Levels)
	if err != nil {
		return err
	}
	if !slices.Contains(set, LevelAccess) {
		if b.userOwned(in.User) {
			return ownerAccess(in.User)
		}
		return &Refusal{Status: 400, Code: "invalid_field", Message: "levels: must include access; download, delete and share each need it."}
	}
	if b.userOwned(in.User) {
		return nil // the owner's rights come from their settings
	}
	if slices.Equal(b.Access[in.User], set) {
		return nil
	}
	if b.Access == nil {
		b.Access = map[string][]Level{}
	}
	b.Access[in.User] = set
	s.changed = true
	return nil
}

func (s *machineStep) revoke(in Revoke) error {
	b := s.b
	if err := b.checkManager(in.By, in.Admin, in.User); err != nil {
		return err
	}
	if b.userOwned(in.User) {
		return ownerAccess(in.User)
	}
	if _, ok := b.Access[in.User]; !ok {
		return nil
	}
	delete(b.Access, in.User)
	s.changed = true
	return nil
}

func (s *machineStep) settings(in Settings) error {
	b := s.b
	if in.Retention < 0 {
		return &Refusal{Status: 400, Code: "invalid_field", Message: "retention: must not be negative."}
	}
	if b.VoicemailDownload == in.VoicemailDownload && b.VoicemailDelete == in.VoicemailDelete && b.Retention == in.Retention {
		return nil
	}
	b.VoicemailDownload, b.VoicemailDelete, b.Retention = in.VoicemailDownload, in.VoicemailDelete, in.Retention
	s.changed = true
	return nil
}

// normalize checks levels and returns them once each, in listing order.
func normalize(in []Level) ([]Level, error) {
	var out []Level
	for _, l := range levels {
		if slices.Contains(in, l) {
			out = append(out, l)
		}
	}
	for _, l := range in {
		if !slices.Contains(levels, l) {
			return nil, &Refusal{Status: 400, Code: "invalid_field", Message: fmt.Sprintf("levels: %q is none of access, download, delete, share.", l)}
		}
	}
	return out, nil
}

func ownerAccess(user string) error {
	return &Refusal{Status: 422, Code: "owner_access", Message: fmt.Sprintf("%s owns this inbox: their access cannot be removed.", user)}
}

// check refuses user without level.
func (b *Inbox) check(user string, level Level, admin bool) error {
	if b.May(user, level, admin) {
		return nil
	}
	return &Refusal{Status: 403, Code: "not_allowed", Message: fmt.Sprintf("%s lacks %s on the inbox of %s.", user, level, b.Owner)}
}

// checkManager refuses all but the admin and the owner of a user inbox, who
// set who else may use it. User is whose levels change.
func (b *Inbox) checkManager(by string, admin bool, user string) error {
	if !admin && !b.userOwned(by) {
		return &Refusal{Status: 403, Code: "not_allowed", Message: fmt.Sprintf("only the admin or the owning user sets access to the inbox of %s.", b.Owner)}
	}
	if user == "" {
		return &Refusal{Status: 400, Code: "invalid_field", Message: "user: required."}
	}
	return nil
}

// find is message id, for user with level. The level is checked first, so
// that who may not read the inbox does not learn which IDs are in it.
func (b *Inbox) find(user string, level Level, admin bool, id string) (Message, error) {
	if err := b.check(user, level, admin); err != nil {
		return Message{}, err
	}
	i := b.index(id)
	if i < 0 {
		return Message{}, &Refusal{Status: 404, Code: "not_found", Message: fmt.Sprintf("no message %s in the inbox of %s.", id, b.Owner)}
	}
	return b.Messages[i], nil
}

func (b *Inbox) index(id string) int {
	return slices.IndexFunc(b.Messages, func(m Message) bool { return m.ID == id })
}

// newestFirst is the messages by ReceivedAt, newest first; of two received
// at the same instant, the later deposited first.
func (b *Inbox) newestFirst() []Message {
	out := slices.Clone(b.Messages)
	slices.Reverse(out)
	slices.SortStableFunc(out, func(x, y Message) int { return y.ReceivedAt.Compare(x.ReceivedAt) })
	return out
}

// counts is the unplayed (new) and played (old) messages.
func (b *Inbox) counts() (unplayed, played int) {
	for _, m := range b.Messages {
		if m.Played {
			played++
		} else {
			unplayed++
		}
	}
	return unplayed, played
}

// deadline is when the oldest message outlives the retention (zero: none).
func (b *Inbox) deadline() time.Time {
	if b.Retention <= 0 || len(b.Messages) == 0 {
		return time.Time{}
	}
	oldest := b.Messages[0].ReceivedAt
	for _, m := range b.Messages[1:] {
		if m.ReceivedAt.Before(oldest) {
			oldest = m.ReceivedAt
		}
	}
	return oldest.Add(b.Retention)
}
