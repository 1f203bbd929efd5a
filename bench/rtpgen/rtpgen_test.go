package rtpgen

import (
	"context"
	"testing"
	"time"
)

// loopback runs n calls whose two sides send straight to each other.
func loopback(t testing.TB, n int, d time.Duration) Result {
	a, err := Listen("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	calls := make([]Call, n)
	for i := range calls {
		calls[i] = Call{A: b.Addr(), B: a.Addr()}
	}
	r, err := New(a, b, calls).Run(context.Background(), d, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLoopbackDeliversEveryPacketInBatches(t *testing.T) {
	r := loopback(t, 200, 500*time.Millisecond)
	// 200 calls × 2 directions × 25 frames, give or take a tick.
	if r.Sent < 2*200*20 || r.Sent > 2*200*27 {
		t.Fatalf("sent %d packets, want about %d", r.Sent, 2*200*25)
	}
	if r.Received != r.Sent {
		t.Fatalf("received %d of %d on loopback", r.Received, r.Sent)
	}
	if r.SendCalls*50 > r.Sent {
		t.Fatalf("%d sendmmsg calls for %d packets: not batching", r.SendCalls, r.Sent)
	}
	if r.LatencyP50 <= 0 || r.LatencyP99 < r.LatencyP50 {
		t.Fatalf("latency p50 %.3f p99 %.3f ms", r.LatencyP50, r.LatencyP99)
	}
	if r.LossPct != 0 {
		t.Fatalf("loss %.3f%%", r.LossPct)
	}
}

func TestForeignPacketsAreIgnored(t *testing.T) {
	a, _ := Listen("127.0.0.1")
	defer a.Close()
	b, _ := Listen("127.0.0.1")
	defer b.Close()
	// One call; a stranger also writes junk to side B.
	g := New(a, b, []Call{{A: b.Addr(), B: a.Addr()}})
	stranger, _ := Listen("127.0.0.1")
	defer stranger.Close()
	go func() {
		for range 20 {
			_, _ = stranger.conn.WriteToUDPAddrPort([]byte("not rtp at all, but long enough to parse"), b.Addr())
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r, err := g.Run(context.Background(), 200*time.Millisecond, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != r.Sent {
		t.Fatalf("received %d, sent %d", r.Received, r.Sent)
	}
}

// BenchmarkLoopback: what the generator alone sustains (packets/s in the
// report), to compare with what it offers a relay.
func BenchmarkLoopback(b *testing.B) {
	for b.Loop() {
		r := loopback(b, 2000, time.Second)
		b.ReportMetric(float64(r.Received), "pkts/s")
		b.ReportMetric(r.LossPct, "loss%")
	}
}
