package rest

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboard/switchboard/api/authguard"
	"github.com/switchboard/switchboard/cluster/directory"
	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/store"
)

// Deps is what the API needs from the node.
type Deps struct {
	Directory  *directory.Directory
	Store      store.Store
	Events     *events.Hub
	AdminToken string
	Calls      Calls
	Delegation Delegation
	// Queues reaches the queue grains (nil: the queue routes that need
	// them answer 503).
	Queues  Queues
	Cluster Cluster
	// Registrations reads the devices the users have registered.
	Registrations Registrations
	// SMS sends text messages and reaches the SMS threads (nil: the SMS
	// routes answer 503).
	SMS SMS
	// Ready is nil when the node has joined the cluster and listens; its
	// error says why not. A nil Ready means always ready.
	Ready func() error
	// Guard refuses sources that send invalid tokens too often (nil: no
	// limit).
	Guard *authguard.Guard
}

// Calls is the call grains of the whole cluster.
type Calls interface {
	// List returns the calls of every node.
	List(ctx context.Context) ([]Call, error)
	// Get returns ErrNotFound for an unknown call.
	Get(ctx context.Context, id string) (Call, error)
	// Control asks the call's grain to carry out cmd on behalf of by. The
	// grain decides; refusals are ErrNotFound, ErrForbidden, ErrConflict or
	// a *ControlError (422 and others, with the message).
	Control(ctx context.Context, id string, cmd Command, by Principal) error
	// Dial places a click-to-call and returns the new call; refusals are
	// *ControlError (404 target unknown, 403 on a line without place_calls,
	// 409 no_devices or unreachable, 503 draining).
	Dial(ctx context.Context, d DialRequest) (Call, error)
	// Monitor starts, switches or stops a supervisor's monitoring of call
	// id: the grain's status (202 started, 200 switched or stopped) and
	// the call, or a refusal as Control gives them.
	Monitor(ctx context.Context, id string, req MonitorRequest, by Principal) (int, Call, error)
}

// DialRequest is a click-to-call: ring From's devices, then dial To as if
// From had dialed it, on OnBehalfOf's line when set.
type DialRequest struct {
	From, To, OnBehalfOf string
}

// Command is a call control: hold, resume, hangup, pickup, join, lock,
// unlock, or transfer (To: a user id, extension or number).
type Command struct {
	Action string
	To     string
}

// Queues reaches the queue grains.
type Queues interface {
	// SetOptIn opts user in or out of queue (reason only when out) for by,
	// and returns the member entry {user, order, opted_in, reason} as JSON;
	// ErrNotFound for an unknown queue or a non-member, a 403 *ControlError
	// when the queue's rule does not let by do it.
	SetOptIn(ctx context.Context, by Principal, queue, user string, in bool, reason string) (json.RawMessage, error)
	// Stats returns GET /v1/queues/{id}/stats's body.
	Stats(ctx context.Context, queue string) (json.RawMessage, error)
}

// SMS sends text messages and reaches the SMS threads (the node implements
// it). Refusals are ErrNotFound, ErrForbidden or a *ControlError (409
// thread_claimed with its Holder, 409 not_claimed, 422 not_a_member, ...).
type SMS interface {
	// Send sends text from `from` (one of by's numbers, or the number of a
	// queue by is a member of) to each of to (a user id, extension or
	// number).
	Send(ctx context.Context, by Principal, from string, to []string, text string) (SMSSent, error)
	// Threads lists owner's threads (a user id or a queue id), newest
	// activity first; Thread is one.
	Threads(ctx context.Context, by Principal, owner string) ([]json.RawMessage, error)
	Thread(ctx context.Context, by Principal, id string) (json.RawMessage, error)
	// Act carries out reply (text), release, or transfer (to) on thread id
	// and returns the thread.
	Act(ctx context.Context, by Principal, id, action, text, to string) (json.RawMessage, error)
	// Stats is GET /v1/queues/{id}/sms-stats's body.
	Stats(ctx context.Context, by Principal, queue string) (json.RawMessage, error)
}

// SMSSent is POST /v1/sms's answer: the message's id and the threads it
// went to.
type SMSSent struct {
	ID        string   `json:"id"`
	ThreadIDs []string `json:"thread_ids"`
}

// Cluster lists the members.
type Cluster interface{ Members() []Member }

// Registrations reads the registered devices of the whole cluster.
type Registrations interface {
	// Of lists user's devices, in one page (a user has at most 20).
	Of(ctx context.Context, user string) ([]Registration, error)
	// All pages every user's devices in the order of user ids, starting
	// after the cursor after; next is "" at the end.
	All(ctx context.Context, after string, limit int) (items []UserRegistration, next string, err error)
}

// Registration is a registered device as openapi.json shows it.
type Registration struct {
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	UserAgent string    `json:"user_agent"`
	ExpiresAt time.Time `json:"expires_at"`
	Node      string    `json:"node"`
}

// UserRegistration is a device in the admin's list of every user's.
type UserRegistration struct {
	UserID string `json:"user_id"`
	Registration
}

// Principal is who a request acts as: the admin, or one user.
type Principal struct {
	UserID string
	Admin  bool
}

// Monitor is a supervisor monitoring a call.
type Monitor struct {
	User  string    `json:"user"`
	Mode  string    `json:"mode"`
	Since time.Time `json:"since"`
}

// Call is a call as openapi.json shows it.
type Call struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	Line       string     `json:"line"`
	Legs       []Leg      `json:"legs"`
	Locked     bool       `json:"locked"`
	Monitors   []Monitor  `json:"monitors"`
	AnsweredBy string     `json:"answered_by"` // the user who now talks to the caller; empty while ringing
	Node       string     `json:"node"`        // holds the call's media
	GrainNode  string     `json:"grain_node"`  // runs the call's grain now
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at"`
}

// Leg is one SIP dialog of a call.
type Leg struct {
	ID    string `json:"id"`
	Party string `json:"party"`
	State string `json:"state"`
	Node  string `json:"node"`
}

// Member is a node of the cluster; State is "alive" or "down".
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
	Calls   int    `json:"calls"`
	Actors  int    `json:"actors"`
}

// Errors Calls returns; the API answers 404, 403 and 409.
var (
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("not allowed")
	ErrConflict  = errors.New("conflict")
)

// ControlError is a grain's refusal of a call control, with its HTTP status
// (422 for a valid request the rules refuse), code and message.
type ControlError struct {
	Status        int
	Code, Message string
	// Holder is who holds what was refused (the member who claimed a
	// thread, for 409 thread_claimed); the error object shows it.
	Holder string
}

func (e *ControlError) Error() string { return e.Message }

// AsControlError turns a grain's answer into an error (nil for 200 or 0).
func AsControlError(status int, code, msg string) error {
	if status == 200 || status == 0 {
		return nil
	}
	return &ControlError{Status: status, Code: code, Message: msg}
}
