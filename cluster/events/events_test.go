package events

import "testing"

func TestSubscribeByType(t *testing.T) {
	h := NewHub()
	if h.Listening("call.ringing") {
		t.Fatal("an empty hub listens")
	}
	lamps := h.Subscribe(4, "line.updated")
	if h.Listening("call.ringing") || !h.Listening("line.updated") {
		t.Fatal("a typed subscription listens to the wrong types")
	}
	h.Publish(Event{Type: "call.ringing", Subject: "c1"})
	h.Publish(Event{Type: "line.updated", Subject: "u1"})
	if got := (<-lamps.C).Subject; got != "u1" {
		t.Fatalf("typed subscription got %q, want only the line update", got)
	}
	if len(lamps.C) != 0 {
		t.Fatal("typed subscription got an event of another type")
	}

	all := h.Subscribe(4)
	if !h.Listening("call.ringing") {
		t.Fatal("an untyped subscription does not listen to every type")
	}
	h.Publish(Event{Type: "call.ringing", Subject: "c2"})
	if got := (<-all.C).Subject; got != "c2" {
		t.Fatalf("untyped subscription got %q", got)
	}
	all.Close()
	lamps.Close()
	if h.Listening("line.updated") {
		t.Fatal("closed subscriptions still listen")
	}
}

func TestSlowSubscriberDropsAndCounts(t *testing.T) {
	h := NewHub()
	s := h.Subscribe(1)
	h.Publish(Event{Type: "a"})
	h.Publish(Event{Type: "b"})
	if s.Dropped() != 1 {
		t.Fatalf("dropped = %d, want 1", s.Dropped())
	}
	if (<-s.C).Type != "a" {
		t.Fatal("the first event was not kept")
	}
}
