package media

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Which pair a new leg gets: a fresh one while an ended leg's pair rests, the
// rested pair once reuseAfter has passed, and a resting pair rather than
// nothing when no port is left. Pairs beyond the rest cap are closed.
func TestPairsRestThenAreReused(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	s := testService(t, 36300, Config{Now: func() time.Time { return time.Unix(0, now.Load()) }}) // 10 pairs
	w := s.NewWorker("c", nil)
	port := func(id string) int {
		t.Helper()
		l, err := w.AddLeg(id)
		if err != nil {
			t.Fatal(err)
		}
		return l.LocalPort()
	}

	first := port("a")
	w.RemoveLeg("a")
	if p := port("b"); p == first {
		t.Fatal("a pair that has just been freed was reused while fresh ones remain")
	}
	now.Add(int64(reuseAfter))
	if p := port("c"); p != first {
		t.Fatalf("after resting, the pair of port %d should be reused; got %d", first, p)
	}

	// Every other pair taken: the next leg waits for none to rest.
	w.RemoveLeg("b")
	for i := range 8 {
		port(string(rune('d' + i)))
	}
	if _, err := w.AddLeg("last"); err != nil {
		t.Fatalf("a resting pair should be taken when no port is free: %v", err)
	}

	// With room for one pair at rest, a second one freed is closed.
	s.mu.Lock()
	s.ports.maxIdle = 1
	s.mu.Unlock()
	w.RemoveLeg("c")
	w.RemoveLeg("d")
	bindable := 0
	for _, p := range []int{first, first + 1} {
		if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: testIP.AsSlice(), Port: p}); err == nil {
			c.Close()
			bindable++
		}
	}
	if bindable != 0 {
		t.Fatalf("the first pair freed should rest bound; %d of its ports were free", bindable)
	}
	s.mu.Lock()
	resting := s.ports.idle.len()
	s.mu.Unlock()
	if resting != 1 {
		t.Fatalf("%d pairs at rest, cap 1", resting)
	}
}
