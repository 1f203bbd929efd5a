// Package freeport finds ports free on this host, for tests and benchmarks
// that start a node on loopback and must name its ports before it binds
// them.
package freeport

import (
	"fmt"
	"net"
	"strconv"
)

// tries bounds the search: a port free for UDP may be taken for TCP.
const tries = 50

// Find is a port free now for both TCP and UDP on ip (a SIP listener binds
// both on one port). Nothing holds it: whoever binds it next gets it.
//
// The kernel picks a free UDP port first, then TCP is tried on it: a host
// under test holds thousands of UDP sockets (a relay's RTP range, sipp's
// calls) and few TCP ones, and a TCP port picked first landed on a taken
// UDP port 50 times running while a benchmark held 20,000 of them.
func Find(ip string) (int, error) {
	for range tries {
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("freeport: %w", err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("freeport: no port on %s free for both TCP and UDP in %d tries", ip, tries)
}
