// Package dispatch runs actor mailboxes on goroutines that live on after a
// run. protoactor's default dispatcher starts a new goroutine each time an
// idle mailbox gets a message; a call's messages walk deep stacks (SIP,
// protobuf, SDP), so each fresh 8 KiB stack was grown by copying, several
// times per message: an eighth of the node's CPU under setup load
// (bench/RESULTS.md). A worker that stays keeps the stack it grew.
package dispatch

import (
	"sync/atomic"
	"time"
)

// idle is how long a worker beyond the core waits for more work before it
// exits: bursts leave no crowd of parked goroutines behind.
const idle = 10 * time.Second

// core workers never exit, so they wait on the work queue alone: no timer
// to reset and no select after every run. A node keeps a few dozen runs in
// flight under load.
const core = 64

// Pool is an actor.Dispatcher. It never blocks the sender and never makes a
// mailbox wait for another: with no idle worker a new one starts, as the
// default dispatcher would (grains block on requests to other grains, so a
// bounded pool could deadlock).
type Pool struct {
	work       chan func()
	throughput int
	cores      atomic.Int32 // workers started as core workers
}

// New returns a pool whose mailboxes process up to throughput messages per
// run before yielding.
func New(throughput int) *Pool { return &Pool{work: make(chan func()), throughput: throughput} }

// Schedule runs fn on an idle worker, or on a new one.
func (p *Pool) Schedule(fn func()) {
	select {
	case p.work <- fn:
	default:
		if p.cores.Add(1) <= core {
			go p.coreWorker(fn)
			return
		}
		p.cores.Add(-1)
		go p.worker(fn)
	}
}

// Throughput is the messages a mailbox processes per run.
func (p *Pool) Throughput() int { return p.throughput }

func (p *Pool) coreWorker(fn func()) {
	for {
		fn()
		fn = <-p.work
	}
}

func (p *Pool) worker(fn func()) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		fn()
		t.Reset(idle)
		select {
		case fn = <-p.work:
		case <-t.C:
			return
		}
	}
}
