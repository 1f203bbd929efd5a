package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/bench/sipp"
)

// TestSmoke is the harness's short run in CI: it builds and starts a node,
// provisions it over REST, sets up calls through the trunk (each held and
// resumed), and carries RTP both ways through the relay. The full ladders
// are run by hand (bench/RESULTS.md).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a node")
	}
	dir := t.TempDir()
	n, err := startNode(dir, nodeSpec{name: "switchboard", token: "smoke-token", rtpPorts: "40000-49999"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	if err := n.provision(); err != nil {
		t.Fatal(err)
	}

	ls, err := ladders(context.Background(), []*node{n}, dir, options{targets: []string{"switchboard"}, gen: "go",
		rates: []float64{20}, step: 2 * time.Second, bound: 2 * time.Second, hold: true, users: 1, rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := ls[0].Steps[0]
	if st.Attempted != 40 || st.Succeeded != st.Attempted || len(st.Failed) != 0 {
		t.Fatalf("calls held and resumed at 20/s for 2 s: %d attempted, %d ok, failed %v", st.Attempted, st.Succeeded, st.Failed)
	}

	rs, err := concurrentRuns(context.Background(), n, dir, []string{"switchboard"}, []int{10}, 2*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	self, relayed := rs[0], rs[1]
	if self.RTPReceived != self.RTPSent || self.RTPSent == 0 {
		t.Fatalf("generator looped back: sent %d, received %d", self.RTPSent, self.RTPReceived)
	}
	// 10 calls × 2 directions × 50 packets/s × 2 s, with a tick of slack.
	if relayed.Calls != 10 || relayed.RTPSent < 1900 || relayed.LossPct > 1 {
		t.Fatalf("through switchboard: %d calls, sent %d, relayed %d (loss %.2f%%)", relayed.Calls, relayed.RTPSent, relayed.RTPReceived, relayed.LossPct)
	}
	if relayed.CPUSeconds <= 0 || relayed.RSSKB <= 0 {
		t.Fatalf("server CPU %.2f s, RSS %d KiB: not measured", relayed.CPUSeconds, relayed.RSSKB)
	}

	if !sipp.Available() {
		return // CI installs sipp (.ci/run); a laptop may not have it
	}
	ls, err = ladders(context.Background(), []*node{n}, dir, options{targets: []string{"sipp", "switchboard"}, gen: "sipp",
		rates: []float64{50}, step: 2 * time.Second, bound: time.Second, users: 20, rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if st := l.Steps[0]; !st.Clean() {
			t.Fatalf("sipp → %s at 50/s: %+v", l.Target, st)
		}
	}
	_ = os.Stdout.Sync()
}
