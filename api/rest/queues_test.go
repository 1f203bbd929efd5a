package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/cluster/directory"
	"github.com/switchboard/switchboard/cluster/events"
)

// fakeQueues answers like the queue grains: a member entry for an opt-in
// or opt-out, fixed stats, and the refusals in errs (by queue id). Its
// queues have the members gus and ann and the admin sue, and refuse as the
// queue's rule does (actors/queue MayOpt, tested there).
type fakeQueues struct {
	mu   sync.Mutex
	done []string // "<in|out> <queue> <user> <reason>"
	errs map[string]error
}

func (f *fakeQueues) SetOptIn(_ context.Context, by Principal, queue, user string, in bool, reason string) (json.RawMessage, error) {
	if err, ok := f.errs[queue]; ok {
		return nil, err
	}
	if !by.Admin && by.UserID != user && by.UserID != "sue" {
		return nil, AsControlError(403, "not_allowed", "only the member, the admin or one of the queue's admins may opt a member in or out")
	}
	if user != "gus" && user != "ann" {
		return nil, fmt.Errorf("not a member: %w", ErrNotFound)
	}
	what := "out"
	if in {
		what = "in"
	}
	f.mu.Lock()
	f.done = append(f.done, fmt.Sprintf("%s %s %s %s", what, queue, user, reason))
	f.mu.Unlock()
	return json.Marshal(map[string]any{"user": user, "order": 0, "opted_in": in, "reason": reason})
}

func (f *fakeQueues) Stats(_ context.Context, queue string) (json.RawMessage, error) {
	if err, ok := f.errs[queue]; ok {
		return nil, err
	}
	return json.RawMessage(`{"waiting":1,"longest_wait_seconds":4,"completed":0,"abandoned":0,"overflowed":0,"average_wait_seconds":0,` +
		`"service_level_percent":100,"members":[{"user":"gus","state":"available","reason":""}]}`), nil
}

func (f *fakeQueues) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.done...)
}

// withQueues gives the env's API the fake queue grains.
func (e *env) withQueues(f *fakeQueues) {
	e.deps.Queues = f
	e.app = New(e.deps, testLog())
}

func TestQueues(t *testing.T) {
	e := newEnv(t)
	sue := e.user("sue", "1001")
	gus := e.user("gus", "1002")
	ann := e.user("ann", "1003")

	e.expect("create backup", e.do("POST", "/v1/queues", adminTok, `{"id":"backup"}`), 201, "", "")
	r := e.do("POST", "/v1/queues", adminTok, `{"id":"sales","name":"Sales","extension":"5000","numbers":["+14155550150"],
		"members":[{"user":"gus","order":1},{"user":"ann"}],"distribution":"sequential","ring_seconds":15,"admins":["sue"],
		"business_hours":{"mon":[["08:00","17:00"]]},"timezone":"America/New_York","holidays":[{"date":"2026-12-25","name":"Christmas"}],
		"overflow":{"business":{"kind":"queue","id":"backup"}},"team_sms":true}`)
	e.expect("create", r, 201, "", "")
	want := `{"id":"sales","name":"Sales","extension":"5000","numbers":["+14155550150"],"members":[{"user":"gus","order":1},{"user":"ann","order":0}],` +
		`"distribution":"sequential","ring_seconds":15,"max_wait_seconds":300,"max_calls":20,"wrap_up_seconds":0,"receive_while_on_call":false,` +
		`"service_level_seconds":20,"claim_release_seconds":300,"timezone":"America/New_York",` +
		`"business_hours":{"fri":[],"mon":[["08:00","17:00"]],"sat":[],"sun":[],"thu":[],"tue":[],"wed":[]},` +
		`"holidays":[{"date":"2026-12-25","name":"Christmas"}],"overflow":{"business":{"kind":"queue","id":"backup"},"closed":{"kind":"disconnect"}},` +
		`"admins":["sue"],"team_sms":true}`
	if string(r.body) != want {
		t.Fatalf("created %s, want %s", r.body, want)
	}
	r = e.do("GET", "/v1/queues/backup", adminTok, "")
	if want := `"business_hours":null,"holidays":[],"overflow":{"business":{"kind":"disconnect"},"closed":{"kind":"disconnect"}},"admins":[],"team_sms":false}`; !strings.HasSuffix(string(r.body), want) {
		t.Fatalf("defaults read %s, want them to end %s", r.body, want)
	}

	// Read by the admin, the queue's admins and its members; nobody else.
	cat := e.user("cat", "1004")
	for _, tok := range []string{adminTok, sue.Token, gus.Token, ann.Token} {
		r := e.do("GET", "/v1/queues/sales", tok, "")
		e.expect("read", r, 200, "", "")
		if string(r.body) != want {
			t.Fatalf("read %s", r.body)
		}
	}
	e.expect("read by another user", e.do("GET", "/v1/queues/sales", cat.Token, ""), 403, "forbidden", "queue's admins")
	e.expect("read unknown", e.do("GET", "/v1/queues/nope", gus.Token, ""), 404, "not_found", "queue")

	r = e.do("PATCH", "/v1/queues/sales", adminTok, `{"max_calls":3,"overflow":{"closed":{"kind":"message"}},"name":null}`)
	e.expect("patch", r, 200, "", "")
	var q struct {
		Name     string
		MaxCalls int `json:"max_calls"`
		Overflow struct{ Business, Closed struct{ Kind, ID string } }
	}
	r.decode(t, &q)
	if q.Name != "Sales" || q.MaxCalls != 3 || q.Overflow.Business.ID != "backup" || q.Overflow.Closed.Kind != "message" {
		t.Fatalf("patched %s", r.body)
	}

	var page struct {
		Items []struct{ ID string } `json:"items"`
		Next  string                `json:"next"`
	}
	r = e.do("GET", "/v1/queues?limit=1", adminTok, "")
	e.expect("list", r, 200, "", "")
	r.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "backup" || page.Next != "backup" {
		t.Fatalf("first page: %s", r.body)
	}
	r = e.do("GET", "/v1/queues?cursor=backup", adminTok, "")
	r.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "sales" || page.Next != "" {
		t.Fatalf("second page: %s", r.body)
	}

	// Writes are the admin's, even for a queue's admin.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/queues", `{"id":"mine"}`},
		{"GET", "/v1/queues", ""},
		{"PATCH", "/v1/queues/sales", `{"max_calls":1}`},
		{"DELETE", "/v1/queues/sales", ""},
	} {
		e.expect("queue admin "+c.method+" "+c.path, e.do(c.method, c.path, sue.Token, c.body), 403, "forbidden", "admin")
	}

	e.expect("delete a queue another overflows to", e.do("DELETE", "/v1/queues/backup", adminTok, ""), 409, "conflict", "queue sales")
	e.expect("delete", e.do("DELETE", "/v1/queues/sales", adminTok, ""), 204, "", "")
	e.expect("read deleted", e.do("GET", "/v1/queues/sales", adminTok, ""), 404, "not_found", "queue")
	e.expect("delete deleted", e.do("DELETE", "/v1/queues/sales", adminTok, ""), 404, "not_found", "queue")
	e.expect("its extension is free", e.do("POST", "/v1/users", adminTok, `{"id":"dan","name":"Dan","extension":"5000","sip_password":"dan-secret"}`), 201, "", "")
}

// Invalid input is a 400 naming the field; what the rules refuse a 422
// with its code; a name taken a 409.
func TestQueueErrors(t *testing.T) {
	e := newEnv(t)
	e.user("gus", "1002")
	e.expect("create", e.do("POST", "/v1/queues", adminTok, `{"id":"sales","extension":"5000"}`), 201, "", "")
	e.expect("create b", e.do("POST", "/v1/queues", adminTok, `{"id":"b","overflow":{"business":{"kind":"queue","id":"sales"}}}`), 201, "", "")
	long := strings.Repeat("x", 65)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"missing id", "POST", "/v1/queues", `{"name":"x"}`, 400, "invalid_field", "id: is required"},
		{"id not a slug", "POST", "/v1/queues", `{"id":"Sales Q"}`, 400, "invalid_field", "id: must be a slug"},
		{"duplicate id", "POST", "/v1/queues", `{"id":"sales"}`, 409, "conflict", "queue sales"},
		{"a user's extension", "POST", "/v1/queues", `{"id":"q","extension":"1002"}`, 409, "conflict", "extension 1002"},
		{"another queue's extension", "POST", "/v1/queues", `{"id":"q","extension":"5000"}`, 409, "conflict", "extension 5000"},
		{"name too long", "POST", "/v1/queues", fmt.Sprintf(`{"id":"q","name":%q}`, long), 400, "invalid_field", "name: must be at most 64"},
		{"bad extension", "POST", "/v1/queues", `{"id":"q","extension":"x"}`, 400, "invalid_field", "extension: must be 2 to 10 digits"},
		{"bad number", "POST", "/v1/queues", `{"id":"q","numbers":["555"]}`, 400, "invalid_field", "numbers[0]: must be an E.164"},
		{"member not an object", "POST", "/v1/queues", `{"id":"q","members":["gus"]}`, 400, "invalid_field", "members[0]: must be an object"},
		{"member order a string", "POST", "/v1/queues", `{"id":"q","members":[{"user":"gus","order":"1"}]}`, 400, "invalid_field", "members[0].order: must be an integer"},
		{"member order negative", "POST", "/v1/queues", `{"id":"q","members":[{"user":"gus","order":-1}]}`, 400, "invalid_field", "members[0].order: must be 0 or more"},
		{"unknown member field", "POST", "/v1/queues", `{"id":"q","members":[{"user":"gus","priority":1}]}`, 400, "unknown_field", "priority"},
		{"unknown member", "POST", "/v1/queues", `{"id":"q","members":[{"user":"gus"},{"user":"ghost"}]}`, 422, "unknown_user", `members[1].user: is not a user: no user has the id "ghost"`},
		{"unknown admin", "POST", "/v1/queues", `{"id":"q","admins":["ghost"]}`, 422, "unknown_user", "admins[0]"},
		{"bad distribution", "POST", "/v1/queues", `{"id":"q","distribution":"random"}`, 400, "invalid_field", "distribution: must be one of simultaneous"},
		{"ring too short", "POST", "/v1/queues", `{"id":"q","ring_seconds":4}`, 400, "invalid_field", "ring_seconds: must be from 5 to 120"},
		{"max wait too long", "POST", "/v1/queues", `{"id":"q","max_wait_seconds":7201}`, 400, "invalid_field", "max_wait_seconds: must be from 10 to 7200"},
		{"max calls 0", "POST", "/v1/queues", `{"id":"q","max_calls":0}`, 400, "invalid_field", "max_calls: must be from 1 to 500"},
		{"wrap-up too long", "POST", "/v1/queues", `{"id":"q","wrap_up_seconds":601}`, 400, "invalid_field", "wrap_up_seconds: must be from 0 to 600"},
		{"service level too short", "POST", "/v1/queues", `{"id":"q","service_level_seconds":4}`, 400, "invalid_field", "service_level_seconds: must be from 5 to 600"},
		{"claim release too long", "POST", "/v1/queues", `{"id":"q","claim_release_seconds":3601}`, 400, "invalid_field", "claim_release_seconds: must be from 10 to 3600"},
		{"ring not a number", "POST", "/v1/queues", `{"id":"q","ring_seconds":"20"}`, 400, "invalid_field", "ring_seconds: must be an integer"},
		{"bad zone", "POST", "/v1/queues", `{"id":"q","timezone":"Moon/Base"}`, 400, "invalid_field", "timezone: must be an IANA"},
		{"bad hours", "POST", "/v1/queues", `{"id":"q","business_hours":{"tue":[["9","17:00"]]}}`, 400, "invalid_field", "business_hours.tue[0]"},
		{"bad holiday", "POST", "/v1/queues", `{"id":"q","holidays":[{"date":"2026-02-30"}]}`, 400, "invalid_field", "holidays[0].date"},
		{"holiday name not a string", "POST", "/v1/queues", `{"id":"q","holidays":[{"date":"2026-02-03","name":1}]}`, 400, "invalid_field", "holidays[0].name: must be a string"},
		{"target kind unknown", "POST", "/v1/queues", `{"id":"q","overflow":{"business":{"kind":"fax"}}}`, 400, "invalid_field", "overflow.business.kind"},
		{"number target not E.164", "POST", "/v1/queues", `{"id":"q","overflow":{"closed":{"kind":"number","id":"0800"}}}`, 400, "invalid_field", "overflow.closed.id: must be an E.164"},
		{"user target without id", "POST", "/v1/queues", `{"id":"q","overflow":{"closed":{"kind":"user"}}}`, 400, "invalid_field", "overflow.closed.id: is required"},
		{"unknown user target", "POST", "/v1/queues", `{"id":"q","overflow":{"closed":{"kind":"user","id":"ghost"}}}`, 422, "unknown_user", "overflow.closed.id"},
		{"unknown queue target", "POST", "/v1/queues", `{"id":"q","overflow":{"business":{"kind":"queue","id":"nope"}}}`, 422, "unknown_queue", "overflow.business.id"},
		{"voicemail", "POST", "/v1/queues", `{"id":"q","overflow":{"closed":{"kind":"voicemail"}}}`, 422, "voicemail_unavailable", "inboxes"},
		{"a loop", "PATCH", "/v1/queues/sales", `{"overflow":{"closed":{"kind":"queue","id":"b"}}}`, 422, "overflow_loop", "sales → b → sales"},
		{"itself", "PATCH", "/v1/queues/sales", `{"overflow":{"business":{"kind":"queue","id":"sales"}}}`, 422, "overflow_loop", "itself"},
		{"unknown field", "POST", "/v1/queues", `{"id":"q","agents":[]}`, 400, "unknown_field", "agents"},
		{"patch the id", "PATCH", "/v1/queues/sales", `{"id":"other"}`, 400, "unknown_field", "id"},
		{"patch unknown queue", "PATCH", "/v1/queues/nope", `{"max_calls":2}`, 404, "not_found", "queue"},
		{"bad limit", "GET", "/v1/queues?limit=501", "", 400, "invalid_field", "limit"},
	} {
		e.expect(c.name, e.do(c.method, c.path, adminTok, c.body), c.status, c.code, c.mentions)
	}
	e.expect("a form post", e.send("POST", "/v1/queues", adminTok, "application/x-www-form-urlencoded", "id=q"), 415, "unsupported_media_type", "application/json")
	r := e.do("GET", "/v1/queues", adminTok, "")
	if strings.Contains(string(r.body), `"id":"q"`) {
		t.Fatalf("an invalid queue was stored: %s", r.body)
	}
}

func TestQueueOptInOut(t *testing.T) {
	e := newEnv(t)
	sue := e.user("sue", "1001") // the queue's admin
	gus := e.user("gus", "1002")
	ann := e.user("ann", "1003")
	cat := e.user("cat", "1004") // in no queue
	e.expect("create", e.do("POST", "/v1/queues", adminTok, `{"id":"sales","members":[{"user":"gus"},{"user":"ann"}],"admins":["sue"]}`), 201, "", "")

	path := func(user, action string) string { return "/v1/queues/sales/members/" + user + "/" + action }
	e.expect("no queue grains", e.do("POST", path("gus", "opt-in"), gus.Token, ""), 503, "unavailable", "queue grains")
	f := &fakeQueues{errs: map[string]error{}}
	e.withQueues(f)

	r := e.do("POST", path("gus", "opt-out"), gus.Token, `{"reason":"Lunch"}`)
	e.expect("a member opts out", r, 200, "", "")
	if want := `{"opted_in":false,"order":0,"reason":"Lunch","user":"gus"}`; string(r.body) != want {
		t.Fatalf("answer %s, want %s", r.body, want)
	}
	e.expect("without a body", e.send("POST", path("ann", "opt-out"), ann.Token, "", ""), 200, "", "")
	e.expect("with an empty object", e.do("POST", path("ann", "opt-out"), ann.Token, `{}`), 200, "", "")
	e.expect("the queue's admin opts a member in", e.do("POST", path("gus", "opt-in"), sue.Token, ""), 200, "", "")
	e.expect("the admin", e.do("POST", path("ann", "opt-in"), adminTok, ""), 200, "", "")
	want := []string{"out sales gus Lunch", "out sales ann ", "out sales ann ", "in sales gus ", "in sales ann "}
	if got := f.log(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the grains were asked %q, want %q", got, want)
	}

	for _, c := range []struct {
		name, path, tok, body string
		status                int
		code, mentions        string
	}{
		{"another member", path("gus", "opt-out"), ann.Token, "", 403, "not_allowed", "Only the member"},
		{"a user in no queue", path("gus", "opt-in"), cat.Token, "", 403, "not_allowed", "Only the member"},
		{"a user who is no member", path("cat", "opt-out"), cat.Token, "", 404, "not_found", "queue member cat"},
		{"the admin for a non-member", path("sue", "opt-in"), adminTok, "", 404, "not_found", "queue member sue"},
		{"an unknown queue", "/v1/queues/nope/members/gus/opt-in", adminTok, "", 404, "not_found", "queue"},
		{"a reason too long", path("gus", "opt-out"), gus.Token, fmt.Sprintf(`{"reason":%q}`, strings.Repeat("é", 101)), 400, "invalid_field", "reason: must be text of at most 100"},
		{"a reason on two lines", path("gus", "opt-out"), gus.Token, `{"reason":"a\nb"}`, 400, "invalid_field", "reason: must be one line"},
		{"a reason not a string", path("gus", "opt-out"), gus.Token, `{"reason":5}`, 400, "invalid_field", "reason: must be a string"},
		{"an unknown field", path("gus", "opt-out"), gus.Token, `{"why":"x"}`, 400, "unknown_field", "why"},
		{"not JSON", path("gus", "opt-out"), gus.Token, `{"reason":`, 400, "invalid_json", "JSON"},
	} {
		e.expect(c.name, e.do("POST", c.path, c.tok, c.body), c.status, c.code, c.mentions)
	}
	if n := len(f.log()); n != len(want) {
		t.Fatalf("refused requests reached the grains: %q", f.log()[len(want):])
	}
	// The grain's own refusals.
	f.errs["sales"] = fmt.Errorf("no such member: %w", ErrNotFound)
	e.expect("the grain does not know the member", e.do("POST", path("gus", "opt-in"), gus.Token, ""), 404, "not_found", "queue member gus")
	f.errs["sales"] = AsControlError(503, "draining", "the queue is moving to another node")
	e.expect("the grain is moving", e.do("POST", path("gus", "opt-in"), gus.Token, ""), 503, "draining", "The queue is moving")
}

func TestQueueStats(t *testing.T) {
	e := newEnv(t)
	sue := e.user("sue", "1001")
	gus := e.user("gus", "1002")
	cat := e.user("cat", "1004")
	e.expect("create", e.do("POST", "/v1/queues", adminTok, `{"id":"sales","members":[{"user":"gus"}],"admins":["sue"]}`), 201, "", "")
	e.expect("no queue grains", e.do("GET", "/v1/queues/sales/stats", adminTok, ""), 503, "unavailable", "queue grains")
	e.withQueues(&fakeQueues{})
	for name, tok := range map[string]string{"admin": adminTok, "queue admin": sue.Token, "member": gus.Token} {
		r := e.do("GET", "/v1/queues/sales/stats", tok, "")
		e.expect(name, r, 200, "", "")
		var s struct {
			Waiting int `json:"waiting"`
			Members []struct{ User, State string }
		}
		r.decode(t, &s)
		if s.Waiting != 1 || len(s.Members) != 1 || s.Members[0].State != "available" {
			t.Fatalf("%s read %s", name, r.body)
		}
	}
	e.expect("another user", e.do("GET", "/v1/queues/sales/stats", cat.Token, ""), 403, "forbidden", "queue's admins")
	e.expect("unknown queue", e.do("GET", "/v1/queues/nope/stats", adminTok, ""), 404, "not_found", "queue")
}

// queue.updated reaches the users the event names, as every event does.
func TestQueueEvents(t *testing.T) {
	e := newEnv(t)
	gus, cat := e.user("gus", "1002"), e.user("cat", "1004")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.app.Listener(ln) }()
	t.Cleanup(func() { _ = e.app.Shutdown() })
	url := "http://" + ln.Addr().String()
	gusCh, gusStop := sseClient(t, url, gus.Token)
	defer gusStop()
	catCh, catStop := sseClient(t, url, cat.Token)
	defer catStop()
	for _, ch := range []<-chan string{gusCh, catCh} {
		if s := next(t, ch); s != "connected" {
			t.Fatalf("first line %q", s)
		}
	}
	e.deps.Events.Publish(events.Event{Type: "queue.updated", Subject: "sales", Users: []string{"gus", "sue"}, Data: map[string]int{"waiting": 2}})
	if s := next(t, gusCh); !strings.HasPrefix(s, `queue.updated {"type":"queue.updated","subject":"sales"`) || !strings.Contains(s, `"data":{"waiting":2}`) {
		t.Fatalf("gus got %q", s)
	}
	select {
	case s := <-catCh:
		t.Fatalf("cat got %q", s)
	case <-time.After(200 * time.Millisecond):
	}
}

// FuzzSettingsBody sends arbitrary bodies to the create and patch routes of
// queues, shared line groups and pickup groups: whatever the body, the
// answer is a 2xx or a 4xx in the error shape, never a 500 or a panic.
//
//	go test -run '^$' -fuzz FuzzSettingsBody -fuzztime 30s ./api/rest/
func FuzzSettingsBody(f *testing.F) {
	e := newEnv(f)
	if _, _, err := e.deps.Directory.CreateUser(context.Background(), directory.UserInput{ID: "gus", Name: "gus", Extension: "1001", SIPPassword: "gus-secret"}); err != nil {
		f.Fatal(err)
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/queues", `{"id":"sales"}`}, {"/v1/shared-line-groups", `{"id":"front"}`}, {"/v1/pickup-groups", `{"id":"floor"}`},
	} {
		if r := e.do("POST", c.path, adminTok, c.body); r.status != 201 {
			f.Fatalf("%s: %d %s", c.path, r.status, r.body)
		}
	}
	for _, seed := range []string{
		`{"id":"q2","extension":"5000","members":[{"user":"gus","order":2}],"overflow":{"business":{"kind":"queue","id":"sales"}}}`,
		`{"overflow":{"closed":{"kind":"queue","id":"sales"}},"business_hours":{"mon":[["08:00","24:00"]]}}`,
		`{"members":["gus","gus"],"delay_seconds":-1,"ring_seconds":1e9}`,
		`{"holidays":[{"date":"2026-02-29","name":"\u202e"}],"timezone":"Local"}`,
		`{"overflow":{"business":{"kind":"number","id":"+1"}},"numbers":[1]}`,
		`{"id":`, `[]`, `null`, ``, `{}`, `{"x":1}`, "{\"name\":\"\xff\"}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > BodyLimit {
			return // fasthttp answers 413 before the app
		}
		for _, c := range []struct{ method, path string }{
			{"POST", "/v1/queues"}, {"PATCH", "/v1/queues/sales"},
			{"POST", "/v1/shared-line-groups"}, {"PATCH", "/v1/shared-line-groups/front"},
			{"POST", "/v1/pickup-groups"}, {"PATCH", "/v1/pickup-groups/floor"},
		} {
			r := e.do(c.method, c.path, adminTok, body)
			if r.status >= 500 {
				t.Fatalf("%s %s %q: %d %s", c.method, c.path, body, r.status, r.body)
			}
			if r.status >= 300 {
				if code, msg := r.errCode(); code == "" || msg == "" {
					t.Fatalf("%s %s %q: %d without the error shape: %s", c.method, c.path, body, r.status, r.body)
				}
			}
		}
	})
}
