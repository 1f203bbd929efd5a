// Package events is the node's hub of domain events (call.*, line.*, ...)
// that SSE clients and other observers subscribe to. Publishing never blocks:
// a subscriber too slow to keep up loses events and is told so by a gap count.
package events

import (
	"slices"
	"sync"
	"time"
)

// Event is one domain event. Type is dotted ("call.ringing"); Subject is the
// id of the thing it is about; Users lists the user ids allowed to see it
// (empty: admin only). Data is the JSON-ready payload.
type Event struct {
	Type    string    `json:"type"`
	Subject string    `json:"subject"`
	Users   []string  `json:"-"`
	Time    time.Time `json:"time"`
	Data    any       `json:"data,omitempty"`
}

// Hub fans events out to subscribers.
type Hub struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

// Subscription receives events on C until Close.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	types   []string // nil: every type
	hub     *Hub
	dropped int64
	mu      sync.Mutex
}

func NewHub() *Hub { return &Hub{subs: map[*Subscription]struct{}{}} }

// Subscribe returns a subscription with a buffer of n events, of the given
// types only (none: every type).
func (h *Hub) Subscribe(n int, types ...string) *Subscription {
	c := make(chan Event, n)
	s := &Subscription{C: c, c: c, hub: h, types: types}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Listening reports whether anyone subscribes to events of type typ, so a
// publisher can skip building an event nobody would receive.
func (h *Hub) Listening(typ string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if s.wants(typ) {
			return true
		}
	}
	return false
}

func (s *Subscription) wants(typ string) bool {
	return s.types == nil || slices.Contains(s.types, typ)
}

// Publish delivers e to every subscriber that has room.
func (h *Hub) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		if !s.wants(e.Type) {
			continue
		}
		select {
		case s.c <- e:
		default:
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
		}
	}
}

// Dropped reports how many events this subscriber missed because it was full.
func (s *Subscription) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close stops delivery and closes C.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	if _, ok := s.hub.subs[s]; ok {
		delete(s.hub.subs, s)
		close(s.c)
	}
	s.hub.mu.Unlock()
}
