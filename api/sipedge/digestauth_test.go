package sipedge

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api/sipedge/digest"
)

// The edge answers credentials as the digest package rules, with each
// nonce bound to the IP it was sent to (any port, either spelling of an
// IPv4 address).
func TestDigestAuth(t *testing.T) {
	const realm, method, uri = "example.com", "INVITE", "sip:1002@example.com"
	d := DigestAuth{Auth: digest.New(realm, []byte("cluster-secret"), nil), Algorithms: []string{digest.SHA256, digest.MD5}}
	ha1 := func(alg, username string) (string, bool) {
		if username != "1001" {
			return "", false
		}
		return digest.HA1(alg, username, realm, "alice-secret"), true
	}
	phone := netip.MustParseAddr("192.0.2.10")

	chs := d.Challenge(phone, false)
	if len(chs) != 2 || !strings.Contains(chs[0], "algorithm=SHA-256") || !strings.Contains(chs[1], "algorithm=MD5") || strings.Contains(chs[0], "stale") {
		t.Fatalf("challenge %q: want SHA-256 then MD5, not stale", chs)
	}
	if st := d.Challenge(phone, true); !strings.HasSuffix(st[0], "stale=true") {
		t.Fatalf("stale challenge %q", st)
	}
	nonce := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(chs[1])[1]
	answer := func(password string, nc int) string {
		h := func(s string) string { b := md5.Sum([]byte(s)); return hex.EncodeToString(b[:]) }
		a1 := h("1001:" + realm + ":" + password)
		ncs := fmt.Sprintf("%08x", nc)
		resp := h(a1 + ":" + nonce + ":" + ncs + ":c0ffee:auth:" + h(method+":"+uri))
		return fmt.Sprintf(`Digest username="1001", realm=%q, nonce=%q, uri=%q, response=%q, algorithm=MD5, qop=auth, nc=%s, cnonce="c0ffee"`,
			realm, nonce, uri, resp, ncs)
	}
	for _, tc := range []struct {
		name   string
		peer   netip.Addr
		header string
		want   digest.Answer
	}{
		{"no credentials", phone, "", digest.Challenge},
		{"credentials that do not parse", phone, `Digest username="1001", realm=`, digest.Reject},
		{"the right password", phone, answer("alice-secret", 1), digest.Accept},
		{"the same nonce count again", phone, answer("alice-secret", 1), digest.ChallengeStale},
		{"the next count, the address IPv4-mapped", netip.MustParseAddr("::ffff:192.0.2.10"), answer("alice-secret", 2), digest.Accept},
		{"the right password from another address", netip.MustParseAddr("198.51.100.7"), answer("alice-secret", 3), digest.ChallengeStale},
		{"a wrong password", phone, answer("guess", 4), digest.Refuse},
		{"a wrong password from another address", netip.MustParseAddr("198.51.100.7"), answer("guess", 5), digest.Challenge},
	} {
		user, got := d.Verify(tc.peer, method, tc.header, ha1)
		wantUser := ""
		if tc.want == digest.Accept {
			wantUser = "1001"
		}
		if got != tc.want || user != wantUser {
			t.Errorf("%s: %q, answer %d; want %q, %d", tc.name, user, got, wantUser, tc.want)
		}
	}
}
