package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/bench/proc"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/freeport"
)

const (
	domain    = "switchboard.local"
	trunkIP   = "127.0.0.3" // the bench trunk is trusted by this source address
	calleeNum = "+14155550102"
	dlgNum    = "+14155550103" // the delegator of the delegated scenario
	password  = "bench-secret"
)

// node is the switchboard under test: one the harness started, or a
// running one (-sip/-http).
type node struct {
	p         *proc.Proc // nil for a node the harness did not start
	sip, http string
	token     string
	readyMs   int64
}

// startNode runs switchboard on loopback in dir: bin, or one it builds
// from this checkout when bin is empty.
func startNode(dir, bin, token, pprof string) (*node, error) {
	if bin == "" {
		bin = filepath.Join(dir, "switchboard")
		build := exec.Command("go", "build", "-o", bin, "github.com/switchboard/switchboard/cmd/switchboard")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build switchboard: %w", err)
		}
	}
	sipPort, err := freeport.Find("127.0.0.1")
	if err != nil {
		return nil, err
	}
	httpPort, err := freeport.Find("127.0.0.1")
	if err != nil {
		return nil, err
	}
	n := &node{sip: fmt.Sprintf("127.0.0.1:%d", sipPort), http: fmt.Sprintf("127.0.0.1:%d", httpPort), token: token}
	// As many RTP port pairs as the default range (5000), apart from
	// rtpengine's 20000-29999.
	args := []string{"--sip-addr", n.sip, "--http-addr", n.http, "--media-ip", "127.0.0.1",
		"--rtp-ports", "40000-49999", "--data-dir", filepath.Join(dir, "data"), "--etcd-listen", "127.0.0.1:0",
		"--node-id", "bench", "--admin-token", token, "--log-level", cmp.Or(os.Getenv("BENCH_NODE_LOG"), "error")}
	if pprof != "" {
		args = append(args, "--pprof-addr", pprof)
	}
	t0 := time.Now()
	logPath := filepath.Join(dir, "node.log")
	p, err := proc.Start(bin, logPath, args...)
	if err != nil {
		return nil, err
	}
	n.p = p
	if err := p.WaitHTTP("http://"+n.http+"/readyz", 30*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("switchboard at start: %w (log: %s)", err, logPath)
	}
	n.readyMs = time.Since(t0).Milliseconds()
	return n, nil
}

func (n *node) stop() {
	if n.p != nil {
		n.p.Stop()
	}
}

func (n *node) cpu() float64 {
	if n.p == nil {
		return 0
	}
	return n.p.CPU()
}

func (n *node) rss() int64 {
	if n.p == nil {
		return 0
	}
	return n.p.RSS()
}

func (n *node) api(method, path string, body any) (int, error) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+n.http+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// provision creates the callee, a delegator with two delegates, and the
// trunk the load enters through; existing ones (409) are fine.
func (n *node) provision() error {
	user := func(id, ext string, numbers ...string) map[string]any {
		return map[string]any{"id": id, "name": id, "extension": ext, "numbers": numbers, "sip_password": password}
	}
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/users", user("callee", "2000", calleeNum)},
		{"POST", "/v1/users", user("dan", "2001", dlgNum)},
		{"POST", "/v1/users", user("ann", "2002")},
		{"POST", "/v1/users", user("bob", "2003")},
		{"PATCH", "/v1/users/dan", map[string]any{"power_pack": true}},
		{"POST", "/v1/users/dan/delegates", map[string]any{"delegate": "ann", "privileges": []string{"answer_calls"}, "order": 0}},
		{"POST", "/v1/users/dan/delegates", map[string]any{"delegate": "bob", "privileges": []string{"answer_calls"}, "order": 1}},
		{"POST", "/v1/users/ann/delegations/dan/accept", nil},
		{"POST", "/v1/users/bob/delegations/dan/accept", nil},
		{"POST", "/v1/trunks", map[string]any{"id": "bench", "address": trunkIP + ":5999", "inbound_cidrs": []string{trunkIP + "/32"}}},
	} {
		code, err := n.api(r.method, r.path, r.body)
		if err != nil {
			return err
		}
		if code >= 300 && code != 409 {
			return fmt.Errorf("provision %s %s: status %d", r.method, r.path, code)
		}
	}
	return nil
}

// spreadUsers provisions count more users, u000…, with numbers
// +14155560000…, and returns their ids and numbers: setup load spread over
// many lines, as a business's traffic is, instead of every call on one
// user's line.
func (n *node) spreadUsers(count int) (ids, numbers []string, err error) {
	ids, numbers = make([]string, count), make([]string, count)
	for i := range count {
		ids[i] = fmt.Sprintf("u%03d", i)
		numbers[i] = fmt.Sprintf("+1415556%04d", i)
		body := map[string]any{"id": ids[i], "name": fmt.Sprintf("User %d", i), "extension": strconv.Itoa(3000 + i),
			"numbers": []string{numbers[i]}, "sip_password": password}
		code, err := n.api("POST", "/v1/users", body)
		if err != nil {
			return nil, nil, err
		}
		if code >= 300 && code != 409 {
			return nil, nil, fmt.Errorf("provision user %s: status %d", ids[i], code)
		}
	}
	return ids, numbers, nil
}

// ringMode sets the delegator's everybody-else mode ("" turns VIP
// delegation off: everybody rings at once).
func (n *node) ringMode(mode string) error {
	body := map[string]any{"enabled": false}
	if mode != "" {
		body = map[string]any{"enabled": true, "vip_mode": "me_only", "everybody_else": mode, "ring_seconds": 20}
	}
	code, err := n.api("PUT", "/v1/users/dan/vip", body)
	if err == nil && code != 200 {
		err = fmt.Errorf("PUT vip %v: status %d", body, code)
	}
	return err
}
