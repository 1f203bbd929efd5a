package sipedge

import (
	"net/netip"

	"github.com/switchboard/switchboard/api/sipedge/digest"
)

// DigestAuth is the edge's Authenticator over the digest package: each
// nonce bound to the client's IP, the algorithms offered in order.
type DigestAuth struct {
	Auth       *digest.Authenticator
	Algorithms []string // one challenge header each, in this order
}

// Challenge offers the algorithms, one WWW-/Proxy-Authenticate value each.
func (d DigestAuth) Challenge(peer netip.Addr, stale bool) []string {
	return d.Auth.ChallengeFor(peerKey(peer), stale, d.Algorithms...)
}

// Verify answers as the digest package says its verdict is answered.
func (d DigestAuth) Verify(peer netip.Addr, method, header string, ha1 func(alg, username string) (string, bool)) (string, digest.Answer) {
	res, _ := d.Auth.VerifyFrom(peerKey(peer), method, header, ha1)
	a := res.Reason.Answer()
	if a != digest.Accept {
		return "", a
	}
	return res.Username, a
}

// peerKey is what a nonce is bound to: the client's IP (not its port, which
// a NAT may change between a request and its retry).
func peerKey(peer netip.Addr) string {
	if !peer.IsValid() {
		return ""
	}
	return peer.Unmap().String()
}
