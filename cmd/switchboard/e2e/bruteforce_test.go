package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api/authguard"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// attackerIP is another loopback address: Linux answers on all of 127/8.
const attackerIP = "127.0.0.5"

// logBuffer keeps a node's log lines for the test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// lines are the logged lines holding every one of words.
func (l *logBuffer) lines(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.buf.String(), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			out = append(out, line)
		}
	}
	return out
}

func guardedNode(t *testing.T) (*sys, *logBuffer) {
	logs := &logBuffer{}
	s := startNode(t, func(c *nodeConfig) {
		c.AuthGuard = authguard.Defaults()
		c.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return s, logs
}

// A flood of wrong passwords from 127.0.0.5: after the limit its requests
// are refused unchecked, even with the right password, while the real
// user registers from 127.0.0.1. Each failure and the block are logged with
// the source, and counted.
func TestPasswordFloodBlocked(t *testing.T) {
	s, logs := guardedNode(t)
	s.user("alice", "1001", "alice-secret")
	ctx := ctxT(t, 30*time.Second)
	failures0 := metric(t, s, `switchboard_auth_failures_total{kind="sip"}`)
	refused0 := metric(t, s, `switchboard_auth_refused_total{kind="sip"}`)
	blocks0 := metric(t, s, `switchboard_auth_blocks_total{kind="sip",reason="source"}`)

	const workers, each = 8, 10
	var wg sync.WaitGroup
	for range workers {
		p := s.phone("1001", "not-her-password", func(c *sipphone.Config) { c.IP = attackerIP })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				res, err := p.Register(ctx, 300)
				if err != nil || res.StatusCode != 403 {
					t.Errorf("wrong password from %s: %v %v, want 403", attackerIP, res, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	right := s.phone("1001", "alice-secret", func(c *sipphone.Config) { c.IP = attackerIP })
	if res, err := right.Register(ctx, 300); err != nil || res.StatusCode != 403 {
		t.Fatalf("right password from the blocked %s: %v %v, want 403", attackerIP, res, err)
	}
	s.registered(s.phone("alice", "alice-secret", nil)) // the real alice, from 127.0.0.1

	// Only the first few guesses were checked: the limit, and those
	// already in flight when the block came.
	checked := metric(t, s, `switchboard_auth_failures_total{kind="sip"}`) - failures0
	if checked < 10 || checked > 10+workers {
		t.Errorf("%v guesses checked, want 10 to %d", checked, 10+workers)
	}
	if refused := metric(t, s, `switchboard_auth_refused_total{kind="sip"}`) - refused0; refused < workers*each-checked {
		t.Errorf("%v requests refused unchecked, want at least %v", refused, workers*each-checked)
	}
	if blocks := metric(t, s, `switchboard_auth_blocks_total{kind="sip",reason="source"}`) - blocks0; blocks != 1 {
		t.Errorf("%v blocks, want 1", blocks)
	}
	if v := metric(t, s, `switchboard_auth_blocked_sources{kind="sip"}`); v != 1 {
		t.Errorf("blocked sources gauge %v, want 1", v)
	}
	if n := len(logs.lines("level=INFO", "sip: login failed", "source="+attackerIP+":", "user=1001")); n != int(checked) {
		t.Errorf("%d failed logins logged with source and user, want %v", n, checked)
	}
	if n := len(logs.lines("level=WARN", "source blocked", "source="+attackerIP+"/32", "for=10m0s")); n != 1 {
		t.Errorf("%d blocks logged with source and duration, want 1:\n%s", n, strings.Join(logs.lines("blocked"), "\n"))
	}
}

// Invalid REST tokens from 127.0.0.5: past the limit its further invalid
// tokens get 429 with Retry-After, while the admin token is served from
// 127.0.0.5 (behind a reverse proxy every client has the guesser's
// address) and from 127.0.0.1.
func TestTokenGuessingRefused(t *testing.T) {
	s, logs := guardedNode(t)
	refused0 := metric(t, s, `switchboard_auth_refused_total{kind="rest"}`)
	attacker := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(attackerIP)},
	}).DialContext}}
	get := func(c *http.Client, tok string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), "GET", s.base+"/v1/users", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for range 10 {
		if res := get(attacker, "guessed-token"); res.StatusCode != 401 {
			t.Fatalf("invalid token: %d, want 401", res.StatusCode)
		}
	}
	for range 3 {
		if res := get(attacker, "guessed-token"); res.StatusCode != 429 || res.Header.Get("Retry-After") != "600" {
			t.Fatalf("invalid token from the blocked source: %d, Retry-After %q; want 429, 600", res.StatusCode, res.Header.Get("Retry-After"))
		}
	}
	if res := get(attacker, s.token); res.StatusCode != 200 {
		t.Fatalf("admin token from the blocked source: %d, want 200", res.StatusCode)
	}
	if res := get(http.DefaultClient, s.token); res.StatusCode != 200 {
		t.Fatalf("admin token from 127.0.0.1: %d, want 200", res.StatusCode)
	}
	if v := metric(t, s, `switchboard_auth_refused_total{kind="rest"}`) - refused0; v != 3 {
		t.Errorf("%v invalid tokens refused, want 3", v)
	}
	if v := metric(t, s, `switchboard_auth_blocked_sources{kind="rest"}`); v != 1 {
		t.Errorf("blocked REST sources gauge %v, want 1", v)
	}
	if n := len(logs.lines("level=WARN", "rest: source blocked", "source="+attackerIP+"/32")); n != 1 {
		t.Errorf("%d blocks logged with the source, want 1", n)
	}
}

// Failures are counted only against an address that received its
// challenge: answers over a nonce issued to another address, and
// credentials that do not parse, are what a forger of 127.0.0.5's address
// can send without seeing its traffic, and they must not get 127.0.0.5
// blocked.
func TestForgedFailuresDoNotBlock(t *testing.T) {
	s, _ := guardedNode(t)
	s.user("alice", "1001", "alice-secret")
	to, _ := net.ResolveUDPAddr("udp", s.n.SIPAddr())
	listen := func(ip string) *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	register := func(c *net.UDPConn, auth string) string {
		msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-f%d\r\nMax-Forwards: 70\r\n"+
			"From: <sip:1001@%s>;tag=f1\r\nTo: <sip:1001@%s>\r\nCall-ID: forged-%d\r\nCSeq: 1 REGISTER\r\n"+
			"Contact: <sip:1001@%s>\r\n%sContent-Length: 0\r\n\r\n", domain, c.LocalAddr(), time.Now().UnixNano(), domain, domain, time.Now().UnixNano(), c.LocalAddr(), auth)
		return sendUDP(t, c, to, []byte(msg))
	}
	// A nonce the node issued to 127.0.0.6.
	ch := register(listen("127.0.0.6"), "")
	_, rest, _ := strings.Cut(header(ch, "WWW-Authenticate"), `nonce="`)
	nonce, _, _ := strings.Cut(rest, `"`)
	if nonce == "" {
		t.Fatalf("no nonce in %q", firstLine(ch))
	}
	failures0 := metric(t, s, `switchboard_auth_failures_total{kind="sip"}`)
	forger := listen(attackerIP)
	for i := range 30 {
		auth := fmt.Sprintf(`Authorization: Digest username="1001", realm=%q, nonce=%q, uri="sip:%s", response="%032d", algorithm=MD5, qop=auth, nc=00000001, cnonce="c%d"`+"\r\n", domain, nonce, domain, i, i)
		if i%2 == 1 {
			auth = "Authorization: Digest username=\"1001\r\n"
		}
		if res := register(forger, auth); strings.HasPrefix(res, "SIP/2.0 403") {
			t.Fatalf("forged answer %d: %q (counted against %s)", i, firstLine(res), attackerIP)
		}
	}
	if d := metric(t, s, `switchboard_auth_failures_total{kind="sip"}`) - failures0; d != 0 {
		t.Fatalf("%v forged failures counted", d)
	}
	p := s.phone("1001", "alice-secret", func(c *sipphone.Config) { c.IP = attackerIP })
	s.registered(p)
}
