package sipedge

import (
	"net"
	"strconv"
	"testing"
)

// Port 0 binds one port for UDP and TCP, and the edge writes it where a
// flow names no address of its own.
func TestListenPortZero(t *testing.T) {
	e := New(Config{Host: "127.0.0.1"})
	defer e.Close()
	addr, err := e.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer e.udp.Close()
	defer e.tcp.Close()
	if addr.Port == 0 || e.cfg.Port != addr.Port {
		t.Fatalf("bound %v, edge port %d", addr, e.cfg.Port)
	}
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port)))
	if err != nil {
		t.Fatalf("TCP on the UDP port: %v", err)
	}
	c.Close()
	if got := e.contactAt("UDP", "").Address.Port; got != addr.Port {
		t.Fatalf("Contact port %d, want %d", got, addr.Port)
	}
}
