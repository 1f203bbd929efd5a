package txn

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// Only UDP to an address is sent without a chance of blocking: a host name
// is looked up first, and a connection may have to be opened.
func TestMayBlock(t *testing.T) {
	for _, tc := range []struct {
		name, transport, dest string
		want                  bool
	}{
		{"udp to an address", "UDP", "127.0.0.1:5060", false},
		{"udp to an IPv6 address", "UDP", "[::1]:5060", false},
		{"udp to a name", "UDP", "carrier.example.com:5060", true},
		{"tcp to an address", "TCP", "127.0.0.1:5060", true},
		{"tls", "TLS", "127.0.0.1:5061", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", Host: "ignored.example.com"})
			req.SetTransport(tc.transport)
			req.SetDestination(tc.dest)
			if got := MayBlock(req); got != tc.want {
				t.Errorf("MayBlock = %v, want %v", got, tc.want)
			}
		})
	}
}
