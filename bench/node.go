package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	name      string     // its target name in a ladder: switchboard, or base (-base)
	p         *proc.Proc // nil for a node the harness did not start
	sip, http string
	token     string
	pprof     string // where it serves /debug/pprof (empty: nowhere)
	readyMs   int64
	spec      nodeSpec // what it was started with (bin: the binary built)
	dir       string   // the run's folder
	starts    int      // how many nodes this one has been (restart)
}

// nodeSpec is a node for the harness to start: its binary (empty: build
// this checkout), its RTP ports, and where it serves pprof (empty:
// nowhere). Its data and log are named after it in the run's folder.
type nodeSpec struct {
	name, bin, token, pprof, rtpPorts string
}

// startNode runs switchboard on loopback in dir.
func startNode(dir string, s nodeSpec) (*node, error) {
	bin := s.bin
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
	s.bin = bin
	n := &node{name: s.name, sip: fmt.Sprintf("127.0.0.1:%d", sipPort), http: fmt.Sprintf("127.0.0.1:%d", httpPort), token: s.token, pprof: s.pprof, spec: s, dir: dir}
	args := []string{"--sip-addr", n.sip, "--http-addr", n.http, "--media-ip", "127.0.0.1",
		"--rtp-ports", s.rtpPorts, "--data-dir", filepath.Join(dir, "data-"+s.name), "--etcd-listen", "127.0.0.1:0",
		"--node-id", "bench", "--admin-token", s.token, "--log-level", cmp.Or(os.Getenv("BENCH_NODE_LOG"), "error")}
	if s.pprof != "" {
		args = append(args, "--pprof-addr", s.pprof)
	}
	t0 := time.Now()
	logPath := filepath.Join(dir, s.name+".log")
	p, err := proc.Start(bin, logPath, args...)
	if err != nil {
		return nil, err
	}
	n.p = p
	if err := p.WaitHTTP("http://"+n.http+"/readyz", 30*time.Second); err != nil {
		p.Stop()
		return nil, fmt.Errorf("%s at start: %w (log: %s)", s.name, err, logPath)
	}
	n.readyMs = time.Since(t0).Milliseconds()
	return n, nil
}

// restart replaces a node the harness started by a new one of the same
// spec, with empty data, provisioned: a measurement of memory per call then
// starts from a node that has carried nothing. The first node's data and
// log are kept as <name>-<k>. A running node (-sip) is kept as it is.
func (n *node) restart() error {
	if n.p == nil {
		return nil
	}
	n.stop()
	n.starts++
	for _, f := range []string{"data-" + n.spec.name, n.spec.name + ".log"} {
		old := filepath.Join(n.dir, f)
		if err := os.Rename(old, fmt.Sprintf("%s-%d", old, n.starts)); err != nil {
			return fmt.Errorf("restart %s: %w", n.name, err)
		}
	}
	fresh, err := startNode(n.dir, n.spec)
	if err != nil {
		return err
	}
	fresh.starts = n.starts
	*n = *fresh
	return n.provision()
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

func (n *node) userCPU() float64 {
	if n.p == nil {
		return 0
	}
	return n.p.UserCPU()
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

// profileCPU records the node's CPU profile over the next d into path (a
// pprof file for `go tool pprof`) while the caller offers load; the
// returned wait gives the outcome once it is written.
func (n *node) profileCPU(path string, d time.Duration) (wait func() error) {
	done := make(chan error, 1)
	go func() {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", n.pprof, int(d.Seconds()))
		res, err := (&http.Client{Timeout: d + 30*time.Second}).Get(url)
		if err != nil {
			done <- fmt.Errorf("profile %s: %w", n.name, err)
			return
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			done <- fmt.Errorf("profile %s: %s", n.name, res.Status)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			done <- fmt.Errorf("profile %s: %w", n.name, err)
			return
		}
		_, err = io.Copy(f, res.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			err = fmt.Errorf("profile %s: %w", n.name, err)
		}
		done <- err
	}()
	return func() error { return <-done }
}

// goStats is what the Go runtime of a node reports in /metrics of its
// allocations and collections so far.
type goStats struct{ mallocs, bytes, gcs float64 }

// goStats reads the node's allocation counters (zeroes when it cannot).
func (n *node) goStats() goStats {
	res, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return goStats{}
	}
	defer res.Body.Close()
	var s goStats
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_mallocs_total":
			s.mallocs = v
		case "go_memstats_alloc_bytes_total":
			s.bytes = v
		case "go_gc_duration_seconds_count":
			s.gcs = v
		}
	}
	return s
}
