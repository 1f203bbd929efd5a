package authguard

import "time"

// entry is what a table remembers of one source or user.
type entry[K comparable] struct {
	key   K
	fails int       // failures in the window
	since time.Time // start of the window
	until time.Time // blocked (a source) or watched (a user) until
	last  time.Duration
	// blocked: counted in Guard.blocked, until a sweep or Blocked sees it
	// expire.
	blocked    bool
	prev, next *entry[K] // least recently failing last
}

// count adds a failure at now, opening a new window when the last one is
// over.
func (e *entry[K]) count(now time.Time, window time.Duration) {
	if now.Sub(e.since) >= window {
		e.fails, e.since = 0, now
	}
	e.fails++
}

// idle: the window is over, the block or watch too, and for a source the
// last block ended more than memory ago (so a new one would not double).
func (e *entry[K]) idle(now time.Time, window, memory time.Duration) bool {
	return now.Sub(e.since) >= window && !now.Before(e.until) && (e.until.IsZero() || now.Sub(e.until) >= memory)
}

// table is a map with a bound: past max entries, the least recently
// touched one makes room.
type table[K comparable] struct {
	m    map[K]*entry[K]
	ring entry[K] // ring.next is the most recent, ring.prev the least
	max  int
}

func newTable[K comparable](max int) *table[K] {
	t := &table[K]{m: map[K]*entry[K]{}, max: max}
	t.ring.next, t.ring.prev = &t.ring, &t.ring
	return t
}

// touch finds or adds k and makes it the most recent; evicted is the entry
// forgotten to make room, if any.
func (t *table[K]) touch(k K) (e, evicted *entry[K]) {
	if e = t.m[k]; e != nil {
		t.unlink(e)
	} else {
		if len(t.m) >= t.max {
			evicted = t.ring.prev
			t.remove(evicted)
		}
		e = &entry[K]{key: k}
		t.m[k] = e
	}
	e.prev, e.next = &t.ring, t.ring.next
	e.next.prev, t.ring.next = e, e
	return e, evicted
}

func (t *table[K]) remove(e *entry[K]) {
	t.unlink(e)
	delete(t.m, e.key)
}

func (t *table[K]) unlink(e *entry[K]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}
