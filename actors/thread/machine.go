// Package thread is the SMS thread grain: one virtual actor per thread, that
// is per owner (a user, or a queue with Team SMS) and peer (the other
// party). It keeps the messages, the peer's opt-out (STOP) and, on a queue's
// thread, the claim: the member whose reply took it, until they release it,
// hand it to another member, leave the queue, or nobody writes for the
// queue's claim_release_seconds. machine.go is the pure core (inputs and the
// clock in; new state and effects out); grain.go the adapter, which stores
// the state fenced in etcd before it sends or answers; client.go the typed
// client and the readers that list threads without waking grains.
package thread

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Owner kinds.
const (
	KindUser  = "user"
	KindQueue = "queue"
)

// Message directions.
const (
	In  = "in"
	Out = "out"
)

// DefaultClaimRelease is claim_release_seconds when the queue sets none.
const DefaultClaimRelease = 300 * time.Second

// MaxText is the longest message, in bytes.
const MaxText = 1600

// keptMessages bounds the messages a thread keeps (the oldest go first): the
// thread is stored whole in one etcd value, which etcd caps at 1.5 MiB, and
// rewritten at each change.
const keptMessages = 500

// The answers to the peer's keywords, sent from the number it texted.
const (
	StopReply  = "You are unsubscribed: this number will send you no more messages. Reply START to subscribe again."
	StartReply = "You are subscribed again to messages from this number. Reply STOP to unsubscribe."
	HelpReply  = "This number reaches a business's team. Reply STOP to unsubscribe, START to subscribe again."
)

// Thread is the core's whole state, persisted whole as JSON: every deadline
// is derived from a stored instant.
type Thread struct {
	ID          string `json:"id"`
	Owner       string `json:"owner"`
	OwnerKind   string `json:"owner_kind"`
	Peer        string `json:"peer"`
	OwnerNumber string `json:"owner_number"` // what the peer sees and texts

	ClaimedBy    string    `json:"claimed_by"`
	ClaimedAt    time.Time `json:"claimed_at"`
	LastActivity time.Time `json:"last_activity"` // the last message either way

	Messages []Message `json:"messages"`
	Seq      int       `json:"seq"`       // the last message id given
	OptedOut bool      `json:"opted_out"` // the peer sent STOP

	// The owner's facts as the last input told them: a Tick has none.
	Members      []string      `json:"members"`
	Admins       []string      `json:"admins"`
	ClaimRelease time.Duration `json:"claim_release"` // zero: DefaultClaimRelease

	Inbound         int `json:"inbound"`
	Outbound        int `json:"outbound"`
	ManualReleases  int `json:"manual_releases"`
	TimeoutReleases int `json:"timeout_releases"`
	// FirstReplies counts the replies that answered an inbound message not
	// yet answered (since AwaitingFirstReply); FirstReplyTotal sums their
	// waits.
	FirstReplies       int           `json:"first_replies"`
	FirstReplyTotal    time.Duration `json:"first_reply_total"`
	AwaitingFirstReply time.Time     `json:"awaiting_first_reply"`

	// wake is the release the grain's timer is set for (zero: none). It is
	// not persisted: a reloaded thread has no timer, so its first step asks
	// for one.
	wake time.Time
}

// Message is one message of a thread, as stored and as REST shows it. By is
// the member who sent it, or the peer.
type Message struct {
	ID        string    `json:"id"`
	Direction string    `json:"direction"`
	Text      string    `json:"text"`
	By        string    `json:"by"`
	At        time.Time `json:"at"`
}

// Summary is the thread without its messages: what notices carry.
type Summary struct {
	ID             string     `json:"id"`
	Owner          string     `json:"owner"`
	OwnerKind      string     `json:"owner_kind"`
	Peer           string     `json:"peer"`
	ClaimedBy      string     `json:"claimed_by"`
	ClaimedAt      *time.Time `json:"claimed_at"` // null while unclaimed
	LastActivityAt time.Time  `json:"last_activity_at"`
}

// View is the thread as REST shows it.
type View struct {
	Summary
	Messages []Message `json:"messages"`
}

// Refusal is an input the rules refuse, with the REST status and code.
// Holder names the member who holds the claim (thread_claimed).
type Refusal struct {
	Status  int
	Code    string
	Message string
	Holder  string
}

func (r *Refusal) Error() string { return r.Message }

// New is a thread with no message yet.
func New(id, owner, kind, peer, ownerNumber string) *Thread {
	return &Thread{ID: id, Owner: owner, OwnerKind: kind, Peer: peer, OwnerNumber: ownerNumber}
}

// Summary is the thread without its messages.
func (t *Thread) Summary() Summary {
	s := Summary{ID: t.ID, Owner: t.Owner, OwnerKind: t.OwnerKind, Peer: t.Peer, ClaimedBy: t.ClaimedBy, LastActivityAt: t.LastActivity}
	if t.ClaimedBy != "" {
		at := t.ClaimedAt
		s.ClaimedAt = &at
	}
	return s
}

// View is the thread as REST shows it.
func (t *Thread) View() View {
	ms := make([]Message, len(t.Messages))
	copy(ms, t.Messages)
	return View{Summary: t.Summary(), Messages: ms}
}

// releaseAfter is how long a claim outlives the last message.
func (t *Thread) releaseAfter() time.Duration {
	if t.ClaimRelease > 0 {
		return t.ClaimRelease
	}
	return DefaultClaimRelease
}

// deadline is when the claim is released for silence (zero: no claim).
func (t *Thread) deadline() time.Time {
	if t.ClaimedBy == "" {
		return time.Time{}
	}
	return t.LastActivity.Add(t.releaseAfter())
}

// clone is a deep copy: the grain steps a copy and keeps it only once it is
// stored.
func (t *Thread) clone() *Thread {
	c := *t
	c.Messages = slices.Clone(t.Messages)
	c.Members = slices.Clone(t.Members)
	c.Admins = slices.Clone(t.Admins)
	return &c
}

// Step applies one input at now and returns the effects for the grain to
// carry out, in order, and the input's refusal, if refused. Whatever the
// input, the owner's facts it carries are taken first, then a claim that ran
// out or whose holder left the queue is released (effects even when the
// input is then refused). An unknown input changes nothing.
func (t *Thread) Step(in any, now time.Time) ([]Effect, error) {
	s := &machineStep{t: t, now: now}
	var err error
	switch in := in.(type) {
	case Inbound:
		s.prelude(in.Members, in.Admins, in.ClaimRelease)
		err = s.inbound(in)
	case Reply:
		s.prelude(in.Members, in.Admins, in.ClaimRelease)
		err = s.reply(in)
	case Release:
		s.prelude(in.Members, in.Admins, in.ClaimRelease)
		err = s.release(in)
	case Transfer:
		s.prelude(in.Members, in.Admins, in.ClaimRelease)
		err = s.transfer(in)
	case Get:
		s.prelude(in.Members, in.Admins, in.ClaimRelease)
	case Tick:
		t.wake = time.Time{} // that timer has fired
		s.expire()
	default:
		return nil, nil
	}
	return s.finish(), err
}

// machineStep is one Step's work.
type machineStep struct {
	t       *Thread
	now     time.Time
	changed bool
	out     []Effect
}

// prelude takes the owner's facts and releases a claim that lapsed. The
// facts alone are no change to store: every input but a Tick brings them
// again, and a Tick is armed only by an input.
func (s *machineStep) prelude(members, admins []string, release time.Duration) {
	t := s.t
	if !slices.Equal(t.Members, members) {
		t.Members = slices.Clone(members)
	}
	if !slices.Equal(t.Admins, admins) {
		t.Admins = slices.Clone(admins)
	}
	if release > 0 {
		t.ClaimRelease = release
	}
	s.expire()
	if t.ClaimedBy != "" && !slices.Contains(t.Members, t.ClaimedBy) {
		s.unclaim("removed")
	}
}

// expire releases a claim silent for the release time.
func (s *machineStep) expire() {
	if d := s.t.deadline(); !d.IsZero() && !s.now.Before(d) {
		s.t.TimeoutReleases++
		s.unclaim("timeout")
	}
}

func (s *machineStep) unclaim(reason string) {
	t := s.t
	t.ClaimedBy, t.ClaimedAt, s.changed = "", time.Time{}, true
	s.notify("sms.released", t.team(), reason, nil)
}

func (s *machineStep) claim(user string) {
	t := s.t
	t.ClaimedBy, t.ClaimedAt, s.changed = user, s.now, true
	s.notify("sms.claimed", t.team(), "", nil)
}

// team is who hears of claims and releases: the members and the admins.
func (t *Thread) team() []string {
	out := slices.Clone(t.Members)
	for _, a := range t.Admins {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (s *machineStep) notify(typ string, users []string, reason string, m *Message) {
	s.out = append(s.out, Notify{Type: typ, Users: slices.Clone(users), Thread: s.t.Summary(), Reason: reason, Message: m})
}

func (s *machineStep) send(text string) {
	s.out = append(s.out, Send{From: s.t.OwnerNumber, To: s.t.Peer, Text: text})
}

// add appends a message, keeping the newest keptMessages.
func (s *machineStep) add(dir, by, text string, at time.Time) Message {
	t := s.t
	t.Seq++
	m := Message{ID: strconv.Itoa(t.Seq), Direction: dir, Text: text, By: by, At: at}
	t.Messages = append(t.Messages, m)
	if n := len(t.Messages) - keptMessages; n > 0 {
		t.Messages = slices.Delete(t.Messages, 0, n)
	}
	t.LastActivity, s.changed = s.now, true
	return m
}

func checkText(text string) error {
	if len(text) < 1 || len(text) > MaxText {
		return &Refusal{Status: 400, Code: "invalid_field", Message: fmt.Sprintf("text: must be 1 to %d bytes.", MaxText)}
	}
	return nil
}

// keyword is STOP, START or HELP when the text is one of them, alone.
func keyword(text string) string {
	switch k := strings.ToUpper(strings.TrimSpace(text)); k {
	case "STOP", "START", "HELP":
		return k
	}
	return ""
}

func (s *machineStep) inbound(in Inbound) error {
	if err := checkText(in.Text); err != nil {
		return err
	}
	t := s.t
	if in.Number != "" {
		t.OwnerNumber = in.Number
	}
	at := in.At
	if at.IsZero() {
		at = s.now
	}
	m := s.add(In, t.Peer, in.Text, at)
	// A keyword is the system's business: answered at once, neither
	// counted nor announced as a message to reply to.
	kw := keyword(in.Text)
	if in.Internal {
		kw = ""
	}
	switch kw {
	case "STOP":
		t.OptedOut = true
		s.send(StopReply)
		return nil
	case "START":
		t.OptedOut = false
		s.send(StartReply)
		return nil
	case "HELP":
		s.send(HelpReply)
		return nil
	}
	t.Inbound++
	if t.AwaitingFirstReply.IsZero() {
		t.AwaitingFirstReply = s.now
	}
	users := t.Members
	if t.ClaimedBy != "" {
		users = []string{t.ClaimedBy}
	}
	s.notify("sms.received", users, "", &m)
	return nil
}

func (s *machineStep) reply(in Reply) error {
	t := s.t
	if !slices.Contains(t.Members, in.By) {
		return &Refusal{Status: 403, Code: "not_a_member", Message: fmt.Sprintf("%s is not a member of %s: only its members reply on its threads.", in.By, t.Owner)}
	}
	if err := checkText(in.Text); err != nil {
		return err
	}
	if t.OptedOut {
		return &Refusal{Status: 409, Code: "recipient_opted_out", Message: fmt.Sprintf("%s opted out (STOP) of messages from this number.", t.Peer)}
	}
	if t.OwnerKind == KindQueue && t.ClaimedBy != "" && t.ClaimedBy != in.By {
		return &Refusal{Status: 409, Code: "thread_claimed", Message: fmt.Sprintf("The thread is claimed by %s.", t.ClaimedBy), Holder: t.ClaimedBy}
	}
	if in.Number != "" {
		t.OwnerNumber = in.Number
	}
	s.add(Out, in.By, in.Text, s.now)
	if t.OwnerKind == KindQueue && t.ClaimedBy == "" {
		s.claim(in.By)
	}
	t.Outbound++
	if !t.AwaitingFirstReply.IsZero() {
		t.FirstReplies++
		t.FirstReplyTotal += s.now.Sub(t.AwaitingFirstReply)
		t.AwaitingFirstReply = time.Time{}
	}
	s.send(in.Text)
	return nil
}

func (s *machineStep) release(in Release) error {
	t := s.t
	if t.ClaimedBy == "" {
		return &Refusal{Status: 409, Code: "not_claimed", Message: "The thread is not claimed."}
	}
	if in.By != t.ClaimedBy && !in.Admin {
		return &Refusal{Status: 403, Code: "forbidden", Message: fmt.Sprintf("Only the holder (%s) or an admin releases the thread.", t.ClaimedBy)}
	}
	t.ManualReleases++
	s.unclaim("manual")
	return nil
}

func (s *machineStep) transfer(in Transfer) error {
	t := s.t
	if t.ClaimedBy == "" {
		return &Refusal{Status: 409, Code: "not_claimed", Message: "The thread is not claimed."}
	}
	if in.By != t.ClaimedBy {
		return &Refusal{Status: 403, Code: "forbidden", Message: fmt.Sprintf("Only the holder (%s) transfers the thread.", t.ClaimedBy)}
	}
	if !slices.Contains(t.Members, in.To) {
		return &Refusal{Status: 422, Code: "not_a_member", Message: fmt.Sprintf("to: %q is not a member of %s.", in.To, t.Owner)}
	}
	if in.To == t.ClaimedBy {
		return nil
	}
	s.unclaim("transfer")
	s.claim(in.To)
	return nil
}

// finish puts Persist first when the state changed, and WakeAt last when
// the release moved.
func (s *machineStep) finish() []Effect {
	var out []Effect
	if s.changed {
		out = append(out, Persist{})
	}
	out = append(out, s.out...)
	if next := s.t.deadline(); !next.Equal(s.t.wake) {
		s.t.wake = next
		out = append(out, WakeAt{At: next})
	}
	return out
}
