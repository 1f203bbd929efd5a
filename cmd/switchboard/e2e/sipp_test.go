package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

func scenario(t *testing.T, name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "bench", "sipp", name)
}

func needSipp(t *testing.T) string {
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is not installed (.ci/run installs sip-tester)")
		}
		t.Skip("sipp not installed: apt-get install sip-tester")
	}
	return p
}

// sipp calls in through a trunk to the number of a user whose phone is a Go
// UA registered with digest.
func TestSippCallerThroughTrunk(t *testing.T) {
	sipp := needSipp(t)
	s := startNode(t, nil)
	s.user("bob", "1002", "bob-secret", "+14155550102")
	if code := s.api("POST", "/v1/trunks", "", map[string]any{
		"id": "sipp", "address": "127.0.0.3:5999", "inbound_cidrs": []string{"127.0.0.3/32"}, "outbound": false,
	}, nil); code != 201 {
		t.Fatalf("create trunk: %d", code)
	}
	bob := s.phone("bob", "bob-secret", func(c *sipphone.Config) { c.AutoAnswerOn = true })
	s.registered(bob)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, "-sf", scenario(t, "uac.xml"), "-s", "+14155550102",
		"-i", "127.0.0.3", "-m", "1", "-d", "500", "-timeout", "20s", "-timeout_error",
		"-nostdin", s.n.SIPAddr())
	cmd.Dir = t.TempDir() // sipp writes its logs beside itself
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sipp failed: %v\n%s", err, tail(string(out)))
	}
	c := recvCall(t, bob)
	if c.From != "+14155550000" {
		t.Fatalf("caller id through the trunk: %q", c.From)
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
