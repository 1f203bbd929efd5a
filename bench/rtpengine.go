package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/switchboard/switchboard/bench/rtpengine"
	"github.com/switchboard/switchboard/bench/rtpgen"
)

// rtpengineCalls starts rtpengine in userspace mode (one worker thread per
// core, as switchboard uses every core) and opens count calls over its ng
// protocol, both ends on the generator's sockets. Each count gets a fresh
// daemon, so its memory per call is measured from idle.
func rtpengineCalls(ctx context.Context, dir string, count int, a, b *rtpgen.Side) (relayCalls, error) {
	d, err := rtpengine.Start(ctx, rtpengine.Options{PortMin: 20000, PortMax: 29999, Threads: runtime.NumCPU(), Dir: filepath.Join(dir)})
	if err != nil {
		return relayCalls{}, err
	}
	cpu := func() float64 { t, _ := d.CPUTime(); return t.Seconds() }
	rss := func() int64 { v, _ := d.RSS(); return v / 1024 }
	rc := relayCalls{cpu: cpu, rss: rss, rss0: rss(), failed: map[string]int{}, cleanup: func() { _ = d.Stop() }}
	for i := range count {
		aSide, bSide, err := rtpengine.Relay(ctx, d.Client(), fmt.Sprintf("bench-%d", i), a.Addr(), b.Addr())
		if err != nil {
			rc.failed[err.Error()]++
			continue
		}
		rc.calls = append(rc.calls, rtpgen.Call{A: aSide, B: bSide})
		if i%50 == 49 {
			progress("rtpengine: %d calls up", len(rc.calls))
		}
	}
	return rc, nil
}
