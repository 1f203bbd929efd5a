package baresip

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// Alice (UDP, plain RTP) calls a queue whose one member is Bob (TCP, SRTP
// required by his user's policy) with two stock baresips: the queue answers
// Alice at once and she hears its greeting (its first note, 784 Hz); Bob's
// phone is offered the call with SRTP, as his own policy says; he accepts
// and each hears the other's tone.
func TestBaresipQueue(t *testing.T) {
	bin, modules := baresipBinary(t)
	s := startNode(t)
	s.user("alice", "1001", "alice-secret", nil)
	s.user("bob", "1002", "bob-secret", map[string]any{"srtp": "required"})
	if code := s.api("POST", "/queues", map[string]any{"id": "sales", "name": "Sales", "extension": "5000",
		"members": []map[string]any{{"user": "bob", "order": 1}}}, nil); code != 201 {
		t.Fatalf("create the queue: %d", code)
	}
	dir := t.TempDir()
	for name, f := range map[string]float64{"alice": tones["alice"], "bob": tones["bob"]} {
		if err := writeTone(filepath.Join(dir, name+".wav"), f, 60); err != nil {
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
		account: fmt.Sprintf("<sip:1002@%s;transport=tcp>;auth_pass=bob-secret;regint=60;mediaenc=srtp-mand", sip),
		tone:    filepath.Join(dir, "bob.wav"),
		rtp:     bobRTP,
	})
	for _, p := range []*phone{alice, bob} {
		p.await("All 1 useragent registered successfully", 10*time.Second)
	}

	alice.do("/dial 5000")
	greeting := map[string]float64{"greeting": 784}
	mostly(t, "Alice, waiting, hears", alice.heard(0, 500*time.Millisecond, greeting), "greeting")
	eventually(t, 10*time.Second, "Bob's phone offered the call", func() bool { return bob.said("SRTP") || bob.said("RTP/SAVP") })
	bob.do("/accept")
	bob.await("SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)", 5*time.Second)
	answeredAt := len(alice.recording())
	afterAnswer := alice.heard(answeredAt, 2*time.Second, tones)
	if i := indexOf(afterAnswer, "bob"); i < 0 || i > 10 {
		t.Fatalf("within a second of Bob's answer Alice should hear him: %v", afterAnswer)
	} else {
		mostly(t, "after Bob's answer Alice hears", afterAnswer[i:], "bob")
	}
	mostly(t, "Bob hears", bob.heard(0, time.Second, tones), "alice")
	alice.do("/hangup")
	for _, p := range []*phone{alice, bob} {
		p.await("terminated", 5*time.Second)
	}
}
