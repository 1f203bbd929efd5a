// Package rest is the REST API (fiber): it authenticates, validates, and
// turns requests into directory writes or commands to grains. It holds no
// business rules: the grains answer whether an action is allowed.
package rest

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard/switchboard/actors/directory"
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
	Cluster    Cluster
	Ready      func() error
}

// Calls is the call grains of the whole cluster.
type Calls interface {
	List(ctx context.Context) ([]Call, error)
	Get(ctx context.Context, id string) (Call, error)
	Control(ctx context.Context, id, action string, by Principal) error
}

// Cluster lists the members.
type Cluster interface{ Members() []Member }

// Principal is who a request acts as.
type Principal struct {
	UserID string
	Admin  bool
}

// Call is a call as INTERFACE.md shows it.
type Call struct {
	ID         string     `json:"id"`
	State      string     `json:"state"`
	Line       string     `json:"line"`
	Legs       []Leg      `json:"legs"`
	Locked     bool       `json:"locked"`
	Monitors   []string   `json:"monitors"`
	Node       string     `json:"node"`
	CreatedAt  time.Time  `json:"created_at"`
	AnsweredAt *time.Time `json:"answered_at"`
}

// Leg of a call.
type Leg struct {
	ID    string `json:"id"`
	Party string `json:"party"`
	State string `json:"state"`
	Node  string `json:"node"`
}

// Member of the cluster.
type Member struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
	Calls   int    `json:"calls"`
	Actors  int    `json:"actors"`
}

// ErrNotFound is what Calls returns for an unknown call.
var ErrNotFound = errors.New("not found")

// ControlError is a grain's refusal of a call control, with its HTTP status.
type ControlError struct {
	Status        int
	Code, Message string
}

func (e *ControlError) Error() string { return e.Message }

// AsControlError turns a grain's answer into an error (nil for 200).
func AsControlError(status int, code, msg string) error {
	if status == 200 || status == 0 {
		return nil
	}
	return &ControlError{Status: status, Code: code, Message: msg}
}
