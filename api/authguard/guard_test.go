package authguard

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func ip(s string) netip.Addr         { return netip.MustParseAddr(s) }
func newGuard(c *clock, mod func(*Config)) *Guard {
	cfg := Defaults()
	cfg.Now = c.now
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg)
}

// step is one event of a scenario: wait, then fail (src, user) or check src.
type step struct {
	wait  time.Duration
	src   string
	user  string
	fails int // failures to record (0: only check)
	// what the last failure answers, and what Blocked answers after it
	block   time.Duration // 0: not blocked by it
	reason  Reason
	watched bool
	refused bool
}

func TestGuardRules(t *testing.T) {
	const a, b = "192.0.2.5", "192.0.2.1"
	tests := []struct {
		name  string
		steps []step
	}{
		{"nine failures in a window pass", []step{
			{src: a, fails: 9},
		}},
		{"the tenth blocks for the cooling period", []step{
			{src: a, fails: 9},
			{src: a, fails: 1, block: 10 * time.Minute, reason: BySource, refused: true},
			{src: b, refused: false}, // another source is not touched
		}},
		{"failures for different users add up", []step{
			{src: a, user: "u1", fails: 5},
			{src: a, user: "u2", fails: 4},
			{src: a, fails: 1, block: 10 * time.Minute, reason: BySource, refused: true},
		}},
		{"a window that ran out starts again", []step{
			{src: a, fails: 9},
			{wait: time.Minute, src: a, fails: 9},
		}},
		{"the block ends after the cooling period", []step{
			{src: a, fails: 10, block: 10 * time.Minute, reason: BySource, refused: true},
			{wait: 10*time.Minute - time.Second, src: a, refused: true},
			{wait: time.Second, src: a, refused: false},
			{src: a, fails: 9}, // counting starts afresh
		}},
		{"a repeat offender's block doubles up to the maximum", []step{
			{src: a, fails: 10, block: 10 * time.Minute, reason: BySource, refused: true},
			{wait: 10 * time.Minute, src: a, fails: 10, block: 20 * time.Minute, reason: BySource, refused: true},
			{wait: 20 * time.Minute, src: a, fails: 10, block: 40 * time.Minute, reason: BySource, refused: true},
			{wait: 40 * time.Minute, src: a, fails: 10, block: 80 * time.Minute, reason: BySource, refused: true},
			{wait: 80 * time.Minute, src: a, fails: 10, block: 160 * time.Minute, reason: BySource, refused: true},
			{wait: 160 * time.Minute, src: a, fails: 10, block: 4 * time.Hour, reason: BySource, refused: true},
			{wait: 4 * time.Hour, src: a, fails: 10, block: 4 * time.Hour, reason: BySource, refused: true},
		}},
		{"failures during a block count toward the next", []step{
			{src: a, fails: 10, block: 10 * time.Minute, reason: BySource, refused: true},
			{wait: 10*time.Minute - 30*time.Second, src: a, fails: 9, refused: true},
			// the block is over, but the window holds 9 failures already
			{wait: 30 * time.Second, src: a, fails: 1, block: 20 * time.Minute, reason: BySource, refused: true},
		}},
		{"quiet for the maximum block forgives", []step{
			{src: a, fails: 10, block: 10 * time.Minute, reason: BySource, refused: true},
			{wait: 10*time.Minute + 4*time.Hour, src: a, fails: 10, block: 10 * time.Minute, reason: BySource, refused: true},
		}},
		{"many sources failing for one user put it under watch", []step{
			{src: "198.51.100.1", user: "alice", fails: 9},
			{src: "198.51.100.2", user: "alice", fails: 9},
			{src: "198.51.100.3", user: "alice", fails: 1},
			// the 20th failure for alice: its source is blocked at once
			{src: "198.51.100.4", user: "alice", fails: 1, block: 10 * time.Minute, reason: ByUser, watched: true, refused: true},
			// a new source fails once for alice: blocked
			{src: "198.51.100.5", user: "alice", fails: 1, block: 10 * time.Minute, reason: ByUser, refused: true},
			// the real alice, who does not fail, is not refused anywhere
			{src: b, user: "alice", refused: false},
			{src: "198.51.100.1", refused: false},
			// failing for another user is counted as usual
			{src: "198.51.100.6", user: "bob", fails: 1},
			// the watch ends with the cooling period
			{wait: 10 * time.Minute, src: "198.51.100.7", user: "alice", fails: 1},
		}},
		{"an unknown name is not watched", []step{
			{src: "198.51.100.1", fails: 9},
			{src: "198.51.100.2", fails: 9},
			{src: "198.51.100.3", fails: 9},
		}},
		{"an IPv6 source is counted as its /64", []step{
			{src: "2001:db8::1", fails: 5},
			{src: "2001:db8::ffff:2", fails: 5, block: 10 * time.Minute, reason: BySource, refused: true},
			{src: "2001:db8::77", refused: true},
			{src: "2001:db8:0:1::1", refused: false},
		}},
		{"an IPv4-mapped address is its IPv4 address", []step{
			{src: "::ffff:192.0.2.5", fails: 10, block: 10 * time.Minute, reason: BySource, refused: true},
			{src: a, refused: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)}
			g := newGuard(c, nil)
			for i, s := range tt.steps {
				c.add(s.wait)
				var o Outcome
				for range s.fails {
					if o.Blocked {
						t.Fatalf("step %d: blocked before its last failure", i)
					}
					o = g.Fail(ip(s.src), s.user)
				}
				if o.Blocked != (s.block > 0) || o.For != s.block || o.Reason != s.reason || o.Watched != s.watched {
					t.Fatalf("step %d: %+v, want block %v reason %q watched %v", i, o, s.block, s.reason, s.watched)
				}
				wait, refused := g.Blocked(ip(s.src))
				if refused != s.refused {
					t.Fatalf("step %d: %s refused %v, want %v", i, s.src, refused, s.refused)
				}
				if s.block > 0 && wait != s.block {
					t.Fatalf("step %d: retry after %v, want %v", i, wait, s.block)
				}
			}
		})
	}
}

func TestGuardOffAndNil(t *testing.T) {
	cfg := Defaults()
	cfg.SourceLimit = 0
	g := New(cfg)
	if g != nil {
		t.Fatal("SourceLimit 0 should turn the guard off")
	}
	for range 100 {
		if o := g.Fail(ip("192.0.2.5"), "alice"); o.Blocked {
			t.Fatal("a nil guard blocked")
		}
	}
	if _, refused := g.Blocked(ip("192.0.2.5")); refused || g.Count() != 0 {
		t.Fatal("a nil guard refuses")
	}
}

func TestGuardUserLimitOff(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	g := newGuard(c, func(cfg *Config) { cfg.UserLimit = 0 })
	for i := range 100 {
		if o := g.Fail(ip(fmt.Sprintf("198.51.100.%d", i)), "alice"); o.Blocked || o.Watched {
			t.Fatalf("failure %d: %+v with UserLimit 0", i, o)
		}
	}
}

// A spray from more sources and names than the tables hold keeps them at
// their bound, and the blocked count stays true when blocked sources are
// forgotten to make room.
func TestGuardBounded(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	g := newGuard(c, func(cfg *Config) { cfg.MaxSources, cfg.MaxUsers, cfg.SourceLimit = 8, 4, 2 })
	for i := range 1000 {
		src := ip(fmt.Sprintf("10.%d.%d.1", i/256, i%256))
		g.Fail(src, fmt.Sprintf("user%d", i))
		if i%3 == 0 {
			if o := g.Fail(src, ""); !o.Blocked {
				t.Fatalf("source %d: second failure did not block", i)
			}
		}
		if len(g.sources.m) > 8 || len(g.users.m) > 4 {
			t.Fatalf("after %d sources: %d sources, %d users held", i+1, len(g.sources.m), len(g.users.m))
		}
		if got, want := int(g.blocked.Load()), g.Count(); got != want {
			t.Fatalf("after %d sources: blocked mark count %d, blocked now %d", i+1, got, want)
		}
	}
	// The most recent blocked source is remembered.
	if _, refused := g.Blocked(ip("10.3.231.1")); !refused {
		t.Fatal("the latest blocked source was forgotten")
	}
}

// Entries with nothing left to remember are swept; a block's mark goes
// when it ends, so Blocked's fast path is taken again.
func TestGuardSweep(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	g := newGuard(c, nil)
	for i := range 10 {
		g.Fail(ip("192.0.2.5"), "")
		g.Fail(ip(fmt.Sprintf("198.51.100.%d", i)), "alice")
	}
	if g.blocked.Load() != 1 || g.Count() != 1 {
		t.Fatalf("blocked %d, count %d, want 1", g.blocked.Load(), g.Count())
	}
	c.add(10 * time.Minute)
	g.Fail(ip("203.0.113.1"), "") // any failure sweeps when one is due
	if g.blocked.Load() != 0 || g.Count() != 0 {
		t.Fatalf("after the block: marks %d, count %d", g.blocked.Load(), g.Count())
	}
	if _, ok := g.users.m["alice"]; ok {
		t.Fatal("alice's old failures are still held")
	}
	if _, ok := g.sources.m[key(ip("192.0.2.5"))]; !ok {
		t.Fatal("the blocked source was forgotten before its repeat could double")
	}
	c.add(4 * time.Hour)
	g.Fail(ip("203.0.113.2"), "")
	if len(g.sources.m) != 1 || len(g.users.m) != 0 {
		t.Fatalf("after the memory ran out: %d sources, %d users held", len(g.sources.m), len(g.users.m))
	}
}

// When the last block ends, Blocked itself clears the marks: with no
// further failure (so no sweep), the lock-free path is taken again.
func TestGuardBlockEndsWithoutFailures(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	g := newGuard(c, nil)
	block := func(src string) {
		for range 10 {
			g.Fail(ip(src), "")
		}
	}
	block("192.0.2.5") // until 10 min
	c.add(5 * time.Minute)
	block("192.0.2.6") // until 15 min
	for _, s := range []struct {
		at      time.Duration // since the start
		blocked []bool        // of 192.0.2.5, .6 and an address never blocked
		marks   int64
	}{
		{at: 5 * time.Minute, blocked: []bool{true, true, false}, marks: 2},
		{at: 10 * time.Minute, blocked: []bool{false, true, false}, marks: 2},
		{at: 15*time.Minute - 1, blocked: []bool{false, true, false}, marks: 2},
		{at: 15 * time.Minute, blocked: []bool{false, false, false}, marks: 0},
		{at: time.Hour, blocked: []bool{false, false, false}, marks: 0},
	} {
		c.t = time.Unix(0, 0).Add(s.at)
		for i, src := range []string{"192.0.2.5", "192.0.2.6", "198.51.100.1"} {
			if _, got := g.Blocked(ip(src)); got != s.blocked[i] {
				t.Fatalf("at %v: %s blocked %v, want %v", s.at, src, got, s.blocked[i])
			}
		}
		if got := g.blocked.Load(); got != s.marks {
			t.Fatalf("at %v: %d blocks marked, want %d", s.at, got, s.marks)
		}
	}
	block("192.0.2.5") // a repeat within MaxBlock: 20 min
	c.add(20*time.Minute - 1)
	if _, ok := g.Blocked(ip("192.0.2.5")); !ok || g.blocked.Load() != 1 {
		t.Fatalf("a new block after the marks were cleared: blocked %v, %d marked", ok, g.blocked.Load())
	}
	c.add(1)
	if _, ok := g.Blocked(ip("192.0.2.5")); ok || g.blocked.Load() != 0 {
		t.Fatalf("after the repeat: blocked %v, %d marked", ok, g.blocked.Load())
	}
}

// Checks and failures from many goroutines (run with -race).
func TestGuardConcurrent(t *testing.T) {
	g := New(Defaults())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				src := ip(fmt.Sprintf("10.0.%d.%d", w, i%50))
				g.Blocked(src)
				g.Fail(src, fmt.Sprintf("u%d", i%7))
				g.Count()
			}
		}()
	}
	wg.Wait()
	if got := g.Count(); got != 8*50 {
		t.Fatalf("%d sources blocked, want %d", got, 8*50)
	}
}

func BenchmarkBlockedNone(b *testing.B) {
	g := New(Defaults())
	src := ip("192.0.2.1")
	for b.Loop() {
		g.Blocked(src)
	}
}

// BenchmarkBlockedEnded: every block is over and no failure came since.
func BenchmarkBlockedEnded(b *testing.B) {
	c := &clock{t: time.Unix(0, 0)}
	g := newGuard(c, nil)
	for range 10 {
		g.Fail(ip("192.0.2.5"), "")
	}
	c.add(time.Hour)
	src := ip("192.0.2.1")
	for b.Loop() {
		g.Blocked(src)
	}
}

func BenchmarkBlockedSome(b *testing.B) {
	g := New(Defaults())
	for range 10 {
		g.Fail(ip("192.0.2.5"), "")
	}
	src := ip("192.0.2.1")
	b.ResetTimer()
	for b.Loop() {
		g.Blocked(src)
	}
}
