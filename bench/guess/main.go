// Command guess measures how fast an attacker can guess a SIP password:
// the same parallel wrong-password REGISTER client (svcrack's method: one
// challenge, then digest guesses as fast as answers come) runs from
// 127.0.0.5 against a node with the login limiter off and one with it on,
// in one run. It first looks for the password in a 101-word dictionary
// whose last word is right, as svcrack did, then guesses wrong passwords
// for -duration. It prints, per node, the guesses the node checked (the
// 403s of checked credentials in its /metrics) and the answers the client
// got, per second, and whether the right password still works from the
// attacker's address and from 127.0.0.1.
//
//	go run ./bench/guess                           # limiter off, then on
//	go run ./bench/guess -old /tmp/switchboard-old # and an older build first
//
// Every node it starts is stopped by its pid.
package main

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/bench/proc"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/freeport"
)

const (
	domain     = "switchboard.local"
	token      = "guess-bench-token"
	user       = "1001"
	password   = "right-password"
	attackerIP = "127.0.0.5"
	dictionary = 101 // words tried in the search, the right one last
)

func main() {
	workers := flag.Int("workers", 16, "parallel guessing sockets")
	duration := flag.Duration("duration", 5*time.Second, "how long wrong passwords are guessed at each node")
	bin := flag.String("bin", "", "switchboard binary (empty: build this checkout)")
	old := flag.String("old", "", "also measure this older build (no limiter flags), first")
	logLevel := flag.String("log-level", "info", "the nodes' --log-level (info logs every failed login, as a production node does)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "switchboard-guess-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		*bin = filepath.Join(dir, "switchboard")
		build := exec.Command("go", "build", "-o", *bin, "github.com/switchboard/switchboard/cmd/switchboard")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("build switchboard: %v", err)
		}
	}
	type target struct {
		name, bin string
		args      []string
	}
	targets := []target{{"limiter off", *bin, []string{"--auth-fail-limit=0"}}, {"limiter on", *bin, nil}}
	if *old != "" {
		targets = append([]target{{"older build", *old, nil}}, targets...)
	}
	fmt.Printf("%d sockets from %s, wrong passwords for %s per node\n\n", *workers, attackerIP, *duration)
	fmt.Printf("%-12s %10s %10s %11s %9s %20s %14s %14s\n", "node", "checked", "checked/s", "answered/s", "timeouts", "101-word search", "right from .5", "right from .1")
	for i, t := range targets {
		r, err := measure(filepath.Join(dir, strconv.Itoa(i)), t.bin, *logLevel, t.args, *workers, *duration)
		if err != nil {
			log.Fatalf("%s: %v", t.name, err)
		}
		fmt.Printf("%-12s %10.0f %10.1f %11.0f %9d %20s %14d %14d\n", t.name, r.checkedN, r.checked, r.answered, r.timeouts, r.found, r.rightFromAttacker, r.rightFromUser)
	}
}

type result struct {
	checked, answered float64 // per second
	checkedN          float64 // guesses checked while guessing for the duration
	timeouts          int64
	found             string
	rightFromAttacker int // status of the right password from attackerIP after the run
	rightFromUser     int // and from 127.0.0.1
}

func measure(dir, bin, logLevel string, extra []string, workers int, d time.Duration) (result, error) {
	var r result
	n, err := start(dir, bin, logLevel, extra)
	if err != nil {
		return r, err
	}
	defer n.p.Stop()
	body, _ := json.Marshal(map[string]any{"id": "victim", "name": "Victim", "extension": user, "sip_password": password})
	if code, err := n.post("/v1/users", body); err != nil || code != 201 {
		return r, fmt.Errorf("create the user: %d %v", code, err)
	}

	// The search: the dictionary spread over the sockets, the right word last.
	t0 := time.Now()
	var next atomic.Int64
	found := make(chan time.Duration, 1)
	r.found = "not found"
	err = attack(n.sip, workers, func(c *client) bool {
		i := next.Add(1)
		if i > dictionary {
			return false
		}
		guess := fmt.Sprintf("guess-%d", i)
		if i == dictionary {
			guess = password
		}
		if code, ok := c.try(guess); ok && code == 200 {
			found <- time.Since(t0)
		}
		return true
	})
	if err != nil {
		return r, err
	}
	select {
	case f := <-found:
		r.found = fmt.Sprintf("found in %.2f s", f.Seconds())
	default:
	}

	// The rate: wrong passwords for d.
	checked0, err := n.failures()
	if err != nil {
		return r, err
	}
	var answered, timeouts atomic.Int64
	deadline := time.Now().Add(d)
	t0 = time.Now()
	err = attack(n.sip, workers, func(c *client) bool {
		if time.Now().After(deadline) {
			return false
		}
		if _, ok := c.try("wrong-" + newID()); ok {
			answered.Add(1)
		} else {
			timeouts.Add(1)
		}
		return true
	})
	if err != nil {
		return r, err
	}
	elapsed := time.Since(t0).Seconds()
	checked, err := n.failures()
	if err != nil {
		return r, err
	}
	r.checkedN = checked - checked0
	r.checked, r.answered, r.timeouts = r.checkedN/elapsed, float64(answered.Load())/elapsed, timeouts.Load()

	for _, ip := range []struct {
		addr string
		code *int
	}{{attackerIP, &r.rightFromAttacker}, {"127.0.0.1", &r.rightFromUser}} {
		c, err := dial(ip.addr, n.sip)
		if err != nil {
			return r, err
		}
		*ip.code, _ = c.try(password)
		c.close()
	}
	return r, nil
}

// attack runs guess on workers sockets from attackerIP until it returns
// false.
func attack(server string, workers int, guess func(*client) bool) error {
	clients := make([]*client, workers)
	for i := range clients {
		c, err := dial(attackerIP, server)
		if err != nil {
			return err
		}
		defer c.close()
		clients[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for guess(c) {
			}
		}()
	}
	wg.Wait()
	return nil
}

// client is one guessing socket: it asks for a challenge once and answers
// it with every guess, counting nc up, as svcrack does.
type client struct {
	conn        *net.UDPConn
	server      string
	local       string
	callID, tag string
	cseq, nc    int
	nonce       string
	buf         []byte
}

func dial(ip, server string) (*client, error) {
	raddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, raddr)
	if err != nil {
		return nil, fmt.Errorf("socket on %s: %w", ip, err)
	}
	return &client{conn: conn, server: server, local: conn.LocalAddr().String(), callID: newID(), tag: newID(), buf: make([]byte, 65535)}, nil
}

func (c *client) close() { c.conn.Close() }

var nonceRe = regexp.MustCompile(`nonce="([^"]+)"`)

// try sends a REGISTER with password and returns the final status; ok is
// false when nothing came back within a second. Without a nonce yet it
// first fetches a challenge.
func (c *client) try(password string) (int, bool) {
	if c.nonce == "" {
		code, res, ok := c.send("")
		if !ok || code != 401 {
			return code, ok
		}
		m := nonceRe.FindSubmatch(res)
		if m == nil {
			return code, true
		}
		c.nonce = string(m[1])
	}
	c.nc++
	uri := "sip:" + c.server
	nc := fmt.Sprintf("%08x", c.nc)
	cnonce := newID()
	ha1 := md5hex(user + ":" + domain + ":" + password)
	ha2 := md5hex("REGISTER:" + uri)
	resp := md5hex(ha1 + ":" + c.nonce + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	code, res, ok := c.send(fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="%s"`+"\r\n",
		user, domain, c.nonce, uri, resp, nc, cnonce))
	if ok && code == 401 { // stale: a new nonce next time
		if m := nonceRe.FindSubmatch(res); m != nil {
			c.nonce = string(m[1])
		}
	}
	return code, ok
}

// send sends one REGISTER and reads its final answer.
func (c *client) send(auth string) (int, []byte, bool) {
	c.cseq++
	branch := "z9hG4bK" + newID()
	req := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=%s;rport\r\nMax-Forwards: 70\r\n"+
		"From: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s@%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@%s>\r\nExpires: 60\r\n%sContent-Length: 0\r\n\r\n",
		c.server, c.local, branch, user, domain, c.tag, user, domain, c.callID, c.cseq, user, c.local, auth)
	if _, err := c.conn.Write([]byte(req)); err != nil {
		return 0, nil, false
	}
	deadline := time.Now().Add(time.Second)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		n, err := c.conn.Read(c.buf)
		if err != nil {
			return 0, nil, false
		}
		res := c.buf[:n]
		// Only the answer to this request (not a late one, nor 100 Trying).
		if !bytes.Contains(res, []byte(branch)) {
			continue
		}
		line, _, _ := bytes.Cut(res, []byte("\r\n"))
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		code, _ := strconv.Atoi(f[1])
		if code >= 200 {
			return code, res, true
		}
	}
}

type node struct {
	p         *proc.Proc
	sip, http string
}

// start runs bin on loopback in dir and waits until it is ready.
func start(dir, bin, logLevel string, extra []string) (*node, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	sipPort, err := freeport.Find("127.0.0.1")
	if err != nil {
		return nil, err
	}
	httpPort, err := freeport.Find("127.0.0.1")
	if err != nil {
		return nil, err
	}
	n := &node{sip: fmt.Sprintf("127.0.0.1:%d", sipPort), http: fmt.Sprintf("127.0.0.1:%d", httpPort)}
	args := append([]string{"--sip-addr", n.sip, "--http-addr", n.http, "--media-ip", "127.0.0.1",
		"--rtp-ports", "41000-41099", "--data-dir", filepath.Join(dir, "data"), "--etcd-listen", "127.0.0.1:0",
		"--node-id", "guess", "--admin-token", token, "--domain", domain, "--log-level", logLevel, "--drain-timeout", "1s"}, extra...)
	logPath := filepath.Join(dir, "node.log")
	if n.p, err = proc.Start(bin, logPath, args...); err != nil {
		return nil, err
	}
	if err := n.p.WaitHTTP("http://"+n.http+"/readyz", 30*time.Second); err != nil {
		n.p.Stop()
		if errors.Is(err, proc.ErrExited) {
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("switchboard exited at start:\n%s", log)
		}
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return n, nil
}

func (n *node) post(path string, body []byte) (int, error) {
	req, _ := http.NewRequest("POST", "http://"+n.http+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// failures is the node's count of failed digests it checked:
// switchboard_sip_messages_dropped_total{reason="auth_failed"}, the 403s
// of checked credentials, which older builds count too (a refused blocked
// source is not counted there).
func (n *node) failures() (float64, error) {
	res, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, `switchboard_sip_messages_dropped_total{reason="auth_failed"} `); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
