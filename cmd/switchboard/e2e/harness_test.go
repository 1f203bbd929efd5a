package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
	"github.com/switchboard/switchboard/cmd/switchboard/node"
)

const domain = "switchboard.test"

type sys struct {
	t     testing.TB
	n     *node.Node
	token string
	base  string
}

// rtpBase spreads packages' media port ranges apart (go test runs packages
// in parallel).
var rtpBase = 31000

func startNode(t testing.TB, mod func(*node.Config)) *sys {
	t.Helper()
	lvl := slog.LevelWarn
	if os.Getenv("E2E_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	cfg := node.Config{
		SIPAddr:      "127.0.0.1:0",
		HTTPAddr:     "127.0.0.1:0",
		MediaIP:      "127.0.0.1",
		RTPPorts:     fmt.Sprintf("%d-%d", rtpBase, rtpBase+399),
		DataDir:      t.TempDir(),
		EtcdListen:   "127.0.0.1:0",
		NodeID:       "n1",
		ClusterAddr:  "127.0.0.1:0",
		Domain:       domain,
		AdminToken:   "test-admin-token",
		DrainTimeout: 2 * time.Second,
		RTPTimeout:   30 * time.Second,
		Log:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.Close)
	return &sys{t: t, n: n, token: n.AdminToken(), base: "http://" + n.HTTPAddr()}
}

// api calls the REST API with the admin token (or tok) and decodes into out.
func (s *sys) api(method, path, tok string, body any, out any) int {
	s.t.Helper()
	if tok == "" {
		tok = s.token
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

type user struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

func (s *sys) user(id, ext, pass string, numbers ...string) user {
	s.t.Helper()
	var u user
	body := map[string]any{"id": id, "name": id, "extension": ext, "sip_password": pass}
	if len(numbers) > 0 {
		body["numbers"] = numbers
	}
	if code := s.api("POST", "/v1/users", "", body, &u); code != 201 {
		s.t.Fatalf("create user %s: status %d", id, code)
	}
	return u
}

func (s *sys) phone(user, pass string, mod func(*sipphone.Config)) *sipphone.Phone {
	s.t.Helper()
	cfg := sipphone.Config{User: user, Password: pass, Domain: domain, Server: s.sipServer()}
	if mod != nil {
		mod(&cfg)
	}
	p, err := sipphone.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(p.Close)
	return p
}

func (s *sys) registered(p *sipphone.Phone) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.Register(ctx, 300)
	if err != nil || res.StatusCode != 200 {
		s.t.Fatalf("register: %v %v", res, err)
	}
}

// eventually polls cond until it holds or d passes; for effects that travel
// over sockets (packets, SIP), not for rules (those are tested with a fake
// clock in the cores).
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func recvCall(t *testing.T, p *sipphone.Phone) *sipphone.Call {
	t.Helper()
	select {
	case c := <-p.Incoming():
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no incoming call")
	}
	return nil
}

type nodeConfig = node.Config

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sipPort is the port the node's SIP bound (its --sip-addr names 0).
func (s *sys) sipPort() int {
	s.t.Helper()
	ap, err := netip.ParseAddrPort(s.n.SIPAddr())
	if err != nil {
		s.t.Fatalf("SIP address %q: %v", s.n.SIPAddr(), err)
	}
	return int(ap.Port())
}

// sipServer is where a phone reaches the node: its SIP address, or
// loopback when the node listens on every address.
func (s *sys) sipServer() string {
	ap, err := netip.ParseAddrPort(s.n.SIPAddr())
	if err == nil && ap.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port()).String()
	}
	return s.n.SIPAddr()
}

// answered has caller dial target and callee answer the one call it gets;
// it returns both ends once the caller has the 200.
func answered(t *testing.T, ctx context.Context, caller *sipphone.Phone, target string, callee *sipphone.Phone) (out, in *sipphone.Call) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		var err error
		out, err = caller.Dial(ctx, target, nil)
		done <- err
	}()
	in = recvCall(t, callee)
	if err := in.Answer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("%s dialling %s: %v", caller.Addr(), target, err)
	}
	return out, in
}
