package main

import (
	"context"
	"fmt"
	"path/filepath"
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

// climb runs rates in order until a rung fails a call. The clean rate is
// the last rung before the first that failed a call or took longer than
// bound at p99; the rate without failures, the last before the first that
// failed a call.
func climb(name string, rates []float64, step time.Duration, bound time.Duration, run rung) ladderResult {
	res := ladderResult{Target: name}
	slow := false
	for _, r := range rates {
		drops := proc.UDPDrops()
		st, err := run(r, step)
		if err != nil {
			st = sipp.Step{Rate: r, Failed: map[string]int{"harness: " + err.Error(): 1}}
		}
		st.UDPDrops = proc.UDPDrops() - drops
		res.Steps = append(res.Steps, st)
		complete := st.Clean()
		slow = slow || st.SetupP99ms > float64(bound.Milliseconds())
		mark := ""
		switch {
		case !complete:
			mark = "  ✗"
		case slow:
			mark = "  ✗ p99"
		}
		progress("")
		fmt.Printf("  %-12s %7.0f/s  achieved %7.1f/s  ok %7d  failed %-28s p50 %6.1f  p95 %6.1f  p99 %7.1f ms  cpu %.3f ms/call  drops %d%s\n",
			name, st.Rate, st.Achieved, st.Succeeded, fmtStepFailed(st), st.SetupP50ms, st.SetupP95ms, st.SetupP99ms, st.CPUPerCall, st.UDPDrops, mark)
		if !complete {
			break
		}
		res.NoFailRate = r
		if !slow {
			res.CleanRate = r
		}
	}
	last := rates[len(rates)-1]
	res.Capped = res.CleanRate == last
	res.NoFailCapped = res.NoFailRate == last
	half := res.CleanRate / 2
	for _, st := range res.Steps {
		if st.Rate <= half && st.Rate > res.HalfRate {
			res.HalfRate, res.P99AtHalf = st.Rate, st.SetupP99ms
		}
	}
	return res
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
	if len(st.RefusedBy) == 0 {
		return fmtFailed(st.Failed)
	}
	return fmt.Sprintf("%s refused %v", fmtFailed(st.Failed), st.RefusedBy)
}

// ladders runs the setup-rate ladder against each target in the same run:
// sipp straight to sipp (the generator's own ceiling), Kamailio as a
// stateful record-routing proxy, and switchboard.
func ladders(ctx context.Context, n *node, dir string, targets []string, gen string, rates []float64, step, bound time.Duration, hold bool, users int) ([]ladderResult, error) {
	var out []ladderResult
	if gen == "go" {
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
		res := climb("switchboard", rates, step, bound, func(r float64, d time.Duration) (sipp.Step, error) {
			return goRung(n, caller, calleeNum, r, d, hold), nil
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
	// The UAS registers with switchboard from its own port first, so
	// switchboard's calls reach the same process that answers the others.
	if err := sipp.Register(ctx, sdir, "127.0.0.1", uasPort, "callee", password, n.sip); err != nil {
		return nil, err
	}
	uasAddr := fmt.Sprintf("127.0.0.1:%d", uasPort)
	numbers := []string{calleeNum}
	if users > 1 {
		ids, nums, err := n.spreadUsers(users)
		if err != nil {
			return nil, err
		}
		if err := sipp.RegisterMany(ctx, sdir, "127.0.0.1", uasPort, ids, password, n.sip); err != nil {
			return nil, err
		}
		numbers = nums
	}
	uas, err := sipp.UAS(sdir, "127.0.0.1", uasPort)
	if err != nil {
		return nil, err
	}
	defer uas.Stop()
	for _, t := range targets {
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
		case "switchboard":
			addr, target = n.sip, n.p
		default:
			return out, fmt.Errorf("unknown target %q (sipp, kamailio, switchboard)", t)
		}
		fmt.Printf("calls ladder, sipp → %s → sipp, calls to %d user(s) (%s per rung; clean = 0 failed and p99 ≤ %s; the ladder goes on to the first failed call)\n", t, len(numbers), step, bound)
		res := climb(t, rates, step, bound, func(r float64, d time.Duration) (sipp.Step, error) {
			var cpu0 float64
			if target != nil {
				cpu0 = target.CPU()
			}
			st, err := sipp.UAC(ctx, sdir, trunkIP, addr, numbers, r, d, 0)
			if target != nil {
				st.TargetCPU = target.CPU() - cpu0
				if st.Succeeded > 0 {
					st.CPUPerCall = st.TargetCPU * 1000 / float64(st.Succeeded)
				}
			}
			time.Sleep(time.Second) // let the last BYEs and timers settle between rungs
			return st, err
		})
		if target != nil {
			res.TargetRSS = target.RSS()
		}
		if t == "kamailio" {
			target.Stop()
		}
		out = append(out, res)
	}
	return out, nil
}

// drain answers nothing itself: it only empties a phone's list of incoming
// calls so the backlog never fills during long runs.
func drain(p *sipphone.Phone) {
	for range p.Incoming() {
	}
}
