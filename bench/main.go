// Command bench drives a switchboard node as real endpoints would: SIP over
// UDP with digest registration, calls entering through a trunk, real 20 ms
// PCMU RTP both ways. It prints a table and writes a JSON result.
//
//	go run ./bench -scenario calls -rate 100 -duration 10s
//	go run ./bench -scenario concurrent -calls 1000 -duration 20s
//	go run ./bench -scenario register -rate 200 -duration 10s
//
// By default it builds and starts its own node on loopback and stops it by
// pid at the end; -sip/-http/-token point it at a running one instead.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api/sip/sipphone"
)

const (
	domain     = "switchboard.local"
	trunkIP    = "127.0.0.3"
	calleeNum  = "+14155550102"
	calleePass = "bench-secret"
)

type result struct {
	Scenario     string         `json:"scenario"`
	Offered      float64        `json:"offered_per_s"`
	Achieved     float64        `json:"achieved_per_s"`
	Attempted    int64          `json:"attempted"`
	Succeeded    int64          `json:"succeeded"`
	Failed       map[string]int `json:"failed_by_reason"`
	SetupP50ms   float64        `json:"setup_p50_ms"`
	SetupP95ms   float64        `json:"setup_p95_ms"`
	SetupP99ms   float64        `json:"setup_p99_ms"`
	Concurrent   int            `json:"concurrent_calls"`
	RTPSent      int64          `json:"rtp_sent"`
	RTPReceived  int64          `json:"rtp_received"`
	LossPct      float64        `json:"loss_pct"`
	ServerCPUs   float64        `json:"server_cpu_seconds"`
	ServerRSSKB  int64          `json:"server_rss_kb"`
	RSSPerCallKB float64        `json:"server_rss_per_call_kb,omitempty"`
	CPUPerCallMs float64        `json:"server_cpu_ms_per_call,omitempty"`
	ReadyMs      int64          `json:"time_to_ready_ms,omitempty"`
}

func main() {
	scenario := flag.String("scenario", "calls", "calls | concurrent | register")
	rate := flag.Float64("rate", 100, "calls (or registrations) per second to offer")
	duration := flag.Duration("duration", 10*time.Second, "how long to offer load (concurrent: how long calls stay up)")
	calls := flag.Int("calls", 100, "concurrent: calls to hold open")
	out := flag.String("out", "bench-result.json", "JSON result file")
	sipAddr := flag.String("sip", "", "SIP address of a running node (empty: start one)")
	httpAddr := flag.String("http", "", "HTTP address of a running node")
	token := flag.String("token", "bench-token", "admin token")
	flag.Parse()

	var srv *server
	if *sipAddr == "" {
		var err error
		if srv, err = startServer(*token); err != nil {
			log.Fatal(err)
		}
		defer srv.stop()
		*sipAddr, *httpAddr = srv.sip, srv.http
	}
	b := &bench{sip: *sipAddr, http: "http://" + *httpAddr, token: *token, srv: srv}
	if err := b.provision(); err != nil {
		log.Fatal(err)
	}
	var r result
	switch *scenario {
	case "calls":
		r = b.calls(*rate, *duration)
	case "concurrent":
		r = b.concurrent(*calls, *duration)
	case "register":
		r = b.register(*rate, *duration)
	default:
		log.Fatalf("unknown scenario %q", *scenario)
	}
	r.Scenario = *scenario
	if srv != nil {
		r.ReadyMs = srv.readyMs
	}
	printResult(r)
	data, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	sip, http, token string
	srv              *server
}

func (b *bench) api(method, path string, body any) (int, error) {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, b.http+path, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func (b *bench) provision() error {
	for _, r := range []struct {
		path string
		body any
	}{
		{"/v1/users", map[string]any{"id": "callee", "name": "Callee", "extension": "2000", "numbers": []string{calleeNum}, "sip_password": calleePass}},
		{"/v1/trunks", map[string]any{"id": "bench", "address": trunkIP + ":5999", "inbound_cidrs": []string{trunkIP + "/32"}}},
	} {
		code, err := b.api("POST", r.path, r.body)
		if err != nil {
			return err
		}
		if code != 201 && code != 409 {
			return fmt.Errorf("provision %s: status %d", r.path, code)
		}
	}
	return nil
}

func (b *bench) phones() (caller, callee *sipphone.Phone, err error) {
	callee, err = sipphone.New(sipphone.Config{User: "callee", Password: calleePass, Domain: domain, Server: b.sip, AutoAnswerOn: true, Backlog: 100000})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := callee.Register(ctx, 3600); err != nil || res.StatusCode != 200 {
		return nil, nil, fmt.Errorf("register callee: %v %v", res, err)
	}
	caller, err = sipphone.New(sipphone.Config{User: "carrier", Domain: domain, Server: b.sip, IP: trunkIP})
	return caller, callee, err
}

// dial places one call and returns its setup time (INVITE to first ringing
// or answer) or a failure reason.
func dial(ctx context.Context, p *sipphone.Phone) (*sipphone.Call, time.Duration, string) {
	start := time.Now()
	var setup time.Duration
	c, err := p.Dial(ctx, calleeNum, func(int) {
		if setup == 0 {
			setup = time.Since(start)
		}
	})
	if err != nil {
		if rej, ok := err.(*sipphone.ErrRejected); ok {
			return nil, 0, strconv.Itoa(rej.Code)
		}
		return nil, 0, "timeout_or_transport"
	}
	if setup == 0 {
		setup = time.Since(start)
	}
	return c, setup, ""
}

// calls offers rate calls per second for d; each call is hung up at once.
func (b *bench) calls(rate float64, d time.Duration) result {
	caller, callee, err := b.phones()
	if err != nil {
		log.Fatal(err)
	}
	defer caller.Close()
	defer callee.Close()
	r := result{Offered: rate, Failed: map[string]int{}}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	cpu0 := b.srv.cpu()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	start := time.Now()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
loop:
	for time.Since(start) < d {
		select {
		case <-tick.C:
		case <-progress.C:
			mu.Lock()
			fmt.Fprintf(os.Stderr, "\r%5.1fs attempted %d ok %d failed %v   ", time.Since(start).Seconds(), r.Attempted, r.Succeeded, r.Failed)
			mu.Unlock()
			continue loop
		}
		wg.Add(1)
		mu.Lock()
		r.Attempted++
		mu.Unlock()
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, setup, reason := dial(ctx, caller)
			mu.Lock()
			defer mu.Unlock()
			if reason != "" {
				r.Failed[reason]++
				return
			}
			r.Succeeded++
			lat = append(lat, setup)
			go c.Hangup(context.Background())
		}()
	}
	wg.Wait()
	fmt.Fprintln(os.Stderr)
	elapsed := time.Since(start).Seconds()
	r.Achieved = float64(r.Succeeded) / elapsed
	r.SetupP50ms, r.SetupP95ms, r.SetupP99ms = pct(lat, 0.5), pct(lat, 0.95), pct(lat, 0.99)
	r.ServerCPUs = b.srv.cpu() - cpu0
	if r.Succeeded > 0 {
		r.CPUPerCallMs = r.ServerCPUs * 1000 / float64(r.Succeeded)
	}
	r.ServerRSSKB = b.srv.rss()
	return r
}

// concurrent holds n calls open with 20 ms PCMU both ways for d.
func (b *bench) concurrent(n int, d time.Duration) result {
	caller, callee, err := b.phones()
	if err != nil {
		log.Fatal(err)
	}
	defer caller.Close()
	defer callee.Close()
	r := result{Failed: map[string]int{}}
	rss0 := b.srv.rss()
	var outs []*sipphone.Call
	var lat []time.Duration
	for i := 0; i < n; i++ { // ramp one at a time: setup is not what this measures
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, setup, reason := dial(ctx, caller)
		cancel()
		r.Attempted++
		if reason != "" {
			r.Failed[reason]++
			continue
		}
		outs = append(outs, c)
		lat = append(lat, setup)
		if i%100 == 99 {
			fmt.Fprintf(os.Stderr, "\rup: %d   ", len(outs))
		}
	}
	var ins []*sipphone.Call
	deadline := time.After(10 * time.Second)
collect:
	for len(ins) < len(outs) {
		select {
		case c := <-callee.Incoming():
			<-c.Answered()
			ins = append(ins, c)
		case <-deadline:
			break collect
		}
	}
	r.Succeeded = int64(len(outs))
	r.Concurrent = len(outs)
	r.SetupP50ms, r.SetupP95ms, r.SetupP99ms = pct(lat, 0.5), pct(lat, 0.95), pct(lat, 0.99)
	cpu0 := b.srv.cpu()
	// One pacer per side walks every call each 20 ms: a goroutine per call
	// would make the generator measure its own scheduler.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, side := range [][]*sipphone.Call{outs, ins} {
		wg.Add(1)
		go func(cs []*sipphone.Call) {
			defer wg.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					for _, c := range cs {
						_ = c.SendRTP(1, 0)
					}
				}
			}
		}(side)
	}
	start := time.Now()
	for time.Since(start) < d {
		time.Sleep(time.Second)
		fmt.Fprintf(os.Stderr, "\r%4.0fs calls %d rtp sent %d received %d   ", time.Since(start).Seconds(), len(outs), sum(outs, ins, true), sum(outs, ins, false))
	}
	close(stop)
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the last packets land
	fmt.Fprintln(os.Stderr)
	r.RTPSent, r.RTPReceived = sum(outs, ins, true), sum(outs, ins, false)
	if r.RTPSent > 0 {
		r.LossPct = 100 * float64(r.RTPSent-r.RTPReceived) / float64(r.RTPSent)
	}
	r.ServerCPUs = b.srv.cpu() - cpu0
	r.ServerRSSKB = b.srv.rss()
	if len(outs) > 0 {
		r.RSSPerCallKB = float64(r.ServerRSSKB-rss0) / float64(len(outs))
	}
	for _, c := range outs {
		_ = c.Hangup(context.Background())
	}
	return r
}

func sum(a, b []*sipphone.Call, sent bool) int64 {
	var t int64
	for _, cs := range [][]*sipphone.Call{a, b} {
		for _, c := range cs {
			if sent {
				t += c.Sent()
			} else {
				t += c.Received()
			}
		}
	}
	return t
}

// register offers REGISTERs with digest at rate per second for d.
func (b *bench) register(rate float64, d time.Duration) result {
	p, err := sipphone.New(sipphone.Config{User: "callee", Password: calleePass, Domain: domain, Server: b.sip})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	r := result{Offered: rate, Failed: map[string]int{}}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	start := time.Now()
	for time.Since(start) < d {
		<-tick.C
		r.Attempted++
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			t0 := time.Now()
			res, err := p.Register(ctx, 3600)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				r.Failed["timeout_or_transport"]++
			case res.StatusCode != 200:
				r.Failed[strconv.Itoa(res.StatusCode)]++
			default:
				r.Succeeded++
				lat = append(lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	r.Achieved = float64(r.Succeeded) / time.Since(start).Seconds()
	r.SetupP50ms, r.SetupP95ms, r.SetupP99ms = pct(lat, 0.5), pct(lat, 0.95), pct(lat, 0.99)
	r.ServerRSSKB = b.srv.rss()
	return r
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d)-1) * p)
	return float64(d[i].Microseconds()) / 1000
}

func printResult(r result) {
	fmt.Printf("%-22s %s\n", "scenario", r.Scenario)
	fmt.Printf("%-22s %.1f/s offered, %.1f/s achieved\n", "rate", r.Offered, r.Achieved)
	fmt.Printf("%-22s %d attempted, %d ok, failed %v\n", "calls", r.Attempted, r.Succeeded, r.Failed)
	fmt.Printf("%-22s p50 %.2f  p95 %.2f  p99 %.2f ms\n", "setup latency", r.SetupP50ms, r.SetupP95ms, r.SetupP99ms)
	if r.Concurrent > 0 {
		fmt.Printf("%-22s %d\n", "concurrent calls", r.Concurrent)
		fmt.Printf("%-22s sent %d, received %d, loss %.3f%%\n", "RTP", r.RTPSent, r.RTPReceived, r.LossPct)
	}
	fmt.Printf("%-22s cpu %.2fs (%.3f ms/call), rss %d KiB (%.1f KiB/call)\n", "server", r.ServerCPUs, r.CPUPerCallMs, r.ServerRSSKB, r.RSSPerCallKB)
	if r.ReadyMs > 0 {
		fmt.Printf("%-22s %d ms\n", "start to /readyz", r.ReadyMs)
	}
}

// server is a switchboard process the harness started.
type server struct {
	cmd       *exec.Cmd
	dir       string
	sip, http string
	readyMs   int64
}

func startServer(token string) (*server, error) {
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/switchboard")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build switchboard: %w", err)
	}
	s := &server{dir: dir, sip: "127.0.0.1:25060", http: "127.0.0.1:28080"}
	s.cmd = exec.Command(bin, "--sip-addr", s.sip, "--http-addr", s.http, "--media-ip", "127.0.0.1",
		"--rtp-ports", "40000-59999", "--data-dir", filepath.Join(dir, "data"), "--etcd-listen", "127.0.0.1:0",
		"--node-id", "bench", "--admin-token", token, "--log-level", "error")
	logf, _ := os.Create(filepath.Join(dir, "node.log"))
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	t0 := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for time.Since(t0) < 30*time.Second {
		if res, err := http.Get("http://" + s.http + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				s.readyMs = time.Since(t0).Milliseconds()
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("node not ready within 30 s (log in %s)", logf.Name())
}

func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	os.RemoveAll(s.dir)
}

// cpu is the server's utime+stime in seconds (per-process: /proc/stat
// under-counts on this kind of VM).
func (s *server) cpu() float64 {
	if s == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

func (s *server) rss() int64 {
	if s == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}
