package e2e

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
	"github.com/switchboard/switchboard/media"
)

// unulaw decodes a PCMU byte as the relay's mixer does.
func unulaw(u byte) int { return int(media.DecodeULaw(u)) }

// ulawFrame is a 20 ms PCMU frame of a constant level: one voice.
func ulawFrame(level int) []byte {
	return bytes.Repeat([]byte{media.EncodeULaw(int16(level))}, 160)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// party is one phone in a conference and the constant voice it sends.
type party struct {
	name  string
	call  *sipphone.Call
	level int
}

// talk has every party send its voice for d, 20 ms a frame.
func talk(parties []party, d time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, p := range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.call.SendPayload(int(d/(20*time.Millisecond)), 20*time.Millisecond, ulawFrame(p.level))
		}()
	}
	return &wg
}

// hears samples what each party receives while all talk and checks that it
// is the mix of the others and never its own voice. A frame mixes what
// arrived during one 20 ms tick, so a frame may lack a voice whose packet
// came a little late; never may it hold the listener's own. Each must hear
// the full mix of the other two several times. Frames that are not a
// constant level (a chime on top of the voices) are left to VariedFrames.
func hears(t *testing.T, parties []party, d time.Duration) {
	t.Helper()
	wg := talk(parties, d)
	defer wg.Wait()
	full, samples := make([]int, len(parties)), 0
	deadline := time.Now().Add(d - 100*time.Millisecond)
	for time.Now().Before(deadline) {
		for i, p := range parties {
			got := p.call.LastPayload()
			if len(got) == 0 {
				continue
			}
			if !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
				continue
			}
			level := unulaw(got[0])
			// The sums of any subset of the others are allowed; the full
			// sum is what we count.
			var allowed []int
			others := 0
			for j, o := range parties {
				if j != i {
					allowed = append(allowed, o.level)
					others += o.level
				}
			}
			allowed = append(allowed, others)
			ok := false
			for _, a := range allowed {
				if abs(level-a) <= a/16 {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("%s hears level %d, not a mix of the others (%v): its own voice is in it or a voice is missing", p.name, level, allowed)
			}
			if abs(level-others) <= others/16 {
				full[i]++
			}
		}
		samples++
		time.Sleep(5 * time.Millisecond)
	}
	for i, p := range parties {
		t.Logf("%s heard the full mix in %d of %d samples", p.name, full[i], samples)
		if full[i] < samples/4 {
			t.Fatalf("%s heard the full mix of the other two only %d times", p.name, full[i])
		}
	}
}

// Alice calls Dan; Ann, his delegate with join_merge, joins over REST: each
// of the three hears the sum of the other two (G.711 decoded and added),
// never itself, and no chime (off by default). Ann leaves; Dan turns the
// chime on; Ann joins again with *7<Dan's extension>: mixed again, with the
// chime this time. Bob (no join_merge) is refused with 403, a line with no
// active call with 404.
func TestJoinMixesAudio(t *testing.T) {
	s := startNode(t, nil)
	dan := s.user("dan", "1001", "dan-secret")
	ann := s.user("ann", "1002", "ann-secret")
	bob := s.user("bob", "1003", "bob-secret")
	s.user("alice", "1004", "alice-secret")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{"join_merge"}}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "bob", "privileges": []string{"pickup_hold"}}, 201, "")
	s.expect("POST", "/v1/users/ann/delegations/dan/accept", ann.Token, nil, 200, "")
	s.expect("POST", "/v1/users/bob/delegations/dan/accept", bob.Token, nil, 200, "")
	danP, annP, bobP, aliceP := s.phone("dan", "dan-secret", nil), s.phone("ann", "ann-secret", nil), s.phone("bob", "bob-secret", nil), s.phone("alice", "alice-secret", nil)
	for _, p := range []*sipphone.Phone{danP, annP, bobP, aliceP} {
		s.registered(p)
	}
	ctx := ctxT(t, 60*time.Second)

	// The chime setting: off by default, the delegator's to change.
	var priv struct {
		JoinChime bool `json:"join_chime"`
	}
	if code := s.api("GET", "/v1/users/dan/privacy", ann.Token, nil, &priv); code != 200 || priv.JoinChime {
		t.Fatalf("privacy settings of a new line: %d %+v", code, priv)
	}
	s.expect("PUT", "/v1/users/dan/privacy", ann.Token, map[string]any{"join_chime": true}, 403, "forbidden")
	s.expect("PUT", "/v1/users/dan/privacy", dan.Token, map[string]any{"join_chime": "yes"}, 400, "invalid_field")

	var rej *sipphone.ErrRejected
	if _, err := annP.Dial(ctx, "*71001", nil); !errors.As(err, &rej) || rej.Code != 404 {
		t.Fatalf("*7 with no active call: want 404, got %v", err)
	}
	alice, danIn := answered(t, ctx, aliceP, "1001", danP)
	callID, _, _ := s.lineCall("dan", dan.Token, "dan")

	// Ann joins over REST: her phone rings, she answers, the three are mixed.
	s.expect("POST", "/v1/calls/"+callID+"/join", bob.Token, nil, 403, "missing_privilege")
	// A chime is a tone: frames that are not one byte repeated, counted
	// from before the join so that none can be missed.
	varied := func() int64 { return alice.VariedFrames() + danIn.VariedFrames() }
	before := varied()
	s.expect("POST", "/v1/calls/"+callID+"/join", ann.Token, nil, 200, "")
	annIn := recvCall(t, annP)
	if err := annIn.Answer(); err != nil {
		t.Fatal(err)
	}
	three := []party{{"alice", alice, 1000}, {"dan", danIn, 2000}, {"ann", annIn, 4000}}
	hears(t, three, 1500*time.Millisecond)
	if got := varied(); got != before {
		t.Fatalf("%d chime frames although the line's owner has the chime off", got-before)
	}

	// Ann leaves: Alice and Dan are back to a plain call.
	_ = annIn.Hangup(ctx)
	eventually(t, 3*time.Second, "Alice hearing Dan alone", func() bool {
		_ = danIn.SendPayload(1, 0, ulawFrame(2000))
		got := alice.LastPayload()
		return len(got) > 0 && abs(unulaw(got[0])-2000) <= 2000/16
	})

	// With the chime on, Ann joins again over SIP with *7<ext>; Bob may not.
	if code := s.api("PUT", "/v1/users/dan/privacy", dan.Token, map[string]any{"join_chime": true}, &priv); code != 200 || !priv.JoinChime {
		t.Fatalf("turn the chime on: %d %+v", code, priv)
	}
	if _, err := bobP.Dial(ctx, "*71001", nil); !errors.As(err, &rej) || rej.Code != 403 {
		t.Fatalf("*7 without join_merge: want 403, got %v", err)
	}
	before = varied()
	annJoin, err := annP.Dial(ctx, "*71001", nil)
	if err != nil {
		t.Fatalf("*7 join over SIP: %v", err)
	}
	three[2].call = annJoin
	hears(t, three, 1500*time.Millisecond)
	if varied() == before {
		t.Fatal("no chime on the join although the line's owner has it on")
	}
	// Ann leaves: the two who stay hear the chime again.
	before = varied()
	_ = annJoin.Hangup(ctx)
	eventually(t, 3*time.Second, "the leave chime", func() bool { return varied() > before })
	_ = alice.Hangup(ctx)
	for _, c := range []*sipphone.Call{danIn, annJoin} {
		select {
		case <-c.Ended():
		case <-time.After(5 * time.Second):
			t.Fatal("a leg outlived the call")
		}
	}
}
