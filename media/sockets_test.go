package media

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Pairs are reused least recently used first, bound or not; at most maxBound
// rest bound, and a pair that rests longer than restAtMost is closed.
func TestPairsReusedInOrderCappedAndExpired(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	s := testService(t, 36500, Config{Now: func() time.Time { return time.Unix(0, now.Load()) }, CheckEvery: time.Hour}) // 10 pairs
	w := s.NewWorker("c", nil)
	add := func(id string) int {
		t.Helper()
		l, err := w.AddLeg(id)
		if err != nil {
			t.Fatal(err)
		}
		return l.LocalPort()
	}
	bound := func(port int) bool {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: testIP.AsSlice(), Port: port})
		if err == nil {
			c.Close()
		}
		return err != nil
	}

	first := add("a")
	w.RemoveLeg("a")
	if !bound(first) || !bound(first+1) {
		t.Fatal("an ended leg's pair should rest bound")
	}
	seen := map[int]bool{}
	var bPort int
	for i := range 9 { // the nine pairs never used come first
		p := add(string(rune('b' + i)))
		if p == first || seen[p] {
			t.Fatalf("leg %d got port %d: the rested pair (%d) or a pair in use came before an unused one", i, p, first)
		}
		seen[p] = true
		if i == 0 {
			bPort = p
		}
	}
	if p := add("last"); p != first {
		t.Fatalf("with every other pair taken, the rested pair %d should be reused; got %d", first, p)
	}

	// Room for one pair at rest: the second pair freed is closed.
	s.mu.Lock()
	s.ports.maxBound = 1
	s.mu.Unlock()
	w.RemoveLeg("last")
	w.RemoveLeg("b")
	if !bound(first) || !bound(first+1) {
		t.Fatalf("the first pair freed (%d) should rest bound", first)
	}
	if bound(bPort) || bound(bPort+1) {
		t.Fatalf("over the cap of one pair at rest, the second pair freed (%d) should be closed", bPort)
	}
	for p := range seen {
		if p != bPort && !bound(p) {
			t.Fatalf("pair %d, still in use, is not bound", p)
		}
	}

	// After restAtMost at rest the pair is closed too.
	now.Add(int64(restAtMost + time.Second))
	s.Check()
	if bound(first) || bound(first+1) {
		t.Fatalf("pair %d still bound after resting %v", first, restAtMost)
	}
}

// A sender still holding an ended leg (a forwarder or a clock a moment late)
// sends nothing: the leg's socket may already carry another call.
func TestEndedLegSendsNothing(t *testing.T) {
	s := testService(t, 36540, Config{})
	w := s.NewWorker("c", nil)
	l, err := w.AddLeg("a")
	if err != nil {
		t.Fatal(err)
	}
	peer := newEndpoint(t)
	to := peer.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	pkt := func() bool {
		l.outMu.Lock()
		defer l.outMu.Unlock()
		return l.send([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff}, to)
	}
	if !pkt() {
		t.Fatal("a live leg should send")
	}
	waitFor(t, "the live leg's packet", func() bool { return peer.got.Load() == 1 })
	w.RemoveLeg("a")
	if pkt() {
		t.Fatal("an ended leg sent a packet")
	}
	time.Sleep(20 * time.Millisecond) // loopback delivers at once; this only lets the reader count
	if n := peer.got.Load(); n != 1 {
		t.Fatalf("peer got %d packets; the ended leg's must not arrive", n)
	}
}

// countWarnings counts the warnings logged.
type countWarnings struct{ n atomic.Int64 }

func (c *countWarnings) Enabled(context.Context, slog.Level) bool { return true }
func (c *countWarnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		c.n.Add(1)
	}
	return nil
}
func (c *countWarnings) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countWarnings) WithGroup(string) slog.Handler      { return c }

// A pair whose port another socket holds is skipped, with one warning, and
// left untried for busyRest (not tried and warned of at every pass of the
// pool, which under load is every few hundred legs); then it is tried again.
func TestBusyPairLeftUntriedForAWhile(t *testing.T) {
	const base = 36540 // two pairs: 36540 and 36542
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	warned := &countWarnings{}
	s, err := NewService(Config{IP: testIP, PortMin: base, PortMax: base + 3, CheckEvery: time.Hour,
		Now: func() time.Time { return time.Unix(0, now.Load()) }}, slog.New(warned))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	held, err := net.ListenUDP("udp", &net.UDPAddr{IP: testIP.AsSlice(), Port: base})
	if err != nil {
		t.Skipf("port %d not free for the test: %v", base, err)
	}
	defer func() { held.Close() }()
	w := s.NewWorker("c", nil)

	for i, tc := range []struct {
		after    time.Duration // on the clock, from the start
		release  bool          // the other socket lets the port go first
		port     int
		warnings int64 // so far
	}{
		{0, false, base + 2, 1},
		{time.Second, false, base + 2, 1},
		{busyRest - time.Second, false, base + 2, 1},
		{busyRest, false, base + 2, 2}, // tried again, still held
		{2*busyRest + time.Second, true, base, 2},
	} {
		now.Store(time.Unix(1000, 0).Add(tc.after).UnixNano())
		if tc.release {
			held.Close()
		}
		id := string(rune('a' + i))
		l, err := w.AddLeg(id)
		if err != nil {
			t.Fatalf("leg %d at %v: %v", i, tc.after, err)
		}
		if l.LocalPort() != tc.port || warned.n.Load() != tc.warnings {
			t.Fatalf("leg %d at %v: port %d after %d warnings; want %d after %d", i, tc.after, l.LocalPort(), warned.n.Load(), tc.port, tc.warnings)
		}
		w.RemoveLeg(id)
	}
}
