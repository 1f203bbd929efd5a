package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestMarkRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
		kind    byte
		id      uint32
		ok      bool
	}{
		{"caller", func() []byte { b := make([]byte, 160); mark(b, kindCaller, 7); return b }(), kindCaller, 7, true},
		{"member, large id", func() []byte { b := make([]byte, 160); mark(b, kindMember, 1<<31+5); return b }(), kindMember, 1<<31 + 5, true},
		{"music", []byte(strings.Repeat("\x12\x34", 80)), 0, 0, false},
		{"silence", []byte(strings.Repeat("\xff", 160)), 0, 0, false},
		{"unknown kind", []byte("SQX\x00\x00\x00\x01"), 0, 0, false},
		{"short", []byte("SQC\x00"), 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, id, ok := parseMark(tc.payload)
			if kind != tc.kind || id != tc.id || ok != tc.ok {
				t.Fatalf("parseMark = %q %d %v, want %q %d %v", kind, id, ok, tc.kind, tc.id, tc.ok)
			}
		})
	}
}

func TestMemberOverlaps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	iv := func(from, to int) interval { return interval{from: at(from), to: at(to)} }
	for _, tc := range []struct {
		name                     string
		rings, serves            []interval
		twoOffers, during, twice overlap
	}{
		{name: "one offer answered, then the next after the call", rings: []interval{iv(0, 500), iv(4600, 4700)}, serves: []interval{iv(500, 4500), iv(4700, 9000)}},
		{name: "back to back: one ends as the other starts", rings: []interval{iv(0, 100), iv(100, 200)}, serves: []interval{iv(200, 300)}},
		{name: "a second INVITE while the first rings", rings: []interval{iv(0, 1000), iv(400, 1500)}, twoOffers: overlap{1, 600}},
		{name: "an INVITE crossing the CANCEL of the last by 3 ms", rings: []interval{iv(0, 1003), iv(1000, 1200)}, twoOffers: overlap{1, 3}},
		{name: "three at once", rings: []interval{iv(0, 100), iv(10, 100), iv(20, 100)}, twoOffers: overlap{3, 90}},
		{name: "an INVITE during a call", rings: []interval{iv(0, 10), iv(2000, 2100)}, serves: []interval{iv(10, 3000)}, during: overlap{1, 100}},
		{name: "two calls answered at once", rings: []interval{iv(0, 5), iv(1, 6)}, serves: []interval{iv(5, 500), iv(6, 800)},
			twoOffers: overlap{1, 4}, during: overlap{1, 1}, twice: overlap{1, 494}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			two, during, twice := memberOverlaps(tc.rings, tc.serves)
			if two != tc.twoOffers || during != tc.during || twice != tc.twice {
				t.Fatalf("overlaps = %+v %+v %+v, want %+v %+v %+v", two, during, twice, tc.twoOffers, tc.during, tc.twice)
			}
		})
	}
}

func TestDisagreements(t *testing.T) {
	callers := queueResult{Answered: 10, Abandoned: 2, OverflowedFull: 3, OverflowedWait: 1, WaitMeanS: 4.6, ServiceLevelPercent: 75}
	agree := queueStats{Completed: 10, Abandoned: 2, Overflowed: 4, AverageWaitSeconds: 4, ServiceLevelPercent: 83.3}
	for _, tc := range []struct {
		name string
		mod  func(*queueStats)
		want string // a part of the one disagreement, "" for none
	}{
		{"agree (wait within 1 s, service level within one call)", func(*queueStats) {}, ""},
		{"a caller still waiting", func(s *queueStats) { s.Waiting = 1 }, "waiting: stats 1, callers 0"},
		{"completed", func(s *queueStats) { s.Completed = 9 }, "completed: stats 9, callers 10"},
		{"abandoned", func(s *queueStats) { s.Abandoned = 3 }, "abandoned"},
		{"overflowed", func(s *queueStats) { s.Overflowed = 3 }, "overflowed: stats 3, callers 4"},
		{"average wait", func(s *queueStats) { s.AverageWaitSeconds = 6 }, "average wait"},
		{"service level off by two calls", func(s *queueStats) { s.ServiceLevelPercent = 91.7 }, "service level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := agree
			tc.mod(&st)
			got := disagreements(callers, st)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Fatalf("disagreements = %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("disagreements = %q, want one naming %q", got, tc.want)
			}
		})
	}
}

// crossRelay is a relay of two ports that forwards what arrives at one to
// the phone side behind the other (as a bridged call does), each leaving
// from the port facing its listener; an extra port sends from nowhere the
// media knows.
func crossRelay(t *testing.T, m *queueMedia) (facingCaller, facingMember netip.AddrPort, stray *net.UDPConn) {
	t.Helper()
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	toCaller, toMember := listen(), listen()
	forward := func(from, out *net.UDPConn, to netip.AddrPort) {
		buf := make([]byte, 1500)
		for {
			n, err := from.Read(buf)
			if err != nil {
				return
			}
			_, _ = out.WriteToUDPAddrPort(buf[:n], to)
		}
	}
	go forward(toMember, toCaller, m.addr(qCallers))
	go forward(toCaller, toMember, m.addr(qMembers))
	return toCaller.LocalAddr().(*net.UDPAddr).AddrPort(), toMember.LocalAddr().(*net.UDPAddr).AddrPort(), listen()
}

// Through a relay that bridges them, the caller hears the member and the
// member the caller, each credited to its leg by the relay's port; the
// member probes until heard, then sends every 20 ms; a packet from a port
// of no leg is stray.
func TestQueueMediaCreditsWhoHeardWhom(t *testing.T) {
	m, err := newQueueMedia()
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	facingCaller, facingMember, stray := crossRelay(t, m)
	// As a phone reads the relay's address from SDP: IPv4-mapped.
	facingCaller = netip.AddrPortFrom(netip.AddrFrom16(facingCaller.Addr().As16()), facingCaller.Port())
	caller := m.add(qCallers, facingCaller, 42, 0)
	member := m.add(qMembers, facingMember, 3, 2*time.Second)
	for _, l := range []*qLeg{caller, member} {
		select {
		case <-l.first:
		case <-time.After(2 * time.Second):
			t.Fatalf("leg %q %d heard nobody", l.kind, l.id)
		}
	}
	if h := m.heard(caller); len(h) != 1 || h[3].IsZero() {
		t.Fatalf("the caller heard %v, want member 3", h)
	}
	if h := m.heard(member); len(h) != 1 || h[42].IsZero() {
		t.Fatalf("the member heard %v, want caller 42", h)
	}
	m.mu.Lock()
	probing := m.probe[3] != nil
	m.mu.Unlock()
	if probing {
		t.Fatal("the member still probes once the caller heard them")
	}
	if _, err := stray.WriteToUDPAddrPort([]byte("not from a relay port"), m.addr(qCallers)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	m.mu.Lock()
	frames, strays := caller.frames, m.stray[qCallers]
	m.mu.Unlock()
	// Probing sends every 2 ms, then every 20 ms: some 15 frames in 300 ms
	// at the usual pace, far more while probing.
	if frames < 10 || frames > 60 {
		t.Fatalf("the caller heard %d frames in some 0.3 s", frames)
	}
	if strays != 1 {
		t.Fatalf("stray packets %d, want 1", strays)
	}
	m.remove(qCallers, caller)
	m.remove(qMembers, member)
	if h := m.heard(caller); len(h) != 1 {
		t.Fatalf("what the caller heard is lost on removal: %v", h)
	}
}

// TestQueueSmoke runs the scenario briefly on a node of its own: callers at
// 2/s into three members, then a burst of five callers into five members
// who answer at once. Every caller is answered by one member, and the
// queue's stats agree with the callers. Members ring one at a time, so no
// offer is withdrawn while its phone answers: sipphone's Answer and a
// CANCEL's arrival write the call's media unsynchronised (a data race for
// -race, not a fault of the node).
func TestQueueSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a node")
	}
	n, err := startNode(t.TempDir(), nodeSpec{name: "switchboard", token: "smoke-token", rtpPorts: "40000-49999"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	if err := n.provision(); err != nil {
		t.Fatal(err)
	}
	rs, err := queueRuns(context.Background(), n, queueOptions{rates: []float64{2}, step: 2 * time.Second, members: 3,
		distribution: "sequential", talk: time.Second, answerMax: 300 * time.Millisecond, patience: 15 * time.Second,
		maxWait: 300, maxCalls: 20, raceMembers: 5, raceRounds: 1})
	if len(rs) != 2 {
		t.Fatalf("runs %d, want a rate and a race: %v", len(rs), err)
	}
	for _, r := range rs {
		if r.Callers == 0 || r.Answered != r.Callers || r.Checks.CallerHeardTwo != 0 || r.Checks.HeardByTwo != 0 || r.Checks.Crossed != 0 {
			t.Errorf("%s: %d callers, %d answered, checks %+v", r.Queue, r.Callers, r.Answered, r.Checks)
		}
		if len(r.Disagreements) != 0 || r.Stats.Completed != r.Callers {
			t.Errorf("%s: stats %+v disagree with the callers: %v", r.Queue, r.Stats, r.Disagreements)
		}
		if r.WaitP50s <= 0 || r.BridgeP50ms <= 0 || r.CPUSeconds <= 0 {
			t.Errorf("%s: wait %.2f s, bridge %.1f ms, node CPU %.2f s: not measured", r.Queue, r.WaitP50s, r.BridgeP50ms, r.CPUSeconds)
		}
	}
}
