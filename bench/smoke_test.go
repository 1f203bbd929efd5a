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
// resumed), carries RTP both ways through the relay, and then through calls
// a supervisor whispers to. The full ladders are run by hand
// (bench/RESULTS.md).
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

	// Three calls plain, then on a fresh node whispered to by a supervisor
	// each: the caller hears the agent forwarded, the agent and the
	// supervisor hear a mix, at 50 frames a second.
	plain, mon, err := monitoredRuns(context.Background(), n, dir, []int{3}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 1 || plain[0].Calls != 3 || len(mon) != 1 {
		t.Fatalf("monitored scenario: plain %+v, monitored %+v", plain, mon)
	}
	m := mon[0]
	if m.Calls != 3 || len(m.SetupFailed) != 0 || len(m.Directions) != nSides || m.CPUSeconds <= 0 {
		t.Fatalf("monitored calls: %+v", m)
	}
	for i, d := range m.Directions {
		// Three calls × 0.9 s of window × 50 frames, give or take a frame at
		// each edge of the window.
		if d.Expected != 3*45 || d.LossPct > 5 || d.LossPct < -5 {
			t.Fatalf("%s: %+v", d.Direction, d)
		}
		// A mix is untouched only in a tick where one voice alone had a
		// frame: at the start, or after a late packet.
		if forwarded := i == callerSide; forwarded && d.Untouched != d.Received || !forwarded && d.Untouched*10 > d.Received {
			t.Fatalf("%s: %d of %d frames untouched", d.Direction, d.Untouched, d.Received)
		}
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
