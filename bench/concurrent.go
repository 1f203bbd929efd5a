package main

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard/switchboard/bench/rtpgen"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// concurrentResult is one relay carrying n calls with RTP both ways.
type concurrentResult struct {
	Relay       string         `json:"relay"`
	Calls       int            `json:"calls"`
	SetupFailed map[string]int `json:"setup_failed,omitempty"`
	SetupP99ms  float64        `json:"setup_p99_ms,omitempty"`
	Seconds     float64        `json:"seconds"`
	RTPSent     int64          `json:"rtp_sent"`
	// OfferedPct is what the generator sent of the nominal 50 packets/s per
	// direction: under 99 the generator, not the relay, was the limit.
	OfferedPct   float64 `json:"offered_pct_of_nominal"`
	RTPReceived  int64   `json:"rtp_relayed"`
	PacketsPerS  float64 `json:"relayed_packets_per_s"`
	LossPct      float64 `json:"loss_pct"`
	JitterMs     float64 `json:"jitter_ms_mean"`
	JitterMaxMs  float64 `json:"jitter_ms_max"`
	LatencyP50ms float64 `json:"one_way_p50_ms"`
	LatencyP99ms float64 `json:"one_way_p99_ms"`
	CPUSeconds   float64 `json:"relay_cpu_s"`
	CPUPerCallMs float64 `json:"relay_cpu_ms_per_call_s"` // CPU ms per call per second of talk
	RSSKB        int64   `json:"relay_rss_kb"`
	RSSPerCallKB float64 `json:"relay_rss_kb_per_call"`
	GenCPU       float64 `json:"generator_cpu_s"`
	SendCalls    int64   `json:"generator_sendmmsg_calls"`
}

// Clean: loss under 0.1% of the full nominal load.
func (r concurrentResult) Clean() bool { return r.Calls > 0 && r.LossPct < 0.1 && r.OfferedPct >= 99 }

// relayCalls is a relay set up for the generator: the calls' addresses,
// and the relay's CPU and memory.
type relayCalls struct {
	calls   []rtpgen.Call
	failed  map[string]int
	p99     float64
	cpu     func() float64
	rss     func() int64
	rss0    int64
	cleanup func()
}

// carry runs the generator over calls for d and fills a result.
func carry(ctx context.Context, name string, a, b *rtpgen.Side, rc relayCalls, d time.Duration) (concurrentResult, error) {
	defer rc.cleanup()
	res := concurrentResult{Relay: name, Calls: len(rc.calls), SetupFailed: rc.failed, SetupP99ms: rc.p99}
	if len(rc.calls) == 0 {
		return res, fmt.Errorf("%s: no call was set up", name)
	}
	cpu0, gen0 := rc.cpu(), selfCPU()
	start := time.Now()
	r, err := rtpgen.New(a, b, rc.calls).Run(ctx, d, 300*time.Millisecond, func(sent, got int64) {
		progress("%s: %d calls, %4.0fs, rtp sent %d relayed %d", name, len(rc.calls), time.Since(start).Seconds(), sent, got)
	})
	progress("")
	if err != nil {
		return res, err
	}
	res.Seconds = d.Seconds()
	res.CPUSeconds, res.GenCPU = rc.cpu()-cpu0, selfCPU()-gen0
	res.RSSKB = rc.rss()
	res.RSSPerCallKB = float64(res.RSSKB-rc.rss0) / float64(len(rc.calls))
	res.CPUPerCallMs = res.CPUSeconds * 1000 / float64(len(rc.calls)) / d.Seconds()
	res.RTPSent, res.RTPReceived, res.LossPct = r.Sent, r.Received, r.LossPct
	res.OfferedPct = 100 * float64(r.Sent) / (float64(len(rc.calls)) * 2 * 50 * d.Seconds())
	res.PacketsPerS = float64(r.Received) / d.Seconds()
	res.JitterMs, res.JitterMaxMs, res.LatencyP50ms, res.LatencyP99ms = r.JitterMs, r.JitterMax, r.LatencyP50, r.LatencyP99
	res.SendCalls = r.SendCalls
	return res, nil
}

// switchboardCalls sets up n calls from the trunk to the callee through
// switchboard, both ends advertising the generator's sockets.
func switchboardCalls(n *node, count int, a, b *rtpgen.Side) (relayCalls, error) {
	rc := relayCalls{cpu: n.cpu, rss: n.rss, rss0: n.rss(), failed: map[string]int{}}
	caller, err := n.carrier(a.Addr())
	if err != nil {
		return rc, err
	}
	callee, err := n.phone("callee", true, b.Addr())
	if err != nil {
		caller.Close()
		return rc, err
	}
	var outs, ins []*sipphone.Call
	var lat []time.Duration
	for i := 0; i < count; i++ { // one at a time: setup rate is not what this measures
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, setup, reason := dial(ctx, caller, calleeNum)
		cancel()
		if reason != "" {
			rc.failed[reason]++
			continue
		}
		outs = append(outs, c)
		lat = append(lat, setup)
		if i%50 == 49 {
			progress("switchboard: %d calls up", len(outs))
		}
	}
	deadline := time.After(10 * time.Second)
collect:
	for len(ins) < len(outs) {
		select {
		case c := <-callee.Incoming():
			<-c.Answered()
			ins = append(ins, c)
		case <-deadline:
			break collect
		}
	}
	// The streams are independent: pairing the i-th outgoing with the i-th
	// incoming call is as good as any other pairing.
	for i := range min(len(outs), len(ins)) {
		rc.calls = append(rc.calls, rtpgen.Call{A: outs[i].RemoteMedia(), B: ins[i].RemoteMedia()})
	}
	rc.p99 = pct(lat, 0.99)
	rc.cleanup = func() {
		for _, c := range outs {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = c.Hangup(ctx)
			cancel()
		}
		caller.Close()
		callee.Close()
	}
	return rc, nil
}

// concurrentOnce sets up count calls through one relay and carries them.
func concurrentOnce(ctx context.Context, n *node, dir, target string, count int, d time.Duration) (concurrentResult, error) {
	a, b, err := sides()
	if err != nil {
		return concurrentResult{}, err
	}
	defer a.Close()
	defer b.Close()
	var rc relayCalls
	switch target {
	case "switchboard":
		rc, err = switchboardCalls(n, count, a, b)
	case "rtpengine":
		rc, err = rtpengineCalls(ctx, dir, count, a, b)
	default:
		err = fmt.Errorf("unknown relay %q (rtpengine, switchboard)", target)
	}
	if err != nil {
		return concurrentResult{Relay: target}, err
	}
	return carry(ctx, target, a, b, rc, d)
}

// sides opens the generator's two sockets on loopback.
func sides() (a, b *rtpgen.Side, err error) {
	if a, err = rtpgen.Listen("127.0.0.1"); err != nil {
		return nil, nil, err
	}
	if b, err = rtpgen.Listen("127.0.0.1"); err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// selfCheck runs the generator looped back (no relay) at factor times the
// calls, to show it can offer several times what it reports for a relay.
func selfCheck(ctx context.Context, calls, factor int, d time.Duration) (concurrentResult, error) {
	a, b, err := sides()
	if err != nil {
		return concurrentResult{}, err
	}
	defer a.Close()
	defer b.Close()
	cs := make([]rtpgen.Call, calls*factor)
	for i := range cs {
		cs[i] = rtpgen.Call{A: b.Addr(), B: a.Addr()}
	}
	rc := relayCalls{calls: cs, cpu: func() float64 { return 0 }, rss: func() int64 { return 0 }, cleanup: func() {}}
	return carry(ctx, fmt.Sprintf("loopback ×%d", factor), a, b, rc, d)
}

func printConcurrent(r concurrentResult) {
	fmt.Printf("  %-14s calls %5d (setup failed %s)  offered %5.1f%%  relayed %8.0f pkt/s  loss %6.3f%%  jitter %5.2f ms (max %5.2f)  one-way p50 %5.2f p99 %6.2f ms  relay cpu %5.2f s (%.3f ms/call·s)  rss %6.1f KiB/call  generator cpu %.2f s\n",
		r.Relay, r.Calls, fmtFailed(r.SetupFailed), r.OfferedPct, r.PacketsPerS, r.LossPct, r.JitterMs, r.JitterMaxMs, r.LatencyP50ms, r.LatencyP99ms, r.CPUSeconds, r.CPUPerCallMs, r.RSSPerCallKB, r.GenCPU)
}
