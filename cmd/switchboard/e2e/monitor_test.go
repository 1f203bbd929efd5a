package e2e

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// hearsOnly checks, while every party talks (each at its own constant
// level), that each hears exactly the voices hearing names for it: any
// subset of them in a frame (a packet may come a tick late), never another
// voice, and the whole set several times. A party that should hear nobody
// gets only silence or nothing. The levels are powers of two, so a level
// heard names its voices.
func hearsOnly(t *testing.T, parties []party, hearing map[string][]string, d time.Duration) {
	t.Helper()
	wg := talk(parties, d)
	defer wg.Wait()
	level := map[string]int{}
	for _, p := range parties {
		level[p.name] = p.level
	}
	// What arrived before this talk (and the mixer's buffer, three frames)
	// may be of the mode before: a party is checked from its sixth packet.
	from := make([]int64, len(parties))
	for i, p := range parties {
		from[i] = p.call.Received() + 6
	}
	full, samples := make([]int, len(parties)), 0
	deadline := time.Now().Add(d - 100*time.Millisecond)
	for time.Now().Before(deadline) {
		for i, p := range parties {
			if p.call.Received() < from[i] {
				continue
			}
			got := p.call.LastPayload()
			if len(got) == 0 || !bytes.Equal(got, bytes.Repeat(got[:1], len(got))) {
				continue // nothing yet, or a tone on top of the voices
			}
			heard, want := unulaw(got[0]), 0
			for _, src := range hearing[p.name] {
				want += level[src]
			}
			if heard < -64 || heard > want+want/16+64 || !subsetSum(heard, hearing[p.name], level) {
				t.Fatalf("%s hears level %d; it should hear only %v (%d together)", p.name, heard, hearing[p.name], want)
			}
			if want > 0 && abs(heard-want) <= want/16 {
				full[i]++
			}
		}
		samples++
		time.Sleep(5 * time.Millisecond)
	}
	for i, p := range parties {
		if len(hearing[p.name]) > 0 && full[i] < samples/4 {
			t.Fatalf("%s heard all of %v only %d times in %d samples", p.name, hearing[p.name], full[i], samples)
		}
	}
}

// subsetSum: heard is the sum of some of srcs' levels (silence included).
func subsetSum(heard int, srcs []string, level map[string]int) bool {
	for mask := 0; mask < 1<<len(srcs); mask++ {
		sum := 0
		for j, s := range srcs {
			if mask&(1<<j) != 0 {
				sum += level[s]
			}
		}
		if abs(heard-sum) <= max(sum/16, 64) {
			return true
		}
	}
	return false
}

// A carrier's caller calls Dan, an agent in Sue's monitoring group (then,
// for the phone half, Alice does). Sue monitors from REST: listen (she hears both, nobody hears her), whisper (Dan hears her,
// Alice does not), barge (all three), then takes over (Dan's leg ends,
// Alice and Sue talk, answered_by is Sue). Then from her phone: *1<ext>
// listens, DTMF 2 whispers, hanging up ends it. Bob, in no group, is
// refused over REST and SIP; a second supervisor is refused while Sue
// monitors.
func TestMonitorCall(t *testing.T) {
	s := startNode(t, nil)
	dan := s.user("dan", "1001", "dan-secret", "+14155550100")
	sue := s.user("sue", "1009", "sue-secret")
	tom := s.user("tom", "1008", "tom-secret")
	bob := s.user("bob", "1003", "bob-secret")
	s.user("alice", "1004", "alice-secret")
	s.expect("POST", "/v1/monitoring-groups", "", map[string]any{"id": "support", "name": "Support", "supervisors": []string{"sue", "tom"}, "members": []string{"dan"}}, 201, "")
	danP, sueP, tomP, bobP, aliceP := s.phone("dan", "dan-secret", nil), s.phone("sue", "sue-secret", nil), s.phone("tom", "tom-secret", nil), s.phone("bob", "bob-secret", nil), s.phone("alice", "alice-secret", nil)
	for _, p := range []*sipphone.Phone{danP, sueP, tomP, bobP, aliceP} {
		s.registered(p)
	}
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}}, 201, "")
	ctx := ctxT(t, 90*time.Second)
	sueEvents, danEvents := s.events(ctx, sue.Token), s.events(ctx, dan.Token)

	// A carrier's caller reaches Dan's number; Sue monitors the call.
	alice, danIn := answered(t, ctx, carrier, "+14155550100", danP)
	callID, _, _ := s.lineCall("dan", "", "dan")
	s.expect("POST", "/v1/calls/"+callID+"/monitor", bob.Token, map[string]any{"mode": "listen"}, 403, "not_allowed")
	s.expect("POST", "/v1/calls/"+callID+"/monitor", sue.Token, map[string]any{"mode": "takeover"}, 409, "not_monitoring")
	var c struct {
		ID         string `json:"id"`
		AnsweredBy string `json:"answered_by"`
		Monitors   []struct {
			User string `json:"user"`
			Mode string `json:"mode"`
		} `json:"monitors"`
	}
	if code := s.api("POST", "/v1/calls/"+callID+"/monitor", sue.Token, map[string]any{"mode": "listen"}, &c); code != 202 || c.ID != callID {
		t.Fatalf("monitor: %d %+v", code, c)
	}
	sueIn := recvCall(t, sueP)
	if err := sueIn.Answer(); err != nil {
		t.Fatal(err)
	}
	// The group does not notify its agents: Sue gets the events, Dan none.
	sse(t, sueEvents, "call.monitor_started for the supervisor", func(b string) bool { return strings.Contains(b, "call.monitor_started") })
	three := []party{{"alice", alice, 1000}, {"dan", danIn, 2000}, {"sue", sueIn, 4000}}
	hearsOnly(t, three, map[string][]string{"alice": {"dan"}, "dan": {"alice"}, "sue": {"alice", "dan"}}, 1500*time.Millisecond)
	if s.api("GET", "/v1/calls/"+callID, "", nil, &c); len(c.Monitors) != 1 || c.Monitors[0].User != "sue" || c.Monitors[0].Mode != "listen" {
		t.Fatalf("monitors: %+v", c.Monitors)
	}
	s.expect("POST", "/v1/calls/"+callID+"/monitor", tom.Token, map[string]any{"mode": "listen"}, 409, "already_monitored")

	if code := s.api("POST", "/v1/calls/"+callID+"/monitor", sue.Token, map[string]any{"mode": "whisper"}, &c); code != 200 {
		t.Fatalf("whisper: %d", code)
	}
	hearsOnly(t, three, map[string][]string{"alice": {"dan"}, "dan": {"alice", "sue"}, "sue": {"alice", "dan"}}, 1500*time.Millisecond)
	if code := s.api("POST", "/v1/calls/"+callID+"/monitor", sue.Token, map[string]any{"mode": "barge"}, &c); code != 200 {
		t.Fatalf("barge: %d", code)
	}
	hearsOnly(t, three, map[string][]string{"alice": {"dan", "sue"}, "dan": {"alice", "sue"}, "sue": {"alice", "dan"}}, 1500*time.Millisecond)
	if code := s.api("POST", "/v1/calls/"+callID+"/monitor", sue.Token, map[string]any{"mode": "takeover"}, &c); code != 200 {
		t.Fatalf("takeover: %d", code)
	}
	select {
	case <-danIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Dan's leg did not end on the takeover")
	}
	hearsOnly(t, []party{three[0], three[2]}, map[string][]string{"alice": {"sue"}, "sue": {"alice"}}, time.Second)
	if s.api("GET", "/v1/calls/"+callID, "", nil, &c); c.AnsweredBy != "sue" {
		t.Fatalf("answered_by after the takeover: %q", c.AnsweredBy)
	}
	s.expect("POST", "/v1/calls/"+callID+"/monitor", sue.Token, map[string]any{"mode": "listen"}, 409, "taken_over")
	_ = alice.Hangup(ctx)
	<-sueIn.Ended()
	for len(danEvents) > 0 {
		if b := <-danEvents; strings.Contains(b, "call.monitor_") {
			t.Fatalf("Dan, not notified by his group, got %s", b)
		}
	}
	eventually(t, 5*time.Second, "the takeover in Sue's history", func() bool {
		return slices.Contains(s.labels("sue"), "Taken over from dan")
	})

	// From a phone: *1 listens, DTMF 2 whispers; Bob may not, over SIP either.
	alice, danIn = answered(t, ctx, aliceP, "1001", danP)
	var rej *sipphone.ErrRejected
	if _, err := bobP.Dial(ctx, "*11001", nil); !errors.As(err, &rej) || rej.Code != 403 {
		t.Fatalf("*1 by someone in no group: want 403, got %v", err)
	}
	sueCall, err := sueP.Dial(ctx, "*11001", nil)
	if err != nil {
		t.Fatalf("*1 over SIP: %v", err)
	}
	three = []party{{"alice", alice, 1000}, {"dan", danIn, 2000}, {"sue", sueCall, 4000}}
	hearsOnly(t, three, map[string][]string{"alice": {"dan"}, "dan": {"alice"}, "sue": {"alice", "dan"}}, 1500*time.Millisecond)
	if _, err := tomP.Dial(ctx, "*21001", nil); !errors.As(err, &rej) || rej.Code != 486 {
		t.Fatalf("*2 while Sue monitors: want 486, got %v", err)
	}
	if err := sueCall.SendDigit('2'); err != nil {
		t.Fatal(err)
	}
	callID, _, _ = s.lineCall("dan", "", "dan")
	eventually(t, 3*time.Second, "DTMF 2 switching to whisper", func() bool {
		s.api("GET", "/v1/calls/"+callID, "", nil, &c)
		return len(c.Monitors) == 1 && c.Monitors[0].Mode == "whisper"
	})
	hearsOnly(t, three, map[string][]string{"alice": {"dan"}, "dan": {"alice", "sue"}, "sue": {"alice", "dan"}}, 1500*time.Millisecond)
	_ = sueCall.Hangup(ctx)
	eventually(t, 3*time.Second, "monitoring ending with the supervisor's hangup", func() bool {
		s.api("GET", "/v1/calls/"+callID, "", nil, &c)
		return len(c.Monitors) == 0
	})
	hearsOnly(t, three[:2], map[string][]string{"alice": {"dan"}, "dan": {"alice"}}, time.Second)
	_ = alice.Hangup(ctx)
	<-danIn.Ended()
}
