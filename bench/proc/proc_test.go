package proc

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// WaitHTTP returns once the URL answers 200, fails at once when the
// process ends first, and gives up after its limit.
func TestWaitHTTP(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	start := func(args ...string) *Proc {
		p, err := Start(args[0], filepath.Join(t.TempDir(), "log"), args[1:]...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return p
	}

	running := start("sleep", "60")
	if err := running.WaitHTTP(srv.URL, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("a server answering 503: %v, want not ready", err)
	}
	ready.Store(true)
	if err := running.WaitHTTP(srv.URL, 10*time.Second); err != nil {
		t.Fatalf("a server answering 200: %v", err)
	}
	ended := start("true")
	<-ended.Exited()
	if err := ended.WaitHTTP(srv.URL, 10*time.Second); !errors.Is(err, ErrExited) {
		t.Fatalf("an ended process: %v, want ErrExited", err)
	}
}
