// Package freeport finds ports free on this host, for tests and benchmarks
// that start a node on loopback and must name its ports before it binds
// them.
package freeport

import (
	"fmt"
	"net"
	"strconv"
)

// tries bounds the search: a port free for TCP may be taken for UDP.
const tries = 50

// Find is a port free now for both TCP and UDP on ip (a SIP listener binds
// both on one port). Nothing holds it: whoever binds it next gets it.
func Find(ip string) (int, error) {
	for range tries {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, fmt.Errorf("freeport: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("freeport: no port on %s free for both TCP and UDP in %d tries", ip, tries)
}
