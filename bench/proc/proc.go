// Package proc starts the processes a benchmark measures (switchboard,
// sipp, Kamailio) and reads their CPU and memory from /proc: per-process
// utime+stime, because /proc/stat under-counts on this kind of VM.
package proc

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a started process; Stop ends it by its pid.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs name with args, output to logPath.
func Start(name, logPath string, args ...string) (*Proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("proc: log for %s: %w", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so Stop also reaches children it forks
	// (Kamailio's workers).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("proc: start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid of the process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.done }

// ErrExited: the process ended before it was ready.
var ErrExited = errors.New("proc: exited")

// WaitHTTP waits, at most within, for url to answer 200 OK: a server's
// readiness check. It gives up as soon as the process ends.
func (p *Proc) WaitHTTP(url string, within time.Duration) error {
	for t0 := time.Now(); time.Since(t0) < within; time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("%s: %w", p.Name, ErrExited)
		default:
		}
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("proc: %s: %s not ready within %v", p.Name, url, within)
}

// Stop sends SIGTERM to the process group, then SIGKILL after 3 s.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// CPU is the CPU seconds (user+system) of the process group's processes:
// the leader and the children it forked.
func (p *Proc) CPU() float64 {
	var total float64
	for _, pid := range p.group() {
		total += CPUOf(pid)
	}
	return total
}

// UserCPU is the CPU seconds the process group spent in user mode: its own
// code, without the system calls, whose cost on loopback includes waking
// the receiver and so varies with what the peers were doing.
func (p *Proc) UserCPU() float64 {
	var total float64
	for _, pid := range p.group() {
		total += userCPUOf(pid)
	}
	return total
}

// RSS is the resident memory of the process group in KiB.
func (p *Proc) RSS() int64 {
	var total int64
	for _, pid := range p.group() {
		total += RSSOf(pid)
	}
	return total
}

// group lists the pids whose process group is p's.
func (p *Proc) group() []int {
	pids := []int{p.Pid()}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return pids
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == p.Pid() {
			continue
		}
		if f := statFields(pid); len(f) > 2 && f[2] == strconv.Itoa(p.Pid()) { // field 5: pgrp
			pids = append(pids, pid)
		}
	}
	return pids
}

// statFields are the fields of /proc/pid/stat after the command name,
// starting with field 3 (state).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// CPUOf is utime+stime of pid in seconds (0 when it is gone).
func CPUOf(pid int) float64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// userCPUOf is utime of pid in seconds (0 when it is gone).
func userCPUOf(pid int) float64 {
	f := statFields(pid)
	if len(f) < 12 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	return ut / 100
}

// RSSOf is VmRSS of pid in KiB.
func RSSOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			v, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return v
		}
	}
	return 0
}

// UDPDrops is the kernel's count of UDP datagrams dropped for full receive
// buffers (RcvbufErrors): when it moves during a run, a generator or a
// server could not keep up reading, whoever it was.
func UDPDrops() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var hdr []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)
		if hdr == nil {
			hdr = f
			continue
		}
		for i, h := range hdr {
			if h == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
