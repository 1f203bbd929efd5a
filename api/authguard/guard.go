// Package authguard limits password and token guessing, as Kamailio's pike
// and fail2ban do for an operator: failed logins are counted per source
// address and per user, and a source that fails too often is refused for
// a cooling period that doubles when it comes back for more.
//
// Per source: SourceLimit failures within Window block the source for
// Block. A block that starts within MaxBlock of the end of the last one
// lasts twice as long as that one, up to MaxBlock. Failures during a
// block count toward the next one. An IPv6 source is counted as its /64:
// one subscriber's network, in which an attacker has addresses to spare.
//
// Per user: blocking a user would let anyone lock a victim out by failing
// on purpose, so the user is never blocked. Instead UserLimit failures for
// one user, from any sources, within Window put the user under watch for
// Block: while watched, a source that fails for that user is blocked at
// its first failure. A botnet spreading its guesses below SourceLimit per
// address gets one guess per address per block, and the real user, who
// does not fail, registers from wherever they are.
//
// A success clears nothing: an insider could otherwise interleave their
// own logins with guesses at a colleague's password. Real phones do not
// fail (a challenge is not a failure), so a phone that fails has a wrong
// password and keeps failing until someone fixes it.
//
// Memory is bounded: each table holds at most MaxSources or MaxUsers
// entries and forgets the least recently failing one to make room, and
// entries with nothing left to remember are swept once per Window. Users
// are counted by the directory's id only, so invented names cost nothing.
package authguard

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config of a Guard. Zero fields other than SourceLimit take Defaults.
type Config struct {
	// SourceLimit failures from one source within Window block it; 0
	// turns the guard off.
	SourceLimit int
	// UserLimit failures for one user within Window put the user under
	// watch; 0 leaves users unwatched.
	UserLimit int
	Window    time.Duration
	// Block is a source's first block, and how long a user stays watched.
	Block    time.Duration
	MaxBlock time.Duration
	// MaxSources and MaxUsers bound the tables.
	MaxSources, MaxUsers int
	Now                  func() time.Time
}

// Defaults suit a business PBX: a phone with a wrong password backs off
// and retries far less than 10 times a minute, while a guessing tool makes
// thousands of guesses a second.
func Defaults() Config {
	return Config{
		SourceLimit: 10, UserLimit: 20, Window: time.Minute,
		Block: 10 * time.Minute, MaxBlock: 4 * time.Hour,
		MaxSources: 1 << 16, MaxUsers: 1 << 14, Now: time.Now,
	}
}

// Reason says which rule blocked a source.
type Reason string

const (
	BySource Reason = "source" // the source failed SourceLimit times
	ByUser   Reason = "user"   // the source failed for a watched user
)

// Outcome of a failure.
type Outcome struct {
	// Blocked: this failure blocked Source for For.
	Blocked bool
	Source  netip.Prefix
	For     time.Duration
	Reason  Reason
	// Watched: this failure put the user under watch.
	Watched bool
}

// Guard counts failures and blocks sources. It is safe for concurrent use;
// a nil *Guard blocks nothing.
type Guard struct {
	cfg Config
	// blocked counts sources marked blocked: Blocked skips the lock while
	// it is 0, the usual case. lastEnd is when the latest block marked
	// ends, as time since epoch (monotonic, so a step of the wall clock
	// ends no block early): once it is past, no block holds, and the
	// first Blocked after it clears the marks, so the lock is skipped
	// again without waiting for a failure to sweep.
	blocked atomic.Int64
	lastEnd atomic.Int64
	epoch   time.Time

	mu      sync.RWMutex
	sources *table[netip.Prefix]
	users   *table[string]
	sweepAt time.Time
}

// New returns a guard, or nil when cfg.SourceLimit is 0.
func New(cfg Config) *Guard {
	if cfg.SourceLimit <= 0 {
		return nil
	}
	d := Defaults()
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&cfg.Window, d.Window)
	fill(&cfg.Block, d.Block)
	fill(&cfg.MaxBlock, d.MaxBlock)
	cfg.MaxBlock = max(cfg.MaxBlock, cfg.Block)
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = d.MaxSources
	}
	if cfg.MaxUsers <= 0 {
		cfg.MaxUsers = d.MaxUsers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg, sources: newTable[netip.Prefix](cfg.MaxSources), users: newTable[string](cfg.MaxUsers)}
	g.epoch = cfg.Now()
	g.sweepAt = g.epoch.Add(cfg.Window)
	return g
}

// key is what src is counted as: itself, or for IPv6 its /64.
func key(src netip.Addr) netip.Prefix {
	src = src.Unmap()
	if src.Is6() {
		p, _ := src.Prefix(64)
		return p
	}
	return netip.PrefixFrom(src, src.BitLen())
}

// Blocked says whether src is refused now, and for how much longer. It is
// meant to be asked before any credentials are checked: with no block
// anywhere it costs an atomic load.
func (g *Guard) Blocked(src netip.Addr) (time.Duration, bool) {
	if g == nil || g.blocked.Load() == 0 || !src.IsValid() {
		return 0, false
	}
	now := g.cfg.Now()
	if int64(now.Sub(g.epoch)) >= g.lastEnd.Load() {
		// Every block is over. Clearing the marks is up to whoever gets
		// the lock first; the answer does not wait for it.
		if g.mu.TryLock() {
			g.unmark(now)
			g.mu.Unlock()
		}
		return 0, false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	e := g.sources.m[key(src)]
	if e == nil || !now.Before(e.until) {
		return 0, false
	}
	return e.until.Sub(now), true
}

// Fail records a failed login from src. user is the directory's id of the
// account tried, empty when the name matched nobody (or a token names
// nobody). An invalid src is not counted.
func (g *Guard) Fail(src netip.Addr, user string) Outcome {
	if g == nil || !src.IsValid() {
		return Outcome{}
	}
	now := g.cfg.Now()
	k := key(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweep(now)
	s := g.touchSource(k)
	s.count(now, g.cfg.Window)
	if now.Before(s.until) {
		// Already blocked (a REST token is checked before the block
		// answers; a SIP request raced the check). Counted all the same:
		// a source still failing as its block ends is blocked again, for
		// twice as long, as soon as its window holds SourceLimit failures.
		return Outcome{}
	}
	o := Outcome{Source: k}
	if user != "" && g.cfg.UserLimit > 0 {
		u, _ := g.users.touch(user)
		u.count(now, g.cfg.Window)
		if !now.Before(u.until) && u.fails >= g.cfg.UserLimit {
			u.until, u.fails, o.Watched = now.Add(g.cfg.Block), 0, true
		}
		if now.Before(u.until) {
			o.Reason = ByUser
		}
	}
	if o.Reason == "" && s.fails >= g.cfg.SourceLimit {
		o.Reason = BySource
	}
	if o.Reason != "" {
		o.Blocked, o.For = true, g.block(s, now)
	}
	return o
}

// touchSource finds or adds a source, keeping the blocked count right when
// a blocked one is forgotten to make room.
func (g *Guard) touchSource(k netip.Prefix) *entry[netip.Prefix] {
	e, evicted := g.sources.touch(k)
	if evicted != nil && evicted.blocked {
		g.blocked.Add(-1)
	}
	return e
}

// block blocks s from now and returns for how long.
func (g *Guard) block(s *entry[netip.Prefix], now time.Time) time.Duration {
	d := g.cfg.Block
	if !s.until.IsZero() && now.Sub(s.until) < g.cfg.MaxBlock {
		d = min(2*s.last, g.cfg.MaxBlock)
	}
	s.until, s.last, s.fails = now.Add(d), d, 0
	if end := int64(s.until.Sub(g.epoch)); end > g.lastEnd.Load() {
		g.lastEnd.Store(end) // before the mark: Blocked reads them in the other order
	}
	if !s.blocked {
		s.blocked = true
		g.blocked.Add(1)
	}
	return d
}

// sweep, once per Window, clears expired block marks and forgets entries
// with nothing left to remember.
func (g *Guard) sweep(now time.Time) {
	if now.Before(g.sweepAt) {
		return
	}
	g.sweepAt = now.Add(g.cfg.Window)
	g.unmark(now)
	for _, e := range g.sources.m {
		if e.idle(now, g.cfg.Window, g.cfg.MaxBlock) {
			g.sources.remove(e)
		}
	}
	for _, e := range g.users.m {
		if e.idle(now, g.cfg.Window, 0) {
			g.users.remove(e)
		}
	}
}

// unmark clears the marks of blocks that are over. It holds g.mu.
func (g *Guard) unmark(now time.Time) {
	if g.blocked.Load() == 0 {
		return
	}
	for _, e := range g.sources.m {
		if e.blocked && !now.Before(e.until) {
			e.blocked = false
			g.blocked.Add(-1)
		}
	}
}

// Count is how many sources are blocked now (for /metrics).
func (g *Guard) Count() int {
	if g == nil {
		return 0
	}
	now := g.cfg.Now()
	g.mu.RLock()
	defer g.mu.RUnlock()
	n := 0
	for _, e := range g.sources.m {
		if now.Before(e.until) {
			n++
		}
	}
	return n
}
