package rtpengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// fakeNG is a scripted ng server: handle gets each request (with how many
// times that cookie was seen) and returns the datagrams to send back.
type fakeNG struct {
	conn *net.UDPConn
	addr netip.AddrPort
}

func newFakeNG(t *testing.T, handle func(cookie string, req map[string]any, seen int) [][]byte) *fakeNG {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f := &fakeNG{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	go func() {
		seen := map[string]int{}
		buf := make([]byte, 65536)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			cookie, body, ok := cut(buf[:n])
			if !ok {
				continue
			}
			v, err := Decode(body)
			req, _ := v.(map[string]any)
			if err != nil || req == nil {
				continue
			}
			seen[cookie]++
			for _, out := range handle(cookie, req, seen[cookie]) {
				conn.WriteToUDPAddrPort(out, from)
			}
		}
	}()
	return f
}

func reply(cookie string, dict map[string]any) []byte {
	b, err := Encode(dict)
	if err != nil {
		panic(err)
	}
	return append([]byte(cookie+" "), b...)
}

func dialFake(t *testing.T, f *fakeNG) *Client {
	t.Helper()
	c, err := Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Timeout = 50 * time.Millisecond
	return c
}

func TestClientRequests(t *testing.T) {
	f := newFakeNG(t, func(cookie string, req map[string]any, seen int) [][]byte {
		switch req["command"] {
		case "ping":
			// A stray reply for another cookie must not be taken as ours.
			return [][]byte{reply("other", map[string]any{"result": "error"}),
				reply(cookie, map[string]any{"result": "pong"})}
		case "offer":
			if req["call-id"] != "c1" || req["from-tag"] != "a" || req["ICE"] != "remove" {
				return [][]byte{reply(cookie, map[string]any{"result": "error", "error-reason": "bad request"})}
			}
			return [][]byte{reply(cookie, map[string]any{"result": "ok", "sdp": "offer-out"})}
		case "answer":
			if req["to-tag"] != "b" {
				return [][]byte{reply(cookie, map[string]any{"result": "error", "error-reason": "no to-tag"})}
			}
			return [][]byte{reply(cookie, map[string]any{"result": "ok", "sdp": "answer-out"})}
		case "delete":
			return [][]byte{reply(cookie, map[string]any{"result": "error", "error-reason": "Call-ID not found or tags didn't match"})}
		}
		return nil
	})
	c := dialFake(t, f)
	ctx := context.Background()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	sdp, err := c.Offer(ctx, "c1", "a", "in", map[string]any{"ICE": "remove"})
	if err != nil || sdp != "offer-out" {
		t.Fatalf("Offer = %q, %v", sdp, err)
	}
	sdp, err = c.Answer(ctx, "c1", "a", "b", "in", nil)
	if err != nil || sdp != "answer-out" {
		t.Fatalf("Answer = %q, %v", sdp, err)
	}
	err = c.Delete(ctx, "c1", "a")
	var ngErr *Error
	if !errors.As(err, &ngErr) || ngErr.Reason != "Call-ID not found or tags didn't match" {
		t.Fatalf("Delete error = %v, want *Error with the reason", err)
	}
}

func TestClientRetransmitsWithSameCookie(t *testing.T) {
	f := newFakeNG(t, func(cookie string, req map[string]any, seen int) [][]byte {
		if seen < 3 {
			return nil // lose the first two copies
		}
		return [][]byte{reply(cookie, map[string]any{"result": "pong"})}
	})
	c := dialFake(t, f)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after two losses: %v", err)
	}
	c.Retries = 1
	start := time.Now()
	err := c.Ping(context.Background())
	if err == nil {
		t.Fatal("Ping with one retry succeeded, want timeout")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("timeout took %v, want about 2 attempts of %v", d, c.Timeout)
	}
}

func TestClientContextAndClose(t *testing.T) {
	f := newFakeNG(t, func(string, map[string]any, int) [][]byte { return nil })
	c := dialFake(t, f)
	c.Timeout = 10 * time.Second

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping = %v, want deadline exceeded", err)
	}

	go func() { time.Sleep(50 * time.Millisecond); c.Close() }()
	if err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping on closing client = %v, want ErrClosed", err)
	}
}

func TestSDPAudioAddr(t *testing.T) {
	tests := []struct {
		name, sdp string
		want      string
		wantErr   bool
	}{
		{"session c", "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n", "10.0.0.1:4000", false},
		{"media c wins", "c=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.2\r\n", "10.0.0.2:4000", false},
		{"first audio only", "c=IN IP4 10.0.0.1\nm=video 5000 RTP/AVP 96\nc=IN IP4 10.0.0.9\nm=audio 4002 RTP/AVP 0\nm=audio 6000 RTP/AVP 0\nc=IN IP4 10.0.0.3\n", "10.0.0.1:4002", false},
		{"ipv6", "c=IN IP6 ::1\r\nm=audio 4000 RTP/AVP 0\r\n", "[::1]:4000", false},
		{"no audio", "c=IN IP4 10.0.0.1\r\n", "", true},
		{"no c", "m=audio 4000 RTP/AVP 0\r\n", "", true},
		{"port 0", "c=IN IP4 10.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sdpAudioAddr(tt.sdp)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Errorf("got %v, want %s", got, tt.want)
			}
		})
	}
	// Our own SDP must parse back to the address it was built for.
	a := netip.MustParseAddrPort("127.0.0.1:30000")
	if got, err := sdpAudioAddr(pcmuSDP(a)); err != nil || got != a {
		t.Errorf("sdpAudioAddr(pcmuSDP(%v)) = %v, %v", a, got, err)
	}
}

// freePortRange finds n consecutive loopback UDP ports that are free now,
// below the Linux ephemeral range so test sockets do not collide with them.
func freePortRange(t *testing.T, n int) (int, int) {
	t.Helper()
	for range 50 {
		base := 20000 + 2*rand.IntN(6000)
		var conns []*net.UDPConn
		ok := true
		for p := base; p < base+n; p++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok {
			return base, base + n - 1
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

func listenLoopback(t *testing.T) (*net.UDPConn, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

type flowResult struct {
	got      int
	badSrc   int
	badBody  int
	firstSeq int // first sequence number that arrived
}

// sendFlow sends count PCMU packets from src to dst, while recv collects
// what arrives and checks it came from wantSrc with the payload intact.
func sendFlow(t *testing.T, src *net.UDPConn, dst netip.AddrPort, recv *net.UDPConn, wantSrc netip.AddrPort, ssrc uint32, count int) flowResult {
	t.Helper()
	res := flowResult{firstSeq: -1}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for res.got < count {
			recv.SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := recv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var p rtp.Packet
			if err := p.Unmarshal(buf[:n]); err != nil || p.SSRC != ssrc || len(p.Payload) != 160 ||
				!bytes.Equal(p.Payload, payload(p.SequenceNumber)) {
				res.badBody++
				continue
			}
			if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != wantSrc {
				res.badSrc++
			}
			if res.firstSeq < 0 {
				res.firstSeq = int(p.SequenceNumber)
			}
			res.got++
		}
	})
	for i := range count {
		p := rtp.Packet{
			Header: rtp.Header{
				Version: 2, PayloadType: 0, SequenceNumber: uint16(i),
				Timestamp: uint32(i * 160), SSRC: ssrc, Marker: i == 0,
			},
			Payload: payload(uint16(i)),
		}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.WriteToUDPAddrPort(b, dst); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // paced, but faster than real 20 ms ptime
	}
	wg.Wait()
	return res
}

func payload(seq uint16) []byte {
	b := bytes.Repeat([]byte{0xff}, 160) // PCMU silence
	b[0], b[1] = byte(seq>>8), byte(seq)
	return b
}

func TestIntegration(t *testing.T) {
	if _, err := os.Stat(DefaultBinary); err != nil {
		t.Skipf("%s not installed", DefaultBinary)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	portMin, portMax := freePortRange(t, 20)
	t0 := time.Now()
	d, err := Start(ctx, Options{PortMin: portMin, PortMax: portMax, Threads: 2, LogLevel: 6, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ready := time.Since(t0)
	pid := d.Pid()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			if b, err := os.ReadFile(d.LogPath()); err == nil {
				t.Logf("rtpengine log:\n%s", b)
			}
		}
	})
	t.Logf("started in %v: %s", ready, d.CommandLine())

	aConn, aAddr := listenLoopback(t)
	bConn, bAddr := listenLoopback(t)
	callID := fmt.Sprintf("it-%d", rand.Uint64())

	t1 := time.Now()
	aSide, bSide, err := Relay(ctx, d.Client(), callID, aAddr, bAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("relay set up in %v: A %v -> %v -> B %v; B -> %v -> A", time.Since(t1), aAddr, aSide, bAddr, bSide)
	for _, p := range []netip.AddrPort{aSide, bSide} {
		if int(p.Port()) < portMin || int(p.Port()) > portMax {
			t.Errorf("relay port %v outside %d-%d", p, portMin, portMax)
		}
	}

	const count = 50
	ab := sendFlow(t, aConn, aSide, bConn, bSide, 0xa, count)
	ba := sendFlow(t, bConn, bSide, aConn, aSide, 0xb, count)
	t.Logf("A->B: %d/%d arrived (first seq %d, %d from unexpected source, %d malformed)", ab.got, count, ab.firstSeq, ab.badSrc, ab.badBody)
	t.Logf("B->A: %d/%d arrived (first seq %d, %d from unexpected source, %d malformed)", ba.got, count, ba.firstSeq, ba.badSrc, ba.badBody)
	for name, r := range map[string]flowResult{"A->B": ab, "B->A": ba} {
		// Allow a couple of early losses while rtpengine learns the source.
		if r.got < count-2 || r.badSrc > 0 || r.badBody > 0 {
			t.Errorf("%s: %+v, want at least %d clean packets", name, r, count-2)
		}
	}

	cpu, err1 := d.CPUTime()
	rss, err2 := d.RSS()
	threads, err3 := d.Threads()
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if rss <= 0 {
		t.Errorf("RSS = %d", rss)
	}
	t.Logf("after call: cpu %v, rss %d KiB, threads %d", cpu, rss/1024, threads)

	if err := d.Client().Delete(ctx, callID, RelayFromTag); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// The ng error path against the real daemon: the call is gone now.
	// (A second Delete would not do: rtpengine answers it "ok" plus a
	// "warning" unless the "fatal" flag is set.)
	var ngErr *Error
	_, err = d.Client().Answer(ctx, callID, RelayFromTag, RelayToTag, pcmuSDP(bAddr), nil)
	if !errors.As(err, &ngErr) || ngErr.Reason != "Unknown call-id" {
		t.Errorf("Answer after Delete = %v, want ng error \"Unknown call-id\"", err)
	}

	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		t.Errorf("/proc/%d still present after Stop", pid)
	}
}

func TestStartFailsCleanly(t *testing.T) {
	if _, err := os.Stat(DefaultBinary); err != nil {
		t.Skipf("%s not installed", DefaultBinary)
	}
	// Occupy the ng port so rtpengine cannot bind it.
	busy, busyAddr := listenLoopback(t)
	defer busy.Close()
	portMin, portMax := freePortRange(t, 4)
	start := time.Now()
	d, err := Start(context.Background(), Options{
		PortMin: portMin, PortMax: portMax, NGPort: int(busyAddr.Port()), ReadyTimeout: 3 * time.Second,
	})
	if err == nil {
		d.Stop()
		t.Fatal("Start succeeded with the ng port taken")
	}
	t.Logf("after %v: %v", time.Since(start), err)
}
