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
// node's CPU at 1000 calls/s; reuse costs one recvfrom.
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

// reuseAfter is how long an ended leg's pair rests before another leg takes
// it while unbound pairs remain: a peer that missed the BYE may still send
// for a while, and those packets are drained, not heard, only if they arrive
// before the reuse.
const reuseAfter = time.Second

// take readies a pair for a new leg: one that has rested long enough, else a
// fresh one bound, else (out of ports or file descriptors) the pair that has
// rested longest.
func (s *Service) take() (sockets, error) {
	now := s.cfg.Now()
	if p, ok := s.ports.takeIdle(now.Add(-reuseAfter)); ok {
		if p, err := s.reuse(p); err == nil {
			return p, nil
		}
	}
	for range s.ports.len() {
		port := s.ports.take()
		p, err := s.bindPair(port)
		if err == nil {
			return p, nil
		}
		s.ports.put(port)
		if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
			s.log.Warn("RTP port pair not bound: out of file descriptors", "port", port, "err", err)
			break // every other port would fail the same way
		}
		s.log.Warn("RTP port pair busy, skipped", "port", port, "err", err)
	}
	for {
		p, ok := s.ports.takeIdle(now)
		if !ok {
			return sockets{}, ErrNoPorts
		}
		if p, err := s.reuse(p); err == nil {
			return p, nil
		}
	}
}

// reuse makes a rested pair readable again and empties it of the previous
// call's late packets, so they neither reach the new call nor latch its
// peer's address. A pair that fails is closed and its port freed.
func (s *Service) reuse(p sockets) (sockets, error) {
	err := p.rtp.SetReadDeadline(time.Time{})
	if err == nil {
		err = drain(p.rtp)
	}
	if err != nil {
		s.log.Warn("RTP port pair not reusable, closed", "port", p.port, "err", err)
		p.close()
		s.ports.put(p.port)
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

// drain reads and drops every datagram waiting on c, without blocking.
func drain(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var rerr error
	var b [1]byte // a datagram longer than b is truncated: dropping is the point
	err = rc.Read(func(fd uintptr) bool {
		for range drainLimit {
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_DONTWAIT)
			if errors.Is(err, syscall.EAGAIN) {
				return true
			}
			if err != nil {
				rerr = os.NewSyscallError("recvfrom", err)
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

// portPool holds the pairs no leg has: unbound ports, and bound pairs at
// rest, each oldest first. A freed pair is reused last, so a late packet of
// an ended call is unlikely to reach a new one at all.
type portPool struct {
	free    fifo[int]
	idle    fifo[idlePair]
	maxIdle int // bound pairs kept at rest; the rest are closed
}

type idlePair struct {
	p     sockets
	since time.Time
}

// init fills the pool with lo..hi and caps the pairs kept bound at rest to
// an eighth of the file descriptors the process may open, so that idle
// sockets never starve SIP connections or new calls of descriptors.
func (p *portPool) init(lo, hi int) {
	for port := lo; port+1 <= hi; port += 2 {
		p.free.put(port)
	}
	p.maxIdle = p.free.len()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/8 < uint64(p.maxIdle) {
		p.maxIdle = int(lim.Cur / 8)
	}
}

func (p *portPool) len() int { return p.free.len() }

func (p *portPool) take() int { return p.free.take() }

func (p *portPool) put(port int) { p.free.put(port) }

// rest keeps a freed bound pair for reuse, or closes it when enough rest.
func (p *portPool) rest(s sockets, now time.Time) {
	if !s.bound() || p.idle.len() >= p.maxIdle {
		s.close()
		p.free.put(s.port)
		return
	}
	p.idle.put(idlePair{p: s, since: now})
}

// takeIdle takes the pair that has rested longest if it has rested since
// before cutoff.
func (p *portPool) takeIdle(cutoff time.Time) (sockets, bool) {
	if p.idle.len() == 0 || p.idle.peek().since.After(cutoff) {
		return sockets{}, false
	}
	return p.idle.take().p, true
}

// closeAll closes every pair at rest.
func (p *portPool) closeAll() {
	for p.idle.len() > 0 {
		s := p.idle.take().p
		s.close()
		p.free.put(s.port)
	}
}

// fifo is a queue on a slice that compacts when half of it is taken.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }

func (q *fifo[T]) peek() T { return q.items[q.head] }

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
