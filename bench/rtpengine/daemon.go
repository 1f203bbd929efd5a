package rtpengine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultBinary is where Debian's rtpengine-daemon installs the daemon.
const DefaultBinary = "/usr/bin/rtpengine"

// Options configures Start. PortMin and PortMax are required.
type Options struct {
	Binary           string        // default DefaultBinary
	NGPort           int           // ng control port on 127.0.0.1; 0 picks a free one
	PortMin, PortMax int           // media port range; each call uses 4 ports (RTP+RTCP per side)
	Threads          int           // --num-threads; default runtime.NumCPU()
	LogLevel         int           // syslog level 0-7; default 4 (warning) to keep logging off the hot path
	Dir              string        // where rtpengine.log goes; default a temp dir removed by Stop
	ReadyTimeout     time.Duration // how long to wait for the first pong; default 10s
	ExtraArgs        []string      // appended verbatim
}

// Daemon is a running rtpengine started by Start.
type Daemon struct {
	cmd     *exec.Cmd
	args    []string
	ngAddr  netip.AddrPort
	client  *Client
	logPath string
	tempDir string // removed by Stop when we created it

	exited  chan struct{} // closed once cmd.Wait returns
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// Start launches rtpengine in the foreground in pure userspace mode
// (--table=-1: no kernel forwarding; --no-fallback is NOT passed because it
// means "refuse to start without the kernel module"), ignoring
// /etc/rtpengine/rtpengine.conf, and returns once it answers ng pings.
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.PortMin <= 0 || opts.PortMax <= opts.PortMin || opts.PortMax > 65535 {
		return nil, fmt.Errorf("rtpengine: bad port range %d-%d", opts.PortMin, opts.PortMax)
	}
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.NumCPU()
	}
	if opts.LogLevel <= 0 {
		opts.LogLevel = 4
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	d := &Daemon{exited: make(chan struct{})}
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "rtpengine-*")
		if err != nil {
			return nil, fmt.Errorf("rtpengine: temp dir: %w", err)
		}
		opts.Dir, d.tempDir = dir, dir
	}
	if opts.NGPort == 0 {
		port, err := freeUDPPort()
		if err != nil {
			d.removeTemp()
			return nil, err
		}
		opts.NGPort = port
	}
	d.ngAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(opts.NGPort))
	d.logPath = filepath.Join(opts.Dir, "rtpengine.log")

	d.args = append([]string{
		"--config-file=none", // otherwise /etc/rtpengine/rtpengine.conf is merged in
		"--foreground",
		"--log-stderr",
		"--log-level=" + strconv.Itoa(opts.LogLevel),
		"--table=-1",
		"--interface=127.0.0.1",
		"--listen-ng=" + d.ngAddr.String(),
		"--port-min=" + strconv.Itoa(opts.PortMin),
		"--port-max=" + strconv.Itoa(opts.PortMax),
		"--num-threads=" + strconv.Itoa(opts.Threads),
		// The default keeps deleted calls (and their ports) for 30 s,
		// which would starve the port range under load.
		"--delete-delay=0",
	}, opts.ExtraArgs...)

	logFile, err := os.Create(d.logPath)
	if err != nil {
		d.removeTemp()
		return nil, fmt.Errorf("rtpengine: log file: %w", err)
	}
	defer logFile.Close() // the child keeps its own descriptor

	d.cmd = exec.Command(opts.Binary, d.args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	// If the harness dies without Stop, do not leave the daemon behind.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		d.removeTemp()
		return nil, fmt.Errorf("rtpengine: start %s: %w", opts.Binary, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()

	if d.client, err = Dial(d.ngAddr); err != nil {
		d.Stop()
		return nil, fmt.Errorf("rtpengine: %w", err)
	}
	if err := d.waitReady(ctx, opts.ReadyTimeout); err != nil {
		tail := d.logTail(2048)
		d.Stop()
		return nil, fmt.Errorf("rtpengine: not ready: %w; log tail:\n%s", err, tail)
	}
	return d, nil
}

func (d *Daemon) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case <-d.exited:
			return fmt.Errorf("exited early: %v", d.waitErr)
		default:
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 200*time.Millisecond)
		err := d.client.Ping(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last ping: %v)", ctx.Err(), err)
		case <-d.exited:
			return fmt.Errorf("exited early: %v", d.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop terminates the daemon by pid (SIGTERM, then SIGKILL after 5 s), waits
// for it to be reaped and closes its client. It is safe to call twice.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() {
		if d.client != nil {
			d.client.Close()
		}
		d.stopErr = d.kill()
		d.removeTemp()
	})
	return d.stopErr
}

func (d *Daemon) kill() error {
	select {
	case <-d.exited:
		return nil // already reaped: its pid may belong to someone else now
	default:
	}
	// os.Process signals through a pidfd, so it cannot hit a recycled pid.
	p := d.cmd.Process
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("rtpengine: SIGTERM pid %d: %w", p.Pid, err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("rtpengine: SIGKILL pid %d: %w", p.Pid, err)
	}
	<-d.exited
	return nil
}

func (d *Daemon) removeTemp() {
	if d.tempDir != "" {
		os.RemoveAll(d.tempDir)
	}
}

// Pid is the daemon's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Client is an ng client connected to the daemon, closed by Stop.
func (d *Daemon) Client() *Client { return d.client }

// NGAddr is the ng control address.
func (d *Daemon) NGAddr() netip.AddrPort { return d.ngAddr }

// LogPath is the daemon's log file (gone after Stop if Options.Dir was empty).
func (d *Daemon) LogPath() string { return d.logPath }

// CommandLine is the full command the daemon was started with.
func (d *Daemon) CommandLine() string {
	return strings.Join(append([]string{d.cmd.Path}, d.args...), " ")
}

// CPUTime is the user+system CPU time the daemon has used so far.
func (d *Daemon) CPUTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.Pid()))
	if err != nil {
		return 0, fmt.Errorf("rtpengine: cpu: %w", err)
	}
	// comm (field 2) may contain spaces; fields after the last ')' start at
	// field 3 (state), so utime (14) and stime (15) are at 11 and 12.
	i := bytes.LastIndexByte(b, ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("rtpengine: cpu: short /proc/%d/stat", d.Pid())
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("rtpengine: cpu: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / time.Duration(clockTicks()), nil
}

// RSS is the daemon's resident set size in bytes (VmRSS).
func (d *Daemon) RSS() (int64, error) {
	kb, err := d.statusField("VmRSS")
	return kb * 1024, err
}

// Threads is the daemon's current thread count.
func (d *Daemon) Threads() (int, error) {
	n, err := d.statusField("Threads")
	return int(n), err
}

func (d *Daemon) statusField(name string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Pid()))
	if err != nil {
		return 0, fmt.Errorf("rtpengine: %s: %w", name, err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, name+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "37376 kB" or "12"
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rtpengine: %s: %w", name, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("rtpengine: no %s in /proc/%d/status", name, d.Pid())
}

func (d *Daemon) logTail(n int64) string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return err.Error()
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// clockTicks is sysconf(_SC_CLK_TCK), read from the auxiliary vector
// (AT_CLKTCK) since Go has no sysconf; 100 is the Linux default.
var clockTicks = sync.OnceValue(func() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	word := strconv.IntSize / 8
	if err != nil {
		return 100
	}
	for i := 0; i+2*word <= len(b); i += 2 * word {
		var k, v uint64
		if word == 8 {
			k, v = binary.NativeEndian.Uint64(b[i:]), binary.NativeEndian.Uint64(b[i+8:])
		} else {
			k, v = uint64(binary.NativeEndian.Uint32(b[i:])), uint64(binary.NativeEndian.Uint32(b[i+4:]))
		}
		if k == atClkTck && v > 0 {
			return int64(v)
		}
	}
	return 100
})

// freeUDPPort asks the kernel for an unused loopback UDP port. Another
// process could grab it before rtpengine binds; Start then fails clearly.
func freeUDPPort() (int, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, fmt.Errorf("rtpengine: free port: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}
