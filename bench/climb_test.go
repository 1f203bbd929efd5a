package main

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/bench/sipp"
)

// Ladders climbed side by side take turns in an order that flips at each
// turn, stop one by one at their first rung with a failed call, and sum
// each rung's CPU over its rounds.
func TestClimbTogether(t *testing.T) {
	var order []string
	fake := func(name string, cpu float64, failAt float64) rung {
		return func(r float64, d time.Duration) (sipp.Step, error) {
			order = append(order, name)
			st := sipp.Step{Rate: r, Attempted: 100, Succeeded: 100, TargetCPU: cpu, TargetUserCPU: cpu / 2}
			if r >= failAt {
				st.Succeeded, st.Failed = 99, map[string]int{"TimeoutOnRecv": 1}
			}
			return st, nil
		}
	}
	cs := []contender{
		{name: "new", run: fake("new", 0.11, 1e9), warm: fake("new-warm", 1, 1e9)},
		{name: "old", run: fake("old", 0.10, 20), warm: fake("old-warm", 1, 1e9)},
	}
	res := climbTogether(cs, []float64{10, 20, 30}, time.Second, time.Second, 2, time.Second)

	want := []string{"new-warm", "old-warm", "new", "old", "old", "new", "new", "old", "old", "new", "new", "new"}
	if !slices.Equal(order, want) {
		t.Fatalf("turns %v, want %v", order, want)
	}
	for _, tc := range []struct {
		target        string
		noFail        float64
		capped, steps int
	}{
		{"new", 30, 1, 6},
		{"old", 10, 0, 4},
	} {
		var l ladderResult
		for _, r := range res {
			if r.Target == tc.target {
				l = r
			}
		}
		if l.NoFailRate != tc.noFail || l.NoFailCapped != (tc.capped == 1) || len(l.Steps) != tc.steps {
			t.Errorf("%s: without failures %v (capped %v), %d steps; want %v (capped %v), %d", tc.target, l.NoFailRate, l.NoFailCapped, len(l.Steps), tc.noFail, tc.capped == 1, tc.steps)
		}
	}
	// 0.11 s of CPU for 100 calls in each of two rounds: 1.1 ms a call.
	if got, ok := res[0].cpuPerCall(10); !ok || got < 1.0999 || got > 1.1001 {
		t.Errorf("new's CPU per call at 10/s: %v, %v; want 1.1 ms", got, ok)
	}
	ratios := map[string]float64{}
	cpuRatios(ratios, []ladderResult{{Target: "switchboard", Steps: res[0].Steps}, {Target: "base", Steps: res[1].Steps}})
	if got := ratios["switchboard/base CPU per call at 10/s"]; got < 1.0999 || got > 1.1001 {
		t.Errorf("ratio at 10/s %v, want 1.1 (%v)", got, ratios)
	}
	if got := ratios["switchboard/base user-mode CPU per call at 10/s"]; got < 1.0999 || got > 1.1001 {
		t.Errorf("user-mode ratio at 10/s %v, want 1.1 (%v)", got, ratios)
	}
	if _, ok := ratios["switchboard/base CPU per call at 30/s"]; ok {
		t.Errorf("a ratio at 30/s, which base never ran: %v", ratios)
	}
}
