package sipedge

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// The edge hands its TCP guards to the transaction layer: with one
// connection per source, a second from the same address is reset at
// accept, and the first, silent, is closed after FirstMessageTimeout
// (100 ms here) rather than the layer's default of 10 s.
func TestEdgeTCPGuards(t *testing.T) {
	e := New(Config{NodeID: "n1", Domain: "example.com", Host: "127.0.0.1",
		ConnsPerSource: 1, FirstMessageTimeout: 100 * time.Millisecond})
	addr, err := e.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Serve(ctx) }()
	defer e.Close()

	// ended is how each connection ends: "reset", "closed" or "open".
	ended := make(chan string, 2)
	for range 2 {
		c, err := net.Dial("tcp4", addr.String())
		if errors.Is(err, syscall.ECONNRESET) {
			ended <- "reset" // the reset may come before the dial returns
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			switch {
			case err == nil:
				ended <- "closed"
			case errors.Is(err, syscall.ECONNRESET):
				ended <- "reset"
			case errors.As(err, &ne) && ne.Timeout():
				ended <- "open"
			default:
				ended <- err.Error()
			}
		}()
	}
	got := map[string]int{}
	for range 2 {
		got[<-ended]++
	}
	if got["reset"] != 1 || got["closed"] != 1 {
		t.Fatalf("connections ended %v, want one reset (over the cap) and one closed (silent)", got)
	}
}
