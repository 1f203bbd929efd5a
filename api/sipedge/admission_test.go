package sipedge

import (
	"fmt"
	"testing"
	"time"
)

var epoch = time.Unix(1_700_000_000, 0)

// load drives an admission on a fake clock, one millisecond at a time:
// calls arrive at a rate and the grains route the oldest waiting ones at
// a rate, as a node's placement does.
type load struct {
	a        *admission
	now      time.Time
	queue    []string
	next     int
	owedIn   float64
	owedOut  float64
	refused  []time.Duration // when each refused call came, since the start
	admitted int
}

// phase: until when, calls arriving and calls routed per second.
type phase struct {
	until         time.Duration
	arrive, route float64
}

func newLoad() *load {
	l := &load{now: epoch}
	l.a = newAdmission(func() time.Time { return l.now })
	return l
}

func (l *load) run(from time.Duration, p phase) {
	for t := from; t < p.until; t += time.Millisecond {
		l.owedIn += p.arrive / 1000
		for ; l.owedIn >= 1; l.owedIn-- {
			id := fmt.Sprint(l.next)
			l.next++
			if l.a.admit(id) {
				l.admitted++
				l.queue = append(l.queue, id)
			} else {
				l.refused = append(l.refused, t)
			}
		}
		l.owedOut += p.route / 1000
		for ; l.owedOut >= 1 && len(l.queue) > 0; l.owedOut-- {
			l.a.routed(l.queue[0])
			l.a.routed(l.queue[0]) // a call's later words are no-ops
			l.queue = l.queue[1:]
		}
		if len(l.queue) == 0 {
			l.owedOut = 0 // an idle node banks no routing
		}
		l.now = l.now.Add(time.Millisecond)
	}
}

func TestAdmission(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		phases []phase
		// wantRefused: at least this many refused, none before
		// firstAfter or after lastBy; 0: every call admitted.
		wantRefused        int
		firstAfter, lastBy time.Duration
	}{
		{
			// The bench's first rung: 500 calls/s, the node off the CPU
			// for 1.2 s (a busy host) and then routing at its own pace:
			// the 600 calls of the stall wait at once, briefly.
			name:   "a burst after a stall is admitted",
			phases: []phase{{2 * s, 500, 2500}, {3200 * time.Millisecond, 500, 0}, {10 * s, 500, 2500}},
		},
		{
			name:   "a stall of two seconds at 2000 calls/s is admitted",
			phases: []phase{{1 * s, 2000, 2500}, {3 * s, 2000, 0}, {10 * s, 2000, 8000}},
		},
		{
			// Past the ceiling: a standing queue grows until calls are
			// shed, only after shedAfter of late routing; once the offered
			// rate drops below the ceiling, calls are admitted again.
			name:        "a standing queue is shed, then admission resumes",
			phases:      []phase{{10 * s, 1200, 700}, {20 * s, 300, 700}},
			wantRefused: 2000, firstAfter: lateWait + shedAfter, lastBy: 13 * s,
		},
		{
			// No grain answers at all: nothing is routed, late or not, and
			// maxWaiting bounds what is held.
			name:        "with no routing maxWaiting holds",
			phases:      []phase{{3 * s, 5000, 0}},
			wantRefused: 4000, firstAfter: maxWaiting * s / 5000, lastBy: 3 * s,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoad()
			var from time.Duration
			for _, p := range tt.phases {
				l.run(from, p)
				from = p.until
			}
			if tt.wantRefused == 0 {
				if len(l.refused) > 0 {
					t.Fatalf("%d calls refused, the first %s in", len(l.refused), l.refused[0])
				}
				return
			}
			if len(l.refused) < tt.wantRefused {
				t.Fatalf("refused %d, want at least %d", len(l.refused), tt.wantRefused)
			}
			if first := l.refused[0]; first < tt.firstAfter {
				t.Errorf("first refusal %s in, want none before %s", first, tt.firstAfter)
			}
			if last := l.refused[len(l.refused)-1]; last > tt.lastBy {
				t.Errorf("last refusal %s in, want none after %s", last, tt.lastBy)
			}
		})
	}
}

func TestAdmissionShedsOnlyWhileRoutingIsLate(t *testing.T) {
	now := epoch
	a := newAdmission(func() time.Time { return now })
	step := func(d time.Duration) { now = now.Add(d) }
	// maxRouting+30 calls wait; 30 of them are routed 3 s late, one every
	// 100 ms: late routing for longer than shedAfter.
	for i := range maxRouting + 30 {
		if !a.admit(fmt.Sprint(i)) {
			t.Fatalf("call %d refused before routing was late", i)
		}
	}
	step(3 * time.Second)
	for i := range 30 {
		a.routed(fmt.Sprint(i))
		step(100 * time.Millisecond)
	}
	if a.admit("late") {
		t.Fatal("admitted while every call for three seconds was routed late")
	}
	a.routed("never admitted") // unknown calls (pickups) do not count
	if a.admit("still late") {
		t.Fatal("an unknown call's word ended the shedding")
	}
	// No word at all for shedAfter: routing may have stopped, which
	// maxWaiting guards; shedding on stale lateness would refuse for ever.
	step(shedAfter)
	if !a.admit("a") {
		t.Fatal("still shedding with no call routed for shedAfter")
	}
	// Late again, then a call routed in time ends the shedding at once.
	a.routed("30")
	if a.admit("b") {
		t.Fatal("admitted while routing is late again")
	}
	a.routed("a")
	if !a.admit("c") {
		t.Fatal("refused after a call was routed in time")
	}
}

func TestAdmissionAdmitsWhenFewWait(t *testing.T) {
	now := epoch
	a := newAdmission(func() time.Time { return now })
	for i := range maxRouting + 40 {
		a.admit(fmt.Sprint(i))
	}
	// Calls are routed late for longer than shedAfter until fewer than
	// maxRouting wait: the backlog is small, and is not shed.
	now = now.Add(time.Second)
	for i := range 41 {
		a.routed(fmt.Sprint(i))
		now = now.Add(100 * time.Millisecond)
	}
	if !a.admit("next") {
		t.Fatal("refused with fewer than maxRouting calls waiting")
	}
}

func TestAdmissionLimit(t *testing.T) {
	a := newAdmission(func() time.Time { return epoch })
	for i := range maxWaiting {
		if !a.admit(fmt.Sprint(i)) {
			t.Fatalf("call %d refused under the limit", i)
		}
	}
	if a.admit("over") {
		t.Fatal("a call past maxWaiting was admitted")
	}
	a.routed("1")
	a.routed("1") // twice (respond, then end) is harmless
	if !a.admit("after") {
		t.Fatal("a call was refused after one was routed")
	}
	if a.admit("over again") {
		t.Fatal("the limit did not hold after recovering")
	}
}
