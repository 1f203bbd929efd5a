package e2e

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// expect calls the API and checks the status and, for errors, the code.
func (s *sys) expect(method, path, tok string, body any, status int, code string) {
	s.t.Helper()
	var e apiErr
	got := s.api(method, path, tok, body, &e)
	if got != status || (code != "" && e.Error.Code != code) {
		s.t.Fatalf("%s %s: got %d %q (%s), want %d %q", method, path, got, e.Error.Code, e.Error.Message, status, code)
	}
}

type lineList struct {
	Items []struct {
		ID    string `json:"id"`
		Kind  string `json:"kind"`
		Calls []struct {
			ID     string `json:"id"`
			State  string `json:"state"`
			Locked bool   `json:"locked"`
		} `json:"calls"`
	} `json:"items"`
}

// lineCall is the state of the single call shown on line (as seen by viewer).
func (s *sys) lineCall(viewer, tok, line string) (id, state string, locked bool) {
	s.t.Helper()
	var ls lineList
	if code := s.api("GET", "/v1/users/"+viewer+"/lines", tok, nil, &ls); code != 200 {
		s.t.Fatalf("lines of %s: %d", viewer, code)
	}
	for _, l := range ls.Items {
		if l.ID == line && len(l.Calls) > 0 {
			return l.Calls[0].ID, l.Calls[0].State, l.Calls[0].Locked
		}
	}
	return "", "", false
}

type historyList struct {
	Items []struct {
		Label     string `json:"label"`
		Direction string `json:"direction"`
		Line      string `json:"line"`
	} `json:"items"`
}

func (s *sys) labels(user string) []string {
	s.t.Helper()
	var h historyList
	s.api("GET", "/v1/users/"+user+"/history", "", nil, &h)
	var out []string
	for _, e := range h.Items {
		out = append(out, e.Label)
	}
	return out
}

// Dan shares his line with Ann (answer, pick up held calls, place calls)
// and Bob (answer, pick up). Alice calls Dan: Ann answers for him; Ann
// holds; a lock keeps Bob out; Dan and Bob race to pick up, one wins; the
// other takes the call over SIP with *8 after the winner holds; audio
// reaches Alice all along; history carries seed 000's labels.
func TestDelegation(t *testing.T) {
	s := startNode(t, nil)
	dan := s.user("dan", "1001", "dan-secret", "+14155550100")
	ann := s.user("ann", "1002", "ann-secret")
	bob := s.user("bob", "1003", "bob-secret")
	s.user("alice", "1004", "alice-secret")

	// Refusals, each with its documented status and code.
	s.expect("POST", "/v1/users/dan/delegates", ann.Token, map[string]any{"delegate": "bob", "privileges": []string{}}, 403, "forbidden")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{"fly"}}, 400, "invalid_field")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"privileges": []string{}}, 400, "invalid_field")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "nobody", "privileges": []string{}}, 404, "not_found")
	s.expect("PUT", "/v1/users/dan/vip", dan.Token, map[string]any{"enabled": true}, 422, "power_pack_required")
	s.expect("POST", "/v1/users/dan/vip/contacts", dan.Token, map[string]any{"contact": "+14155550199"}, 422, "vip_disabled")

	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{"answer_calls", "pickup_hold", "place_calls"}, "order": 0}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "bob", "privileges": []string{"answer_calls", "pickup_hold"}, "order": 1}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{}}, 409, "already_delegate")
	s.expect("POST", "/v1/users/ann/delegations/dan/accept", bob.Token, nil, 403, "forbidden")
	s.expect("POST", "/v1/users/ann/delegations/dan/accept", ann.Token, nil, 200, "")
	s.expect("POST", "/v1/users/bob/delegations/dan/accept", bob.Token, nil, 200, "")
	s.expect("POST", "/v1/users/ann/delegations/dan/opt-out", ann.Token, nil, 403, "missing_privilege")
	s.expect("PATCH", "/v1/users/dan", "", map[string]any{"power_pack": true}, 200, "")
	s.expect("PUT", "/v1/users/dan/vip", dan.Token, map[string]any{"enabled": true, "everybody_else": "voicemail"}, 422, "voicemail_disabled")

	danP := s.phone("dan", "dan-secret", nil)
	annP := s.phone("ann", "ann-secret", nil)
	bobP := s.phone("bob", "bob-secret", nil)
	alice := s.phone("alice", "alice-secret", nil)
	for _, p := range []*sipphone.Phone{danP, annP, bobP, alice} {
		s.registered(p)
	}
	ctx := ctxT(t, 30*time.Second)

	// Bob watches the line over SSE too (line.* events go to its delegates).
	bobEvents := s.events(ctx, bob.Token)

	// Bob's desk phone watches Dan's line (busy lamp, RFC 4235).
	if res, err := bobP.Subscribe(ctx, "1001", 600); err != nil || res.StatusCode != 200 {
		t.Fatalf("BLF subscribe: %v %v", res, err)
	}
	lamp(t, bobP, "the first NOTIFY, an idle line", func(b string) bool { return strings.Contains(b, `state="full"`) && !strings.Contains(b, "<dialog ") })

	// Alice calls Dan: Dan, Ann and Bob ring at once (VIP is off).
	done := make(chan error, 1)
	var out *sipphone.Call
	go func() {
		var err error
		out, err = alice.Dial(ctx, "1001", nil)
		done <- err
	}()
	danIn, annIn, bobIn := recvCall(t, danP), recvCall(t, annP), recvCall(t, bobP)
	if !strings.Contains(annIn.FromName, "for dan") {
		t.Fatalf("Ann's phone should show Dan's line ringing, From display %q", annIn.FromName)
	}
	if err := annIn.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("alice's call: %v", err)
	}
	for _, c := range []*sipphone.Call{danIn, bobIn} {
		select {
		case <-c.Ended():
		case <-time.After(5 * time.Second):
			t.Fatal("the other devices kept ringing after Ann answered")
		}
	}
	_ = out.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "Alice's audio at Ann", func() bool { return annIn.Received() >= 8 })
	lamp(t, bobP, "the lamp showing the call answered", func(b string) bool { return strings.Contains(b, "<state>confirmed</state>") })
	sse(t, bobEvents, "line.updated with the call active", func(ev string) bool {
		return strings.Contains(ev, "event: line.updated") && strings.Contains(ev, `"line":"dan"`) && strings.Contains(ev, `"state":"active"`)
	})
	callID, state, _ := s.lineCall("bob", bob.Token, "dan")
	if callID == "" || state != "active" {
		t.Fatalf("Bob's lines should show Dan's call active: %q %q", callID, state)
	}
	s.expect("GET", "/v1/calls/"+callID, bob.Token, nil, 200, "")
	s.talking(callID, "ann") // the delegate who answered for Dan
	var listed struct {
		Items []struct{ ID string } `json:"items"`
	}
	if s.api("GET", "/v1/calls", bob.Token, nil, &listed); len(listed.Items) != 1 || listed.Items[0].ID != callID {
		t.Fatalf("a delegate lists the calls on the lines they share: %+v", listed)
	}

	// Ann holds; Alice hears music.
	if err := annIn.Hold(ctx, "sendonly"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "the call held on Dan's line", func() bool { _, st, _ := s.lineCall("ann", ann.Token, "dan"); return st == "held" })
	lamp(t, bobP, "the lamp showing the call held", func(b string) bool { return strings.Contains(b, `pval="no"`) })
	before := out.Received()
	eventually(t, 3*time.Second, "hold music to Alice", func() bool { return out.Received() > before+10 })

	// Dan locks it: Bob can no longer pick it up; Ann cannot lock.
	s.expect("POST", "/v1/calls/"+callID+"/lock", ann.Token, nil, 403, "forbidden")
	s.expect("POST", "/v1/calls/"+callID+"/lock", dan.Token, nil, 200, "")
	s.expect("POST", "/v1/calls/"+callID+"/lock", dan.Token, nil, 409, "already_locked")
	if _, _, locked := s.lineCall("bob", bob.Token, "dan"); !locked {
		t.Fatal("the lock should show on the line")
	}
	lamp(t, bobP, "the lamp showing the call locked", func(b string) bool { return strings.Contains(b, "locked") })
	s.expect("POST", "/v1/calls/"+callID+"/pickup", bob.Token, nil, 403, "call_locked")
	zed := s.user("zed", "1009", "zed-secret")
	s.expect("POST", "/v1/calls/"+callID+"/pickup", zed.Token, nil, 403, "forbidden")
	s.expect("GET", "/v1/calls/"+callID, zed.Token, nil, 404, "not_found")
	s.expect("POST", "/v1/calls/"+callID+"/unlock", dan.Token, nil, 200, "")

	// Dan and Bob race to pick up: exactly one wins, the other gets 409.
	codes := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range []user{dan, bob} {
		wg.Add(1)
		go func(u user) {
			defer wg.Done()
			var e apiErr
			code := s.api("POST", "/v1/calls/"+callID+"/pickup", u.Token, nil, &e)
			mu.Lock()
			codes[u.ID] = code
			mu.Unlock()
		}(u)
	}
	wg.Wait()
	if !(codes["dan"] == 200 && codes["bob"] == 409 || codes["dan"] == 409 && codes["bob"] == 200) {
		t.Fatalf("pickup race: %v, want one 200 and one 409", codes)
	}
	winner, loser, winnerP, loserP := danP, bobP, "dan", "bob"
	if codes["bob"] == 200 {
		winner, loser, winnerP, loserP = bobP, danP, "bob", "dan"
	}
	picked := recvCall(t, winner)
	if err := picked.Answer(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-annIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Ann's held leg should end when the call is picked up")
	}
	eventually(t, 3*time.Second, "the picked-up call active", func() bool { _, st, _ := s.lineCall("dan", dan.Token, "dan"); return st == "active" })
	_ = out.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "Alice's audio at "+winnerP, func() bool { return picked.Received() >= 8 })
	got := out.Received()
	_ = picked.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, winnerP+"'s audio at Alice", func() bool { return out.Received() >= got+8 })

	// The winner holds; the loser takes it over SIP with *8<dan's extension>.
	if err := picked.Hold(ctx, "sendonly"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "held again", func() bool { _, st, _ := s.lineCall("dan", dan.Token, "dan"); return st == "held" })
	sipPick, err := loser.Dial(ctx, "*81001", nil)
	if err != nil {
		t.Fatalf("*8 pickup over SIP: %v", err)
	}
	select {
	case <-picked.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the holder's leg should end on a SIP pickup")
	}
	_ = out.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "Alice's audio after the SIP pickup", func() bool { return sipPick.Received() >= 8 })
	// The picker talks to Alice now; history still names Ann, who answered.
	s.talking(callID, loserP)
	// Nothing is left to pick up now.
	var rej *sipphone.ErrRejected
	if _, err := annP.Dial(ctx, "*81001", nil); !errors.As(err, &rej) || rej.Code != 404 {
		t.Fatalf("*8 with nothing held: want 404, got %v", err)
	}
	_ = out.Hangup(ctx)
	eventually(t, 3*time.Second, "the line idle", func() bool { id, _, _ := s.lineCall("dan", dan.Token, "dan"); return id == "" })

	// History: Dan sees who answered for him; Ann that she answered for Dan;
	// Bob, who shares the line, who answered it for Dan.
	want := map[string]string{"dan": "Answered by ann for you", "ann": "Answered by you for dan", "bob": "Answered by ann for dan"}
	eventually(t, 3*time.Second, "history labels", func() bool {
		for u, l := range want {
			if got := s.labels(u); len(got) != 1 || got[0] != l {
				return false
			}
		}
		return true
	})
}

// A delegate with Place Calls calls out on the delegator's line (SIP
// P-Preferred-Identity): the carrier sees the delegator's number. Without
// the privilege the call is refused with 403.
func TestCallOnBehalf(t *testing.T) {
	s := startNode(t, nil)
	dan := s.user("dan", "1001", "dan-secret", "+14155550100")
	s.user("ann", "1002", "ann-secret", "+14155550102")
	bob := s.user("bob", "1003", "bob-secret")
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2"; c.AutoAnswerOn = true })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}, "outbound": true}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "ann", "privileges": []string{"place_calls"}}, 201, "")
	s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": "bob", "privileges": []string{"answer_calls"}}, 201, "")
	s.expect("POST", "/v1/users/ann/delegations/dan/accept", "", nil, 200, "") // the admin force-accepts
	s.expect("POST", "/v1/users/bob/delegations/dan/accept", bob.Token, nil, 200, "")
	annP := s.phone("ann", "ann-secret", nil)
	bobP := s.phone("bob", "bob-secret", nil)
	s.registered(annP)
	s.registered(bobP)
	ctx := ctxT(t, 20*time.Second)

	c, err := annP.DialWith(ctx, "+12125550100", []string{"P-Preferred-Identity: <sip:1001@" + domain + ">"}, nil)
	if err != nil {
		t.Fatalf("call on behalf: %v", err)
	}
	in := recvCall(t, carrier)
	if in.From != "+14155550100" || !strings.Contains(in.PAI, "+14155550100") {
		t.Fatalf("the carrier should see Dan's number: from=%q pai=%q", in.From, in.PAI)
	}
	_ = c.Hangup(ctx)
	eventually(t, 3*time.Second, "labels of a call on behalf", func() bool {
		d, a := s.labels("dan"), s.labels("ann")
		return len(d) > 0 && len(a) > 0 && d[0] == "Outgoing by ann for you" && a[0] == "Outgoing by you for dan"
	})

	var rej *sipphone.ErrRejected
	if _, err := bobP.DialWith(ctx, "+12125550100", []string{"P-Preferred-Identity: <sip:dan@" + domain + ">"}, nil); !errors.As(err, &rej) || rej.Code != 403 {
		t.Fatalf("on behalf without place_calls: want 403, got %v", err)
	}

	// A carrier's P-Preferred-Identity asks for no line (a trunk asserts
	// its own callers): its call reaches Ann as any other, not a 403.
	dialed := make(chan error, 1)
	go func() {
		_, err := carrier.DialWith(ctx, "+14155550102", []string{"P-Preferred-Identity: <sip:1001@" + domain + ">"}, nil)
		dialed <- err
	}()
	if err := recvCall(t, annP).Reject(486); err != nil {
		t.Fatal(err)
	}
	if err := <-dialed; !errors.As(err, &rej) || rej.Code != 486 {
		t.Fatalf("a carrier's call with a P-Preferred-Identity: want Ann's 486, got %v", err)
	}
}

// lamp waits for a NOTIFY whose dialog-info body satisfies ok.
func lamp(t *testing.T, p *sipphone.Phone, what string, ok func(body string) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n := <-p.Notifies():
			if ok(n.Body) {
				return
			}
		case <-deadline:
			t.Fatalf("no NOTIFY with %s", what)
		}
	}
}

// With VIP delegation sending everybody else to the delegates only, a
// delegate's transfer to the delegator rings the other delegates; once the
// delegate is on the VIP list it reaches the delegator (001 L18).
func TestTransferToDelegatorNeedsVIP(t *testing.T) {
	s := startNode(t, nil)
	dan := s.user("dan", "1001", "dan-secret", "+14155550100")
	ann := s.user("ann", "1002", "ann-secret")
	s.user("bob", "1003", "bob-secret")
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	s.expect("POST", "/v1/trunks", "", map[string]any{"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}}, 201, "")
	s.expect("PATCH", "/v1/users/dan", "", map[string]any{"power_pack": true}, 200, "")
	for i, who := range []string{"ann", "bob"} {
		s.expect("POST", "/v1/users/dan/delegates", dan.Token, map[string]any{"delegate": who, "privileges": []string{"answer_calls"}, "order": i}, 201, "")
		s.expect("POST", "/v1/users/"+who+"/delegations/dan/accept", "", nil, 200, "")
	}
	s.expect("PUT", "/v1/users/dan/vip", dan.Token, map[string]any{"enabled": true, "vip_mode": "me_only", "everybody_else": "delegates_only", "ring_seconds": 30}, 200, "")
	danP, annP, bobP := s.phone("dan", "dan-secret", nil), s.phone("ann", "ann-secret", nil), s.phone("bob", "bob-secret", nil)
	for _, p := range []*sipphone.Phone{danP, annP, bobP} {
		s.registered(p)
	}
	ctx := ctxT(t, 30*time.Second)

	// The carrier calls Dan's number: Ann, the primary delegate, rings first.
	out, annIn := answered(t, ctx, carrier, "+14155550100", annP)
	callID, _, _ := s.lineCall("dan", dan.Token, "dan")

	// Ann transfers to Dan without being a VIP: Bob rings, not Dan.
	s.expect("POST", "/v1/calls/"+callID+"/transfer", ann.Token, map[string]any{}, 400, "invalid_field")
	s.expect("POST", "/v1/calls/"+callID+"/transfer", ann.Token, map[string]any{"to": "dan"}, 200, "")
	bobIn := recvCall(t, bobP)
	select {
	case <-danP.Incoming():
		t.Fatal("Dan rang for a delegate who is not on his VIP list")
	case <-time.After(500 * time.Millisecond):
	}
	_ = bobIn.Reject(486)
	eventually(t, 3*time.Second, "the call back with Ann", func() bool { _, st, _ := s.lineCall("dan", dan.Token, "dan"); return st == "active" })

	// On the VIP list, Ann's transfer reaches Dan; her leg ends when he answers.
	s.expect("POST", "/v1/users/dan/vip/contacts", dan.Token, map[string]any{"contact": "ann"}, 201, "")
	s.expect("POST", "/v1/calls/"+callID+"/transfer", ann.Token, map[string]any{"to": "1001"}, 200, "")
	danIn := recvCall(t, danP)
	if err := danIn.Answer(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-annIn.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("Ann's leg should end once Dan answers the transfer")
	}
	_ = out.SendRTP(10, 2*time.Millisecond)
	eventually(t, 3*time.Second, "the caller's audio at Dan", func() bool { return danIn.Received() >= 8 })
	_ = out.Hangup(ctx)
}

// events opens GET /v1/events with tok and delivers each event block.
func (s *sys) events(ctx context.Context, tok string) <-chan string {
	s.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		s.t.Fatalf("events: %v %v", res, err)
	}
	out := make(chan string, 256)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var block strings.Builder
		for sc.Scan() {
			if sc.Text() == "" {
				select {
				case out <- block.String():
				default:
				}
				block.Reset()
				continue
			}
			block.WriteString(sc.Text() + "\n")
		}
	}()
	return out
}

// sse waits for an event block that satisfies ok.
func sse(t *testing.T, ch <-chan string, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ok(ev) {
				return
			}
		case <-deadline:
			t.Fatalf("no event: %s", what)
		}
	}
}
