package rest

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"
)

// fakeRegistrations answers from a fixed set of devices by user; All pages
// them by "<user>/<contact>", as the store's keys order them.
type fakeRegistrations struct {
	byUser map[string][]Registration
	err    error
}

func (f fakeRegistrations) Of(_ context.Context, user string) ([]Registration, error) {
	return f.byUser[user], f.err
}

func (f fakeRegistrations) All(_ context.Context, after string, limit int) ([]UserRegistration, string, error) {
	if f.err != nil {
		return nil, "", f.err
	}
	var keys []string
	at := map[string]UserRegistration{}
	for user, rs := range f.byUser {
		for _, r := range rs {
			k := user + "/" + r.Contact
			keys = append(keys, k)
			at[k] = UserRegistration{UserID: user, Registration: r}
		}
	}
	sort.Strings(keys)
	var out []UserRegistration
	for i, k := range keys {
		if k <= after {
			continue
		}
		if limit > 0 && len(out) == limit {
			return out, keys[i-1], nil
		}
		out = append(out, at[k])
	}
	return out, "", nil
}

func withRegistrations(t *testing.T, f fakeRegistrations) *env {
	e := newEnv(t)
	e.deps.Registrations = f
	e.app = New(e.deps, testLog())
	return e
}

var expiry = time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC)

// A user's token reads its own user's devices only; the admin reads
// anyone's and the list of all, which names each device's user and pages.
func TestRegistrations(t *testing.T) {
	desk := Registration{Contact: "sip:1001@192.0.2.10:5060", Source: "192.0.2.10:5060", Transport: "udp", UserAgent: "Desk/1.0", ExpiresAt: expiry, Node: "n1"}
	soft := Registration{Contact: "sip:1001@192.0.2.11:5070;transport=tcp", Source: "192.0.2.11:40001", Transport: "tcp", ExpiresAt: expiry.Add(time.Minute), Node: "n2"}
	bobs := Registration{Contact: "sips:1002@192.0.2.12:5061", Source: "192.0.2.12:40002", Transport: "tls", UserAgent: "Soft 2", ExpiresAt: expiry, Node: "n1"}
	e := withRegistrations(t, fakeRegistrations{byUser: map[string][]Registration{"alice": {soft, desk}, "bob": {bobs}}})
	alice, bob := e.user("alice", "1001"), e.user("bob", "1002")
	e.user("carol", "1003")

	for _, c := range []struct {
		name, path, tok string
		status          int
		code, mentions  string
		body            string // exact, for a 200
	}{
		{"own", "/v1/users/alice/registrations", alice.Token, 200, "", "",
			`{"items":[{"contact":"sip:1001@192.0.2.11:5070;transport=tcp","source":"192.0.2.11:40001","transport":"tcp","user_agent":"","expires_at":"2026-03-01T09:06:00Z","node":"n2"},` +
				`{"contact":"sip:1001@192.0.2.10:5060","source":"192.0.2.10:5060","transport":"udp","user_agent":"Desk/1.0","expires_at":"2026-03-01T09:05:00Z","node":"n1"}],"next":""}`},
		{"own, none registered", "/v1/users/carol/registrations", adminTok, 200, "", "", `{"items":[],"next":""}`},
		{"admin reads bob's", "/v1/users/bob/registrations", adminTok, 200, "", "",
			`{"items":[{"contact":"sips:1002@192.0.2.12:5061","source":"192.0.2.12:40002","transport":"tls","user_agent":"Soft 2","expires_at":"2026-03-01T09:05:00Z","node":"n1"}],"next":""}`},
		{"another user's", "/v1/users/alice/registrations", bob.Token, 403, "forbidden", "own", ""},
		{"an unknown user's, with a user token", "/v1/users/nobody/registrations", bob.Token, 403, "forbidden", "own", ""},
		{"an unknown user's, as the admin", "/v1/users/nobody/registrations", adminTok, 404, "not_found", "user", ""},
		{"no token", "/v1/users/alice/registrations", "", 401, "unauthorized", "Bearer", ""},
		{"a user lists everyone's", "/v1/registrations", alice.Token, 403, "forbidden", "admin", ""},
		{"limit 0", "/v1/registrations?limit=0", adminTok, 400, "invalid_field", "limit", ""},
		{"limit too large", "/v1/registrations?limit=501", adminTok, 400, "invalid_field", "limit", ""},
		{"limit not a number", "/v1/registrations?limit=one", adminTok, 400, "invalid_field", "limit", ""},
		{"everyone's", "/v1/registrations", adminTok, 200, "", "",
			`{"items":[{"user_id":"alice","contact":"sip:1001@192.0.2.10:5060","source":"192.0.2.10:5060","transport":"udp","user_agent":"Desk/1.0","expires_at":"2026-03-01T09:05:00Z","node":"n1"},` +
				`{"user_id":"alice","contact":"sip:1001@192.0.2.11:5070;transport=tcp","source":"192.0.2.11:40001","transport":"tcp","user_agent":"","expires_at":"2026-03-01T09:06:00Z","node":"n2"},` +
				`{"user_id":"bob","contact":"sips:1002@192.0.2.12:5061","source":"192.0.2.12:40002","transport":"tls","user_agent":"Soft 2","expires_at":"2026-03-01T09:05:00Z","node":"n1"}],"next":""}`},
	} {
		r := e.do("GET", c.path, c.tok, "")
		e.expect(c.name, r, c.status, c.code, c.mentions)
		if c.status == 200 && string(r.body) != c.body {
			t.Errorf("%s: body\n%s\nwant\n%s", c.name, r.body, c.body)
		}
	}

	// One at a time, the cursor walks every device once, in order.
	var walked []string
	cursor := ""
	for range 10 {
		var p struct {
			Items []UserRegistration `json:"items"`
			Next  string             `json:"next"`
		}
		r := e.do("GET", "/v1/registrations?limit=1&cursor="+url.QueryEscape(cursor), adminTok, "")
		r.decode(t, &p)
		if r.status != 200 || len(p.Items) != 1 {
			t.Fatalf("page after %q: %d %s", cursor, r.status, r.body)
		}
		walked = append(walked, p.Items[0].UserID+" "+p.Items[0].Contact)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if want := []string{"alice " + desk.Contact, "alice " + soft.Contact, "bob " + bobs.Contact}; !slices.Equal(walked, want) {
		t.Fatalf("walked %q, want %q", walked, want)
	}
}

// A store that cannot be read is a 500, not an empty list.
func TestRegistrationsUnreadable(t *testing.T) {
	e := withRegistrations(t, fakeRegistrations{err: errors.New("etcd: context deadline exceeded")})
	alice := e.user("alice", "1001")
	e.expect("own", e.do("GET", "/v1/users/alice/registrations", alice.Token, ""), 500, "internal", "could not")
	e.expect("everyone's", e.do("GET", "/v1/registrations", adminTok, ""), 500, "internal", "could not")
}
