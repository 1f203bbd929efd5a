// Package queue is the call queue grain: one virtual actor per queue. It
// owns the callers waiting (first come, first served), its members' state
// and its counters, and decides which member(s) each waiting call is
// offered to. machine.go is the pure core (settings, inputs and the clock
// in; new state and effects out); grain.go is the adapter, client.go the
// typed client. The call grain rings what it is told and reports answers,
// declines and hang-ups back.
package queue

import (
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
	Business, Closed   Target // overflow targets
}
