package txn

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// A node's UDP socket is usually bound to the wildcard address. The kernel
// then says, with each datagram, the local address it was sent to
// (IP_PKTINFO, IPV6_PKTINFO control messages), and takes the source address
// of a datagram we send from the same kind of message: so a multi-homed
// host answers from, and advertises, the address the phone used.

// oobSize holds the one control message a datagram comes with.
var oobSize = syscall.CmsgSpace(syscall.SizeofInet6Pktinfo)

// recvLocal asks the kernel for the local address of each datagram conn
// reads: IP_PKTINFO on an IPv4 socket, IPV6_RECVPKTINFO on an IPv6 one
// (which covers IPv4 datagrams on a dual-stack socket, as v4-mapped).
func recvLocal(conn *net.UDPConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("txn: udp socket: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		domain, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN)
		if err != nil {
			serr = err
			return
		}
		if domain == syscall.AF_INET6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVPKTINFO, 1)
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("txn: ask for datagrams' local address: %w", err)
	}
	return nil
}

// cmsgLenSize is the width of a cmsghdr's length field (a size_t).
const cmsgLenSize = syscall.SizeofCmsghdr - 8

// localOf is the local address in a datagram's control messages: the
// destination address of its header (in_pktinfo's ipi_addr, in6_pktinfo's
// address), or for an IPv4 broadcast or multicast the interface's address
// the kernel routed it to (ipi_spec_dst; 0 for a datagram queued before
// recvLocal).
func localOf(oob []byte) (netip.Addr, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		var n uint64
		if cmsgLenSize == 8 {
			n = binary.NativeEndian.Uint64(oob)
		} else {
			n = uint64(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[cmsgLenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[cmsgLenSize+4:]))
		head := uint64(syscall.CmsgLen(0))
		if n < head || n > uint64(len(oob)) {
			return netip.Addr{}, false
		}
		data := oob[head:n]
		switch {
		case level == syscall.IPPROTO_IP && typ == syscall.IP_PKTINFO && len(data) >= syscall.SizeofInet4Pktinfo:
			dst := netip.AddrFrom4([4]byte(data[8:12]))
			if spec := netip.AddrFrom4([4]byte(data[4:8])); (dst == broadcast || dst.IsMulticast()) && !spec.IsUnspecified() {
				return spec, true
			}
			return dst, true
		case level == syscall.IPPROTO_IPV6 && typ == syscall.IPV6_PKTINFO && len(data) >= syscall.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[:16])).Unmap(), true
		}
		next := syscall.CmsgSpace(int(n - head))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return netip.Addr{}, false
}

// sourceOOB is the control message that sends a datagram from src, nil
// for an address we cannot send from by itself (unspecified, multicast,
// broadcast, or IPv6 link-local, which needs its interface).
func sourceOOB(src netip.Addr) []byte {
	if !src.IsValid() || src.IsUnspecified() || src.IsMulticast() || src == broadcast ||
		src.Is6() && src.IsLinkLocalUnicast() {
		return nil
	}
	if src.Is4() {
		b := make([]byte, syscall.CmsgSpace(syscall.SizeofInet4Pktinfo))
		putCmsghdr(b, syscall.IPPROTO_IP, syscall.IP_PKTINFO, syscall.SizeofInet4Pktinfo)
		a := src.As4()
		copy(b[syscall.CmsgLen(0)+4:], a[:]) // ipi_spec_dst; ipi_ifindex 0: any
		copy(b[syscall.CmsgLen(0)+8:], a[:]) // ipi_addr: unused on send, what localOf reads
		return b
	}
	b := make([]byte, syscall.CmsgSpace(syscall.SizeofInet6Pktinfo))
	putCmsghdr(b, syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO, syscall.SizeofInet6Pktinfo)
	a := src.As16()
	copy(b[syscall.CmsgLen(0):], a[:]) // ipi6_addr; ipi6_ifindex 0: any
	return b
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func putCmsghdr(b []byte, level, typ, datalen int) {
	n := syscall.CmsgLen(datalen)
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(n))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
	binary.NativeEndian.PutUint32(b[cmsgLenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[cmsgLenSize+4:], uint32(typ))
}
