package stackfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

// TestNewGoroutinesStartLarge checks the effect the package exists for, with
// the node's setting: once the holders are parked and a GC has measured them,
// the runtime starts new goroutines with at least 16 KiB of stack instead of
// the 2 KiB minimum, even beside a few hundred idle goroutines.
func TestNewGoroutinesStartLarge(t *testing.T) {
	runtime.GC()
	before := startingSize()
	if before >= 16<<10 {
		t.Fatalf("starting stack is already %d B before holding; the test would prove nothing", before)
	}
	idle := make(chan struct{})
	defer close(idle)
	for range 300 { // a node's parked workers and socket readers
		go func() { <-idle }()
	}
	Hold(Holders, HoldKiB)
	// The holders recurse on their own goroutines; a GC counts their stacks
	// only once they are deep, so measure until it shows or time runs out.
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		after := startingSize()
		if after >= 16<<10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("starting stack %d B after holding, %d B before; want ≥ 16 KiB", after, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startingSize() uint64 {
	s := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
