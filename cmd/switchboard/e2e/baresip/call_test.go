// Package baresip is the interop test with a stock softphone: Debian's
// baresip (1.0.0, libre 1.1.0), two instances registered with digest at the
// node's address as the README tells users to, calling each other.
package baresip

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The tones each phone speaks, apart from each other and from the node's
// 425 Hz hold tone.
var tones = map[string]float64{"alice": 600, "bob": 1000, "hold": 425}

// Alice (UDP, plain RTP) calls Bob (TCP, and SRTP, which his user's policy
// requires) with two baresips; each hears the other's tone. Bob holds: Alice
// hears the hold tone and not Bob; Bob resumes: Alice hears Bob again. Alice
// hangs up.
func TestBaresipCall(t *testing.T) {
	bin, modules := baresipBinary(t)
	s := startNode(t)
	s.user("alice", "1001", "alice-secret", nil)
	s.user("bob", "1002", "bob-secret", map[string]any{"srtp": "required"})

	dir := t.TempDir()
	// Longer than the test: baresip hangs up when its tone file ends.
	const toneSecs = 60
	for name, f := range map[string]float64{"alice": tones["alice"], "bob": tones["bob"]} {
		if err := writeTone(filepath.Join(dir, name+".wav"), f, toneSecs); err != nil {
			t.Fatal(err)
		}
	}
	sip := s.n.SIPAddr()
	alice := startPhone(t, bin, modules, phoneConfig{
		name:    "alice",
		account: fmt.Sprintf("<sip:1001@%s;transport=udp>;auth_pass=alice-secret;regint=60", sip),
		tone:    filepath.Join(dir, "alice.wav"),
		rtp:     aliceRTP,
	})
	bob := startPhone(t, bin, modules, phoneConfig{
		name:    "bob",
		account: fmt.Sprintf("<sip:1002@%s;transport=tcp>;auth_pass=bob-secret;regint=60;answermode=auto;mediaenc=srtp-mand", sip),
		tone:    filepath.Join(dir, "bob.wav"),
		rtp:     bobRTP,
	})

	// Each phone's REGISTER is challenged once (MD5 alone: libre 1.1.0 gives
	// up on a SHA-256 challenge) and then bound, in etcd.
	for _, p := range []*phone{alice, bob} {
		p.await("All 1 useragent registered successfully", 10*time.Second)
		if got := strings.Count(p.trace(), "SIP/2.0 401 Unauthorized"); got != 1 {
			t.Fatalf("%s: %d challenges to REGISTER, want 1", p.name, got)
		}
		if !p.said("200 OK () [1 binding]") {
			t.Fatalf("%s: the node's 200 should list the one binding", p.name)
		}
	}
	if n := s.metric("switchboard_registrations"); n != 2 {
		t.Fatalf("the store holds %v registrations, want 2", n)
	}

	alice.do("/dial 1002")
	var c call
	eventually(t, 10*time.Second, "the call, active", func() bool {
		var list struct{ Items []call }
		s.api("GET", "/calls", nil, &list)
		if len(list.Items) != 1 {
			return false
		}
		c = list.Items[0]
		return c.State == "active"
	})
	if len(c.Legs) != 2 || c.Legs[0].Party != "alice" || c.Legs[1].Party != "bob" {
		t.Fatalf("call legs: %+v", c.Legs)
	}
	state := func() string {
		var got call
		if code := s.api("GET", "/calls/"+c.ID, nil, &got); code != 200 {
			return fmt.Sprintf("status %d", code)
		}
		return got.State
	}

	// One leg SRTP: the node offered Bob RTP/SAVP with an SDES key and
	// answered Alice with plain RTP.
	if m := regexp.MustCompile(`m=audio \d+ (\S+)`).FindAllStringSubmatch(bob.trace(), -1); len(m) == 0 || m[0][1] != "RTP/SAVP" || !strings.Contains(bob.trace(), "a=crypto:") {
		t.Fatalf("the node's offer to Bob should be RTP/SAVP with a=crypto: %v", m)
	}
	bob.await("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)", 5*time.Second)
	if strings.Contains(alice.trace(), "RTP/SAVP") || strings.Contains(alice.trace(), "a=crypto:") {
		t.Fatal("Alice's leg should be plain RTP")
	}

	// Audio both ways: the first second each phone hears is the other's tone.
	mostly(t, "Alice hears", alice.heard(0, time.Second, tones), "bob")
	mostly(t, "Bob hears", bob.heard(0, time.Second, tones), "alice")

	// Bob holds (a re-INVITE over his SRTP leg): Alice hears the hold tone,
	// on and off, and not Bob.
	bob.do("/hold")
	eventually(t, 5*time.Second, "the call, held", func() bool { return state() == "held" })
	heldAt := len(alice.recording())
	onHold := alice.heard(heldAt, 2500*time.Millisecond, tones)
	toneFrom := indexOf(onHold, "hold")
	if toneFrom < 0 || indexOf(onHold[toneFrom:], "bob") >= 0 || indexOf(onHold, "silence") < 0 {
		t.Fatalf("on hold, Alice should hear the hold tone and its pauses, then never Bob: %v", onHold)
	}

	// Bob resumes: Alice hears him again. (Bob's own recording cannot show
	// Alice after his resume: baresip 1.0.0 leaves the holder's receive
	// filters, sndfile among them, off once the call is resumed.)
	bob.do("/resume")
	eventually(t, 5*time.Second, "the call, active again", func() bool { return state() == "active" })
	resumedAt := len(alice.recording())
	afterResume := alice.heard(resumedAt, 1500*time.Millisecond, tones)
	if i := indexOf(afterResume, "bob"); i < 0 || i > 5 {
		t.Fatalf("within half a second of the resume Alice should hear Bob: %v", afterResume)
	} else {
		mostly(t, "after the resume Alice hears", afterResume[i:], "bob")
	}

	alice.do("/hangup")
	for _, p := range []*phone{alice, bob} {
		p.await("terminated", 5*time.Second)
	}
	eventually(t, 5*time.Second, "the call to end", func() bool { return state() == "status 404" })
	if strings.Contains(alice.trace()+bob.trace(), "SIP/2.0 5") {
		t.Fatal("a phone got a 5xx from the node")
	}
	// Every message each phone sent or got went over its account's
	// transport: Bob's re-INVITEs follow the Contact the node gave him, which
	// must say ;transport=tcp, and the node's BYE reaches him over TCP.
	for _, tc := range []struct {
		p         *phone
		want, not string
	}{{alice, "UDP", "TCP"}, {bob, "TCP", "UDP"}} {
		tr := tc.p.trace()
		if n := regexp.MustCompile(`(?m)^`+tc.want+` \S+ -> `).FindAllString(tr, -1); len(n) < 6 {
			t.Fatalf("%s: %d messages over %s", tc.p.name, len(n), tc.want)
		}
		if m := regexp.MustCompile(`(?m)^` + tc.not + ` .*`).FindString(tr); m != "" {
			t.Fatalf("%s's phone uses %s only, yet: %s", tc.p.name, tc.want, m)
		}
	}
}

// mostly fails the test unless at least 80% of the blocks were want.
func mostly(t *testing.T, what string, blocks []string, want string) {
	t.Helper()
	n := 0
	for _, b := range blocks {
		if b == want {
			n++
		}
	}
	if n*5 < len(blocks)*4 {
		t.Fatalf("%s %v, want mostly %s", what, blocks, want)
	}
}

func indexOf(blocks []string, want string) int {
	for i, b := range blocks {
		if b == want {
			return i
		}
	}
	return -1
}
