package queue

import (
	"slices"
	"testing"
	"time"
)

// FuzzStep drives a queue with arbitrary inputs and checks what must hold
// whatever happens: no member is offered two calls, offers and the
// members' state agree, every answered call is completed or still served,
// the timer asked for is the next deadline, and a persisted queue goes on
// exactly as the one in memory.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{4, 0x10, 0x21, 0x02, 0x30, 0x41, 0x52, 0x63, 0x70, 0x81, 0x92, 0xa3, 0xb0, 0x11, 0x22})
	f.Add([]byte{2, 0x00, 0x01, 0x03, 0x10, 0x20, 0x5f, 0x6f, 0x80, 0x90, 0xb1, 0x31})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		dists := []string{Simultaneous, Sequential, Rotating, LongestIdle, GroupRotating}
		cfg := config(dists[int(data[0])%len(dists)], Member{"u0", 1}, Member{"u1", 1}, Member{"u2", 2}, Member{"u3", 3})
		cfg.MaxCalls, cfg.MaxWait, cfg.WrapUp = 3, 90*time.Second, 10*time.Second
		users := []string{"u0", "u1", "u2", "u3", "u4"} // u4 is no member
		q := New(cfg, t0)
		now := t0
		// Each input is two bytes: what (low nibble) and flags (high), then
		// whom: a call (low bits) and a user.
		for i := 1; i+1 < len(data); i += 2 {
			b, who := data[i], data[i+1]
			call := []string{"c0", "c1", "c2", "c3"}[who&3]
			user := users[int(who>>2)%len(users)]
			var in any
			switch b & 0xf {
			case 0:
				in = Arrive{call}
			case 1:
				in = Answered{call, user}
			case 2:
				in = Declined{call, user}
			case 3:
				in = Refused{call, user}
			case 4:
				in = Left{call}
			case 5:
				in = Ended{call}
			case 6:
				in = Presence{User: user, Registered: b&0x40 == 0, OnCall: b&0x80 != 0}
			case 7:
				in = Presence{User: user, Registered: true, Elsewhere: b&0x40 != 0, WrapUntil: now.Add(5 * time.Second)}
			case 8:
				in = OptOut{user, "away"}
			case 9:
				in = OptIn{user}
			case 10:
				next := cfg
				next.Members = slices.DeleteFunc(slices.Clone(cfg.Members), func(m Member) bool { return m.User == user })
				in = Configure{next}
			case 11:
				in = Configure{cfg}
			default:
				now = now.Add(time.Duration(b>>4) * 3 * time.Second)
				in = Tick{}
			}
			twin := reload(t, q)
			twin.shown, twin.wake = q.shown, q.wake
			got := q.Step(in, now)
			if want := twin.Step(in, now); render(got) != render(want) {
				t.Fatalf("input %d %#v: after a reload\n got  %s\n want %s", i/2, in, render(want), render(got))
			}
			checkInvariants(t, q, in, now, got)
		}
	})
}

func checkInvariants(t *testing.T, q *Queue, in any, now time.Time, effects []Effect) {
	t.Helper()
	offered := map[string]string{}
	for _, c := range q.Callers {
		for _, u := range c.Ringing {
			if other, ok := offered[u]; ok {
				t.Fatalf("%#v: %s rings for %s and %s", in, u, other, c.Call)
			}
			offered[u] = c.Call
			if a := q.Agents[u]; a == nil || a.Ringing != c.Call {
				t.Fatalf("%#v: %s rings for %s but its state says %+v", in, u, c.Call, a)
			}
		}
	}
	for u, a := range q.Agents {
		if a.Ringing != "" && offered[u] != a.Ringing {
			t.Fatalf("%#v: %s thinks it rings for %s", in, u, a.Ringing)
		}
		if a.Serving != "" && q.Served[a.Serving] != u {
			t.Fatalf("%#v: %s serves %s, not in Served", in, u, a.Serving)
		}
	}
	if q.Answered != q.Completed+len(q.Served) {
		t.Fatalf("%#v: answered %d, completed %d, served %d", in, q.Answered, q.Completed, len(q.Served))
	}
	if len(q.Callers) > q.Config.MaxCalls {
		t.Fatalf("%#v: %d callers waiting", in, len(q.Callers))
	}
	if next := q.next(now); !next.Equal(q.wake) {
		t.Fatalf("%#v: wake %v, next deadline %v", in, q.wake, next)
	}
	wakes := 0
	for _, e := range effects {
		if _, ok := e.(WakeAt); ok {
			wakes++
		}
	}
	if wakes > 1 {
		t.Fatalf("%#v: %d WakeAt in one step", in, wakes)
	}
}
