package baresip

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/node"
)

// Media port ranges, apart from the other e2e packages' (go test runs
// packages in parallel) and from each other.
const (
	nodeRTP  = "33000-33199"
	aliceRTP = "33200-33399"
	bobRTP   = "33400-33599"
)

const adminTok = "test-admin-token"

type sys struct {
	t    *testing.T
	n    *node.Node
	base string
}

// startNode runs one node in this process on loopback; E2E_DEBUG=1 shows its
// debug log.
func startNode(t *testing.T) *sys {
	t.Helper()
	lvl := slog.LevelWarn
	if os.Getenv("E2E_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	n, err := node.Start(context.Background(), node.Config{
		SIPAddr:      "127.0.0.1:0",
		HTTPAddr:     "127.0.0.1:0",
		MediaIP:      "127.0.0.1",
		RTPPorts:     nodeRTP,
		DataDir:      t.TempDir(),
		EtcdListen:   "127.0.0.1:0",
		NodeID:       "n1",
		ClusterAddr:  "127.0.0.1:0",
		Domain:       "switchboard.test",
		AdminToken:   adminTok,
		DrainTimeout: 2 * time.Second,
		RTPTimeout:   30 * time.Second,
		Log:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(n.Close)
	return &sys{t: t, n: n, base: "http://" + n.HTTPAddr()}
}

// api calls the REST API (path below /v1) as the admin and decodes the answer into out.
func (s *sys) api(method, path string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+"/v1"+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminTok)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return res.StatusCode
}

// user creates a user; fields beyond the four required ones go in extra.
func (s *sys) user(id, ext, pass string, extra map[string]any) {
	s.t.Helper()
	body := map[string]any{"id": id, "name": id, "extension": ext, "sip_password": pass}
	for k, v := range extra {
		body[k] = v
	}
	if code := s.api("POST", "/users", body, nil); code != 201 {
		s.t.Fatalf("create user %s: status %d", id, code)
	}
}

// metric reads an unlabelled sample from /metrics.
func (s *sys) metric(name string) float64 {
	s.t.Helper()
	res, err := http.Get(s.base + "/metrics")
	if err != nil {
		s.t.Fatalf("/metrics: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("/metrics: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("/metrics: %s: %v", line, err)
			}
			return f
		}
	}
	s.t.Fatalf("/metrics has no %s", name)
	return 0
}

type call struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Legs  []struct {
		Party string `json:"party"`
	} `json:"legs"`
}

// eventually polls cond until it holds or d passes; for effects that travel
// over sockets and through other processes, not for rules.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
