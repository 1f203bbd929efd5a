package media

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// sockets is a leg's RTP/RTCP port pair. A pair outlives its leg: when the
// leg ends its sockets go back to the pool still bound, and the next leg to
// take the pair drains what arrived meanwhile. Binding and closing a pair
// (two sockets, their options, the poller's registration) cost 5–7% of the
// node's CPU at 1000 calls/s; reuse costs one recvfrom.
type sockets struct {
	port int
	rtp  *net.UDPConn // nil until the pair is first bound
	rtcp int          // the RTCP port's socket, bound and never read; -1 with rtp
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

// open readies a pair for a new leg: a fresh one is bound, a reused one is
// made readable again and emptied of the previous call's late packets, so
// they neither reach the new call nor latch its peer address.
func (s *Service) open(p sockets) (sockets, error) {
	if !p.bound() {
		rtp, err := net.ListenUDP("udp", &net.UDPAddr{IP: s.cfg.IP.AsSlice(), Port: p.port})
		if err != nil {
			return p, fmt.Errorf("bind RTP port %d: %w", p.port, err)
		}
		rtcp, err := s.listenRTCP(p.port + 1)
		if err != nil {
			rtp.Close()
			return p, fmt.Errorf("bind RTCP port %d: %w", p.port+1, err)
		}
		_ = rtp.SetReadBuffer(rtpBuffer)
		_ = rtp.SetWriteBuffer(rtpBuffer)
		return sockets{port: p.port, rtp: rtp, rtcp: rtcp}, nil
	}
	if err := p.rtp.SetReadDeadline(time.Time{}); err != nil {
		return p, fmt.Errorf("reuse RTP port %d: %w", p.port, err)
	}
	if err := drain(p.rtp); err != nil {
		return p, fmt.Errorf("drain RTP port %d: %w", p.port, err)
	}
	return p, nil
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

// portPool is a FIFO of free pairs: a freed pair is reused last, so a late
// packet of an ended call is unlikely to reach a new one at all (and is
// drained if it does).
type portPool struct {
	free []sockets
	head int
}

func (p *portPool) init(lo, hi int) {
	for port := lo; port+1 <= hi; port += 2 {
		p.free = append(p.free, sockets{port: port, rtcp: -1})
	}
}

func (p *portPool) len() int { return len(p.free) - p.head }

func (p *portPool) take() sockets {
	s := p.free[p.head]
	p.free[p.head] = sockets{}
	p.head++
	return s
}

func (p *portPool) put(s sockets) {
	if p.head > 0 && p.head >= len(p.free)/2 {
		n := copy(p.free, p.free[p.head:])
		clear(p.free[n:])
		p.free, p.head = p.free[:n], 0
	}
	p.free = append(p.free, s)
}

// closeAll closes every pooled pair that is bound.
func (p *portPool) closeAll() {
	for i := p.head; i < len(p.free); i++ {
		p.free[i].close()
		p.free[i] = sockets{port: p.free[i].port, rtcp: -1}
	}
}
