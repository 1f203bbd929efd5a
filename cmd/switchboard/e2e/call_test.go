package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

func TestRegisterDigest(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	wrong := s.phone("alice", "not-her-password", nil)
	if res, err := wrong.Register(ctx, 300); err != nil || res.StatusCode != 403 {
		t.Fatalf("wrong password: want 403, got %v %v", res, err)
	}
	unknown := s.phone("nobody", "whatever-pass", nil)
	if res, err := unknown.Register(ctx, 300); err != nil || res.StatusCode != 403 {
		t.Fatalf("unknown user: want 403 after the challenge, got %v %v", res, err)
	}
	byExt := s.phone("1001", "alice-secret", nil)
	res, err := byExt.Register(ctx, 7200)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("register by extension: %v %v", res, err)
	}
	if c := res.GetHeader("Contact"); c == nil || !strings.Contains(c.Value(), "expires=3600") {
		t.Fatalf("granted expiry should be clamped to 3600: %v", res.GetHeader("Contact"))
	}
	res, err = byExt.Register(ctx, 30)
	if err != nil || res.StatusCode != 423 || res.GetHeader("Min-Expires") == nil || res.GetHeader("Min-Expires").Value() != "60" {
		t.Fatalf("Expires 30: want 423 with Min-Expires 60, got %v %v", res, err)
	}
	res, err = byExt.Register(ctx, 0)
	if err != nil || res.StatusCode != 200 || res.GetHeader("Contact") != nil {
		t.Fatalf("Expires 0 should remove the binding: %v %v", res, err)
	}
}

// Alice calls Bob, who has a desk phone and a softphone: both ring, the
// desk phone answers, the softphone is cancelled; audio flows both ways
// through the relay; Alice holds (Bob hears the tone) and resumes; Bob hangs up.
func TestCallForkAnswerHoldResume(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	alice := s.phone("alice", "alice-secret", nil)
	desk := s.phone("bob", "bob-secret", nil)
	soft := s.phone("1002", "bob-secret", nil)
	s.registered(alice)
	s.registered(desk)
	s.registered(soft)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type dialed struct {
		c   *sipphone.Call
		err error
	}
	done := make(chan dialed, 1)
	rang := make(chan int, 8)
	go func() {
		c, err := alice.Dial(ctx, "1002", func(code int) { rang <- code })
		done <- dialed{c, err}
	}()
	deskCall := recvCall(t, desk)
	softCall := recvCall(t, soft)
	select {
	case code := <-rang:
		if code != 180 {
			t.Fatalf("caller should hear 180, got %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("caller never heard ringing")
	}
	if err := deskCall.Answer(); err != nil {
		t.Fatalf("answer: %v", err)
	}
	d := <-done
	if d.err != nil {
		t.Fatalf("dial: %v", d.err)
	}
	a := d.c
	select {
	case <-softCall.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("the losing branch was not cancelled")
	}
	if !strings.Contains(a.RemoteSDP(), "c=IN IP4 127.0.0.1") || strings.Contains(a.RemoteSDP(), deskCall.MediaAddr()) {
		t.Fatalf("caller's SDP must name the relay, not the callee: %s", a.RemoteSDP())
	}

	var calls struct {
		Items []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"items"`
	}
	if code := s.api("GET", "/v1/calls", "", nil, &calls); code != 200 || len(calls.Items) != 1 || calls.Items[0].State != "active" {
		t.Fatalf("GET /v1/calls: %d %+v", code, calls)
	}

	// Two-way audio through the relay, counted on arrival.
	if err := a.SendRTP(50, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := deskCall.SendRTP(50, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "RTP both ways", func() bool { return deskCall.Received() >= 45 && a.Received() >= 45 })

	// Hold: Bob hears the hold tone though Alice sends nothing.
	if err := a.Hold(ctx, "sendonly"); err != nil {
		t.Fatalf("hold: %v", err)
	}
	eventually(t, 3*time.Second, "call held", func() bool {
		s.api("GET", "/v1/calls", "", nil, &calls)
		return len(calls.Items) == 1 && calls.Items[0].State == "held"
	})
	before := deskCall.Received()
	eventually(t, 3*time.Second, "hold tone at the held party", func() bool { return deskCall.Received() > before+20 })

	if err := a.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	eventually(t, 3*time.Second, "call active again", func() bool {
		s.api("GET", "/v1/calls", "", nil, &calls)
		return len(calls.Items) == 1 && calls.Items[0].State == "active"
	})
	got := a.Received()
	if err := deskCall.SendRTP(20, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "audio after resume", func() bool { return a.Received() >= got+18 })

	if err := deskCall.Hangup(ctx); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	select {
	case <-a.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("caller got no BYE")
	}
	var hist struct {
		Items []struct {
			Direction string `json:"direction"`
			Peer      string `json:"peer"`
			Outcome   string `json:"outcome"`
		} `json:"items"`
	}
	eventually(t, 3*time.Second, "history for both parties", func() bool {
		s.api("GET", "/v1/users/bob/history", "", nil, &hist)
		return len(hist.Items) == 1
	})
	if h := hist.Items[0]; h.Direction != "inbound" || h.Peer != "1001" || h.Outcome != "answered" {
		t.Fatalf("bob's history: %+v", h)
	}
	s.api("GET", "/v1/users/alice/history", "", nil, &hist)
	if len(hist.Items) != 1 || hist.Items[0].Direction != "outbound" || hist.Items[0].Peer != "1002" {
		t.Fatalf("alice's history: %+v", hist.Items)
	}
}

func TestCancelBeforeAnswer(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	alice := s.phone("alice", "alice-secret", nil)
	bob := s.phone("bob", "bob-secret", nil)
	s.registered(alice)
	s.registered(bob)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := alice.Dial(ctx, "1002", nil)
		errc <- err
	}()
	in := recvCall(t, bob)
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("a cancelled call must not be answered")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dial did not return after cancel")
	}
	select {
	case <-in.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("callee kept ringing after CANCEL")
	}
}

func TestUnknownUnreachableAndBusy(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	s.user("carol", "1003", "carol-secret")
	alice := s.phone("alice", "alice-secret", nil)
	carol := s.phone("carol", "carol-secret", nil)
	s.registered(alice)
	s.registered(carol)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rej *sipphone.ErrRejected
	if _, err := alice.Dial(ctx, "1999", nil); !errors.As(err, &rej) || rej.Code != 404 {
		t.Fatalf("unknown extension: want 404, got %v", err)
	}
	if _, err := alice.Dial(ctx, "1002", nil); !errors.As(err, &rej) || rej.Code != 480 {
		t.Fatalf("unregistered user: want 480, got %v", err)
	}
	go func() {
		c := recvCall(t, carol)
		_ = c.Reject(486)
	}()
	if _, err := alice.Dial(ctx, "1003", nil); !errors.As(err, &rej) || rej.Code != 486 {
		t.Fatalf("busy callee: want 486, got %v", err)
	}
	// A phone that requires SRTP refuses our plain offer: the caller hears
	// why (488), not that nobody is there (480).
	go func() {
		c := recvCall(t, carol)
		_ = c.Reject(488)
	}()
	if _, err := alice.Dial(ctx, "1003", nil); !errors.As(err, &rej) || rej.Code != 488 {
		t.Fatalf("callee refusing the offer: want 488, got %v", err)
	}
}

// A call from a user to an outside number leaves through the trunk with the
// user's number in From and P-Asserted-Identity; a call from the trunk to a
// user's number rings the user. The trunk's carrier lives on 127.0.0.2.
func TestTrunkOutAndIn(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret", "+14155550101")
	carrier := s.phone("carrier", "", func(c *sipphone.Config) { c.IP = "127.0.0.2" })
	if code := s.api("POST", "/v1/trunks", "", map[string]any{
		"id": "carrier", "address": carrier.Addr(), "inbound_cidrs": []string{"127.0.0.2/32"}, "outbound": true,
	}, nil); code != 201 {
		t.Fatalf("create trunk: %d", code)
	}
	alice := s.phone("alice", "alice-secret", nil)
	s.registered(alice)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan error, 1)
	var out *sipphone.Call
	go func() {
		var err error
		out, err = alice.Dial(ctx, "+14155559999", nil)
		done <- err
	}()
	in := recvCall(t, carrier)
	if in.From != "+14155550101" || !strings.Contains(in.PAI, "+14155550101") {
		t.Fatalf("carrier should see the caller's number in From and PAI: from=%q pai=%q", in.From, in.PAI)
	}
	if in.Request.Recipient.User != "+14155559999" {
		t.Fatalf("request URI user: %q", in.Request.Recipient.User)
	}
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("outbound call: %v", err)
	}
	_ = out.SendRTP(20, 2*time.Millisecond)
	eventually(t, 3*time.Second, "RTP to the carrier", func() bool { return in.Received() >= 18 })
	_ = out.Hangup(ctx)

	// Inbound: the carrier calls Alice's number; no digest is asked of a trunk.
	go func() {
		c := recvCall(t, alice)
		_ = c.Answer()
	}()
	c, err := carrier.Dial(ctx, "+14155550101", nil)
	if err != nil {
		t.Fatalf("inbound call: %v", err)
	}
	_ = c.Hangup(ctx)
	var rej *sipphone.ErrRejected
	if _, err := carrier.Dial(ctx, "+14155550199", nil); !errors.As(err, &rej) || rej.Code != 404 {
		t.Fatalf("trunk to a number nobody owns: want 404, got %v", err)
	}
}

// SRTP on the caller's leg, plain RTP on the callee's: the relay decrypts
// and encrypts per leg with each leg's own keys.
func TestSRTPToPlain(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	alice := s.phone("alice", "alice-secret", func(c *sipphone.Config) { c.SRTP = true })
	bob := s.phone("bob", "bob-secret", func(c *sipphone.Config) { c.AutoAnswerOn = true })
	s.registered(alice)
	s.registered(bob)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := alice.Dial(ctx, "1002", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.RemoteSDP(), "RTP/SAVP") || !strings.Contains(a.RemoteSDP(), "a=crypto:") {
		t.Fatalf("SRTP caller must get an SRTP answer: %s", a.RemoteSDP())
	}
	b := recvCall(t, bob)
	<-b.Answered()
	if strings.Contains(b.Request.String(), "RTP/SAVP") {
		t.Fatal("plain callee must be offered plain RTP")
	}
	_ = a.SendRTP(30, 2*time.Millisecond)
	_ = b.SendRTP(30, 2*time.Millisecond)
	eventually(t, 3*time.Second, "SRTP<->RTP both ways", func() bool { return a.Received() >= 27 && b.Received() >= 27 })
	_ = a.Hangup(ctx)
}
