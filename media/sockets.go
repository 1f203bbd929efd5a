package media

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// sockets is a leg's RTP/RTCP port pair. A pair can outlive its leg: when
// the leg ends its sockets go back to the pool still bound, and the next leg
// to take the pair drains what arrived meanwhile. Binding and closing a pair
// (two sockets, their options, the poller's registration) cost 5–7% of the
// node's CPU at 1000 calls/s; reuse costs one non-blocking read.
type sockets struct {
	port int
	rtp  *net.UDPConn // nil while the pair is not bound
	rtcp int          // the RTCP port's socket, bound and never read; only while rtp is set
	// buf is the RTP socket's read buffer. Only the leg's reader uses it,
	// and a pair is reused only after that reader has returned.
	buf *[maxPacket]byte
}

func (p sockets) bound() bool { return p.rtp != nil }

func (p sockets) close() {
	if p.bound() {
		p.rtp.Close()
		syscall.Close(p.rtcp)
	}
}

// drainLimit bounds the datagrams thrown away when a pair is reused: an idle
// pair's receive buffer (rtpBuffer) holds at most a few hundred.
const drainLimit = 4096

// rtpBuffer is the RTP socket's send and receive buffer.
const rtpBuffer = 256 << 10

// restAtMost is how long a pair stays bound with no leg. After that it is
// closed: a burst's sockets should not hold descriptors, and receive buffer
// space for stray packets, for ever.
const restAtMost = time.Minute

// busyRest is how long a pair whose port another socket holds is left
// untried: such a port (another process's, say an ephemeral port in the
// RTP range) stays held for long, and trying it at every pass of the pool,
// each a failed bind and a warning, cost a few thousand of each a minute
// at 1500 calls/s.
const busyRest = time.Minute

// take readies the least recently used free pair for a new leg: a bound one
// is drained and reused, an unbound one is bound. Reuse keeps the order a
// fresh bind would have, so a freed pair comes back as late as before, and
// a peer that missed the BYE has as long to stop before it could reach a
// new call. Out of descriptors, only pairs still bound are taken.
func (s *Service) take() (sockets, error) {
	noFDs := false
	now := s.cfg.Now()
	var err error
	for range s.ports.len() {
		r := s.ports.take()
		if r.p.bound() {
			p, rerr := s.reuse(r.p)
			if rerr == nil {
				return p, nil
			}
			r.p = sockets{port: r.p.port} // reuse closed it; bind it afresh
		}
		if noFDs || now.Before(r.busyUntil) {
			s.ports.put(r)
			continue
		}
		var p sockets
		if p, err = s.bindPair(r.p.port); err == nil {
			return p, nil
		}
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			s.ports.put(r)
			noFDs = true // every unbound pair would fail the same way
			s.warnNoFDs(err)
			continue
		}
		r.busyUntil = now.Add(busyRest)
		s.ports.put(r)
		s.log.Warn("RTP port pair busy, skipped for a while", "port", r.p.port, "retry_in", busyRest, "err", err)
	}
	if err != nil {
		return sockets{}, fmt.Errorf("%w: %w", ErrNoPorts, err)
	}
	return sockets{}, ErrNoPorts
}

// warnNoFDs logs running out of descriptors at most once a second: at a
// high call rate every new leg would log it. Under s.mu.
func (s *Service) warnNoFDs(err error) {
	if now := s.cfg.Now(); now.Sub(s.fdWarned) >= time.Second {
		s.fdWarned = now
		s.log.Warn("RTP port pairs not bound: out of file descriptors; reusing bound ones only", "err", err)
	}
}

// reuse makes a pair at rest readable again and empties it of what arrived
// meanwhile, so the previous call's late packets neither reach the new call
// nor latch its peer's address. A pair that fails is closed.
func (s *Service) reuse(p sockets) (sockets, error) {
	err := p.rtp.SetReadDeadline(time.Time{})
	if err == nil {
		err = drain(p.rtp)
	}
	if err != nil {
		s.log.Warn("RTP port pair not reusable, bound afresh", "port", p.port, "err", err)
		p.close()
		return sockets{}, err
	}
	return p, nil
}

// bindPair binds a port pair afresh.
func (s *Service) bindPair(port int) (sockets, error) {
	rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: s.cfg.IP.AsSlice(), Port: port})
	if err != nil {
		return sockets{}, fmt.Errorf("bind RTP port %d: %w", port, err)
	}
	rtcp, err := s.listenRTCP(port + 1)
	if err != nil {
		rtp.Close()
		return sockets{}, fmt.Errorf("bind RTCP port %d: %w", port+1, err)
	}
	_ = rtp.SetReadBuffer(rtpBuffer)
	_ = rtp.SetWriteBuffer(rtpBuffer)
	return sockets{port: port, rtp: rtp, rtcp: rtcp, buf: new([maxPacket]byte)}, nil
}

// drain reads and drops every datagram waiting on c, without blocking. A
// pair still receiving after drainLimit datagrams is someone's target: it is
// reported, and closed by the caller.
func drain(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	rerr := fmt.Errorf("still receiving after %d datagrams", drainLimit)
	var b [1]byte // a datagram longer than b is truncated: dropping is the point
	err = rc.Read(func(fd uintptr) bool {
		for range drainLimit {
			_, err := syscall.Read(int(fd), b[:])
			if errors.Is(err, syscall.EAGAIN) {
				rerr = nil
				return true
			}
			if err != nil {
				rerr = os.NewSyscallError("read", err)
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return rerr
}

// listenRTCP binds the RTCP port with bare syscalls: it is never read, so it
// needs neither the runtime's poller nor a net.UDPConn, which cost twice as
// much to set up and tear down.
func (s *Service) listenRTCP(p int) (int, error) {
	var family int
	var sa syscall.Sockaddr
	if ip := s.cfg.IP.Unmap(); ip.Is4() { // as net does for the RTP port
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: p, Addr: ip.As4()}
	} else {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: p, Addr: ip.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1) // never read: the kernel's minimum caps what it holds
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, os.NewSyscallError("bind", err)
	}
	return fd, nil
}

// portPool holds the pairs no leg has, least recently used first; some are
// still bound, the rest are closed.
type portPool struct {
	free     fifo[restingPair]
	bound    int // pairs in free that are bound
	maxBound int
}

type restingPair struct {
	p     sockets
	since time.Time // when its last leg ended
	// busyUntil: another socket held its port when it was last bound; it
	// is not tried again before then.
	busyUntil time.Time
}

// init fills the pool with lo..hi, and caps the pairs kept bound at rest to
// half the file descriptors the process may open (two per pair): resting
// sockets must leave room for SIP connections and the store. Go raises the
// soft limit to the hard one at start, so the cap rarely binds.
func (p *portPool) init(lo, hi int) {
	for port := lo; port+1 <= hi; port += 2 {
		p.free.put(restingPair{p: sockets{port: port}})
	}
	p.maxBound = p.free.len()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/4 < uint64(p.maxBound) {
		p.maxBound = int(lim.Cur / 4)
	}
}

func (p *portPool) len() int { return p.free.len() }

func (p *portPool) take() restingPair {
	r := p.free.take()
	if r.p.bound() {
		p.bound--
	}
	return r
}

func (p *portPool) put(r restingPair) {
	if r.p.bound() {
		p.bound++
	}
	p.free.put(r)
}

// rest takes back an ended leg's pair: bound while there is room, else
// closed.
func (p *portPool) rest(s sockets, now time.Time) {
	if s.bound() && p.bound >= p.maxBound {
		s.close()
		s = sockets{port: s.port}
	}
	p.put(restingPair{p: s, since: now})
}

// expire closes the pairs that have rested since before cutoff.
func (p *portPool) expire(cutoff time.Time) {
	for i := p.free.head; i < len(p.free.items); i++ {
		r := &p.free.items[i]
		if r.p.bound() && r.since.Before(cutoff) {
			r.p.close()
			r.p = sockets{port: r.p.port}
			p.bound--
		}
	}
}

// closeAll closes every pair at rest.
func (p *portPool) closeAll() { p.expire(time.Unix(1<<62, 0)) }

// fifo is a queue on a slice that compacts when half of it is taken.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) take() T {
	v := q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	return v
}

func (q *fifo[T]) put(v T) {
	if q.head > 0 && q.head >= len(q.items)/2 {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
}
