package main

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTallyClaims(t *testing.T) {
	const qnum = "+14155580001"
	threads := []string{"q:+1", "q:+2"}
	peerOf := map[string]string{"q:+1": "+1", "q:+2": "+2"}
	ok := func(agent string) claimAnswer { return claimAnswer{agent: agent, status: 200} }
	refused := func(agent, holder string) claimAnswer {
		return claimAnswer{agent: agent, status: 409, code: "thread_claimed", holder: holder}
	}
	out := func(from, peer, winner string) smsMsg {
		return smsMsg{from: from, to: peer, text: replyText(winner, peer)}
	}
	// clean: thread +1 won by a1, +2 by a2, each reply out once.
	clean := func() (map[string][]claimAnswer, []smsMsg, map[string]string) {
		return map[string][]claimAnswer{
				"q:+1": {ok("a1"), refused("a2", "a1"), refused("a3", "a1")},
				"q:+2": {refused("a1", "a2"), ok("a2"), refused("a3", "a2")},
			}, []smsMsg{out(qnum, "+1", "a1"), out(qnum, "+2", "a2")},
			map[string]string{"q:+1": "a1", "q:+2": "a2"}
	}
	for _, tc := range []struct {
		name string
		mod  func(a map[string][]claimAnswer, trunk []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string)
		want smsClaimsChecks
	}{
		{"each thread claimed once, the others told the holder, one reply out each", nil,
			smsClaimsChecks{Claimed: 2, Refused: 4, TrunkReplies: 2}},
		{"two 200s on one thread", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			a["q:+1"][1] = ok("a2")
			return a, append(tr, out(qnum, "+1", "a2")), by
		}, smsClaimsChecks{Claimed: 1, DoubleClaims: 1, Refused: 2, WrongHolder: 1, TrunkReplies: 3, ExtraReplies: 1, NotWinners: 2}},
		{"nobody won a thread", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			a["q:+1"][0] = refused("a1", "a1")
			return a, tr[1:], by
		}, smsClaimsChecks{Claimed: 1, Unclaimed: 1, Refused: 2, WrongHolder: 3, TrunkReplies: 1, NoReply: 1}},
		{"a refusal naming someone else", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			a["q:+2"][2] = refused("a3", "a3")
			return a, tr, by
		}, smsClaimsChecks{Claimed: 2, Refused: 3, WrongHolder: 1, TrunkReplies: 2}},
		{"answers other than 200 and 409 thread_claimed", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			a["q:+1"][1] = claimAnswer{agent: "a2", status: 503, code: "unavailable"}
			a["q:+1"][2] = claimAnswer{agent: "a3", code: "transport"}
			return a, tr, by
		}, smsClaimsChecks{Claimed: 2, Refused: 2, Other: map[string]int{"503 unavailable": 1, "0 transport": 1}, TrunkReplies: 2}},
		{"a reply sent twice, one to nobody's peer", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			return a, append(tr, out(qnum, "+2", "a2"), out(qnum, "+9", "a1")), by
		}, smsClaimsChecks{Claimed: 2, Refused: 4, TrunkReplies: 4, ExtraReplies: 2}},
		{"a reply not from the queue's number", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			tr[0].from = "72001"
			return a, tr, by
		}, smsClaimsChecks{Claimed: 2, Refused: 4, TrunkReplies: 2, WrongFrom: 1}},
		{"the loser's reply went out", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			tr[1] = out(qnum, "+2", "a3")
			return a, tr, by
		}, smsClaimsChecks{Claimed: 2, Refused: 4, TrunkReplies: 2, NotWinners: 1}},
		{"claimed_by names someone else afterwards", func(a map[string][]claimAnswer, tr []smsMsg, by map[string]string) (map[string][]claimAnswer, []smsMsg, map[string]string) {
			by["q:+1"] = ""
			return a, tr, by
		}, smsClaimsChecks{Claimed: 2, Refused: 4, TrunkReplies: 2, HolderDisagree: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, tr, by := clean()
			if tc.mod != nil {
				a, tr, by = tc.mod(a, tr, by)
			}
			got := tallyClaims(threads, peerOf, a, tr, qnum, by)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("checks\n got %+v\nwant %+v", got, tc.want)
			}
			if clean := tc.mod == nil; clean != (got.violations() == 0) {
				t.Fatalf("violations %d for %+v", got.violations(), got)
			}
		})
	}
}

func TestShownFindings(t *testing.T) {
	// 100 offered from 100 numbers, 98 accepted (from 98 numbers).
	all := smsShown{Threads: 98, Messages: 98, StatsInbound: 98, SSEReceived: 98}
	for _, tc := range []struct {
		name string
		mod  func(*smsShown)
		want []string // a part of each finding
	}{
		{"every accepted one, nothing twice", func(*smsShown) {}, nil},
		{"two messages answered late but stored", func(s *smsShown) { *s = smsShown{Threads: 100, Messages: 100, StatsInbound: 100, SSEReceived: 100} }, nil},
		{"an accepted message lost", func(s *smsShown) { s.Messages, s.StatsInbound = 97, 97 },
			[]string{"messages on the threads: 97, fewer than the 98 accepted", "sms-stats inbound: 97"}},
		{"a thread lost", func(s *smsShown) { s.Threads = 97 }, []string{"threads: 97"}},
		{"a message stored twice", func(s *smsShown) { s.Messages = 101 }, []string{"messages on the threads: 101, more than the 100 offered"}},
		{"events short", func(s *smsShown) { s.SSEReceived = 90 }, []string{"sms.received events: 90"}},
		{"events short, but the node dropped some", func(s *smsShown) { s.SSEReceived, s.SSEDropped = 90, 8 }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := all
			tc.mod(&s)
			got := shownFindings(s, 100, 98, 100, 98)
			if len(got) != len(tc.want) {
				t.Fatalf("findings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Fatalf("finding %q, want one naming %q", got[i], w)
				}
			}
		})
	}
}

func TestReadSSE(t *testing.T) {
	stream := ": connected\n\n" +
		"event: sms.received\ndata: {\"data\":{\"owner\":\"q1\"}}\n\n" +
		": keepalive\n\n" +
		": 3 events dropped while this stream was behind\n\n" +
		"event: sms.claimed\ndata: line one\ndata: line two\n\n" +
		"data: no type\n\n" +
		"event: without data\n\n"
	var events, comments []string
	readSSE(strings.NewReader(stream), func(typ, data string) { events = append(events, typ+"|"+data) },
		func(c string) { comments = append(comments, c) })
	wantEvents := []string{"sms.received|{\"data\":{\"owner\":\"q1\"}}", "sms.claimed|line one\nline two", "|no type"}
	if !reflect.DeepEqual(events, wantEvents) {
		t.Fatalf("events %q, want %q", events, wantEvents)
	}
	dropped := 0
	for _, c := range comments {
		dropped += droppedIn(c)
	}
	if len(comments) != 3 || dropped != 3 {
		t.Fatalf("comments %q: %d dropped, want 3 comments and 3 dropped", comments, dropped)
	}
}

// The carrier sends a MESSAGE from any outside number, from its trusted
// address, and takes the MESSAGEs sent to it: here two carriers, one
// standing for the node.
func TestSMSTrunk(t *testing.T) {
	far, err := newSMSTrunk(&node{sip: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	defer far.close()
	near, err := newSMSTrunk(&node{sip: far.addr})
	if err != nil {
		t.Fatal(err)
	}
	defer near.close()
	if !strings.HasPrefix(near.addr, smsTrunkIP+":") {
		t.Fatalf("the carrier listens on %s, not the trunk's address", near.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, from := range []string{"+16500000001", "+16500000002"} {
		code, took, err := near.send(ctx, from, "+14155580001", "hello from "+from)
		if err != nil || code != http.StatusOK || took <= 0 {
			t.Fatalf("send from %s: %d after %v, %v", from, code, took, err)
		}
	}
	far.await(2, 2*time.Second, 50*time.Millisecond)
	got := far.take()
	if len(got) != 2 {
		t.Fatalf("the far end got %d MESSAGEs, want 2: %+v", len(got), got)
	}
	for i, from := range []string{"+16500000001", "+16500000002"} {
		if m := got[i]; m.from != from || m.to != "+14155580001" || m.text != "hello from "+from || m.at.IsZero() {
			t.Fatalf("MESSAGE %d: %+v", i, m)
		}
	}
	if again := far.take(); len(again) != 0 {
		t.Fatalf("take gave %d MESSAGEs already taken", len(again))
	}
}

// TestSMSSmoke runs the scenario briefly on a node of its own: 20
// MESSAGEs a second for 2 s from ten numbers in turn, every one stored and
// shown, then three agents racing for five threads.
func TestSMSSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a node")
	}
	n, err := startNode(t.TempDir(), nodeSpec{name: "switchboard", token: "smoke-token", rtpPorts: "40000-49999"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.stop()
	if err := n.provision(); err != nil {
		t.Fatal(err)
	}
	in, cl, err := smsRuns(context.Background(), n, smsOptions{rates: []float64{20}, step: 2 * time.Second, peers: 10, agents: 3, threads: 5, rounds: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 1 || len(cl) != 1 {
		t.Fatalf("runs: %d inbound, %d claims", len(in), len(cl))
	}
	r := in[0]
	if r.Offered != 40 || r.Accepted != 40 || r.Peers != 10 || r.P50ms <= 0 || r.CPUSeconds <= 0 {
		t.Errorf("inbound: %+v", r)
	}
	if s := r.Shown; s.Threads != 10 || s.Messages != 40 || s.StatsInbound != 40 || s.SSEReceived != 40 {
		t.Errorf("shown: %+v", s)
	}
	c := cl[0]
	if c.Replies != 15 || c.Checks.Claimed != 5 || c.Checks.Refused != 10 || c.Checks.TrunkReplies != 5 || c.Checks.SSEClaimed != 5 || c.ClaimsPerS <= 0 {
		t.Errorf("claims: %+v", c)
	}
}
