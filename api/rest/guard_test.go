package rest

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api/authguard"
)

// Invalid tokens from one source: past the limit it gets 429 with
// Retry-After, even with a good token, until the cooling period ends.
func TestInvalidTokensRefused(t *testing.T) {
	e := newEnv(t)
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	cfg := authguard.Defaults()
	cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	e.deps.Guard = authguard.New(cfg)
	e.app = New(e.deps, testLog())

	for i := range cfg.SourceLimit {
		r := e.do("GET", "/v1/users", "guess-"+string(rune('a'+i)), "")
		e.expect("invalid token", r, 401, "unauthorized", "token")
	}
	req := httptest.NewRequest("GET", "/v1/users", nil)
	req.Header.Set("Authorization", "Bearer guess-z")
	res, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "600" {
		t.Fatalf("past the limit: %d, Retry-After %q; want 429 and 600", res.StatusCode, res.Header.Get("Retry-After"))
	}
	e.expect("past the limit", e.do("GET", "/v1/users", "guess-y", ""), 429, "too_many_requests", "600 s")
	e.expect("good token from the blocked source", e.do("GET", "/v1/users", adminTok, ""), 429, "too_many_requests", "retry")
	e.expect("no token from the blocked source", e.do("GET", "/v1/users", "", ""), 429, "too_many_requests", "retry")

	now.Add(int64(cfg.Block - time.Second))
	e.expect("a second before the end", e.do("GET", "/v1/users", adminTok, ""), 429, "too_many_requests", "retry after 1 s")
	now.Add(int64(time.Second))
	e.expect("after the cooling period", e.do("GET", "/v1/users", adminTok, ""), 200, "", "")
}

// Without a guard, invalid tokens are only answered 401.
func TestInvalidTokensUnlimitedWithoutGuard(t *testing.T) {
	e := newEnv(t)
	for range 50 {
		e.expect("invalid token", e.do("GET", "/v1/users", "guess", ""), 401, "unauthorized", "token")
	}
	e.expect("good token", e.do("GET", "/v1/users", adminTok, ""), 200, "", "")
}
