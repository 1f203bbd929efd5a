package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard/switchboard/bench/kamailio"
	"github.com/switchboard/switchboard/bench/proc"
	"github.com/switchboard/switchboard/bench/sipp"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// Ports of the ladder's peers on loopback.
const (
	uasPort      = 5070
	kamailioAddr = "127.0.0.1:5080"
)

// ladderResult is one target's ladder.
type ladderResult struct {
	Target    string      `json:"target"`
	Steps     []sipp.Step `json:"steps"`
	CleanRate float64     `json:"highest_clean_rate"` // 0: not even the first rung was clean
	Capped    bool        `json:"capped"`             // the last rung was clean: the ceiling is higher
	// NoFailRate is the highest rung of the ladder's leading run without a
	// failed call, whatever its latency: the goal's measure, where the
	// clean rate also bounds the p99.
	NoFailRate   float64 `json:"highest_rate_without_failures"`
	NoFailCapped bool    `json:"without_failures_capped"`
	// P99AtHalf is the setup p99 at the rung nearest half the clean rate.
	P99AtHalf  float64 `json:"setup_p99_ms_at_half_clean_rate"`
	HalfRate   float64 `json:"half_rate"`
	TargetRSS  int64   `json:"target_rss_kb"`
	TargetName string  `json:"-"`
}

// rung runs one rate against a target.
type rung func(rate float64, d time.Duration) (sipp.Step, error)

// contender is one target of ladders climbed side by side; warm is how it
// warms up (run without recording a profile).
type contender struct {
	name      string
	run, warm rung
}

// climb runs rates in order until a rung fails a call. The clean rate is
// the last rung before the first that failed a call or took longer than
// bound at p99; the rate without failures, the last before the first that
// failed a call.
func climb(name string, rates []float64, step time.Duration, bound time.Duration, run rung) ladderResult {
	return climbTogether([]contender{{name: name, run: run}}, rates, step, bound, 1, 0)[0]
}

// climbTogether climbs one ladder per contender, rung by rung: at each
// rate, each contender still climbing runs rounds times, in turns whose
// order flips at every turn (A B, B A, ...), so that whatever the machine
// does meanwhile weighs on each alike. A contender stops at its first
// rung with a failed call; the rung's figures are over all its rounds.
// With warmup, each contender first takes the first rate for that long,
// unrecorded: a node's first calls activate its line and delegator grains
// and grow its heap, which is no part of its cost per call.
func climbTogether(cs []contender, rates []float64, step, bound time.Duration, rounds int, warmup time.Duration) []ladderResult {
	res := make([]ladderResult, len(cs))
	slow, stopped := make([]bool, len(cs)), make([]bool, len(cs))
	for i, c := range cs {
		res[i].Target = c.name
		if warmup > 0 {
			st := runRung(contender{name: c.name, run: c.warm}, rates[0], warmup)
			progress("")
			fmt.Printf("  %-12s %7.0f/s  warm-up, not counted: ok %d, failed %s\n", c.name, st.Rate, st.Succeeded, fmtStepFailed(st))
		}
	}
	turn := 0
	for _, r := range rates {
		complete := make([]bool, len(cs))
		for i := range cs {
			complete[i] = !stopped[i]
		}
		for range rounds {
			for k := range cs {
				i := k
				if turn%2 == 1 {
					i = len(cs) - 1 - k
				}
				if stopped[i] {
					continue
				}
				st := runRung(cs[i], r, step)
				res[i].Steps = append(res[i].Steps, st)
				complete[i] = complete[i] && st.Clean()
				slow[i] = slow[i] || st.SetupP99ms > float64(bound.Milliseconds())
				mark := ""
				switch {
				case !st.Clean():
					mark = "  ✗"
				case slow[i]:
					mark = "  ✗ p99"
				}
				progress("")
				fmt.Printf("  %-12s %7.0f/s  achieved %7.1f/s  ok %7d  failed %-28s p50 %6.1f  p95 %6.1f  p99 %7.1f ms  cpu %.3f ms/call  drops %d%s\n",
					cs[i].name, st.Rate, st.Achieved, st.Succeeded, fmtStepFailed(st), st.SetupP50ms, st.SetupP95ms, st.SetupP99ms, st.CPUPerCall, st.UDPDrops, mark)
			}
			turn++
		}
		for i := range cs {
			if stopped[i] {
				continue
			}
			if !complete[i] {
				stopped[i] = true
				continue
			}
			res[i].NoFailRate = r
			if !slow[i] {
				res[i].CleanRate = r
			}
		}
		if len(cs) > 1 {
			printCPUPerCall(res, r)
		}
	}
	last := rates[len(rates)-1]
	for i := range res {
		res[i].Capped = res[i].CleanRate == last
		res[i].NoFailCapped = res[i].NoFailRate == last
		half := res[i].CleanRate / 2
		for _, st := range res[i].Steps {
			if st.Rate <= half && st.Rate > res[i].HalfRate {
				res[i].HalfRate, res[i].P99AtHalf = st.Rate, st.SetupP99ms
			}
		}
	}
	return res
}

// runRung runs one rung and counts the UDP datagrams the kernel dropped
// meanwhile.
func runRung(c contender, r float64, step time.Duration) sipp.Step {
	drops := proc.UDPDrops()
	st, err := c.run(r, step)
	if err != nil {
		st = sipp.Step{Rate: r, Failed: map[string]int{"harness: " + err.Error(): 1}}
	}
	st.UDPDrops = proc.UDPDrops() - drops
	return st
}

// cpuPerCall is a target's CPU per successful call at rate over every
// round of that rung, in ms.
func (l ladderResult) cpuPerCall(rate float64) (float64, bool) {
	return l.perCall(rate, func(st sipp.Step) float64 { return st.TargetCPU })
}

// userCPUPerCall is cpuPerCall's part in user mode.
func (l ladderResult) userCPUPerCall(rate float64) (float64, bool) {
	return l.perCall(rate, func(st sipp.Step) float64 { return st.TargetUserCPU })
}

func (l ladderResult) perCall(rate float64, seconds func(sipp.Step) float64) (float64, bool) {
	var cpu float64
	var calls int64
	for _, st := range l.Steps {
		if st.Rate == rate {
			cpu += seconds(st)
			calls += st.Succeeded
		}
	}
	if calls == 0 || cpu == 0 {
		return 0, false
	}
	return cpu * 1000 / float64(calls), true
}

// allocPerCall is what a target allocated per successful call at rate
// over every round of that rung: objects, and KiB.
func (l ladderResult) allocPerCall(rate float64) (mallocs, kb float64) {
	var calls float64
	for _, st := range l.Steps {
		if st.Rate == rate {
			n := float64(st.Succeeded)
			mallocs += st.MallocsPerCall * n
			kb += st.AllocKBPerCall * n
			calls += n
		}
	}
	if calls == 0 {
		return 0, 0
	}
	return mallocs / calls, kb / calls
}

// printCPUPerCall prints each target's CPU per call at rate over its
// rounds, and each one's over the first's; then what each allocated per
// call.
func printCPUPerCall(res []ladderResult, rate float64) {
	first, ok := res[0].cpuPerCall(rate)
	if !ok {
		return
	}
	line := fmt.Sprintf("  cpu per call at %.0f/s: %s %.3f ms", rate, res[0].Target, first)
	firstUser, _ := res[0].userCPUPerCall(rate)
	user := fmt.Sprintf("  of which in user mode: %s %.3f ms", res[0].Target, firstUser)
	var allocs []string
	for i, l := range res {
		c, ok := l.cpuPerCall(rate)
		if !ok {
			continue
		}
		if i > 0 {
			line += fmt.Sprintf(", %s %.3f ms (%s/%s %.3f)", l.Target, c, res[0].Target, l.Target, first/c)
			if u, ok := l.userCPUPerCall(rate); ok {
				user += fmt.Sprintf(", %s %.3f ms (%s/%s %.3f)", l.Target, u, res[0].Target, l.Target, firstUser/u)
			}
		}
		if m, kb := l.allocPerCall(rate); m > 0 {
			allocs = append(allocs, fmt.Sprintf("%s %.0f objects, %.1f KiB", l.Target, m, kb))
		}
	}
	fmt.Println(line)
	if firstUser > 0 {
		fmt.Println(user)
	}
	if len(allocs) > 0 {
		fmt.Printf("  allocated per call at %.0f/s: %s\n", rate, strings.Join(allocs, "; "))
	}
}

func fmtFailed(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	return fmt.Sprint(m)
}

// fmtStepFailed adds to the failed calls the refusals behind sipp's
// timeouts (a 503 is the target shedding load).
func fmtStepFailed(st sipp.Step) string {
	out := fmtFailed(st.Failed)
	if len(st.RefusedBy) > 0 {
		atLeast := ""
		if st.RefusedUndercount {
			atLeast = "at least "
		}
		out += fmt.Sprintf(" refused %s%v", atLeast, st.RefusedBy)
	}
	if st.RefusedUndercount {
		out += " (UAC log full)"
	}
	return out
}

// ladders runs the setup-rate ladder against each target in the same run:
// sipp straight to sipp (the generator's own ceiling), Kamailio as a
// stateful record-routing proxy, switchboard, and base (the second node,
// -base). switchboard and base climb side by side, rung by rung.
func ladders(ctx context.Context, nodes []*node, dir string, o options) ([]ladderResult, error) {
	var out []ladderResult
	n := nodes[0]
	if o.gen == "go" {
		caller, err := n.carrier(noMedia)
		if err != nil {
			return nil, err
		}
		defer caller.Close()
		callee, err := n.phone("callee", true, noMedia)
		if err != nil {
			return nil, err
		}
		defer callee.Close()
		go drain(callee)
		fmt.Println("calls ladder, Go phones → switchboard → Go phone")
		res := climb("switchboard", o.rates, o.step, o.bound, func(r float64, d time.Duration) (sipp.Step, error) {
			return goRung(n, caller, calleeNum, r, d, o.hold), nil
		})
		res.TargetRSS = n.rss()
		return append(out, res), nil
	}
	if !sipp.Available() {
		return nil, fmt.Errorf("sipp is not installed (apt-get install sip-tester), or use -gen go")
	}
	sdir, err := sipp.Dir(dir)
	if err != nil {
		return nil, err
	}
	nodeOf := map[string]*node{}
	for _, nd := range nodes {
		nodeOf[nd.name] = nd
	}
	var numbers []string
	for _, t := range o.targets {
		nd := nodeOf[t]
		if nd == nil {
			continue
		}
		if numbers, err = registerUAS(ctx, nd, sdir, o.users); err != nil {
			return nil, err
		}
	}
	if numbers == nil {
		numbers = []string{calleeNum} // sipp and Kamailio ring the UAS whatever the number
	}
	uasAddr := fmt.Sprintf("127.0.0.1:%d", uasPort)
	uas, err := sipp.UAS(sdir, "127.0.0.1", uasPort)
	if err != nil {
		return nil, err
	}
	defer uas.Stop()
	var side []contender
	var sideNodes []*node
	for _, t := range o.targets {
		var addr string
		var target *proc.Proc
		switch t {
		case "sipp":
			addr = uasAddr
		case "kamailio":
			if !kamailio.Available() {
				fmt.Println("  kamailio is not installed (apt-get install kamailio): skipped")
				continue
			}
			k, err := kamailio.Start(filepath.Join(dir), kamailio.Options{Listen: kamailioAddr, Forward: uasAddr})
			if err != nil {
				return out, err
			}
			addr, target = kamailioAddr, k
		case "switchboard", "base":
			nd := nodeOf[t]
			if nd == nil {
				return out, fmt.Errorf("target base needs -base <binary>")
			}
			side = append(side, contender{name: t, run: sipRung(ctx, sdir, nd.sip, numbers, nd, o.profile), warm: sipRung(ctx, sdir, nd.sip, numbers, nd, "")})
			sideNodes = append(sideNodes, nd)
			continue
		default:
			return out, fmt.Errorf("unknown target %q (sipp, kamailio, switchboard, base)", t)
		}
		fmt.Printf("calls ladder, sipp → %s → sipp, calls to %d user(s) (%s per rung; clean = 0 failed and p99 ≤ %s; the ladder goes on to the first failed call)\n", t, len(numbers), o.step, o.bound)
		res := climb(t, o.rates, o.step, o.bound, sipRung(ctx, sdir, addr, numbers, procTarget{target}, ""))
		if target != nil {
			res.TargetRSS = target.RSS()
		}
		if t == "kamailio" {
			target.Stop()
		}
		out = append(out, res)
	}
	if len(side) > 0 {
		names := make([]string, len(side))
		for i, c := range side {
			names[i] = c.name
		}
		fmt.Printf("calls ladder, sipp → %s → sipp, side by side, %d round(s) per rung, calls to %d user(s) (%s per rung; clean = 0 failed and p99 ≤ %s; the ladder goes on to the first failed call)\n",
			strings.Join(names, " | "), o.rounds, len(numbers), o.step, o.bound)
		res := climbTogether(side, o.rates, o.step, o.bound, o.rounds, o.warmup)
		for i := range res {
			res[i].TargetRSS = sideNodes[i].rss()
		}
		out = append(out, res...)
	}
	return out, nil
}

// registerUAS registers the UAS's users with nd (the callee, and with
// users > 1 that many more) from the UAS's port, so that nd's calls reach
// the process that answers the others' too. It returns the numbers to
// dial.
func registerUAS(ctx context.Context, nd *node, sdir string, users int) ([]string, error) {
	if err := sipp.Register(ctx, sdir, "127.0.0.1", uasPort, "callee", password, nd.sip); err != nil {
		return nil, err
	}
	if users <= 1 {
		return []string{calleeNum}, nil
	}
	ids, nums, err := nd.spreadUsers(users)
	if err != nil {
		return nil, err
	}
	if err := sipp.RegisterMany(ctx, sdir, "127.0.0.1", uasPort, ids, password, nd.sip); err != nil {
		return nil, err
	}
	return nums, nil
}

// measured is a target whose CPU a rung measures: all of it, and the part
// in user mode.
type measured interface {
	cpu() float64
	userCPU() float64
}

// procTarget is a process the harness started (nil: sipp straight to
// sipp, nothing to measure).
type procTarget struct{ p *proc.Proc }

func (t procTarget) cpu() float64 {
	if t.p == nil {
		return 0
	}
	return t.p.CPU()
}

func (t procTarget) userCPU() float64 {
	if t.p == nil {
		return 0
	}
	return t.p.UserCPU()
}

// sipRung offers sipp's calls to addr, measuring target's CPU, and with
// profiles set records the node's CPU profile of each rung there.
func sipRung(ctx context.Context, sdir, addr string, numbers []string, target measured, profiles string) rung {
	round := map[float64]int{}
	return func(r float64, d time.Duration) (sipp.Step, error) {
		nd, isNode := target.(*node)
		var wait func() error
		if isNode && profiles != "" {
			round[r]++
			wait = nd.profileCPU(filepath.Join(profiles, fmt.Sprintf("%s-%.0f-%d.pb.gz", nd.name, r, round[r])), d)
		}
		var gs0 goStats
		if isNode {
			gs0 = nd.goStats()
		}
		cpu0, user0 := target.cpu(), target.userCPU()
		st, err := sipp.UAC(ctx, sdir, trunkIP, addr, numbers, r, d, 0)
		st.TargetCPU, st.TargetUserCPU = target.cpu()-cpu0, target.userCPU()-user0
		if st.Succeeded > 0 {
			calls := float64(st.Succeeded)
			st.CPUPerCall = st.TargetCPU * 1000 / calls
			if isNode {
				if gs := nd.goStats(); gs.mallocs > 0 {
					st.MallocsPerCall = (gs.mallocs - gs0.mallocs) / calls
					st.AllocKBPerCall = (gs.bytes - gs0.bytes) / 1024 / calls
					st.GCs = int(gs.gcs - gs0.gcs)
				}
			}
		}
		if wait != nil {
			if perr := wait(); perr != nil {
				fmt.Println("  ", perr)
			}
		}
		time.Sleep(time.Second) // let the last BYEs and timers settle between rungs
		return st, err
	}
}

// drain answers nothing itself: it only empties a phone's list of incoming
// calls so the backlog never fills during long runs.
func drain(p *sipphone.Phone) {
	for range p.Incoming() {
	}
}
