package sipedge

import "sync"

// maxRouting is how many new calls may wait for their grain's first
// word before new INVITEs are shed. Routing takes a few milliseconds; at
// 800 calls/s fewer than a hundred wait. Hundreds waiting means the node is
// past what it can route, and every late call drags the others with it
// (retransmissions add load): a prompt 503 lets the caller's proxy try
// another node.
const maxRouting = 500

// admission counts calls from their INVITE until their grain first acts
// for them (rings a callee, or answers the caller).
type admission struct {
	mu      sync.Mutex
	limit   int
	pending map[string]struct{}
}

func newAdmission(limit int) *admission {
	return &admission{limit: limit, pending: map[string]struct{}{}}
}

// admit takes a new call, unless too many wait already.
func (a *admission) admit(callID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) >= a.limit {
		return false
	}
	a.pending[callID] = struct{}{}
	return true
}

// routed: the grain acted for the call, or the call is gone.
func (a *admission) routed(callID string) {
	a.mu.Lock()
	delete(a.pending, callID)
	a.mu.Unlock()
}
