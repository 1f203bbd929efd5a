// Package stackfloor raises the stack size Go gives a new goroutine.
//
// Go starts a goroutine with the average stack in use at the last GC
// (GODEBUG adaptivestackstart). In a node that average is set by idle
// goroutines parked a few frames deep (worker pools, socket readers), so it
// sits at the 2 KB minimum. A goroutine that walks a call's deep stacks (a
// new INVITE's, an actor worker's) then grows 2→4→8→16 KB, copying its stack
// at every step: 8% of the node's CPU at 1000 calls/s when sipgo started one
// per SIP message, a few percent since (bench/RESULTS.md). Goroutines parked with deep stacks move the average up,
// so the new ones start large enough and never copy. The average counts every
// goroutine: with 300 holders of 20 KiB, new goroutines start at 32 KiB while
// fewer than ~100 others run, 16 KiB with a few hundred (a node setting up
// calls), and 8 KiB once thousands of held calls' RTP readers dominate it.
package stackfloor

// The node's setting: 300 × 20 KiB make new goroutines start at 16 KiB under
// setup load and took the node from 1.08–1.17 to 0.96–1.05 ms of CPU per
// call at 1000 calls/s (bench/RESULTS.md). Holders of 32 KiB saved no more
// CPU and double what every RTP reader holds.
const (
	Holders = 300
	HoldKiB = 20
)

// frameBytes is the stack one call of hold uses: big frames keep the
// goroutine a few dozen frames deep, which the GC scans quickly.
const frameBytes = 1024

// Hold parks n goroutines that each use about kb KiB of stack, for the life
// of the process. Each holds the power of two above kb KiB (300 × 20 KiB hold
// about 10 MiB).
func Hold(n, kb int) {
	for range n {
		go hold(kb)
	}
}

// parked is never closed: the goroutines wait on it for ever.
var parked = make(chan struct{})

// hold recurses kb times with a frameBytes frame and then parks. The frame's
// array is written and read so the compiler keeps it.
//
//go:noinline
func hold(kb int) byte {
	var frame [frameBytes]byte
	frame[kb%frameBytes] = byte(kb)
	if kb <= 1 {
		<-parked
		return frame[0]
	}
	return hold(kb-1) + frame[kb%frameBytes]
}
