package rest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api/sipedge/digest"
	"github.com/switchboard/switchboard/cluster/directory"
	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/events"
	"github.com/switchboard/switchboard/cluster/history"
	"github.com/switchboard/switchboard/cluster/store"
)

const adminTok = "admin-token-for-tests"

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fakeCalls answers from a fixed list and records controls.
type fakeCalls struct {
	mu    sync.Mutex
	calls []Call
	errs  map[string]error // call id -> what Control answers
	done  []string         // "<action> <id> by <user|admin>"
}

func (f *fakeCalls) List(context.Context) ([]Call, error) { return f.calls, nil }

func (f *fakeCalls) Get(_ context.Context, id string) (Call, error) {
	for _, c := range f.calls {
		if c.ID == id {
			return c, nil
		}
	}
	return Call{}, ErrNotFound
}

func (f *fakeCalls) Control(_ context.Context, id string, cmd Command, by Principal) error {
	action := cmd.Action
	if err, ok := f.errs[id]; ok {
		return err
	}
	if _, err := f.Get(context.Background(), id); err != nil {
		return err
	}
	who := by.UserID
	if by.Admin {
		who = "admin"
	}
	f.mu.Lock()
	f.done = append(f.done, action+" "+id+" by "+who)
	f.mu.Unlock()
	return nil
}

// Monitor answers like a call grain: 202 for a supervisor not yet on the
// call, 200 for a switch (or a stop), the call's refusal from errs.
func (f *fakeCalls) Monitor(ctx context.Context, id string, req MonitorRequest, by Principal) (int, Call, error) {
	if err, ok := f.errs[id]; ok {
		return 0, Call{}, err
	}
	c, err := f.Get(ctx, id)
	if err != nil {
		return 0, Call{}, err
	}
	what := "monitor " + req.Mode
	if req.Stop {
		what = "stop"
	}
	f.mu.Lock()
	f.done = append(f.done, what+" "+id+" as "+req.Supervisor)
	f.mu.Unlock()
	if req.Stop || slices.ContainsFunc(c.Monitors, func(m Monitor) bool { return m.User == req.Supervisor }) {
		return 200, c, nil
	}
	return 202, c, nil
}

// Dial answers like a call grain: "nodev" has no device, "cat" has no
// place_calls on "dan"'s line; otherwise a ringing call on from's line.
func (f *fakeCalls) Dial(_ context.Context, d DialRequest) (Call, error) {
	f.mu.Lock()
	f.done = append(f.done, "dial "+d.From+" -> "+d.To+" for "+d.OnBehalfOf)
	f.mu.Unlock()
	switch {
	case d.From == "nodev":
		return Call{}, AsControlError(409, "no_devices", "from_user has no registered device to ring")
	case d.From == "cat" && d.OnBehalfOf == "dan":
		return Call{}, AsControlError(403, "missing_privilege", "a delegate needs the place_calls privilege to call on this line")
	}
	return Call{ID: "c2c", State: "ringing", Line: d.From, Legs: []Leg{{ID: "c2c-b1", Party: d.From, State: "trying", Node: "n1"}}, Monitors: []Monitor{}, Node: "n1"}, nil
}

type fakeCluster []Member

func (f fakeCluster) Members() []Member { return f }

type env struct {
	t     *testing.T
	app   *fiber.App
	deps  Deps
	calls *fakeCalls
	ready atomic.Pointer[error]
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0"}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err := store.Dial(srv.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewEtcd(cli)
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dir := directory.New(st, "test.local", directory.Credentials{Algorithms: []string{digest.MD5, digest.SHA256}, HA1: digest.HA1}, testLog())
	if err := dir.Start(ctx); err != nil {
		t.Fatal(err)
	}
	answered := time.Date(2026, 1, 1, 10, 0, 5, 0, time.UTC)
	e := &env{calls: &fakeCalls{
		calls: []Call{
			{ID: "call-a", State: "active", Line: "alice", Legs: []Leg{{ID: "l1", Party: "alice", State: "active", Node: "n1"}, {ID: "l2", Party: "+14155550199", State: "active", Node: "n1"}},
				Monitors: []Monitor{}, AnsweredBy: "alice", Node: "n1", GrainNode: "n2", CreatedAt: answered.Add(-5 * time.Second), AnsweredAt: &answered},
			{ID: "call-b", State: "ringing", Line: "bob", Legs: []Leg{{ID: "l3", Party: "bob", State: "ringing", Node: "n2"}}, Monitors: []Monitor{}, Node: "n2", GrainNode: "n1"},
		},
		errs: map[string]error{
			"locked":  fmt.Errorf("call locked: %w", ErrConflict),
			"private": ErrForbidden,
			"vip":     AsControlError(422, "vip_needs_delegate", "A VIP mode that rings delegates needs a delegate with answer_calls."),
		},
	}}
	if tt, ok := t.(*testing.T); ok {
		e.t = tt
	}
	e.deps = Deps{Directory: dir, Store: st, Events: events.NewHub(), AdminToken: adminTok, Calls: e.calls,
		Cluster: fakeCluster{{ID: "n1", Address: "127.0.0.1:7001", State: "alive", Calls: 1, Actors: 3}},
		Ready: func() error {
			if p := e.ready.Load(); p != nil {
				return *p
			}
			return nil
		}}
	e.app = New(e.deps, testLog())
	return e
}

type reply struct {
	status int
	body   []byte
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) errCode() (code, msg string) {
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code, e.Error.Message
}

func (e *env) do(method, path, tok, body string) reply {
	return e.send(method, path, tok, "application/json", body)
}

// send is do with a Content-Type of the test's choice ("" sends none).
func (e *env) send(method, path, tok, contentType, body string) reply {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.app.Test(req, -1)
	if err != nil {
		panic(fmt.Sprintf("%s %s: %v", method, path, err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, b}
}

// expect checks a status and, for errors, the code and a word of the message.
func (e *env) expect(name string, r reply, status int, code, mentions string) {
	e.t.Helper()
	if r.status != status {
		e.t.Errorf("%s: status %d, want %d: %s", name, r.status, status, r.body)
		return
	}
	if status >= 400 {
		c, m := r.errCode()
		if c != code || !strings.Contains(m, mentions) || !strings.HasSuffix(m, ".") {
			e.t.Errorf("%s: error %q %q, want %q mentioning %q", name, c, m, code, mentions)
		}
	}
}

type createdUser struct {
	directory.User
	Token string `json:"token"`
}

func (e *env) user(id, ext string) createdUser {
	e.t.Helper()
	r := e.do("POST", "/v1/users", adminTok, fmt.Sprintf(`{"id":%q,"name":"User %s","extension":%q,"sip_password":"secret-%s"}`, id, id, ext, id))
	if r.status != 201 {
		e.t.Fatalf("create %s: %d %s", id, r.status, r.body)
	}
	var u createdUser
	r.decode(e.t, &u)
	return u
}

func TestUsers(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/users", adminTok, `{"id":"alice","name":"Alice","extension":"1001","numbers":["+14155550101"],
		"sip_password":"alice-secret","timezone":"Europe/Paris","business_hours":{"mon":[["08:00","17:00"]]},"voicemail_enabled":true}`)
	e.expect("create", r, 201, "", "")
	var alice createdUser
	r.decode(t, &alice)
	if len(alice.Token) != 64 || alice.Timezone != "Europe/Paris" || !alice.VoicemailEnabled || alice.BusinessHours["tue"] == nil {
		t.Fatalf("created: %s", r.body)
	}
	if strings.Contains(string(r.body), "secrets") || strings.Contains(string(r.body), "sip_password") {
		t.Fatalf("secrets shown: %s", r.body)
	}
	bob := e.user("bob", "1002")

	for _, c := range []struct {
		name, method, path, tok, body string
		status                        int
		code, mentions                string
	}{
		{"no token", "GET", "/v1/users", "", "", 401, "unauthorized", "Bearer"},
		{"bad token", "GET", "/v1/users", "nope", "", 401, "unauthorized", "token"},
		{"duplicate extension", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"1001","sip_password":"carol-secret"}`, 409, "conflict", "extension 1001"},
		{"duplicate id", "POST", "/v1/users", adminTok, `{"id":"alice","name":"C","extension":"1009","sip_password":"carol-secret"}`, 409, "conflict", "id alice"},
		{"missing id", "POST", "/v1/users", adminTok, `{"name":"C","extension":"1003","sip_password":"carol-secret"}`, 400, "invalid_field", "id"},
		{"bad extension", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"x1","sip_password":"carol-secret"}`, 400, "invalid_field", "extension"},
		{"short password", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"1003","sip_password":"short"}`, 400, "invalid_field", "sip_password"},
		{"bad number", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"1003","sip_password":"carol-secret","numbers":["555"]}`, 400, "invalid_field", "numbers[0]"},
		{"bad timezone", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"1003","sip_password":"carol-secret","timezone":"Moon/Base"}`, 400, "invalid_field", "timezone"},
		{"bad hours", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"1003","sip_password":"carol-secret","business_hours":{"mon":[["9","17:00"]]}}`, 400, "invalid_field", "business_hours.mon[0]"},
		{"wrong type", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":1003,"sip_password":"carol-secret"}`, 400, "invalid_field", "extension: must be a string"},
		{"wrong nested type", "POST", "/v1/users", adminTok, `{"id":"carol","name":"C","extension":"1003","sip_password":"carol-secret","business_hours":{"mon":"all day"}}`, 400, "invalid_field", "business_hours.mon: must be an array"},
		{"bad json", "POST", "/v1/users", adminTok, `{"id":`, 400, "invalid_json", "JSON"},
		{"not an object", "POST", "/v1/users", adminTok, `["alice"]`, 400, "invalid_json", "object"},
		{"empty body", "POST", "/v1/users", adminTok, ``, 400, "invalid_json", "object"},
		{"trailing data", "POST", "/v1/users", adminTok, `{"id":"carol"} {}`, 400, "invalid_json", "after"},
		{"unknown field", "POST", "/v1/users", adminTok, `{"id":"x","colour":"red"}`, 400, "unknown_field", "colour"},
		{"user creates users", "POST", "/v1/users", alice.Token, `{"id":"carol","name":"C","extension":"1003","sip_password":"carol-secret"}`, 403, "forbidden", "admin"},
		{"user lists users", "GET", "/v1/users", alice.Token, "", 403, "forbidden", "admin"},
		{"user reads another", "GET", "/v1/users/bob", alice.Token, "", 403, "forbidden", "own"},
		{"user patches another", "PATCH", "/v1/users/bob", alice.Token, `{"name":"Bobby"}`, 403, "forbidden", "own"},
		{"user changes own extension", "PATCH", "/v1/users/alice", alice.Token, `{"extension":"1009"}`, 403, "forbidden", "timezone"},
		{"user changes own numbers", "PATCH", "/v1/users/alice", alice.Token, `{"numbers":[]}`, 403, "forbidden", "timezone"},
		{"user deletes self", "DELETE", "/v1/users/alice", alice.Token, "", 403, "forbidden", "admin"},
		{"user reissues token", "POST", "/v1/users/alice/token", alice.Token, "", 403, "forbidden", "admin"},
		{"extension without password", "PATCH", "/v1/users/alice", adminTok, `{"extension":"1009"}`, 400, "invalid_field", "sip_password"},
		{"taking bob's extension", "PATCH", "/v1/users/alice", adminTok, `{"extension":"1002","sip_password":"alice-secret2"}`, 409, "conflict", "extension 1002"},
		{"patch unknown", "PATCH", "/v1/users/nobody", adminTok, `{"name":"N"}`, 404, "not_found", "user"},
		{"get unknown", "GET", "/v1/users/nobody", adminTok, "", 404, "not_found", "user"},
		{"bad limit", "GET", "/v1/users?limit=0", adminTok, "", 400, "invalid_field", "limit"},
		{"unknown route", "GET", "/v1/nothing", adminTok, "", 404, "not_found", "/v1/nothing"},
		{"unknown route outside v1", "GET", "/nothing", "", "", 404, "not_found", "/nothing"},
	} {
		e.expect(c.name, e.do(c.method, c.path, c.tok, c.body), c.status, c.code, c.mentions)
	}
	req := httptest.NewRequest("GET", "/v1/users", nil)
	req.SetBasicAuth("admin", adminTok)
	if res, err := e.app.Test(req, -1); err != nil || res.StatusCode != 401 {
		t.Fatalf("basic auth with the admin token: %v %v", res, err)
	}

	// A user reads and changes their own name, timezone and hours.
	e.expect("self read", e.do("GET", "/v1/users/alice", alice.Token, ""), 200, "", "")
	r = e.do("PATCH", "/v1/users/alice", alice.Token, `{"name":"Alice A","timezone":"America/New_York","business_hours":{"fri":[["09:00","12:00"]]}}`)
	e.expect("self patch", r, 200, "", "")
	var got directory.User
	r.decode(t, &got)
	if got.Name != "Alice A" || got.Timezone != "America/New_York" || got.BusinessHours["fri"][0][1] != "12:00" || got.Extension != "1001" {
		t.Fatalf("after self patch: %s", r.body)
	}

	// The admin lists (paged), changes the extension with a password, reissues, deletes.
	r = e.do("GET", "/v1/users?limit=1", adminTok, "")
	var page struct {
		Items []directory.User `json:"items"`
		Next  string           `json:"next"`
	}
	r.decode(t, &page)
	if r.status != 200 || len(page.Items) != 1 || page.Items[0].ID != "alice" || page.Next != "alice" {
		t.Fatalf("page 1: %s", r.body)
	}
	r = e.do("GET", "/v1/users?limit=1&cursor=alice", adminTok, "")
	r.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "bob" {
		t.Fatalf("page 2: %s", r.body)
	}
	e.expect("admin extension change", e.do("PATCH", "/v1/users/alice", adminTok, `{"extension":"1009","sip_password":"alice-secret2"}`), 200, "", "")
	if u, ok := e.deps.Directory.UserByExtension("1009"); !ok || u.ID != "alice" {
		t.Fatal("extension change not in the directory")
	}
	r = e.do("POST", "/v1/users/bob/token", adminTok, "")
	var re struct{ ID, Token string }
	r.decode(t, &re)
	if r.status != 200 || len(re.Token) != 64 {
		t.Fatalf("reissue: %s", r.body)
	}
	e.expect("old token", e.do("GET", "/v1/users/bob", bob.Token, ""), 401, "unauthorized", "token")
	e.expect("new token", e.do("GET", "/v1/users/bob", re.Token, ""), 200, "", "")
	e.expect("delete", e.do("DELETE", "/v1/users/bob", adminTok, ""), 204, "", "")
	e.expect("deleted user's token", e.do("GET", "/v1/users/bob", re.Token, ""), 401, "unauthorized", "token")
	e.expect("delete again", e.do("DELETE", "/v1/users/bob", adminTok, ""), 404, "not_found", "user")
}

func TestHistory(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", "1001"), e.user("bob", "1002")
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var aliceIDs []string
	w := history.NewWriter(e.deps.Store, slog.New(slog.DiscardHandler), 6)
	for i := range 3 {
		at := start.Add(time.Duration(i) * time.Minute)
		call := fmt.Sprintf("call-%d", i)
		a := history.Entry{ID: history.NewID(at), CallID: call, Direction: "outbound", Peer: "1002",
			Line: "alice", Label: "You called Bob", StartedAt: at, EndedAt: at.Add(30 * time.Second), Outcome: "missed"}
		if err := w.Append("alice", a); err != nil {
			t.Fatal(err)
		}
		aliceIDs = append(aliceIDs, a.ID)
		if err := w.Append("bob", history.Entry{CallID: call, Direction: "inbound", Peer: "1001",
			Line: "bob", Label: "Missed", StartedAt: at, EndedAt: at.Add(30 * time.Second), Outcome: "missed"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.expect("alice reads bob's", e.do("GET", "/v1/users/bob/history", alice.Token, ""), 403, "forbidden", "own")
	e.expect("alice deletes bob's", e.do("DELETE", "/v1/users/bob/history/"+aliceIDs[0], alice.Token, ""), 403, "forbidden", "own")
	e.expect("admin reads unknown user's", e.do("GET", "/v1/users/nobody/history", adminTok, ""), 404, "not_found", "user")

	type page struct {
		Items []history.Entry `json:"items"`
		Next  string          `json:"next"`
	}
	var p page
	r := e.do("GET", "/v1/users/alice/history?limit=2", alice.Token, "")
	r.decode(t, &p)
	if r.status != 200 || len(p.Items) != 2 || p.Items[0].CallID != "call-2" || p.Next == "" {
		t.Fatalf("alice page 1: %s", r.body)
	}
	if strings.Contains(string(r.body), `"answered_at"`) || !strings.Contains(string(r.body), `"started_at":"2026-03-01T09:02:00Z"`) {
		t.Fatalf("entry shape: %s", r.body)
	}
	r = e.do("GET", "/v1/users/alice/history?limit=2&cursor="+p.Next, alice.Token, "")
	r.decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].CallID != "call-0" || p.Next != "" {
		t.Fatalf("alice page 2: %s", r.body)
	}

	// Alice deletes her record of call-1; Bob keeps his.
	e.expect("delete own", e.do("DELETE", "/v1/users/alice/history/"+aliceIDs[1], alice.Token, ""), 204, "", "")
	e.expect("delete own again", e.do("DELETE", "/v1/users/alice/history/"+aliceIDs[1], alice.Token, ""), 404, "not_found", "history entry")
	e.expect("delete under another owner", e.do("DELETE", "/v1/users/bob/history/"+aliceIDs[0], bob.Token, ""), 404, "not_found", "history entry")
	r = e.do("GET", "/v1/users/alice/history", alice.Token, "")
	r.decode(t, &p)
	if len(p.Items) != 2 || p.Items[0].CallID != "call-2" || p.Items[1].CallID != "call-0" {
		t.Fatalf("alice after delete: %s", r.body)
	}
	r = e.do("GET", "/v1/users/bob/history", adminTok, "")
	r.decode(t, &p)
	if r.status != 200 || len(p.Items) != 3 {
		t.Fatalf("admin reads bob's after alice's delete: %s", r.body)
	}
}

func TestTrunks(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", "1001")
	body := `{"id":"carrier","address":"sip.carrier.example:5060","inbound_cidrs":["198.51.100.0/24"],"outbound":true}`
	r := e.do("POST", "/v1/trunks", adminTok, body)
	e.expect("create", r, 201, "", "")
	if !strings.Contains(string(r.body), `"inbound_cidrs":["198.51.100.0/24"]`) {
		t.Fatalf("created: %s", r.body)
	}
	e.expect("duplicate", e.do("POST", "/v1/trunks", adminTok, body), 409, "conflict", "trunk carrier")
	e.expect("bad cidr", e.do("POST", "/v1/trunks", adminTok, `{"id":"t2","inbound_cidrs":["nope"]}`), 400, "invalid_field", "inbound_cidrs[0]")
	e.expect("bad address", e.do("POST", "/v1/trunks", adminTok, `{"id":"t2","address":"no port","outbound":true}`), 400, "invalid_field", "address")
	e.expect("unknown field", e.do("POST", "/v1/trunks", adminTok, `{"id":"t2","password":"x"}`), 400, "unknown_field", "password")
	e.expect("user creates", e.do("POST", "/v1/trunks", alice.Token, `{"id":"t3"}`), 403, "forbidden", "admin")
	e.expect("user lists", e.do("GET", "/v1/trunks", alice.Token, ""), 403, "forbidden", "admin")
	e.expect("inbound only", e.do("POST", "/v1/trunks", adminTok, `{"id":"inbound","inbound_cidrs":["203.0.113.9"]}`), 201, "", "")
	r = e.do("GET", "/v1/trunks", adminTok, "")
	var list struct {
		Items []directory.Trunk `json:"items"`
		Next  string            `json:"next"`
	}
	r.decode(t, &list)
	if r.status != 200 || len(list.Items) != 2 || list.Items[0].ID != "carrier" || list.Items[1].ID != "inbound" {
		t.Fatalf("list: %s", r.body)
	}
	e.expect("get", e.do("GET", "/v1/trunks/carrier", adminTok, ""), 200, "", "")
	e.expect("delete", e.do("DELETE", "/v1/trunks/carrier", adminTok, ""), 204, "", "")
	e.expect("get deleted", e.do("GET", "/v1/trunks/carrier", adminTok, ""), 404, "not_found", "trunk")
	e.expect("delete deleted", e.do("DELETE", "/v1/trunks/carrier", adminTok, ""), 404, "not_found", "trunk")
}

func TestCalls(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", "1001")
	var list struct {
		Items []Call `json:"items"`
		Next  string `json:"next"`
	}
	r := e.do("GET", "/v1/calls", adminTok, "")
	r.decode(t, &list)
	if r.status != 200 || len(list.Items) != 2 {
		t.Fatalf("admin list: %s", r.body)
	}
	// The exact shape of openapi.json.
	var raw struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	r.decode(t, &raw)
	for _, k := range []string{"id", "state", "line", "legs", "locked", "monitors", "answered_by", "node", "grain_node", "created_at", "answered_at"} {
		if _, ok := raw.Items[0][k]; !ok {
			t.Errorf("call lacks %q: %s", k, r.body)
		}
	}
	if string(raw.Items[0]["answered_by"]) != `"alice"` || string(raw.Items[0]["grain_node"]) != `"n2"` {
		t.Errorf("answered call: %s", r.body)
	}
	if string(raw.Items[1]["answered_at"]) != "null" || string(raw.Items[1]["monitors"]) != "[]" || string(raw.Items[1]["answered_by"]) != `""` {
		t.Errorf("unanswered call: %s", r.body)
	}
	r = e.do("GET", "/v1/calls", alice.Token, "")
	r.decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != "call-a" {
		t.Fatalf("alice sees: %s", r.body)
	}
	e.expect("get own", e.do("GET", "/v1/calls/call-a", alice.Token, ""), 200, "", "")
	e.expect("get other's", e.do("GET", "/v1/calls/call-b", alice.Token, ""), 404, "not_found", "call")
	e.expect("get unknown", e.do("GET", "/v1/calls/nope", adminTok, ""), 404, "not_found", "call")
	e.expect("hold", e.do("POST", "/v1/calls/call-a/hold", alice.Token, ""), 200, "", "")
	e.expect("resume", e.do("POST", "/v1/calls/call-a/resume", alice.Token, ""), 200, "", "")
	e.expect("hangup", e.do("POST", "/v1/calls/call-b/hangup", adminTok, ""), 200, "", "")
	e.expect("unknown", e.do("POST", "/v1/calls/nope/hold", adminTok, ""), 404, "not_found", "call")
	e.expect("forbidden", e.do("POST", "/v1/calls/private/hold", alice.Token, ""), 403, "forbidden", "hold")
	e.expect("conflict", e.do("POST", "/v1/calls/locked/hangup", alice.Token, ""), 409, "conflict", "locked")
	e.expect("refused", e.do("POST", "/v1/calls/vip/resume", alice.Token, ""), 422, "vip_needs_delegate", "delegate")
	e.expect("unknown action", e.do("POST", "/v1/calls/call-a/explode", adminTok, ""), 404, "not_found", "explode")
	e.expect("no token", e.do("GET", "/v1/calls", "", ""), 401, "unauthorized", "Bearer")
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	if strings.Join(e.calls.done, ";") != "hold call-a by alice;resume call-a by alice;hangup call-b by admin" {
		t.Fatalf("controls: %v", e.calls.done)
	}
}

// POST /v1/calls: the body read strictly (400 naming the field), a user
// places calls only as itself (403), unknown users 404, the grain's
// refusals with their status and code, and 201 with the new call.
func TestDial(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", "1001")
	e.user("dan", "1002")
	e.user("cat", "1003")
	e.user("nodev", "1004")
	e.expect("not JSON", e.do("POST", "/v1/calls", alice.Token, `[1]`), 400, "invalid_json", "JSON object")
	e.expect("unknown field", e.do("POST", "/v1/calls", alice.Token, `{"from_user":"alice","to":"1002","from":"x"}`), 400, "unknown_field", "from")
	e.expect("wrong type", e.do("POST", "/v1/calls", alice.Token, `{"from_user":"alice","to":1002}`), 400, "invalid_field", "to")
	e.expect("no from_user", e.do("POST", "/v1/calls", alice.Token, `{"to":"1002"}`), 400, "invalid_field", "from_user")
	e.expect("no to", e.do("POST", "/v1/calls", alice.Token, `{"from_user":"alice","to":""}`), 400, "invalid_field", "to")
	e.expect("as someone else", e.do("POST", "/v1/calls", alice.Token, `{"from_user":"dan","to":"1001"}`), 403, "forbidden", "own user")
	e.expect("unknown from_user", e.do("POST", "/v1/calls", adminTok, `{"from_user":"zed","to":"1001"}`), 404, "not_found", "from_user")
	e.expect("unknown on_behalf_of", e.do("POST", "/v1/calls", alice.Token, `{"from_user":"alice","to":"1002","on_behalf_of":"zed"}`), 404, "not_found", "on_behalf_of")
	e.expect("no device", e.do("POST", "/v1/calls", adminTok, `{"from_user":"nodev","to":"1001"}`), 409, "no_devices", "device")
	e.expect("no place_calls", e.do("POST", "/v1/calls", adminTok, `{"from_user":"cat","to":"+12125550100","on_behalf_of":"dan"}`), 403, "missing_privilege", "place_calls")
	e.expect("no token", e.do("POST", "/v1/calls", "", `{"from_user":"alice","to":"1002"}`), 401, "unauthorized", "Bearer")
	r := e.do("POST", "/v1/calls", alice.Token, `{"from_user":"alice","to":"+12125550100","on_behalf_of":"dan"}`)
	var cl Call
	r.decode(t, &cl)
	if r.status != 201 || cl.ID != "c2c" || cl.State != "ringing" || len(cl.Legs) != 1 {
		t.Fatalf("dial: %d %s", r.status, r.body)
	}
	e.expect("admin for a user", e.do("POST", "/v1/calls", adminTok, `{"from_user":"alice","to":"1002"}`), 201, "", "")
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	if got := strings.Join(e.calls.done, ";"); got != "dial nodev -> 1001 for ;dial cat -> +12125550100 for dan;dial alice -> +12125550100 for dan;dial alice -> 1002 for " {
		t.Fatalf("dials reaching the grains: %s", got)
	}
}

func TestClusterAndProbes(t *testing.T) {
	e := newEnv(t)
	alice := e.user("alice", "1001")
	r := e.do("GET", "/v1/cluster", adminTok, "")
	if r.status != 200 || !strings.Contains(string(r.body), `"items":[{"id":"n1","address":"127.0.0.1:7001","state":"alive","calls":1,"actors":3}]`) {
		t.Fatalf("cluster: %d %s", r.status, r.body)
	}
	e.expect("user reads cluster", e.do("GET", "/v1/cluster", alice.Token, ""), 403, "forbidden", "admin")
	e.expect("healthz", e.do("GET", "/healthz", "", ""), 200, "", "")
	e.expect("ready", e.do("GET", "/readyz", "", ""), 200, "", "")
	notReady := errors.New("etcd is unreachable")
	e.ready.Store(&notReady)
	r = e.do("GET", "/readyz", "", "")
	if code, msg := r.errCode(); r.status != 503 || code != "not_ready" || msg != "etcd is unreachable" {
		t.Fatalf("not ready: %d %s", r.status, r.body)
	}
	e.ready.Store(nil)
	e.expect("ready again", e.do("GET", "/readyz", "", ""), 200, "", "")
	r = e.do("GET", "/metrics", "", "")
	if r.status != 200 || !strings.Contains(string(r.body), "switchboard_etcd_request_seconds") {
		t.Fatalf("metrics: %d %.200s", r.status, r.body)
	}

	// A request over the limits is answered before it is read whole; the
	// client must read that answer, not a reset, however much it still
	// sends (linger.go). Through a real listener, as the node serves.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = Serve(e.app, ln) }()
	defer e.app.Shutdown()
	url := "http://" + ln.Addr().String() + "/v1/users"
	for _, c := range []struct {
		name   string
		size   int  // of the name in the body
		header int  // bytes of an extra header
		chunk  bool // no Content-Length: fasthttp counts as it reads
		status int
		code   string
	}{
		{"body just over", BodyLimit, 0, false, 413, "request_entity_too_large"},
		{"body of 1 MiB", 1 << 20, 0, false, 413, "request_entity_too_large"},
		{"body of 8 MiB", 8 << 20, 0, false, 413, "request_entity_too_large"},
		{"chunked body of 8 MiB", 8 << 20, 0, true, 413, "request_entity_too_large"},
		{"headers of 64 KiB", 1, 64 << 10, false, 431, "request_header_fields_too_large"},
	} {
		for range 3 {
			var body io.Reader = strings.NewReader(`{"id":"x","name":"` + strings.Repeat("n", c.size) + `"}`)
			if c.chunk {
				body = io.MultiReader(body) // hides the length
			}
			req, _ := http.NewRequest("POST", url, body)
			req.Header.Set("Authorization", "Bearer "+adminTok)
			req.Header.Set("Content-Type", "application/json")
			if c.header > 0 {
				req.Header.Set("X-Padding", strings.Repeat("p", c.header))
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			e.expect(c.name, reply{res.StatusCode, b}, c.status, c.code, "Large")
		}
	}
}

// sseClient reads a stream's events as "type data" lines.
func sseClient(t *testing.T, url, tok string) (<-chan string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan string, 16)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		typ := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				out <- typ + " " + strings.TrimPrefix(line, "data: ")
			case line == ": connected":
				out <- "connected"
			}
		}
	}()
	return out, cancel
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return ""
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user("alice", "1001"), e.user("bob", "1002")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = e.app.Listener(ln) }()
	url := "http://" + ln.Addr().String()

	e.expect("no token", func() reply {
		res, err := http.Get(url + "/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return reply{res.StatusCode, b}
	}(), 401, "unauthorized", "Bearer")

	aliceCh, aliceStop := sseClient(t, url, alice.Token)
	defer aliceStop()
	bobCh, bobStop := sseClient(t, url, bob.Token)
	defer bobStop()
	adminCh, adminStop := sseClient(t, url, adminTok)
	for _, ch := range []<-chan string{aliceCh, bobCh, adminCh} {
		if s := next(t, ch); s != "connected" {
			t.Fatalf("first line %q", s)
		}
	}
	e.deps.Events.Publish(events.Event{Type: "call.ringing", Subject: "call-a", Users: []string{"alice"}, Data: map[string]string{"line": "alice"}})
	e.deps.Events.Publish(events.Event{Type: "line.idle", Subject: "bob", Users: []string{"bob"}})
	e.deps.Events.Publish(events.Event{Type: "cluster.secret", Subject: "n1"}) // admin only

	if s := next(t, aliceCh); !strings.HasPrefix(s, `call.ringing {"type":"call.ringing","subject":"call-a"`) || !strings.Contains(s, `"data":{"line":"alice"}`) {
		t.Fatalf("alice got %q", s)
	}
	if s := next(t, bobCh); !strings.HasPrefix(s, "line.idle ") {
		t.Fatalf("bob got %q before his own event", s)
	}
	for _, want := range []string{"call.ringing", "line.idle", "cluster.secret"} {
		if s := next(t, adminCh); !strings.HasPrefix(s, want+" ") {
			t.Fatalf("admin got %q, want %s", s, want)
		}
	}
	select {
	case s := <-aliceCh:
		t.Fatalf("alice got %q", s)
	case s := <-bobCh:
		t.Fatalf("bob got %q", s)
	case <-time.After(200 * time.Millisecond):
	}

	// A client that goes away is unsubscribed (its next write fails).
	open := e.app.Server().GetOpenConnectionsCount()
	adminStop()
	deadline := time.Now().Add(5 * time.Second)
	for e.app.Server().GetOpenConnectionsCount() != open-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open after a client left, want %d", e.app.Server().GetOpenConnectionsCount(), open-1)
		}
		e.deps.Events.Publish(events.Event{Type: "ping"})
		time.Sleep(20 * time.Millisecond)
	}

	// Shutdown ends the open streams instead of waiting for them.
	start := time.Now()
	if err := e.app.ShutdownWithTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-served
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("shutdown took %v with open streams", d)
	}
}
