package sipedge

import (
	"sync"
	"time"
)

// New calls are shed (503, Retry-After) when the node is past what it can
// route: hundreds of calls wait for their grain's first word, and have
// for a while. How many wait alone does not tell it: a node that was off
// the CPU for a second (a busy host, a GC, its first activations) gets
// that second's calls at once and routes them within milliseconds, and
// refusing them lost calls far below the node's ceiling. A node past its
// ceiling keeps them waiting: once every call routed for shedAfter has
// waited over lateWait (a standing queue, as CoDel tells one), and
// maxRouting still wait, new INVITEs are refused until a call is routed in
// time again, so the calls admitted stay fast and the caller's proxy may
// try another node.
const (
	maxRouting = 500
	// lateWait: routing takes a few milliseconds; half a second means
	// the node is behind.
	lateWait = 500 * time.Millisecond
	// shedAfter: longer than a stall the node catches up from.
	shedAfter = 2 * time.Second
	// maxWaiting bounds the calls held when no grain answers at all (no
	// call is routed, late or not): seconds of calls at the node's rate.
	maxWaiting = 10000
)

// admission tracks calls from their INVITE until their grain first acts
// for them (rings a callee, or answers the caller).
type admission struct {
	now func() time.Time

	mu      sync.Mutex
	pending map[string]time.Time // call → when it was admitted
	// lateSince: the first of an unbroken run of calls routed late (zero
	// after one routed in time); lastLate: the latest of them.
	lateSince, lastLate time.Time
}

func newAdmission(now func() time.Time) *admission {
	return &admission{now: now, pending: map[string]time.Time{}}
}

// admit takes a new call, unless the node is past what it can route.
func (a *admission) admit(callID string) bool {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= maxWaiting || a.shedding(now) {
		return false
	}
	a.pending[callID] = now
	return true
}

// shedding: a standing queue. When routing stops altogether (no call
// routed for shedAfter), maxWaiting alone holds.
func (a *admission) shedding(now time.Time) bool {
	return len(a.pending) >= maxRouting && !a.lateSince.IsZero() &&
		a.lastLate.Sub(a.lateSince) >= shedAfter && now.Sub(a.lastLate) < shedAfter
}

// routed: the grain acted for the call, or the call is gone. Only the
// first word of an admitted call counts; later ones are no-ops.
func (a *admission) routed(callID string) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	since, ok := a.pending[callID]
	if !ok {
		return
	}
	delete(a.pending, callID)
	if now.Sub(since) < lateWait {
		a.lateSince = time.Time{}
		return
	}
	if a.lateSince.IsZero() {
		a.lateSince = now
	}
	a.lastLate = now
}

// overdue takes out the calls that have waited limit or longer with no
// word from their grain: the edge answers their INVITEs itself. They
// count as routed late.
func (a *admission) overdue(limit time.Duration) []string {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for id, since := range a.pending {
		if now.Sub(since) >= limit {
			out = append(out, id)
			delete(a.pending, id)
		}
	}
	if len(out) > 0 {
		if a.lateSince.IsZero() {
			a.lateSince = now
		}
		a.lastLate = now
	}
	return out
}
