package e2e

import (
	"context"
	"testing"
	"time"
)

// switchboard_registrations is what etcd holds: it follows a register and an
// unregister at once, and a second phone of the same user counts apart.
func TestRegistrationsGaugeFollowsTheStore(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	desk := s.phone("alice", "alice-secret", nil)
	soft := s.phone("alice", "alice-secret", nil)
	if v := metric(t, s, "switchboard_registrations"); v != 0 {
		t.Fatalf("before any REGISTER: %v registrations", v)
	}
	s.registered(desk)
	s.registered(soft)
	if v := metric(t, s, "switchboard_registrations"); v != 2 {
		t.Fatalf("two phones registered: gauge %v, want 2", v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := desk.Register(ctx, 0); err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
	if v := metric(t, s, "switchboard_registrations"); v != 1 {
		t.Fatalf("one phone unregistered: gauge %v, want 1", v)
	}
}
