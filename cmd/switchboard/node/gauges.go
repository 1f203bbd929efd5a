package node

import (
	"context"
	"sync"
	"time"

	"github.com/switchboard/switchboard/actors/line"
)

// registrationsGauge counts the bindings etcd holds for each scrape of
// /metrics. Counting in the line grains drifted: a binding whose lease ran
// out left etcd but stayed counted until its line acted again. While etcd
// cannot answer, the last count stands.
func (n *Node) registrationsGauge() func() float64 {
	var mu sync.Mutex
	var last float64
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		count, err := line.Registered(ctx, n.store)
		if err != nil {
			n.log.Debug("metrics: count registrations", "err", err)
			return last
		}
		last = float64(count)
		return last
	}
}
