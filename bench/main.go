// Command bench is the load harness: how many calls per second one
// switchboard node sets up, and how many calls it carries with clean audio,
// side by side with what one would otherwise deploy, in the same run on the
// same machine. Everything runs on loopback; every process it starts is
// stopped by its pid.
//
//	go run ./bench -scenario calls                      # setup-rate ladder: sipp↔sipp, Kamailio, switchboard
//	go run ./bench -scenario calls -targets switchboard,base -base /tmp/sb-old -rounds 5 -warmup 5s \
//	    -profile /tmp/prof                              # this build beside an older one, rung by rung, with CPU profiles
//	go run ./bench -scenario concurrent -calls 250,500  # calls held with RTP both ways: rtpengine, switchboard
//	go run ./bench -scenario monitored -calls 200       # calls with a supervisor whispering, beside plain ones
//	go run ./bench -scenario register -rates 500,1000   # REGISTER with digest per second
//	go run ./bench -scenario delegated -rates 50,100    # calls to a delegator with two delegates
//	go run ./bench -scenario queue -rates 5,10 -race-members 50 # callers into a call queue, then a burst every member answers at once
//	go run ./bench -scenario sms -rates 100,200 -agents 20 -threads 50 # MESSAGEs into a Team SMS queue, then every member replies to every thread at once
//
// It prints a table (a progress line while it runs) and writes the JSON
// result to -out. See bench/RESULTS.md for recorded runs.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/bench/proc"
	"github.com/switchboard/switchboard/bench/rtpengine"
	"github.com/switchboard/switchboard/bench/sipp"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/freeport"
)

// noMedia: a phone opens its own RTP socket per call.
var noMedia netip.AddrPort

type report struct {
	Scenario   string             `json:"scenario"`
	Command    string             `json:"command"`
	Started    time.Time          `json:"started"`
	Machine    string             `json:"machine"`
	NodeReady  int64              `json:"node_time_to_ready_ms,omitempty"`
	Ladders    []ladderResult     `json:"ladders,omitempty"`
	Concurrent []concurrentResult `json:"concurrent,omitempty"`
	Monitored  []monitoredResult  `json:"monitored,omitempty"`
	Queue      []queueResult      `json:"queue,omitempty"`
	SMSInbound []smsInboundResult `json:"sms_inbound,omitempty"`
	SMSClaims  []smsClaimsResult  `json:"sms_claims,omitempty"`
	Ratios     map[string]float64 `json:"ratios,omitempty"`
}

func main() {
	if failed := bench(); failed {
		os.Exit(1)
	}
}

// bench runs the scenario; failed says the run found a fault. It returns
// rather than exits, so that the nodes it started are stopped.
func bench() (failed bool) {
	scenario := flag.String("scenario", "calls", "calls | concurrent | monitored | register | delegated | queue | sms")
	targets := flag.String("targets", "", "calls: sipp,kamailio,switchboard (default all); concurrent: rtpengine,switchboard (default both)")
	gen := flag.String("gen", "sipp", "calls: load generator, sipp or go (Go phones; switchboard only)")
	rates := flag.String("rates", "250,500,1000,1500,2000,2500,3000", "calls/register/delegated: rates of the ladder, per second; queue: callers arriving per second, a run each (default 5); sms: MESSAGEs per second, a run each (default 100)")
	step := flag.Duration("step", 10*time.Second, "how long each rung of a ladder offers load (queue: how long callers arrive at each rate; sms: how long MESSAGEs are sent at each rate)")
	users := flag.Int("users", 1, "calls with sipp: spread the calls over this many users (1: all to one user, the worst case for its line)")
	hold := flag.Bool("hold", false, "calls -gen go, delegated: the caller holds and resumes each call before hanging up")
	bound := flag.Duration("bound", 100*time.Millisecond, "a rung is clean with 0 failed calls and setup p99 within this")
	calls := flag.String("calls", "250,500,1000", "concurrent, monitored: calls held open, one run per count")
	duration := flag.Duration("duration", 20*time.Second, "concurrent, monitored: how long RTP flows at each count")
	self := flag.Int("selfcheck", 2, "concurrent: also loop the generator back at this multiple of the largest count (0: skip)")
	out := flag.String("out", "bench-result.json", "JSON result file")
	sipAddr := flag.String("sip", "", "SIP address of a running node (empty: build and start one)")
	httpAddr := flag.String("http", "", "HTTP address of a running node")
	token := flag.String("token", "bench-token", "admin token")
	bin := flag.String("bin", "", "switchboard binary to start (empty: build this checkout)")
	base := flag.String("base", "", "calls: also start this switchboard binary (e.g. the build before a change) as the target \"base\", and climb its ladder beside switchboard's, rung by rung")
	rounds := flag.Int("rounds", 1, "calls: run each rung this many times per target, in alternating turns; queue: race bursts; sms: claim bursts")
	warmup := flag.Duration("warmup", 0, "calls: before switchboard's (and base's) ladder, offer its first rate this long, not counted")
	pprof := flag.String("pprof", "", "start the node with --pprof-addr here (e.g. 127.0.0.1:6060)")
	profile := flag.String("profile", "", "calls: write each switchboard node's CPU profile of each rung into this folder (<target>-<rate>-<round>.pb.gz)")
	members := flag.Int("members", 10, "queue: members of the queue, each with a registered phone")
	distribution := flag.String("distribution", "simultaneous", "queue: the queue's distribution")
	talk := flag.Duration("talk", 4*time.Second, "queue: a member hangs up this long after answering (-hold is the calls scenario's)")
	answerMax := flag.Duration("answer-max", 3*time.Second, "queue: a member answers an offer after a random 0 to this")
	patience := flag.Duration("patience", 20*time.Second, "queue: a caller no member has reached by then hangs up (abandoned)")
	maxWait := flag.Int("max-wait", 300, "queue: the queue's max_wait_seconds")
	maxCalls := flag.Int("max-calls", 20, "queue: the queue's max_calls")
	raceMembers := flag.Int("race-members", 0, "queue: after the rates, bursts of callers into a queue of this many members who all answer at once (0: none)")
	raceCallers := flag.Int("race-callers", 0, "queue: callers in each race burst (0: as many as -race-members)")
	agents := flag.Int("agents", 20, "sms: members of each Team SMS queue, each replying with their own token")
	threads := flag.Int("threads", 50, "sms: unclaimed threads every member replies to at once in a claim burst")
	peers := flag.Int("peers", 0, "sms: outside numbers texting in turn at each rate (0: a new number per message)")
	flag.Parse()
	if *scenario == "queue" && !flagSet("rates") {
		*rates = "5"
	}
	if *scenario == "sms" && !flagSet("rates") {
		*rates = "100"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := report{Scenario: *scenario, Command: strings.Join(os.Args, " "), Started: time.Now().UTC(), Machine: machine()}
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		log.Fatal(err)
	}
	if os.Getenv("BENCH_KEEP") == "" {
		defer os.RemoveAll(dir)
	} else {
		fmt.Printf("keeping %s\n", dir)
	}

	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	// Each node started gets as many RTP port pairs as the default range
	// (5000), apart from rtpengine's 20000-29999 and from each other.
	n := &node{name: "switchboard", sip: *sipAddr, http: *httpAddr, token: *token, pprof: *pprof}
	if *sipAddr == "" {
		if n, err = startNode(dir, nodeSpec{name: "switchboard", bin: *bin, token: *token, pprof: pprofAddr(*pprof, *profile), rtpPorts: "40000-49999"}); err != nil {
			log.Fatal(err)
		}
		defer n.stop()
		rep.NodeReady = n.readyMs
	}
	if err := n.provision(); err != nil {
		log.Fatal(err)
	}
	nodes := []*node{n}
	if *base != "" && *scenario != "calls" {
		log.Fatal("-base is for -scenario calls")
	}
	if *base != "" {
		b, err := startNode(dir, nodeSpec{name: "base", bin: *base, token: *token, pprof: pprofAddr("", *profile), rtpPorts: "30000-39999"})
		if err != nil {
			log.Fatal(err)
		}
		defer b.stop()
		if err := b.provision(); err != nil {
			log.Fatal(err)
		}
		nodes = append(nodes, b)
	}
	if err := run(ctx, &rep, nodes, dir, options{
		scenario: *scenario, targets: list(*targets), gen: *gen, rates: floats(*rates), step: *step, bound: *bound,
		calls: ints(*calls), duration: *duration, self: *self, hold: *hold, users: *users, rounds: max(*rounds, 1), warmup: *warmup, profile: *profile,
		queue: queueOptions{rates: floats(*rates), step: *step, members: *members, distribution: *distribution, talk: *talk, answerMax: *answerMax,
			patience: *patience, maxWait: *maxWait, maxCalls: *maxCalls, raceMembers: *raceMembers, raceCallers: *raceCallers, raceRounds: *rounds},
		sms: smsOptions{rates: floats(*rates), step: *step, peers: *peers, agents: *agents, threads: *threads, rounds: *rounds},
	}); err != nil {
		log.Print(err)
		failed = true
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("result written to %s\n", *out)
	return failed
}

type options struct {
	scenario    string
	targets     []string
	gen         string
	rates       []float64
	step, bound time.Duration
	calls       []int
	duration    time.Duration
	self        int
	hold        bool
	users       int
	rounds      int
	warmup      time.Duration
	profile     string
	queue       queueOptions
	sms         smsOptions
}

// pprofAddr is where a node serves pprof: the address asked for, else a
// free port when profiles are to be recorded, else nowhere.
func pprofAddr(asked, profile string) string {
	if asked != "" || profile == "" {
		return asked
	}
	port, err := freeport.Find("127.0.0.1")
	if err != nil {
		log.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// run runs the scenario against nodes: switchboard's first, then the
// base's (-base) for the calls ladder.
func run(ctx context.Context, rep *report, nodes []*node, dir string, o options) error {
	n := nodes[0]
	switch o.scenario {
	case "calls":
		if len(o.targets) == 0 {
			o.targets = []string{"sipp", "kamailio", "switchboard"}
			if len(nodes) > 1 {
				o.targets = append(o.targets, "base")
			}
		}
		ls, err := ladders(ctx, nodes, dir, o)
		rep.Ladders = ls
		rep.Ratios = ladderRatios(ls)
		printLadders(ls, rep.Ratios)
		return err
	case "register":
		res := climb("register", o.rates, o.step, o.bound, func(r float64, d time.Duration) (sipp.Step, error) { return register(n, r, d) })
		res.TargetRSS = n.rss()
		rep.Ladders = []ladderResult{res}
		printLadders(rep.Ladders, nil)
		return nil
	case "delegated":
		ls, err := delegated(n, o.rates, o.step, o.bound, o.hold)
		rep.Ladders = ls
		printLadders(ls, nil)
		return err
	case "concurrent":
		if len(o.targets) == 0 {
			o.targets = []string{"rtpengine", "switchboard"}
		}
		rs, err := concurrentRuns(ctx, n, dir, o.targets, o.calls, o.duration, o.self)
		rep.Concurrent = rs
		rep.Ratios = concurrentRatios(rs)
		printRatios(rep.Ratios)
		return err
	case "monitored":
		var err error
		rep.Concurrent, rep.Monitored, err = monitoredRuns(ctx, n, dir, o.calls, o.duration)
		return err
	case "queue":
		var err error
		rep.Queue, err = queueRuns(ctx, n, o.queue)
		return err
	case "sms":
		var err error
		rep.SMSInbound, rep.SMSClaims, err = smsRuns(ctx, n, o.sms)
		return err
	}
	return fmt.Errorf("unknown scenario %q (calls, concurrent, monitored, register, delegated, queue, sms)", o.scenario)
}

// concurrentRuns carries each count through each relay; a relay stops at
// its first count with loss ≥ 0.1%.
func concurrentRuns(ctx context.Context, n *node, dir string, targets []string, counts []int, d time.Duration, self int) ([]concurrentResult, error) {
	var out []concurrentResult
	if self > 0 && len(counts) > 0 {
		fmt.Println("generator self-check: looped back, no relay")
		r, err := selfCheck(ctx, slices.Max(counts), self, min(d, 5*time.Second))
		if err != nil {
			return out, err
		}
		printConcurrent(r)
		out = append(out, r)
	}
	for _, t := range targets {
		if _, err := os.Stat(rtpengine.DefaultBinary); t == "rtpengine" && err != nil {
			fmt.Println("  rtpengine is not installed (apt-get install rtpengine-daemon): skipped")
			continue
		}
		fmt.Printf("concurrent calls through %s, %s of 20 ms PCMU both ways per count\n", t, d)
		for _, count := range counts {
			r, err := concurrentOnce(ctx, n, dir, t, count, d)
			if err != nil {
				return out, err
			}
			printConcurrent(r)
			out = append(out, r)
			if !r.Clean() {
				break
			}
		}
	}
	return out, nil
}

// ladderRatios: switchboard's clean setup rate, and its rate without
// failed calls, over each peer's.
func ladderRatios(ls []ladderResult) map[string]float64 {
	r := map[string]float64{}
	var sb, sbNoFail float64
	for _, l := range ls {
		if l.Target == "switchboard" {
			sb = l.CleanRate
		}
	}
	for _, l := range ls {
		if l.Target == "switchboard" {
			sbNoFail = l.NoFailRate
		}
	}
	for _, l := range ls {
		if l.Target == "switchboard" {
			continue
		}
		if l.Target == "base" {
			cpuRatios(r, ls)
		}
		if l.CleanRate > 0 {
			r["switchboard/"+l.Target+" clean setup rate"] = sb / l.CleanRate
		}
		if l.NoFailRate > 0 {
			r["switchboard/"+l.Target+" setup rate without failed calls"] = sbNoFail / l.NoFailRate
		}
	}
	return r
}

// cpuRatios: switchboard's CPU per call over base's, at each rate both
// ran (over all their rounds).
func cpuRatios(r map[string]float64, ls []ladderResult) {
	var sb, base ladderResult
	for _, l := range ls {
		switch l.Target {
		case "switchboard":
			sb = l
		case "base":
			base = l
		}
	}
	for _, st := range sb.Steps {
		key := fmt.Sprintf("switchboard/base CPU per call at %.0f/s", st.Rate)
		if _, done := r[key]; done {
			continue
		}
		a, ok1 := sb.cpuPerCall(st.Rate)
		b, ok2 := base.cpuPerCall(st.Rate)
		if ok1 && ok2 {
			r[key] = a / b
		}
		a, ok1 = sb.userCPUPerCall(st.Rate)
		b, ok2 = base.userCPUPerCall(st.Rate)
		if ok1 && ok2 {
			r[fmt.Sprintf("switchboard/base user-mode CPU per call at %.0f/s", st.Rate)] = a / b
		}
	}
}

// concurrentRatios: switchboard over rtpengine in the largest count each
// carried cleanly, and in relay CPU per call at the largest count both did.
func concurrentRatios(rs []concurrentResult) map[string]float64 {
	best := map[string]int{}
	clean := map[string]map[int]concurrentResult{}
	for _, r := range rs {
		if !r.Clean() {
			continue
		}
		if clean[r.Relay] == nil {
			clean[r.Relay] = map[int]concurrentResult{}
		}
		clean[r.Relay][r.Calls] = r
		best[r.Relay] = max(best[r.Relay], r.Calls)
	}
	if best["switchboard"] == 0 || best["rtpengine"] == 0 {
		return nil
	}
	out := map[string]float64{"switchboard/rtpengine clean concurrent calls": float64(best["switchboard"]) / float64(best["rtpengine"])}
	both := 0
	for n := range clean["switchboard"] {
		if _, ok := clean["rtpengine"][n]; ok {
			both = max(both, n)
		}
	}
	if sb := clean["switchboard"][both]; both > 0 && sb.CPUPerCallMs > 0 {
		out[fmt.Sprintf("rtpengine/switchboard relay CPU per call at %d calls (>1: switchboard is cheaper)", both)] = clean["rtpengine"][both].CPUPerCallMs / sb.CPUPerCallMs
	}
	return out
}

func printLadders(ls []ladderResult, ratios map[string]float64) {
	fmt.Println()
	fmt.Printf("%-12s %18s %20s %26s %16s\n", "target", "highest clean /s", "without failures /s", "setup p99 at half (ms)", "target RSS MiB")
	rate := func(r float64, capped bool) string {
		s := strconv.FormatFloat(r, 'f', 0, 64)
		if capped {
			s = "≥ " + s
		}
		return s
	}
	for _, l := range ls {
		fmt.Printf("%-12s %18s %20s %18.1f @ %4.0f/s %16.1f\n", l.Target, rate(l.CleanRate, l.Capped), rate(l.NoFailRate, l.NoFailCapped), l.P99AtHalf, l.HalfRate, float64(l.TargetRSS)/1024)
	}
	printRatios(ratios)
}

func printRatios(r map[string]float64) {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("ratio %s: %.2f\n", k, r[k])
	}
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return float64(d[int(float64(len(d)-1)*p)].Microseconds()) / 1000
}

func selfCPU() float64 { return proc.CPUOf(os.Getpid()) }

func machine() string {
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d CPUs, Linux %s, %s", host, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
}

// flagSet: the command line names the flag.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func floats(s string) []float64 {
	var out []float64
	for _, f := range list(s) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			log.Fatalf("bad rate %q", f)
		}
		out = append(out, v)
	}
	return out
}

func ints(s string) []int {
	var out []int
	for _, f := range list(s) {
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			log.Fatalf("bad count %q", f)
		}
		out = append(out, v)
	}
	return out
}
