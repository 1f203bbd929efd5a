package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/bench/rtpgen"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// A group lists at most this many supervisors (the directory's limit), so
// the monitored scenario's supervisors are spread over groups of this size.
const groupSize = 50

// The parties of a monitored call, in the order of the generator's sides.
const (
	callerSide = iota
	agentSide
	supervisorSide
	nSides
)

// directionNames: who each side hears while the supervisor whispers.
var directionNames = [nSides]string{
	callerSide:     "caller hears agent (forwarded)",
	agentSide:      "agent hears caller+supervisor (mixed)",
	supervisorSide: "supervisor hears caller+agent (mixed)",
}

// monitoredResult is count calls from the trunk to as many agents, each
// whispered to by its own supervisor (*2<ext>), with RTP from all three.
type monitoredResult struct {
	Calls       int            `json:"calls"`
	SetupFailed map[string]int `json:"setup_failed,omitempty"`
	// JoinP50ms, JoinP99ms: a supervisor's *2<ext> INVITE to its 200.
	JoinP50ms     float64 `json:"join_p50_ms"`
	JoinP99ms     float64 `json:"join_p99_ms"`
	Seconds       float64 `json:"seconds"`
	WindowSeconds float64 `json:"window_seconds"` // frames are counted in this window, after a warm-up
	// OfferedPct is what the generator sent of the nominal 50 packets/s per
	// party: under 99 the generator, not the node, was the limit.
	OfferedPct   float64           `json:"offered_pct_of_nominal"`
	Directions   []directionResult `json:"directions"`
	CPUSeconds   float64           `json:"relay_cpu_s"`
	CPUPerCallMs float64           `json:"relay_cpu_ms_per_call_s"`
	RSSKB        int64             `json:"relay_rss_kb"`
	RSSPerCallKB float64           `json:"relay_rss_kb_per_call"`
	GenCPU       float64           `json:"generator_cpu_s"`
}

// directionResult is what one party of every call heard.
type directionResult struct {
	Direction string `json:"direction"`
	// Expected is 50 frames per second per call over the window: a mixed
	// stream is the mixer's own, one frame per tick, so frames are counted
	// against the clock rather than against the senders' sequence numbers.
	Expected int64   `json:"frames_expected"`
	Received int64   `json:"frames_received"`
	LossPct  float64 `json:"loss_pct"`
	// Untouched frames carried a sender's payload as it was sent: all of
	// them where the relay forwards, few where it mixes (a tick where one
	// voice alone had a frame).
	Untouched int64   `json:"frames_untouched"`
	JitterMs  float64 `json:"jitter_ms_mean"`
	JitterMax float64 `json:"jitter_ms_max"`
	Stray     int64   `json:"stray_packets,omitempty"`
}

// Clean: every direction lost under 0.1% at the full nominal load.
func (r monitoredResult) Clean() bool {
	if r.Calls == 0 || r.OfferedPct < 99 || len(r.Directions) != nSides {
		return false
	}
	for _, d := range r.Directions {
		if d.LossPct >= 0.1 {
			return false
		}
	}
	return true
}

// monitoredRuns measures, for each count, plain concurrent calls and then
// as many monitored ones, each on a freshly started node so that their
// memory per call compares. It stops at the first count that is not clean.
func monitoredRuns(ctx context.Context, n *node, dir string, counts []int, d time.Duration) ([]concurrentResult, []monitoredResult, error) {
	var plain []concurrentResult
	var mon []monitoredResult
	for i, count := range counts {
		if i > 0 {
			if err := n.restart(); err != nil {
				return plain, mon, err
			}
		}
		fmt.Printf("%d calls, %s of 20 ms PCMU from every party: plain, then whispered to by a supervisor each\n", count, d)
		p, err := concurrentOnce(ctx, n, dir, "switchboard", count, d)
		if err != nil {
			return plain, mon, err
		}
		printConcurrent(p)
		plain = append(plain, p)
		if err := n.restart(); err != nil {
			return plain, mon, err
		}
		m, err := monitoredOnce(ctx, n, count, d)
		if err != nil {
			return plain, mon, err
		}
		printMonitored(m, p)
		mon = append(mon, m)
		if !m.Clean() {
			break
		}
	}
	return plain, mon, nil
}

// The monitored scenario's users: agent i (a1…) has extension 5xxxx and a
// number the trunk's caller dials; supervisor i (s1…) has 6xxxx and whispers
// to agent i.
func agentID(i int) string      { return "a" + strconv.Itoa(i+1) }
func supervisorID(i int) string { return "s" + strconv.Itoa(i+1) }
func agentExt(i int) string     { return strconv.Itoa(50000 + i + 1) }
func agentNumber(i int) string  { return fmt.Sprintf("+1415557%04d", i+1) }

// provisionMonitoring creates count agents and supervisors and the
// monitoring groups that let supervisor i whisper to agent i; existing
// ones (409) are fine.
func (n *node) provisionMonitoring(count int) error {
	post := func(path string, body map[string]any) error {
		code, err := n.api("POST", path, body)
		if err == nil && code >= 300 && code != 409 {
			err = fmt.Errorf("provision POST %s %v: status %d", path, body["id"], code)
		}
		return err
	}
	for i := range count {
		if err := post("/v1/users", map[string]any{"id": agentID(i), "name": "Agent " + strconv.Itoa(i+1), "extension": agentExt(i),
			"numbers": []string{agentNumber(i)}, "sip_password": password}); err != nil {
			return err
		}
		if err := post("/v1/users", map[string]any{"id": supervisorID(i), "name": "Supervisor " + strconv.Itoa(i+1),
			"extension": strconv.Itoa(60000 + i + 1), "sip_password": password}); err != nil {
			return err
		}
	}
	for g := 0; g*groupSize < count; g++ {
		var sups, members []string
		for i := g * groupSize; i < min(count, (g+1)*groupSize); i++ {
			sups, members = append(sups, supervisorID(i)), append(members, agentID(i))
		}
		if err := post("/v1/monitoring-groups", map[string]any{"id": "bench-" + strconv.Itoa(g+1), "supervisors": sups,
			"members": members, "modes": []string{"whisper"}}); err != nil {
			return err
		}
	}
	return nil
}

// monitoredParties are the phones of a monitored run: the trunk's caller,
// an agent per call (registered, answering) and a supervisor per call, each
// advertising its side's generator socket.
type monitoredParties struct {
	caller      *sipphone.Phone
	agents      []*sipphone.Phone
	supervisors []*sipphone.Phone
}

func (ps *monitoredParties) close() {
	for _, p := range append(append([]*sipphone.Phone{ps.caller}, ps.agents...), ps.supervisors...) {
		if p != nil {
			p.Close()
		}
	}
}

func (n *node) monitoredParties(count int, sides []*rtpgen.Side) (*monitoredParties, error) {
	ps := &monitoredParties{}
	var err error
	if ps.caller, err = n.carrier(sides[callerSide].Addr()); err != nil {
		return ps, err
	}
	for i := range count {
		a, err := n.phone(agentID(i), true, sides[agentSide].Addr())
		if err != nil {
			return ps, err
		}
		ps.agents = append(ps.agents, a)
		// A supervisor's INVITE is authenticated by digest: it needs no
		// registration.
		s, err := sipphone.New(sipphone.Config{User: supervisorID(i), Password: password, Domain: domain, Server: n.sip,
			MediaAddr: sides[supervisorSide].Addr(), Log: debugLog()})
		if err != nil {
			return ps, err
		}
		ps.supervisors = append(ps.supervisors, s)
	}
	return ps, nil
}

// monitoredCall is one call's three dialogs (the caller's, the agent's and
// the supervisor's).
type monitoredCall struct{ caller, agent, supervisor *sipphone.Call }

// setUp places call i: the trunk's caller dials agent i, who answers, then
// supervisor i dials *2<ext>. A failure is its reason.
func (ps *monitoredParties) setUp(i int) (monitoredCall, time.Duration, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mc monitoredCall
	c, _, reason := dial(ctx, ps.caller, agentNumber(i))
	if reason != "" {
		return mc, 0, "call " + reason
	}
	mc.caller = c
	select {
	case in := <-ps.agents[i].Incoming():
		select {
		case <-in.Answered():
			mc.agent = in
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
	if mc.agent == nil {
		mc.hangUp()
		return monitoredCall{}, 0, "agent not answered"
	}
	t0 := time.Now()
	s, _, reason := dial(ctx, ps.supervisors[i], "*2"+agentExt(i))
	if reason != "" {
		mc.hangUp()
		return monitoredCall{}, 0, "whisper " + reason
	}
	mc.supervisor = s
	return mc, time.Since(t0), ""
}

// hangUp ends the supervisor's and the caller's dialogs (the agent's ends
// with the caller's).
func (mc monitoredCall) hangUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, c := range []*sipphone.Call{mc.supervisor, mc.caller} {
		if c != nil {
			_ = c.Hangup(ctx)
		}
	}
}

// monitoredOnce sets up count monitored calls one at a time (setup rate is
// not what this measures) and carries RTP from every party for d.
func monitoredOnce(ctx context.Context, n *node, count int, d time.Duration) (monitoredResult, error) {
	res := monitoredResult{SetupFailed: map[string]int{}}
	if err := n.provisionMonitoring(count); err != nil {
		return res, err
	}
	var sides []*rtpgen.Side
	defer func() {
		for _, s := range sides {
			s.Close()
		}
	}()
	for range nSides {
		s, err := rtpgen.Listen("127.0.0.1")
		if err != nil {
			return res, err
		}
		sides = append(sides, s)
	}
	rss0 := n.rss()
	ps, err := n.monitoredParties(count, sides)
	defer ps.close()
	if err != nil {
		return res, err
	}
	var calls []monitoredCall
	defer func() {
		for _, mc := range calls {
			mc.hangUp()
		}
	}()
	var joins []time.Duration
	var legs []rtpgen.Leg
	for i := range count {
		mc, join, reason := ps.setUp(i)
		if reason != "" {
			res.SetupFailed[reason]++
			if os.Getenv("BENCH_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "monitored call %d: %s\n", i, reason)
			}
			continue
		}
		calls = append(calls, mc)
		joins = append(joins, join)
		legs = append(legs, rtpgen.Leg{Side: callerSide, Relay: mc.caller.RemoteMedia()},
			rtpgen.Leg{Side: agentSide, Relay: mc.agent.RemoteMedia()},
			rtpgen.Leg{Side: supervisorSide, Relay: mc.supervisor.RemoteMedia()})
		if i%50 == 49 {
			progress("monitored: %d calls up", len(calls))
		}
	}
	res.Calls = len(calls)
	if res.Calls == 0 {
		return res, errors.New("monitored: no call was set up")
	}
	res.JoinP50ms, res.JoinP99ms = pct(joins, 0.5), pct(joins, 0.99)

	cpu0, gen0 := n.cpu(), selfCPU()
	start := time.Now()
	r, err := rtpgen.NewMesh(sides, legs).Run(ctx, d, time.Second, 300*time.Millisecond, func(sent, got int64) {
		progress("monitored: %d calls, %4.0fs, rtp sent %d heard %d", res.Calls, time.Since(start).Seconds(), sent, got)
	})
	progress("")
	if err != nil {
		return res, err
	}
	res.Seconds, res.WindowSeconds = d.Seconds(), r.Window.Seconds()
	res.CPUSeconds, res.GenCPU = n.cpu()-cpu0, selfCPU()-gen0
	res.CPUPerCallMs = res.CPUSeconds * 1000 / float64(res.Calls) / d.Seconds()
	res.RSSKB = n.rss()
	res.RSSPerCallKB = float64(res.RSSKB-rss0) / float64(res.Calls)
	var sent int64
	for i, s := range r.Sides {
		sent += s.Sent
		res.Directions = append(res.Directions, directionResult{Direction: directionNames[i], Expected: s.Expected, Received: s.Received,
			LossPct: s.LossPct, Untouched: s.Untouched, JitterMs: s.JitterMs, JitterMax: s.JitterMax, Stray: s.Stray})
	}
	res.OfferedPct = 100 * float64(sent) / (float64(len(legs)) * 50 * d.Seconds())
	return res, nil
}

// printMonitored prints a monitored run under the plain one of its count,
// with the ratios of their CPU and memory per call.
func printMonitored(m monitoredResult, plain concurrentResult) {
	fmt.Printf("  %-14s calls %5d (setup failed %s)  whisper join p50 %.1f p99 %.1f ms  offered %5.1f%%  relay cpu %5.2f s (%.3f ms/call·s)  rss %6.1f KiB/call  generator cpu %.2f s\n",
		"monitored", m.Calls, fmtFailed(m.SetupFailed), m.JoinP50ms, m.JoinP99ms, m.OfferedPct, m.CPUSeconds, m.CPUPerCallMs, m.RSSPerCallKB, m.GenCPU)
	for _, d := range m.Directions {
		fmt.Printf("      %-40s frames %8d of %8d  loss %6.3f%%  untouched %8d  jitter %5.2f ms (max %5.2f)", d.Direction, d.Received, d.Expected, d.LossPct, d.Untouched, d.JitterMs, d.JitterMax)
		if d.Stray > 0 {
			fmt.Printf("  stray %d", d.Stray)
		}
		fmt.Println()
	}
	if plain.CPUPerCallMs > 0 && plain.RSSPerCallKB > 0 {
		fmt.Printf("  monitored/plain: CPU per call·s %.2f, RSS per call %.2f\n", m.CPUPerCallMs/plain.CPUPerCallMs, m.RSSPerCallKB/plain.RSSPerCallKB)
	}
}
