package txn

import (
	"bytes"
	"net/netip"
	"syscall"
	"testing"
)

// The control message we send a datagram from an address with is the one
// the kernel reads a datagram's local address from: localOf reads back
// what sourceOOB wrote, and nothing for what names no address.
func TestPktinfoRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want bool // sourceOOB names it
	}{
		{"ipv4", "192.0.2.7", true},
		{"loopback", "127.0.0.2", true},
		{"ipv6", "2001:db8::7", true},
		{"ipv6 loopback", "::1", true},
		{"unspecified", "0.0.0.0", false},
		{"broadcast", "255.255.255.255", false},
		{"multicast", "224.0.0.1", false},
		{"ipv6 link-local needs its interface", "fe80::1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := netip.MustParseAddr(tc.src)
			oob := sourceOOB(src)
			if (oob != nil) != tc.want {
				t.Fatalf("sourceOOB(%s) = %x, want a message: %v", src, oob, tc.want)
			}
			if oob == nil {
				return
			}
			got, ok := localOf(oob)
			if !ok || got != src {
				t.Errorf("localOf(sourceOOB(%s)) = %v, %v", src, got, ok)
			}
		})
	}
}

// What the kernel gives for an IPv4 datagram on a dual-stack socket: an
// in6_pktinfo with a v4-mapped address, read as the IPv4 address; a
// message of another kind before it is skipped.
func TestPktinfoMappedAndSkipped(t *testing.T) {
	other := make([]byte, syscall.CmsgSpace(4))
	putCmsghdr(other, syscall.SOL_SOCKET, syscall.SO_TIMESTAMP, 4)
	v6 := sourceOOB(netip.MustParseAddr("::ffff:127.0.0.2"))
	got, ok := localOf(append(other, v6...))
	if !ok || got != netip.MustParseAddr("127.0.0.2") {
		t.Errorf("localOf = %v, %v, want 127.0.0.2", got, ok)
	}
	for _, bad := range [][]byte{nil, other, v6[:syscall.CmsgLen(syscall.SizeofInet6Pktinfo)-1], v6[:syscall.SizeofCmsghdr]} {
		if got, ok := localOf(bad); ok {
			t.Errorf("localOf(%x) = %v, want nothing", bad, got)
		}
	}
}

// An IPv4 datagram to a broadcast or multicast address is named by the
// interface address the kernel gives with it (ipi_spec_dst), when it gives
// one.
func TestPktinfoBroadcast(t *testing.T) {
	for _, tc := range []struct{ spec, dst, want string }{
		{"10.0.0.5", "255.255.255.255", "10.0.0.5"},
		{"10.0.0.5", "224.0.1.75", "10.0.0.5"},
		{"0.0.0.0", "255.255.255.255", "255.255.255.255"},
		{"0.0.0.0", "10.0.0.5", "10.0.0.5"},
	} {
		oob := make([]byte, syscall.CmsgSpace(syscall.SizeofInet4Pktinfo))
		putCmsghdr(oob, syscall.IPPROTO_IP, syscall.IP_PKTINFO, syscall.SizeofInet4Pktinfo)
		spec, dst := netip.MustParseAddr(tc.spec).As4(), netip.MustParseAddr(tc.dst).As4()
		copy(oob[syscall.CmsgLen(0)+4:], spec[:])
		copy(oob[syscall.CmsgLen(0)+8:], dst[:])
		if got, ok := localOf(oob); !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("spec_dst %s, addr %s: localOf = %v, %v, want %s", tc.spec, tc.dst, got, ok, tc.want)
		}
	}
}

// localOf reads what the kernel wrote; whatever the bytes, it does not
// panic, and an address it finds is one the bytes hold.
func FuzzLocalOf(f *testing.F) {
	f.Add(sourceOOB(netip.MustParseAddr("10.1.2.3")))
	f.Add(sourceOOB(netip.MustParseAddr("2001:db8::1")))
	f.Add([]byte{})
	f.Add(make([]byte, syscall.SizeofCmsghdr))
	f.Fuzz(func(t *testing.T, oob []byte) {
		a, ok := localOf(oob)
		if !ok {
			return
		}
		raw := a.AsSlice()
		if !a.IsValid() || !bytes.Contains(oob, raw) {
			t.Fatalf("localOf = %v, which %x does not hold", a, oob)
		}
	})
}
