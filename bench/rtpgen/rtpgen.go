// Package rtpgen is the harness's RTP load generator. Every call's packets
// leave one socket per side in sendmmsg batches and arrive on it in
// recvmmsg batches, so a 20 ms tick of a thousand calls costs a handful of
// syscalls, not a thousand: an unbatched generator needs as much CPU as the
// relay it measures (BENCH-NOTES.md) and would measure itself.
//
// A call is two streams of 20 ms PCMU: side A sends to the relay's port for
// A, side B to the relay's port for B, and the relay delivers each to the
// other side's socket. The payload carries the stream's index and its send
// time, which relays forward untouched, so the receiver needs no address
// map and measures one-way latency and RFC 3550 jitter from them.
package rtpgen

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

const (
	frame      = 20 * time.Millisecond
	payloadLen = 160 // 20 ms of PCMU
	pktLen     = 12 + payloadLen
	batchLen   = 256    // messages per sendmmsg/recvmmsg
	magic      = 0x5342 // "SB": a payload written by this generator
	// Latency histogram: 50 µs buckets up to 2 s; later packets count in the last.
	bucket   = 50 * time.Microsecond
	nBuckets = int(2 * time.Second / bucket)
)

// Call is where each side sends a call's RTP: A to the relay's port facing
// side A, B to the one facing side B.
type Call struct{ A, B netip.AddrPort }

// Side is one socket of the generator: every call's endpoint on that side.
type Side struct {
	conn *net.UDPConn
	pc   *ipv4.PacketConn
}

// Listen opens a side on ip with large socket buffers (a default 200 KiB
// buffer drops packets at a few thousand calls, which looks like loss in
// the relay but is not).
func Listen(ip string) (*Side, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		return nil, fmt.Errorf("rtpgen: listen: %w", err)
	}
	bigBuffers(conn, 32<<20)
	return &Side{conn: conn, pc: ipv4.NewPacketConn(conn)}, nil
}

// bigBuffers asks for size bytes of socket buffer past net.core.rmem_max
// when running as root (SO_RCVBUFFORCE), else as much as the limit allows.
func bigBuffers(conn *net.UDPConn, size int) {
	_ = conn.SetReadBuffer(size)
	_ = conn.SetWriteBuffer(size)
	if raw, err := conn.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, size)
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, size)
		})
	}
}

// Addr is the side's address, to advertise in SDP.
func (s *Side) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close closes the socket.
func (s *Side) Close() error { return s.conn.Close() }

// Result is what a run measured, both directions together.
type Result struct {
	Calls      int
	Sent       int64
	Received   int64
	LossPct    float64
	JitterMs   float64 // mean over streams of the RFC 3550 interarrival jitter
	JitterMax  float64 // worst stream
	LatencyP50 float64 // one-way, ms
	LatencyP99 float64
	SendCalls  int64 // sendmmsg calls: the batching at work
}

// stream is one direction of one call. The sender owns dst..ssrc, the
// receiver (under Gen.mu) jitter..got.
type stream struct {
	dst     *net.UDPAddr
	seq     uint16
	ts      uint32
	ssrc    uint32
	jitter  float64 // in ns
	transit int64
	got     int64
}

// Gen drives calls between two sides.
type Gen struct {
	sides   [2]*Side
	streams []stream // 2*i: A→B of call i, 2*i+1: B→A
	out     [2]batch // the sender's, per side

	mu      sync.Mutex // guards what the receivers write
	hist    []int64
	stopped chan struct{}
}

// New prepares calls between sides a and b.
func New(a, b *Side, calls []Call) *Gen {
	g := &Gen{sides: [2]*Side{a, b}, streams: make([]stream, 2*len(calls)), out: [2]batch{{side: a}, {side: b}}, hist: make([]int64, nBuckets)}
	for i, c := range calls {
		g.streams[2*i] = stream{dst: net.UDPAddrFromAddrPort(c.A), ssrc: uint32(2 * i)}
		g.streams[2*i+1] = stream{dst: net.UDPAddrFromAddrPort(c.B), ssrc: uint32(2*i + 1)}
	}
	return g
}

// Run sends 20 ms frames on every stream for d, then waits drain for late
// packets, and returns what arrived.
func (g *Gen) Run(ctx context.Context, d, drain time.Duration, progress func(sent, received int64)) (Result, error) {
	g.stopped = make(chan struct{})
	var wg sync.WaitGroup
	recvErr := make([]error, 2)
	for side := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recvErr[side] = g.receive(side)
		}()
	}
	sendErr := g.send(ctx, d, progress)
	time.Sleep(drain)
	close(g.stopped)
	for _, s := range g.sides {
		_ = s.conn.SetReadDeadline(time.Now()) // unblock the receivers
	}
	wg.Wait()
	if err := errors.Join(sendErr, recvErr[0], recvErr[1]); err != nil {
		return Result{}, err
	}
	return g.result(), nil
}

// send paces frames: every 20 ms each side writes one packet per stream it
// owns, in batches.
func (g *Gen) send(ctx context.Context, d time.Duration, progress func(sent, received int64)) error {
	bufs := newFrames(len(g.streams))
	return pace(ctx, d, func(now time.Time) error {
		for i := range g.streams {
			st := &g.streams[i]
			st.seq++
			st.ts += payloadLen
			stamp(&bufs[i], st.seq, st.ts, st.ssrc, i, now)
			if err := g.out[i&1].add(bufs[i][:], st.dst); err != nil {
				return err
			}
		}
		return errors.Join(g.out[0].flush(), g.out[1].flush())
	}, func() {
		if progress != nil {
			progress(g.sent(), g.received())
		}
	})
}

func (g *Gen) sent() int64 { return g.out[0].sent + g.out[1].sent }

// pace calls tick every 20 ms for d, and progress about once a second. A
// generator over a second behind starts afresh rather than burst to catch
// up.
func pace(ctx context.Context, d time.Duration, tick func(now time.Time) error, progress func()) error {
	start := time.Now()
	next, lastProgress := start, start
	for time.Since(start) < d {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := time.Now()
		if err := tick(now); err != nil {
			return err
		}
		if now.Sub(lastProgress) >= time.Second {
			lastProgress = now
			progress()
		}
		next = next.Add(frame)
		if wait := time.Until(next); wait > 0 {
			time.Sleep(wait)
		} else if wait < -time.Second {
			next = time.Now()
		}
	}
	return nil
}

// newFrames is n packet buffers whose payload is PCMU silence after the
// generator's marker.
func newFrames(n int) [][pktLen]byte {
	bufs := make([][pktLen]byte, n)
	for i := range bufs {
		for j := 12 + 14; j < pktLen; j++ {
			bufs[i][j] = 0xff
		}
	}
	return bufs
}

// stamp writes a stream's next frame into b: the RTP header (PCMU) and the
// generator's payload (marker, stream index, send time).
func stamp(b *[pktLen]byte, seq uint16, ts, ssrc uint32, index int, now time.Time) {
	b[0], b[1] = 0x80, 0 // RTP v2, PCMU
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	binary.BigEndian.PutUint16(b[12:], magic)
	binary.BigEndian.PutUint32(b[14:], uint32(index))
	binary.BigEndian.PutUint64(b[18:], uint64(now.UnixNano()))
}

// ours: the payload is as this generator wrote it (forwarded, not mixed);
// index is the stream that wrote it.
func ours(pkt []byte) (index int, ok bool) {
	if len(pkt) < 26 || binary.BigEndian.Uint16(pkt[12:]) != magic {
		return 0, false
	}
	return int(binary.BigEndian.Uint32(pkt[14:])), true
}

// batch gathers one side's packets into sendmmsg calls.
type batch struct {
	side  *Side
	ms    []ipv4.Message
	sent  int64 // packets
	calls int64 // sendmmsg calls
}

func (b *batch) add(pkt []byte, to *net.UDPAddr) error {
	if b.ms == nil {
		b.ms = make([]ipv4.Message, 0, batchLen)
	}
	b.ms = append(b.ms, ipv4.Message{Buffers: [][]byte{pkt}, Addr: to})
	if len(b.ms) == batchLen {
		return b.flush()
	}
	return nil
}

// flush sends what was gathered.
func (b *batch) flush() error {
	ms := b.ms
	b.ms = b.ms[:0]
	for len(ms) > 0 {
		n, err := b.side.pc.WriteBatch(ms, 0)
		b.calls++
		if err != nil {
			var errno interface{ Temporary() bool }
			if errors.As(err, &errno) && errno.Temporary() {
				continue // ENOBUFS: the kernel is behind; retry the rest
			}
			return fmt.Errorf("rtpgen: sendmmsg: %w", err)
		}
		b.sent += int64(n)
		ms = ms[n:]
	}
	return nil
}

// receive reads batches until Run stops it, crediting each packet to the
// stream its payload names.
func (g *Gen) receive(side int) error {
	ms := readBuffers()
	hist := make([]int64, nBuckets)
	defer func() {
		g.mu.Lock()
		for i, v := range hist {
			g.hist[i] += v
		}
		g.mu.Unlock()
	}()
	for {
		n, err := g.sides[side].pc.ReadBatch(ms, 0)
		if err != nil {
			select {
			case <-g.stopped:
				return nil
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return fmt.Errorf("rtpgen: recvmmsg: %w", err)
		}
		now := time.Now().UnixNano()
		g.mu.Lock()
		for _, m := range ms[:n] {
			b := m.Buffers[0][:m.N]
			i, ok := ours(b)
			if !ok || i >= len(g.streams) || i&1 == side { // a side receives the other side's streams
				continue
			}
			st := &g.streams[i]
			st.got++
			transit := now - int64(binary.BigEndian.Uint64(b[18:]))
			if st.got > 1 {
				d := math.Abs(float64(transit - st.transit))
				st.jitter += (d - st.jitter) / 16
			}
			st.transit = transit
			hist[min(int(time.Duration(transit)/bucket), nBuckets-1)]++
		}
		g.mu.Unlock()
	}
}

// readBuffers are a recvmmsg batch's messages, each with room for a packet.
func readBuffers() []ipv4.Message {
	ms := make([]ipv4.Message, batchLen)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	return ms
}

func (g *Gen) received() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	var n int64
	for i := range g.streams {
		n += g.streams[i].got
	}
	return n
}

func (g *Gen) result() Result {
	r := Result{Calls: len(g.streams) / 2, Sent: g.sent(), SendCalls: g.out[0].calls + g.out[1].calls}
	g.mu.Lock()
	defer g.mu.Unlock()
	var jsum float64
	for i := range g.streams {
		st := &g.streams[i]
		r.Received += st.got
		j := st.jitter / 1e6
		jsum += j
		r.JitterMax = max(r.JitterMax, j)
	}
	if len(g.streams) > 0 {
		r.JitterMs = jsum / float64(len(g.streams))
	}
	if r.Sent > 0 {
		r.LossPct = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	r.LatencyP50, r.LatencyP99 = g.quantile(0.5), g.quantile(0.99)
	return r
}

// quantile of the one-way latency histogram, in ms (under mu).
func (g *Gen) quantile(q float64) float64 {
	var total int64
	for _, v := range g.hist {
		total += v
	}
	if total == 0 {
		return 0
	}
	want := int64(math.Ceil(q * float64(total)))
	var acc int64
	for i, v := range g.hist {
		acc += v
		if acc >= want {
			return float64(time.Duration(i+1)*bucket) / 1e6
		}
	}
	return float64(time.Duration(nBuckets)*bucket) / 1e6
}
