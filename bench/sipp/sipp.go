// Package sipp drives sipp as the load generator of the setup-rate ladder:
// a UAS that answers every call (registered with digest when the target is
// switchboard) and a UAC offering calls at a rate. The same two sipp
// processes face every target, so the targets are compared on equal terms.
package sipp

import (
	"bufio"
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/bench/proc"
)

//go:embed *.xml
var scenarios embed.FS

// bufSize is sipp's socket buffer: its default 64 KiB drops packets from
// about 2,000 calls/s, which looks like a server fault (BENCH-NOTES.md).
const bufSize = "4194304"

// Dir writes the scenario files into dir and returns it.
func Dir(dir string) (string, error) {
	entries, _ := scenarios.ReadDir(".")
	for _, e := range entries {
		b, _ := scenarios.ReadFile(e.Name())
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return "", fmt.Errorf("sipp: write %s: %w", e.Name(), err)
		}
	}
	return dir, nil
}

// Available reports whether the sipp binary is on PATH.
func Available() bool { _, err := exec.LookPath("sipp"); return err == nil }

// Register sends one REGISTER with digest from localIP:port for user.
func Register(ctx context.Context, dir, localIP string, port int, user, password, server string) error {
	cmd := exec.CommandContext(ctx, "sipp", "-sf", filepath.Join(dir, "register.xml"), "-s", user, "-au", user, "-ap", password,
		"-i", localIP, "-p", strconv.Itoa(port), "-m", "1", "-nostdin", "-timeout", "10s", "-timeout_error", server)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sipp: register %s: %w: %s", user, err, lastLines(out, 5))
	}
	return nil
}

// RegisterMany registers every user (with the same password) from
// localIP:port, one REGISTER with digest each, so calls to any of them reach
// the UAS that later listens there.
func RegisterMany(ctx context.Context, dir, localIP string, port int, users []string, password, server string) error {
	var csv strings.Builder
	csv.WriteString("SEQUENTIAL\n")
	for _, u := range users {
		// sipp takes credentials from the injection file only as a whole
		// [authentication] keyword.
		fmt.Fprintf(&csv, "%s;[authentication username=%s password=%s]\n", u, u, password)
	}
	inf := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(inf, []byte(csv.String()), 0o644); err != nil {
		return fmt.Errorf("sipp: users: %w", err)
	}
	cmd := exec.CommandContext(ctx, "sipp", "-sf", filepath.Join(dir, "register-many.xml"), "-inf", inf,
		"-i", localIP, "-p", strconv.Itoa(port), "-m", strconv.Itoa(len(users)), "-r", "100", "-nostdin",
		"-timeout", "60s", "-timeout_error", server)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sipp: register %d users: %w: %s", len(users), err, lastLines(out, 5))
	}
	return nil
}

// UAS starts an answering sipp on localIP:port.
func UAS(dir, localIP string, port int) (*proc.Proc, error) {
	p, err := proc.Start("sipp", filepath.Join(dir, fmt.Sprintf("uas-%d.log", port)),
		"-sf", filepath.Join(dir, "uas.xml"), "-i", localIP, "-p", strconv.Itoa(port), "-buff_size", bufSize,
		"-nostdin", "-default_behaviors", "all,-abortunexp", "-trace_err", "-error_file", filepath.Join(dir, fmt.Sprintf("uas-%d-errors.log", port)))
	if err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond) // bound its socket before calls arrive
	select {
	case <-p.Exited():
		return nil, fmt.Errorf("sipp: UAS on port %d exited at start", port)
	default:
	}
	return p, nil
}

// Step is one rung of the ladder.
type Step struct {
	Rate       float64        `json:"offered_per_s"`
	Achieved   float64        `json:"achieved_per_s"`
	Attempted  int64          `json:"attempted"`
	Succeeded  int64          `json:"succeeded"`
	Failed     map[string]int `json:"failed_by_reason,omitempty"`
	SetupP50ms float64        `json:"setup_p50_ms"`
	SetupP95ms float64        `json:"setup_p95_ms"`
	SetupP99ms float64        `json:"setup_p99_ms"`
	UDPDrops   int64          `json:"udp_rcvbuf_drops"`
	// Retransmissions by sipp: a request or response waited over 500 ms.
	Retransmissions int64 `json:"retransmissions"`
	// RefusedBy counts the calls answered with a final response the
	// scenario does not take, by status code. sipp ignores such a response
	// and the call times out (TimeoutOnRecv), so this says why: a 503 is
	// the target shedding load.
	RefusedBy map[string]int `json:"refused_by_code,omitempty"`
	// RefusedUndercount: the UAC's log reached its cap (errorLogCap) and
	// sipp logged no more, so RefusedBy counts only the refusals before
	// that: an overloaded target's retransmitted refusals and late 200s
	// fill it within seconds.
	RefusedUndercount bool    `json:"refused_log_full,omitempty"`
	TargetCPU         float64 `json:"target_cpu_s"`
	CPUPerCall        float64 `json:"target_cpu_ms_per_call"`
	// TargetUserCPU is the part of TargetCPU in user mode.
	TargetUserCPU float64 `json:"target_user_cpu_s,omitempty"`
	// What a switchboard target's Go runtime allocated per successful
	// call (objects and bytes, all of the rung's work included), and the
	// collections it ran.
	MallocsPerCall float64 `json:"target_mallocs_per_call,omitempty"`
	AllocKBPerCall float64 `json:"target_alloc_kb_per_call,omitempty"`
	GCs            int     `json:"target_gc_cycles,omitempty"`
	Seconds        float64 `json:"seconds"`
}

// Clean: every call completed.
func (s Step) Clean() bool {
	return s.Attempted > 0 && s.Succeeded == s.Attempted && len(s.Failed) == 0
}

// UAC offers calls at rate for d from localIP to target, dialing numbers in
// turn; holdMs keeps each call up that long before the BYE.
func UAC(ctx context.Context, dir, localIP, target string, numbers []string, rate float64, d time.Duration, holdMs int) (Step, error) {
	calls := int(rate * d.Seconds())
	run, err := os.MkdirTemp(dir, "uac-")
	if err != nil {
		return Step{}, err
	}
	dial := []string{"-sf", filepath.Join(dir, "uac.xml"), "-s", numbers[0]}
	if len(numbers) > 1 {
		csv := filepath.Join(run, "numbers.csv")
		if err := os.WriteFile(csv, []byte("SEQUENTIAL\n"+strings.Join(numbers, "\n")+"\n"), 0o644); err != nil {
			return Step{}, fmt.Errorf("sipp: numbers: %w", err)
		}
		dial = []string{"-sf", filepath.Join(dir, "uac-many.xml"), "-inf", csv}
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "sipp", append(dial, "-i", localIP, "-p", "5062",
		"-r", strconv.FormatFloat(rate, 'f', -1, 64), "-m", strconv.Itoa(calls), "-d", strconv.Itoa(holdMs), "-l", "100000",
		"-buff_size", bufSize, "-nostdin", "-timeout", strconv.Itoa(int((d+30*time.Second).Seconds()))+"s", // sipp reads "90s", not "1m30s"
		"-recv_timeout", "10000",
		"-trace_stat", "-stf", "stat.csv", "-fd", "3600", "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", errorsFile, "-max_log_size", strconv.Itoa(errorLogCap),
		"-default_behaviors", "all,-abortunexp", target)...)
	cmd.Dir = run
	cmd.WaitDelay = 5 * time.Second
	out, runErr := cmd.CombinedOutput() // exit 1: some calls failed; that is a result, not an error
	st, err := readStats(run)
	if err != nil {
		return Step{}, fmt.Errorf("sipp: UAC at %.0f/s: %v (%v): %s", rate, err, runErr, lastLines(out, 5))
	}
	st.Rate, st.Seconds = rate, time.Since(start).Seconds()
	st.Achieved = float64(st.Succeeded) / d.Seconds()
	return st, nil
}

// readStats reads sipp's final statistics line and its per-call
// response times (INVITE to 180: the "setup" rtd of uac.xml).
func readStats(run string) (Step, error) {
	st := Step{Failed: map[string]int{}}
	b, err := os.ReadFile(filepath.Join(run, "stat.csv"))
	if err != nil {
		return st, err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return st, fmt.Errorf("no statistics written")
	}
	hdr, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	for i, h := range hdr {
		if i >= len(last) || !strings.HasSuffix(h, "(C)") {
			continue
		}
		v, _ := strconv.ParseInt(last[i], 10, 64)
		name := strings.TrimSuffix(h, "(C)")
		switch {
		case name == "OutgoingCall":
			st.Attempted = v
		case name == "Retransmissions":
			st.Retransmissions = v
		case name == "SuccessfulCall":
			st.Succeeded = v
		case strings.HasPrefix(name, "Failed") && name != "FailedCall" && v > 0:
			st.Failed[strings.TrimPrefix(name, "Failed")] = int(v)
		}
	}
	rtts, _ := filepath.Glob(filepath.Join(run, "*_rtt.csv"))
	var setup []float64
	for _, f := range rtts {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ";")
			if len(f) >= 3 && strings.TrimSpace(f[2]) == "setup" {
				if v, err := strconv.ParseFloat(f[1], 64); err == nil {
					setup = append(setup, v)
				}
			}
		}
	}
	sort.Float64s(setup)
	st.SetupP50ms, st.SetupP95ms, st.SetupP99ms = pct(setup, 50), pct(setup, 95), pct(setup, 99)
	refused, err := readRefusals(filepath.Join(run, errorsFile))
	if err != nil {
		return st, err
	}
	st.RefusedBy = refused
	if fi, err := os.Stat(filepath.Join(run, errorsFile)); err == nil && fi.Size() >= errorLogCap {
		st.RefusedUndercount = true
	}
	return st, nil
}

// errorsFile is the UAC's log of the messages its scenario did not expect
// (-trace_err), kept with the run (BENCH_KEEP) for the story of a call;
// errorLogCap is the size at which sipp stops writing it.
const (
	errorsFile  = "errors.log"
	errorLogCap = 16 << 20
)

// unexpected is how sipp logs a response it ignored (the call goes on,
// then times out): the Call-ID and the status code.
var unexpected = regexp.MustCompile(`Continuing call on unexpected message for Call-Id '([^']*)'.*?received 'SIP/2\.0 (\d{3}) `)

// readRefusals counts the calls that got a final response (≥ 300) the
// scenario does not expect, by code; each retransmission of it is logged
// again but counts once.
func readRefusals(path string) (map[string]int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // nothing unexpected
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	calls := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// sipp starts an entry on the line where the previous one's
		// message ends, so a line may hold one.
		for _, m := range unexpected.FindAllStringSubmatch(sc.Text(), -1) {
			if m[2] >= "300" {
				calls[m[1]] = m[2]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sipp: read %s: %w", path, err)
	}
	if len(calls) == 0 {
		return nil, nil
	}
	out := map[string]int{}
	for _, code := range calls {
		out[code]++
	}
	return out, nil
}

func pct(sorted []float64, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}

func lastLines(b []byte, n int) string {
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(l[max(len(l)-n, 0):], "\n")
}
