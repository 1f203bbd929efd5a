package e2e

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// registration is an item of the registrations lists.
type registration struct {
	UserID    string    `json:"user_id"`
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	UserAgent string    `json:"user_agent"`
	ExpiresAt time.Time `json:"expires_at"`
	Node      string    `json:"node"`
}

type registrationPage struct {
	Items []registration `json:"items"`
	Next  string         `json:"next"`
}

// Two phones of Alice's and one of Bob's register over UDP; REST lists
// them as the registrar keeps them, to Alice herself and to the admin, and
// forgets the one that unregisters.
func TestRegistrationsListed(t *testing.T) {
	s := startNode(t, nil)
	alice := s.user("alice", "1001", "alice-secret")
	bob := s.user("bob", "1002", "bob-secret")
	long := strings.Repeat("x", 300) // a User-Agent past the 256 bytes kept
	desk := s.phone("alice", "alice-secret", func(c *sipphone.Config) { c.UserAgent = "Desk/1.0 (e2e)" })
	soft := s.phone("alice", "alice-secret", nil) // sends no User-Agent
	bobs := s.phone("bob", "bob-secret", func(c *sipphone.Config) { c.UserAgent = long })

	ctx := ctxT(t, 10*time.Second)
	registered := time.Now()
	for _, p := range []*sipphone.Phone{desk, soft, bobs} {
		res, err := p.Register(ctx, 300)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("register %s: %v %v", p.Addr(), res, err)
		}
		if strings.Contains(res.String(), "Desk/1.0") || strings.Contains(res.String(), long[:20]) {
			t.Fatalf("the phone's User-Agent came back in SIP:\n%s", res)
		}
	}
	answered := time.Now()

	want := map[string]registration{
		desk.Addr(): {UserID: "alice", Contact: "sip:alice@" + desk.Addr(), Source: desk.Addr(), Transport: "udp", UserAgent: "Desk/1.0 (e2e)", Node: "n1"},
		soft.Addr(): {UserID: "alice", Contact: "sip:alice@" + soft.Addr(), Source: soft.Addr(), Transport: "udp", Node: "n1"},
		bobs.Addr(): {UserID: "bob", Contact: "sip:bob@" + bobs.Addr(), Source: bobs.Addr(), Transport: "udp", UserAgent: long[:256], Node: "n1"},
	}
	// check compares a list with the phones at addrs, in any order; the
	// user's own list names no user.
	check := func(name string, got []registration, withUser bool, addrs ...string) {
		t.Helper()
		if len(got) != len(addrs) {
			t.Fatalf("%s: %d registrations, want %d: %+v", name, len(got), len(addrs), got)
		}
		for _, r := range got {
			w, ok := want[r.Source]
			if !ok || !slices.Contains(addrs, r.Source) {
				t.Fatalf("%s: unexpected %+v", name, r)
			}
			if !withUser {
				w.UserID = ""
			}
			// Registered for 300 s: the expiry is ahead, and no later than
			// 300 s after the registrar answered (its clock started the 300 s
			// between the REGISTER going out and its 200 coming back).
			if r.ExpiresAt.Location() != time.UTC || !r.ExpiresAt.After(answered) || r.ExpiresAt.After(answered.Add(300*time.Second)) {
				t.Errorf("%s: %s expires at %v, registered at %v", name, r.Source, r.ExpiresAt, registered)
			}
			r.ExpiresAt = time.Time{}
			if r != w {
				t.Errorf("%s: got %+v, want %+v", name, r, w)
			}
		}
	}

	var page registrationPage
	if code := s.api("GET", "/v1/users/alice/registrations", alice.Token, nil, &page); code != 200 || page.Next != "" {
		t.Fatalf("alice's own: %d %+v", code, page)
	}
	check("alice's own", page.Items, false, desk.Addr(), soft.Addr())
	if code := s.api("GET", "/v1/users/alice/registrations", "", nil, &page); code != 200 {
		t.Fatalf("alice's, as the admin: %d", code)
	}
	check("alice's, as the admin", page.Items, false, desk.Addr(), soft.Addr())
	for _, c := range []struct {
		name, path, tok string
		status          int
		code            string
	}{
		{"bob reads alice's", "/v1/users/alice/registrations", bob.Token, 403, "forbidden"},
		{"bob lists everyone's", "/v1/registrations", bob.Token, 403, "forbidden"},
		{"an unknown user's", "/v1/users/nobody/registrations", s.token, 404, "not_found"},
		{"a bad limit", "/v1/registrations?limit=0", s.token, 400, "invalid_field"},
	} {
		if status, e := s.raw("GET", c.path, c.tok, ""); status != c.status || e.Error.Code != c.code {
			t.Errorf("%s: %d %q, want %d %q", c.name, status, e.Error.Code, c.status, c.code)
		}
	}

	// The admin's list, one at a time, walks all three by user.
	walk := func() []registration {
		var all []registration
		cursor := ""
		for range 10 {
			var p registrationPage
			if code := s.api("GET", "/v1/registrations?limit=1&cursor="+url.QueryEscape(cursor), "", nil, &p); code != 200 || len(p.Items) > 1 {
				t.Fatalf("page after %q: %d %+v", cursor, code, p)
			}
			all = append(all, p.Items...)
			if cursor = p.Next; cursor == "" {
				return all
			}
		}
		t.Fatalf("paging did not end: %+v", all)
		return nil
	}
	all := walk()
	check("everyone's, paged", all, true, desk.Addr(), soft.Addr(), bobs.Addr())
	if users := []string{all[0].UserID, all[1].UserID, all[2].UserID}; !slices.Equal(users, []string{"alice", "alice", "bob"}) {
		t.Fatalf("not by user: %v", users)
	}

	// The desk phone unregisters: Alice has the softphone left.
	if res, err := desk.Register(ctx, 0); err != nil || res.StatusCode != 200 {
		t.Fatalf("unregister: %v %v", res, err)
	}
	if code := s.api("GET", "/v1/users/alice/registrations", alice.Token, nil, &page); code != 200 {
		t.Fatalf("alice's after unregistering: %d", code)
	}
	check("alice's after unregistering", page.Items, false, soft.Addr())
	check("everyone's after unregistering", walk(), true, soft.Addr(), bobs.Addr())
}
