package rest

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard/switchboard/api/authguard"
	"github.com/switchboard/switchboard/cluster/metrics"
)

// Invalid tokens from one source: past the limit they get 429 with
// Retry-After, and still count, so the source stays blocked while it
// keeps guessing. A valid token is served from the blocked source, and
// another source is not touched: behind a reverse proxy every client has
// the guesser's address.
func TestInvalidTokensRefused(t *testing.T) {
	const guesser, other = "127.0.0.5", "127.0.0.1"
	e := newEnv(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	cfg := authguard.Defaults()
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	e.deps.Guard = authguard.New(cfg)
	e.app = New(e.deps, testLog())
	alice := e.user("alice", "1001")
	from := serveFrom(t, e)

	steps := []struct {
		name       string
		wait       time.Duration
		src, tok   string
		times      int // 0: once
		status     int
		code, word string
		retryAfter string
	}{
		{name: "the limit of invalid tokens", src: guesser, tok: "guess", times: cfg.SourceLimit, status: 401, code: "unauthorized", word: "token"},
		{name: "past the limit", src: guesser, tok: "guess", status: 429, code: "too_many_requests", word: "retry after 600 s", retryAfter: "600"},
		{name: "admin token from the blocked source", src: guesser, tok: adminTok, status: 200},
		{name: "user token from the blocked source", src: guesser, tok: alice.Token, status: 200},
		{name: "no token from the blocked source", src: guesser, status: 401, code: "unauthorized", word: "header"},
		{name: "invalid token from another source", src: other, tok: "guess", status: 401, code: "unauthorized", word: "token"},
		{name: "admin token from another source", src: other, tok: adminTok, status: 200},
		// Guessing on through the last minute of the block...
		{name: "guessing in the block", wait: cfg.Block - 30*time.Second, src: guesser, tok: "guess", times: cfg.SourceLimit - 1,
			status: 429, code: "too_many_requests", word: "retry after 30 s", retryAfter: "30"},
		// ...blocks the source again, twice as long, at its first guess
		// after: the window holds the limit.
		{name: "the guess after the block", wait: 30 * time.Second, src: guesser, tok: "guess", status: 401, code: "unauthorized", word: "token"},
		{name: "blocked again", src: guesser, tok: "guess", status: 429, code: "too_many_requests", word: "retry after 1200 s", retryAfter: "1200"},
		{name: "admin token through the second block", src: guesser, tok: adminTok, status: 200},
	}
	failures0 := value(metrics.AuthFailures.WithLabelValues("rest"))
	refused0 := value(metrics.AuthRefused.WithLabelValues("rest"))
	var failures, refused float64
	etcdGets := metrics.EtcdSeconds.WithLabelValues("get").(prometheus.Metric)
	for _, s := range steps {
		now.Add(int64(s.wait))
		n := float64(max(s.times, 1))
		gets0 := value(etcdGets)
		for range int(n) {
			r, retryAfter := from(s.src, s.tok)
			e.expect(s.name, r, s.status, s.code, s.word)
			if retryAfter != s.retryAfter {
				t.Errorf("%s: Retry-After %q, want %q", s.name, retryAfter, s.retryAfter)
			}
		}
		// An unknown token costs an unblocked source an etcd read (the
		// token may be new on another node), a blocked one none.
		gets := value(etcdGets) - gets0
		switch {
		case s.status == 401 && s.tok != "":
			failures += n
			if gets != n {
				t.Errorf("%s: %v etcd reads, want %v", s.name, gets, n)
			}
		case s.status == 429:
			refused += n
			if gets != 0 {
				t.Errorf("%s: %v etcd reads, want none", s.name, gets)
			}
		}
	}
	if got := value(metrics.AuthFailures.WithLabelValues("rest")) - failures0; got != failures {
		t.Errorf("%v failures counted, want %v", got, failures)
	}
	if got := value(metrics.AuthRefused.WithLabelValues("rest")) - refused0; got != refused {
		t.Errorf("%v refusals counted, want %v", got, refused)
	}
}

// value is a counter's value, or a histogram's count.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	if h := m.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return m.GetCounter().GetValue()
}

// serveFrom serves e's app on loopback and returns a GET of
// /v1/users/alice (the admin or alice may read it) with tok (none if
// empty) sent from the loopback address src: Linux answers on all of
// 127/8.
func serveFrom(t *testing.T, e *env) func(src, tok string) (reply, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.Shutdown() })
	clients := map[string]*http.Client{}
	return func(src, tok string) (reply, string) {
		t.Helper()
		c := clients[src]
		if c == nil {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			c = &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
			t.Cleanup(c.CloseIdleConnections)
			clients[src] = c
		}
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+ln.Addr().String()+"/v1/users/alice", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return reply{res.StatusCode, b}, res.Header.Get("Retry-After")
	}
}

// Without a guard, invalid tokens are only answered 401.
func TestInvalidTokensUnlimitedWithoutGuard(t *testing.T) {
	e := newEnv(t)
	for range 50 {
		e.expect("invalid token", e.do("GET", "/v1/users", "guess", ""), 401, "unauthorized", "token")
	}
	e.expect("good token", e.do("GET", "/v1/users", adminTok, ""), 200, "", "")
}
