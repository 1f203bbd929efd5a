package baresip

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// phone is one headless baresip process: it registers an account, speaks a
// tone file (aufile) and records what it hears (sndfile), and takes the
// menu's commands (/dial, /hold, /resume, /hangup) on stdin.
type phone struct {
	t     *testing.T
	name  string
	dir   string
	stdin io.WriteCloser

	mu  sync.Mutex
	out []string // stdout and stderr, one line each, status lines left out
}

type phoneConfig struct {
	name    string
	account string // one line of baresip's accounts file
	tone    string // WAV file it speaks
	rtp     string // its RTP port range
}

// statusLine is the call timer baresip redraws with \r many times a second.
var statusLine = regexp.MustCompile(`^\[\d+:\d\d:\d\d\] audio=`)

// baresipBinary finds baresip and its modules. Without it the test is
// skipped on a developer's machine and fails in CI (.ci/run sets
// SWITCHBOARD_REQUIRE_BARESIP; CI providers set CI).
func baresipBinary(t *testing.T) (bin, modules string) {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_BARESIP") == "" && os.Getenv("CI") == "" {
			t.Skip("baresip is not installed (apt-get install baresip-core)")
		}
		t.Fatalf("baresip is required here: %v", err)
	}
	modules = filepath.Join(filepath.Dir(bin), "..", "lib", "baresip", "modules")
	if _, err := os.Stat(filepath.Join(modules, "sndfile.so")); err != nil {
		t.Fatalf("baresip's modules are not beside %s: %v", bin, err)
	}
	return bin, modules
}

// startPhone writes the phone's config into a directory of its own and
// starts baresip with SIP tracing on (-s): the trace is part of what the
// test checks, and what a failure shows.
func startPhone(t *testing.T, bin, modules string, c phoneConfig) *phone {
	t.Helper()
	dir := t.TempDir()
	// The SIP listener takes any free port (0), so phones never collide; the
	// node learns it from the Contact.
	config := fmt.Sprintf(`poll_method epoll
sip_listen 127.0.0.1:0
audio_source aufile,%s
rtp_ports %s
module_path %s
module stdio.so
module g711.so
module aufile.so
module sndfile.so
module srtp.so
snd_path %s
module_tmp account.so
module_app menu.so
`, c.tone, c.rtp, modules, dir)
	for name, body := range map[string]string{"config": config, "accounts": c.account + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-s", "-f", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s's baresip: %v", c.name, err)
	}
	p := &phone{t: t, name: c.name, dir: dir, stdin: stdin}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		sc.Split(splitLines)
		for sc.Scan() {
			if l := sc.Text(); l != "" && !statusLine.MatchString(l) {
				p.mu.Lock()
				p.out = append(p.out, l)
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		w.Close()
		<-read
		if t.Failed() {
			t.Logf("%s's baresip said:\n%s", p.name, strings.Join(p.lines(), "\n"))
		}
	})
	return p
}

// splitLines splits baresip's output at \n and at the \r it redraws with.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		if b == '\n' || b == '\r' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func (p *phone) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

// said reports whether baresip has printed a line containing s.
func (p *phone) said(s string) bool {
	for _, l := range p.lines() {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// await waits until baresip prints a line containing s.
func (p *phone) await(s string, d time.Duration) {
	p.t.Helper()
	eventually(p.t, d, fmt.Sprintf("%s's baresip to say %q", p.name, s), func() bool { return p.said(s) })
}

// do types a menu command.
func (p *phone) do(command string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		p.t.Fatalf("%s's baresip: %s: %v", p.name, command, err)
	}
}

// recording is the audio the phone has heard in this call so far (sndfile
// writes one <time>-dec.wav per call as it decodes).
func (p *phone) recording() []int16 {
	p.t.Helper()
	files, err := filepath.Glob(filepath.Join(p.dir, "dump-*-dec.wav"))
	if err != nil || len(files) > 1 {
		p.t.Fatalf("%s's recordings: %v %v", p.name, files, err)
	}
	if len(files) == 0 {
		return nil
	}
	x, err := readWAV(files[0])
	if err != nil {
		p.t.Fatal(err)
	}
	return x
}

// heard waits until the phone has heard d of audio from sample from on, and
// labels that stretch in 100 ms blocks.
func (p *phone) heard(from int, d time.Duration, tones map[string]float64) []string {
	p.t.Helper()
	n := int(d.Seconds() * rate)
	var x []int16
	eventually(p.t, d+5*time.Second, fmt.Sprintf("%v of audio at %s", d, p.name), func() bool {
		x = p.recording()
		return len(x) >= from+n
	})
	return hear(x[from:from+n], tones)
}

// trace is baresip's SIP trace: the messages it sent and received.
func (p *phone) trace() string { return strings.Join(p.lines(), "\n") }
