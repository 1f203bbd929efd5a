package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/switchboard/switchboard/actors/call"
	"github.com/switchboard/switchboard/actors/thread"
	"github.com/switchboard/switchboard/api/rest"
	sipedge "github.com/switchboard/switchboard/api/sipedge"
	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

// The node's SMS service: MESSAGEs from the SIP edge and REST's /v1/sms are
// routed to threads (a thread grain per owner and peer keeps the messages
// and, for a queue's Team SMS, the claim) and to phones (a MESSAGE to each
// registered contact) or out through the trunk.

// smsService implements sipedge.Messages and rest.SMS.
type smsService struct{ n *Node }

// owner is who a thread belongs to, with the facts its grain needs now.
type owner struct {
	id, kind       string // a user or a queue
	number         string // the number (or a user's extension) the peer sees
	members        []string
	admins         []string
	release        time.Duration
	users          []string // who may read its threads besides the admin token
	teamAdminsOnly []string // admins of the owning queue (act as admins on its threads)
}

// Receive takes a MESSAGE: from a trunk to an owned number, a message into
// that owner's thread; from a user's phone, as POST /v1/sms from their own
// number.
func (s smsService) Receive(ctx context.Context, m sipedge.InboundMessage) (int, string) {
	if m.From.TrunkID != "" {
		return sipAnswer(s.inbound(ctx, m.From.Number, m.To, m.Text))
	}
	u, ok := s.n.dir.UserByID(m.From.UserID)
	if !ok {
		return 403, "Forbidden"
	}
	from := u.Extension
	if len(u.Numbers) > 0 && directory.IsE164(m.To) {
		from = u.Numbers[0] // out through the trunk, the user's number shows
	}
	_, err := s.send(ctx, rest.Principal{UserID: u.ID}, from, []string{m.To}, m.Text)
	return sipAnswer(err)
}

// inbound stores a message from peer (an outside number) to `to`, an owned
// number: a queue's with Team SMS, or a user's (whose phones get it too).
func (s smsService) inbound(ctx context.Context, peer, to, text string) error {
	o, err := s.ownerOf(to)
	if err != nil {
		return err
	}
	if _, err := s.command(o, peer, &pb.ThreadCommand{Action: "inbound", Text: text, UnixNano: time.Now().UnixNano()}); err != nil {
		return err
	}
	if o.kind == "user" {
		s.deliver(ctx, o.id, peer, "", text)
	}
	return nil
}

// ownerOf is the owner of an owned number: a user, or a queue with Team SMS.
func (s smsService) ownerOf(number string) (owner, error) {
	d, ok := s.n.dir.Destination(number)
	if !ok {
		return owner{}, rest.ErrNotFound
	}
	switch d.Kind {
	case directory.DestQueue:
		q, ok := s.n.dir.QueueByID(d.ID)
		if !ok || !q.TeamSMS {
			return owner{}, rest.ErrNotFound
		}
		return queueOwner(q, number), nil
	case directory.DestUser:
		u, ok := s.n.dir.UserByID(d.ID)
		if !ok {
			return owner{}, rest.ErrNotFound
		}
		return userOwner(u, number), nil
	}
	return owner{}, rest.ErrNotFound
}

func queueOwner(q directory.Queue, number string) owner {
	members := q.MemberUsers()
	return owner{id: q.ID, kind: "queue", number: number, members: members, admins: q.Admins,
		release: seconds(q.ClaimReleaseSeconds), users: append(slices.Clone(members), q.Admins...), teamAdminsOnly: q.Admins}
}

func userOwner(u directory.User, number string) owner {
	return owner{id: u.ID, kind: "user", number: number, members: []string{u.ID}, users: []string{u.ID}}
}

// ownerByID is a thread owner by id: a queue (Team SMS) or a user.
func (s smsService) ownerByID(id string) (owner, bool) {
	if q, ok := s.n.dir.QueueByID(id); ok && q.TeamSMS {
		number := ""
		if len(q.Numbers) > 0 {
			number = q.Numbers[0]
		}
		return queueOwner(q, number), true
	}
	if u, ok := s.n.dir.UserByID(id); ok {
		number := u.Extension
		if len(u.Numbers) > 0 {
			number = u.Numbers[0]
		}
		return userOwner(u, number), true
	}
	return owner{}, false
}

// command sends cmd to the thread of o and peer, with o's facts filled in.
func (s smsService) command(o owner, peer string, cmd *pb.ThreadCommand) (json.RawMessage, error) {
	cmd.ThreadId, cmd.Owner, cmd.OwnerKind, cmd.Peer, cmd.OwnerNumber = thread.ID(o.id, peer), o.id, o.kind, peer, o.number
	cmd.Members, cmd.Admins, cmd.ClaimReleaseNano = o.members, o.admins, int64(o.release)
	res, err := s.n.threads.Command(cmd)
	if err != nil {
		return nil, fmt.Errorf("sms: thread %s: %w", cmd.ThreadId, err)
	}
	if res.Status >= 300 {
		return nil, &rest.ControlError{Status: int(res.Status), Code: res.Code, Message: res.Message, Holder: res.Holder}
	}
	return res.Json, nil
}

// Send sends text from `from` to each of to: to a user's phones (stored in
// their thread with the sender), or to an outside number through the trunk
// (stored in the sender's thread with it; from a queue's number, claiming
// it like a reply).
func (s smsService) Send(ctx context.Context, by rest.Principal, from string, to []string, text string) (rest.SMSSent, error) {
	return s.send(ctx, by, from, to, text)
}

func (s smsService) send(ctx context.Context, by rest.Principal, from string, to []string, text string) (rest.SMSSent, error) {
	if by.UserID == "" {
		return rest.SMSSent{}, &rest.ControlError{Status: 403, Code: "forbidden", Message: "a message is sent by a user, with their own token"}
	}
	sender, err := s.sender(by.UserID, from)
	if err != nil {
		return rest.SMSSent{}, err
	}
	out := rest.SMSSent{ID: newMessageID(), ThreadIDs: []string{}}
	for _, t := range to {
		if u, ok := s.user(t); ok {
			// Inside the system: into the recipient's thread with the sender.
			if _, err := s.command(userOwner(u, u.Extension), from, &pb.ThreadCommand{Action: "inbound", Text: text, UnixNano: time.Now().UnixNano(), Internal: true}); err != nil {
				return out, err
			}
			s.deliver(ctx, u.ID, from, s.displayOf(by.UserID), text)
			out.ThreadIDs = append(out.ThreadIDs, thread.ID(u.ID, from))
			continue
		}
		if !directory.IsE164(t) {
			return out, &rest.ControlError{Status: 404, Code: "not_found", Message: fmt.Sprintf("to: %q is neither a user nor a number", t)}
		}
		if _, err := s.command(sender, t, &pb.ThreadCommand{Action: "send", By: by.UserID, Text: text}); err != nil {
			return out, err
		}
		out.ThreadIDs = append(out.ThreadIDs, thread.ID(sender.id, t))
	}
	return out, nil
}

// sender is whose number `from` is, for user to send from: their own
// number or extension, or the number of a Team SMS queue they are a member
// of.
func (s smsService) sender(user, from string) (owner, error) {
	o, err := s.ownerOf(from)
	if err == nil && (o.kind == "user" && o.id == user || o.kind == "queue" && slices.Contains(o.members, user)) {
		return o, nil
	}
	if u, ok := s.n.dir.UserByID(user); ok && u.Extension == from {
		return userOwner(u, from), nil
	}
	return owner{}, &rest.ControlError{Status: 403, Code: "forbidden", Message: fmt.Sprintf("from: %q is neither your number nor a Team SMS queue's you are a member of", from)}
}

// user is the user a recipient names (id, extension or owned number).
func (s smsService) user(to string) (directory.User, bool) {
	if d, ok := s.n.dir.Destination(to); ok {
		if d.Kind != directory.DestUser {
			return directory.User{}, false
		}
		return s.n.dir.UserByID(d.ID)
	}
	return s.n.dir.Resolve(to)
}

func (s smsService) displayOf(user string) string {
	if u, ok := s.n.dir.UserByID(user); ok {
		return u.Name
	}
	return ""
}

// deliver sends a MESSAGE to each of user's registered phones, from the
// node that holds its registration (a TCP phone is reached over its flow).
func (s smsService) deliver(_ context.Context, user, from, display, text string) {
	bindings, err := s.n.lines.Contacts(user)
	if err != nil {
		s.n.log.Warn("sms: phones not found; the message is on the thread", "user", user, "err", err)
		return
	}
	ext := user
	if u, ok := s.n.dir.UserByID(user); ok {
		ext = u.Extension
	}
	for _, b := range bindings {
		s.toEdge(b.Node.GetAddress(), &pb.SmsOut{RequestUri: b.Contact, Destination: b.Source, Transport: b.Transport,
			FromUser: from, FromDisplay: display, ToUser: ext, Text: text})
	}
}

// toEdge hands a MESSAGE to the SIP edge of the node at addr ("": this
// one).
func (s smsService) toEdge(addr string, m *pb.SmsOut) {
	if addr == "" {
		addr = s.n.system.Address()
	}
	s.n.system.Root.Send(actor.NewPID(addr, call.EdgeActor), m)
}

// out is the thread grains' way out: to an outside number through the
// outbound trunk, to a user's extension on their phones.
func (s smsService) out(_ actor.Context, from, to, text string) {
	if u, ok := s.user(to); ok {
		s.deliver(context.Background(), u.ID, from, "", text)
		return
	}
	t, ok := s.n.dir.OutboundTrunk()
	if !ok {
		s.n.log.Warn("sms: no outbound trunk; the message stays on the thread", "to", to)
		return
	}
	s.toEdge("", &pb.SmsOut{RequestUri: "sip:" + to + "@" + t.Address, Destination: t.Address, Transport: "udp", FromUser: from, ToUser: to, Text: text})
}

// Threads lists owner's threads, for those who may read them.
func (s smsService) Threads(ctx context.Context, by rest.Principal, ownerID string) ([]json.RawMessage, error) {
	o, ok := s.ownerByID(ownerID)
	if !ok {
		return nil, rest.ErrNotFound
	}
	if !mayRead(by, o) {
		return nil, rest.ErrForbidden
	}
	views, err := thread.List(ctx, s.n.store, o.id)
	if err != nil {
		return nil, fmt.Errorf("sms: threads of %s: %w", o.id, err)
	}
	out := make([]json.RawMessage, 0, len(views))
	for _, v := range views {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func mayRead(by rest.Principal, o owner) bool {
	return by.Admin || slices.Contains(o.users, by.UserID)
}

// threadOwner reads a thread id: its owner (who must exist) and its peer.
func (s smsService) threadOwner(by rest.Principal, id string) (owner, string, error) {
	ownerID, peer, ok := strings.Cut(id, ":")
	if !ok || peer == "" {
		return owner{}, "", rest.ErrNotFound
	}
	o, found := s.ownerByID(ownerID)
	switch {
	case !found:
		return owner{}, "", rest.ErrNotFound
	case !mayRead(by, o):
		return owner{}, "", rest.ErrForbidden
	}
	return o, peer, nil
}

// Thread is one thread with its messages.
func (s smsService) Thread(_ context.Context, by rest.Principal, id string) (json.RawMessage, error) {
	o, peer, err := s.threadOwner(by, id)
	if err != nil {
		return nil, err
	}
	return s.command(o, peer, &pb.ThreadCommand{Action: "get", By: by.UserID, Admin: by.Admin})
}

// Act replies on, releases or transfers a thread.
func (s smsService) Act(_ context.Context, by rest.Principal, id, action, text, to string) (json.RawMessage, error) {
	o, peer, err := s.threadOwner(by, id)
	if err != nil {
		return nil, err
	}
	admin := by.Admin || slices.Contains(o.teamAdminsOnly, by.UserID)
	return s.command(o, peer, &pb.ThreadCommand{Action: action, By: by.UserID, Admin: admin, Text: text, To: to})
}

// Stats are a Team SMS queue's numbers.
func (s smsService) Stats(ctx context.Context, by rest.Principal, queue string) (json.RawMessage, error) {
	q, ok := s.n.dir.QueueByID(queue)
	if !ok {
		return nil, rest.ErrNotFound
	}
	if !mayRead(by, queueOwner(q, "")) {
		return nil, rest.ErrForbidden
	}
	st, err := thread.Stats(ctx, s.n.store, queue)
	if err != nil {
		return nil, fmt.Errorf("sms: stats of %s: %w", queue, err)
	}
	return json.Marshal(st)
}

// sweepEvery is how often a node looks for claims to release, due or held
// by someone no longer a member, whose grain may not be running (its node
// died): each is woken, and releases the claim itself, on time.
const sweepEvery = 30 * time.Second

// sweep wakes the grains of claimed threads due within the next sweep,
// until ctx ends. Every node sweeps; a woken grain that already runs just
// answers.
func (s smsService) sweep(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		claims, err := thread.Claimed(ctx, s.n.store)
		if err != nil {
			s.n.log.Warn("sms: claimed threads not read", "err", err)
			continue
		}
		for _, c := range claims {
			o, ok := s.ownerByID(c.Owner)
			if !ok || time.Until(c.Due) > sweepEvery && slices.Contains(o.members, c.Holder) {
				continue
			}
			if _, err := s.command(o, c.Peer, &pb.ThreadCommand{Action: "get"}); err != nil {
				s.n.log.Warn("sms: thread not woken", "thread", thread.ID(c.Owner, c.Peer), "err", err)
			}
		}
	}
}

// sipAnswer is how a MESSAGE is answered after err.
func sipAnswer(err error) (int, string) {
	var ce *rest.ControlError
	switch {
	case err == nil:
		return 202, "Accepted"
	case errors.Is(err, rest.ErrNotFound):
		return 404, "Not Found"
	case errors.Is(err, rest.ErrForbidden):
		return 403, "Forbidden"
	case errors.As(err, &ce) && ce.Status == 404:
		return 404, "Not Found"
	case errors.As(err, &ce) && ce.Status == 403:
		return 403, "Forbidden"
	case errors.As(err, &ce) && ce.Status == 409:
		return 403, "Forbidden" // the recipient opted out, or another holds the thread
	case errors.As(err, &ce) && ce.Status < 500:
		return 400, "Bad Request"
	}
	return 503, "Service Unavailable"
}

func newMessageID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// threadDeps are the thread grains' dependencies.
func (n *Node) threadDeps() *thread.Deps {
	return &thread.Deps{Store: n.store, Out: smsService{n}.out, Events: fanout{n}, Now: time.Now, Log: n.log}
}
