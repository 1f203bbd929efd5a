package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The port found can be bound for both TCP and UDP; an address that is
// not this host's is an error.
func TestFind(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "0.0.0.0"} {
		port, err := Find(ip)
		if err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("tcp %s: %v", addr, err)
		}
		l.Close()
		u, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatalf("udp %s: %v", addr, err)
		}
		u.Close()
	}
	if _, err := Find("192.0.2.1"); err == nil {
		t.Fatal("a port on an address not this host's")
	}
}
