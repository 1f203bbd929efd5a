package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/switchboard/switchboard/cluster/directory"
)

// salesThread is a Team SMS thread of the queue "sales" with an external
// number: its id holds a ':' and a '+'.
const salesThread = "sales:+14155550100"

// fakeSMS answers like the SMS grains: threads from a fixed map, the
// refusals in errs (by thread id, owner, from number or queue), and a log
// of what reached it.
type fakeSMS struct {
	mu      sync.Mutex
	done    []string // "<what> ... by <user|admin>"
	threads map[string]json.RawMessage
	errs    map[string]error
	sent    SMSSent // what Send answers
}

func newFakeSMS() *fakeSMS {
	return &fakeSMS{
		threads: map[string]json.RawMessage{
			salesThread: json.RawMessage(`{"id":"sales:+14155550100","owner":"sales","owner_kind":"queue","peer":"+14155550100","claimed_by":"",` +
				`"claimed_at":null,"last_activity_at":"2026-01-01T10:00:00Z","messages":[]}`),
		},
		errs: map[string]error{},
		sent: SMSSent{ID: "m1", ThreadIDs: []string{salesThread}},
	}
}

func who(by Principal) string {
	if by.Admin {
		return "admin"
	}
	return by.UserID
}

func (f *fakeSMS) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = append(f.done, fmt.Sprintf(format, args...))
}

func (f *fakeSMS) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.done...)
}

func (f *fakeSMS) Send(_ context.Context, by Principal, from string, to []string, text string) (SMSSent, error) {
	if err, ok := f.errs[from]; ok {
		return SMSSent{}, err
	}
	f.record("send %s -> %s %q by %s", from, strings.Join(to, ","), text, who(by))
	return f.sent, nil
}

func (f *fakeSMS) Threads(_ context.Context, by Principal, owner string) ([]json.RawMessage, error) {
	if err, ok := f.errs[owner]; ok {
		return nil, err
	}
	f.record("threads %s by %s", owner, who(by))
	var out []json.RawMessage
	for id, t := range f.threads {
		if strings.HasPrefix(id, owner+":") {
			out = append(out, t)
		}
	}
	return out, nil
}

func (f *fakeSMS) Thread(_ context.Context, by Principal, id string) (json.RawMessage, error) {
	if err, ok := f.errs[id]; ok {
		return nil, err
	}
	t, ok := f.threads[id]
	if !ok {
		return nil, ErrNotFound
	}
	f.record("thread %s by %s", id, who(by))
	return t, nil
}

func (f *fakeSMS) Act(_ context.Context, by Principal, id, action, text, to string) (json.RawMessage, error) {
	if err, ok := f.errs[action+" "+id]; ok {
		return nil, err
	}
	t, ok := f.threads[id]
	if !ok {
		return nil, ErrNotFound
	}
	f.record("%s %s %q %q by %s", action, id, text, to, who(by))
	return t, nil
}

func (f *fakeSMS) Stats(_ context.Context, by Principal, queue string) (json.RawMessage, error) {
	if err, ok := f.errs[queue]; ok {
		return nil, err
	}
	f.record("stats %s by %s", queue, who(by))
	return json.RawMessage(`{"inbound":3,"outbound":2,"manual_released":1,"timeout_released":0,"average_first_reply_seconds":12.5}`), nil
}

// withSMS gives the env's API the fake SMS grains (nil: none).
func (e *env) withSMS(f *fakeSMS) {
	e.deps.SMS = nil
	if f != nil {
		e.deps.SMS = f
	}
	e.app = New(e.deps, testLog())
}

// Bodies and queries are checked before anything reaches the SMS grains:
// 400 naming the field, too_many_recipients past 10, text counted in bytes.
func TestSMSValidation(t *testing.T) {
	e := newEnv(t)
	f := newFakeSMS()
	e.withSMS(f)
	gus := e.user("gus", "1001")
	tos := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%q", fmt.Sprintf("+1415555%04d", i))
		}
		return "[" + strings.Join(out, ",") + "]"
	}
	send := func(from, to, text string) string {
		return fmt.Sprintf(`{"from":%s,"to":%s,"text":%s}`, from, to, text)
	}
	// "é" is two bytes: 800 of them are 1600 bytes, one more is too many.
	full, over := strings.Repeat("é", 800), strings.Repeat("é", 800)+"x"
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"send no from", "POST", "/v1/sms", `{"to":["1002"],"text":"hi"}`, 400, "invalid_field", "from: is required"},
		{"send empty from", "POST", "/v1/sms", send(`""`, `["1002"]`, `"hi"`), 400, "invalid_field", "from: is required"},
		{"send from not a string", "POST", "/v1/sms", send(`14155550150`, `["1002"]`, `"hi"`), 400, "invalid_field", "from: must be a string"},
		{"send no to", "POST", "/v1/sms", `{"from":"+14155550150","text":"hi"}`, 400, "invalid_field", "to: must list 1 to 10"},
		{"send to empty", "POST", "/v1/sms", send(`"+14155550150"`, `[]`, `"hi"`), 400, "invalid_field", "to: must list 1 to 10"},
		{"send to null", "POST", "/v1/sms", send(`"+14155550150"`, `null`, `"hi"`), 400, "invalid_field", "to: must list 1 to 10"},
		{"send to a string", "POST", "/v1/sms", send(`"+14155550150"`, `"1002"`, `"hi"`), 400, "invalid_field", "to: must be an array"},
		{"send to a number", "POST", "/v1/sms", send(`"+14155550150"`, `["1002",1003]`, `"hi"`), 400, "invalid_field", "to[1]: must be a string"},
		{"send to an empty entry", "POST", "/v1/sms", send(`"+14155550150"`, `["1002",""]`, `"hi"`), 400, "invalid_field", "to[1]: must not be empty"},
		{"send to 11", "POST", "/v1/sms", send(`"+14155550150"`, tos(11), `"hi"`), 400, "too_many_recipients", "to: lists 11 recipients; at most 10"},
		{"send no text", "POST", "/v1/sms", `{"from":"+14155550150","to":["1002"]}`, 400, "invalid_field", "text: must be 1 to 1600 bytes"},
		{"send empty text", "POST", "/v1/sms", send(`"+14155550150"`, `["1002"]`, `""`), 400, "invalid_field", "text: must be 1 to 1600 bytes"},
		{"send 1601 bytes", "POST", "/v1/sms", send(`"+14155550150"`, `["1002"]`, fmt.Sprintf("%q", over)), 400, "invalid_field", "text: must be 1 to 1600 bytes"},
		{"send text not a string", "POST", "/v1/sms", send(`"+14155550150"`, `["1002"]`, `["hi"]`), 400, "invalid_field", "text: must be a string"},
		{"send unknown field", "POST", "/v1/sms", `{"from":"+14155550150","to":["1002"],"text":"hi","media":"x"}`, 400, "unknown_field", "media"},
		{"send not an object", "POST", "/v1/sms", `["hi"]`, 400, "invalid_json", "object"},
		{"list no owner", "GET", "/v1/sms/threads", "", 400, "invalid_field", "owner: is required"},
		{"list empty owner", "GET", "/v1/sms/threads?owner=", "", 400, "invalid_field", "owner: is required"},
		{"reply no text", "POST", "/v1/sms/threads/" + salesThread + "/reply", `{}`, 400, "invalid_field", "text: must be 1 to 1600 bytes"},
		{"reply 1601 bytes", "POST", "/v1/sms/threads/" + salesThread + "/reply", fmt.Sprintf(`{"text":%q}`, over), 400, "invalid_field", "text: must be 1 to 1600 bytes"},
		{"reply text a number", "POST", "/v1/sms/threads/" + salesThread + "/reply", `{"text":5}`, 400, "invalid_field", "text: must be a string"},
		{"reply unknown field", "POST", "/v1/sms/threads/" + salesThread + "/reply", `{"text":"hi","claim":false}`, 400, "unknown_field", "claim"},
		{"transfer no to", "POST", "/v1/sms/threads/" + salesThread + "/transfer", `{}`, 400, "invalid_field", "to: is required"},
		{"transfer empty to", "POST", "/v1/sms/threads/" + salesThread + "/transfer", `{"to":""}`, 400, "invalid_field", "to: is required"},
		{"transfer to a list", "POST", "/v1/sms/threads/" + salesThread + "/transfer", `{"to":["gus"]}`, 400, "invalid_field", "to: must be a string"},
	} {
		e.expect(c.name, e.do(c.method, c.path, gus.Token, c.body), c.status, c.code, c.mentions)
	}
	// A raw client may send an escape that decodes to nothing.
	req := httptest.NewRequest("GET", "/v1/sms/threads/x", nil)
	req.RequestURI = "/v1/sms/threads/sales%zz" // httptest refuses to parse it
	req.Header.Set("Authorization", "Bearer "+gus.Token)
	res, err := e.app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	e.expect("bad percent-encoding", reply{res.StatusCode, b}, 400, "invalid_field", "id: must be a thread id")
	if got := f.log(); len(got) != 0 {
		t.Fatalf("invalid requests reached the SMS grains: %v", got)
	}
	e.expect("send form", e.send("POST", "/v1/sms", gus.Token, "text/plain", send(`"+14155550150"`, `["1002"]`, `"hi"`)), 415, "unsupported_media_type", "application/json")

	// The limits themselves pass.
	e.expect("send to 10, 1600 bytes", e.do("POST", "/v1/sms", gus.Token, send(`"+14155550150"`, tos(10), fmt.Sprintf("%q", full))), 202, "", "")
	e.expect("send one byte", e.do("POST", "/v1/sms", gus.Token, send(`"+14155550150"`, `["1002"]`, `"k"`)), 202, "", "")
	e.expect("reply 1600 bytes", e.do("POST", "/v1/sms/threads/"+salesThread+"/reply", gus.Token, fmt.Sprintf(`{"text":%q}`, full)), 200, "", "")
	want := []string{
		fmt.Sprintf("send +14155550150 -> %s %q by gus", strings.Trim(strings.ReplaceAll(tos(10), `"`, ""), "[]"), full),
		`send +14155550150 -> 1002 "k" by gus`,
		fmt.Sprintf("reply %s %q \"\" by gus", salesThread, full),
	}
	if got := f.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reached the grains:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every route answers with the grains' body, acting as the token's
// principal; a thread id with ':' and '+' arrives whole whether sent as is
// or percent-encoded.
func TestSMSRoutes(t *testing.T) {
	e := newEnv(t)
	f := newFakeSMS()
	e.withSMS(f)
	gus := e.user("gus", "1001")

	r := e.do("POST", "/v1/sms", gus.Token, `{"from":"+14155550150","to":["+14155550100"],"text":"Your order shipped"}`)
	if r.status != 202 || string(r.body) != `{"id":"m1","thread_ids":["sales:+14155550100"]}` {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	f.sent = SMSSent{ID: "m2"} // to a user: no thread named
	r = e.do("POST", "/v1/sms", adminTok, `{"from":"+14155550101","to":["1002"],"text":"hi"}`)
	if r.status != 202 || string(r.body) != `{"id":"m2","thread_ids":[]}` {
		t.Fatalf("send without threads: %d %s", r.status, r.body)
	}

	thread := string(f.threads[salesThread])
	for _, c := range []struct{ name, method, path, body, want string }{
		{"get as is", "GET", "/v1/sms/threads/sales:+14155550100", "", thread},
		{"get percent-encoded", "GET", "/v1/sms/threads/sales%3A%2B14155550100", "", thread},
		{"list", "GET", "/v1/sms/threads?owner=sales", "", `{"items":[` + thread + `],"next":""}`},
		{"list empty", "GET", "/v1/sms/threads?owner=gus", "", `{"items":[],"next":""}`},
		{"reply", "POST", "/v1/sms/threads/sales:+14155550100/reply", `{"text":"On its way"}`, thread},
		{"release", "POST", "/v1/sms/threads/sales%3A%2B14155550100/release", "", thread},
		{"transfer", "POST", "/v1/sms/threads/sales:%2B14155550100/transfer", `{"to":"ann"}`, thread},
		{"stats", "GET", "/v1/queues/sales/sms-stats", "", `{"inbound":3,"outbound":2,"manual_released":1,"timeout_released":0,"average_first_reply_seconds":12.5}`},
	} {
		r := e.do(c.method, c.path, gus.Token, c.body)
		if r.status != 200 || string(r.body) != c.want {
			t.Errorf("%s: %d %s, want 200 %s", c.name, r.status, r.body, c.want)
		}
	}
	e.expect("admin reads", e.do("GET", "/v1/sms/threads/"+salesThread, adminTok, ""), 200, "", "")
	want := []string{
		`send +14155550150 -> +14155550100 "Your order shipped" by gus`,
		`send +14155550101 -> 1002 "hi" by admin`,
		"thread sales:+14155550100 by gus",
		"thread sales:+14155550100 by gus",
		"threads sales by gus",
		"threads gus by gus",
		`reply sales:+14155550100 "On its way" "" by gus`,
		`release sales:+14155550100 "" "" by gus`,
		`transfer sales:+14155550100 "" "ann" by gus`,
		"stats sales by gus",
		"thread sales:+14155550100 by admin",
	}
	if got := f.log(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("reached the grains:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The grains' refusals keep their status and code; a claimed thread's 409
// names its holder in the error object.
func TestSMSRefusals(t *testing.T) {
	e := newEnv(t)
	f := newFakeSMS()
	f.errs = map[string]error{
		"reply " + salesThread:    &ControlError{Status: 409, Code: "thread_claimed", Message: "the thread is claimed by gus", Holder: "gus"},
		"release " + salesThread:  AsControlError(409, "not_claimed", "the thread is not claimed"),
		"transfer " + salesThread: AsControlError(422, "not_a_member", "to: ann is not a member of sales"),
		"+14155550199":            AsControlError(409, "recipient_opted_out", "+14155550100 opted out of messages from +14155550199"),
		"+14155550198":            ErrForbidden,
		"+14155550197":            AsControlError(503, "draining", "the node is draining; try again"),
		"+14155550196":            fmt.Errorf("grain timed out"),
		"support":                 ErrForbidden,
		"ghost":                   ErrNotFound,
	}
	e.withSMS(f)
	ann := e.user("ann", "1002")
	send := func(from string) string { return fmt.Sprintf(`{"from":%q,"to":["+14155550100"],"text":"hi"}`, from) }
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"reply to a claimed thread", "POST", "/v1/sms/threads/" + salesThread + "/reply", `{"text":"hi"}`, 409, "thread_claimed", "The thread is claimed by gus"},
		{"release an unclaimed thread", "POST", "/v1/sms/threads/" + salesThread + "/release", "", 409, "not_claimed", "The thread is not claimed"},
		{"transfer to a non-member", "POST", "/v1/sms/threads/" + salesThread + "/transfer", `{"to":"ann"}`, 422, "not_a_member", "to: ann is not a member"},
		{"unknown thread", "GET", "/v1/sms/threads/sales:+19995550100", "", 404, "not_found", "The thread was not found"},
		{"reply to an unknown thread", "POST", "/v1/sms/threads/nope/reply", `{"text":"hi"}`, 404, "not_found", "The thread"},
		{"opted out", "POST", "/v1/sms", send("+14155550199"), 409, "recipient_opted_out", "opted out"},
		{"not one's number", "POST", "/v1/sms", send("+14155550198"), 403, "forbidden", "send from +14155550198"},
		{"draining", "POST", "/v1/sms", send("+14155550197"), 503, "draining", "try again"},
		{"another queue's threads", "GET", "/v1/sms/threads?owner=support", "", 403, "forbidden", "threads of support"},
		{"unknown owner", "GET", "/v1/sms/threads?owner=ghost", "", 404, "not_found", "The owner ghost"},
		{"another queue's stats", "GET", "/v1/queues/support/sms-stats", "", 403, "forbidden", "SMS stats of support"},
		{"unknown queue's stats", "GET", "/v1/queues/ghost/sms-stats", "", 404, "not_found", "The queue"},
		{"a failure", "POST", "/v1/sms", send("+14155550196"), 500, "internal", "could not"},
	} {
		e.expect(c.name, e.do(c.method, c.path, ann.Token, c.body), c.status, c.code, c.mentions)
	}

	var body struct {
		Error map[string]string `json:"error"`
	}
	r := e.do("POST", "/v1/sms/threads/"+salesThread+"/reply", ann.Token, `{"text":"hi"}`)
	r.decode(t, &body)
	if body.Error["holder"] != "gus" || len(body.Error) != 3 {
		t.Fatalf("claimed: %s, want the holder gus beside code and message", r.body)
	}
	r = e.do("POST", "/v1/sms/threads/"+salesThread+"/release", ann.Token, "")
	body.Error = nil
	r.decode(t, &body)
	if _, ok := body.Error["holder"]; ok || len(body.Error) != 2 {
		t.Fatalf("not claimed: %s, want no holder", r.body)
	}
}

// Every SMS route needs a token; with one, a node without the SMS grains
// answers 503 once the request itself is valid.
func TestSMSAuthAndUnavailable(t *testing.T) {
	e := newEnv(t)
	e.withSMS(nil)
	gus := e.user("gus", "1001")
	routes := []struct{ method, path, body string }{
		{"POST", "/v1/sms", `{"from":"+14155550150","to":["1002"],"text":"hi"}`},
		{"GET", "/v1/sms/threads?owner=sales", ""},
		{"GET", "/v1/sms/threads/" + salesThread, ""},
		{"POST", "/v1/sms/threads/" + salesThread + "/reply", `{"text":"hi"}`},
		{"POST", "/v1/sms/threads/" + salesThread + "/release", ""},
		{"POST", "/v1/sms/threads/" + salesThread + "/transfer", `{"to":"ann"}`},
		{"GET", "/v1/queues/sales/sms-stats", ""},
	}
	for _, c := range routes {
		name := c.method + " " + c.path
		e.expect(name+" without a token", e.do(c.method, c.path, "", c.body), 401, "unauthorized", "Bearer")
		e.expect(name+" with a bad token", e.do(c.method, c.path, "nope", c.body), 401, "unauthorized", "token")
		e.expect(name+" without SMS", e.do(c.method, c.path, gus.Token, c.body), 503, "unavailable", "SMS")
	}
	e.expect("invalid before unavailable", e.do("POST", "/v1/sms", gus.Token, `{"to":["1002"],"text":"hi"}`), 400, "invalid_field", "from")

	f := newFakeSMS()
	e.withSMS(f)
	for _, c := range routes {
		e.do(c.method, c.path, "", c.body)
	}
	if got := f.log(); len(got) != 0 {
		t.Fatalf("requests without a token reached the SMS grains: %v", got)
	}
}

// FuzzSMSBody sends arbitrary bodies to POST /v1/sms and a thread's reply
// and transfer: the answer is a 2xx or a 4xx in the error shape, never a
// 500 or a panic, and what reaches the grains is within the limits.
//
//	go test -run '^$' -fuzz FuzzSMSBody -fuzztime 30s ./api/rest/
func FuzzSMSBody(f *testing.F) {
	e := newEnv(f)
	sms := newFakeSMS()
	e.withSMS(sms)
	_, tok, err := e.deps.Directory.CreateUser(context.Background(), directory.UserInput{ID: "gus", Name: "Gus", Extension: "1001", SIPPassword: "gus-secret"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"from":"+14155550150","to":["+14155550100","1002","ann"],"text":"hi"}`,
		`{"from":"+14155550150","to":["1","2","3","4","5","6","7","8","9","10","11"],"text":"x"}`,
		`{"from":"","to":[""],"text":""}`,
		`{"from":1,"to":{"a":1},"text":null}`,
		`{"text":"hi","to":"ann"}`,
		`{"from":"+1","to":["a"],"text":"\u0000\ud800"}`,
		`{"id":`, `[]`, `null`, ``, `{}`, `{"x":1}`, "{\"text\":\"\xff\"}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > BodyLimit {
			return // fasthttp answers 413 before the app
		}
		for _, path := range []string{"/v1/sms", "/v1/sms/threads/" + salesThread + "/reply", "/v1/sms/threads/" + salesThread + "/transfer"} {
			r := e.do("POST", path, tok, body)
			if r.status >= 500 {
				t.Fatalf("%s %q: %d %s", path, body, r.status, r.body)
			}
			if r.status >= 300 {
				if code, msg := r.errCode(); code == "" || msg == "" {
					t.Fatalf("%s %q: %d without the error shape: %s", path, body, r.status, r.body)
				}
				continue
			}
			var in smsBody
			var rb replyBody
			switch {
			case path == "/v1/sms" && (json.Unmarshal([]byte(body), &in) != nil || in.From == nil || *in.From == "" ||
				len(in.To) < 1 || len(in.To) > maxRecipients || in.Text == nil || len(*in.Text) < 1 || len(*in.Text) > maxSMSBytes):
				t.Fatalf("%s %q accepted: %d %s", path, body, r.status, r.body)
			case strings.HasSuffix(path, "/reply") && (json.Unmarshal([]byte(body), &rb) != nil || rb.Text == nil || len(*rb.Text) < 1 || len(*rb.Text) > maxSMSBytes):
				t.Fatalf("%s %q accepted: %d %s", path, body, r.status, r.body)
			}
		}
	})
}
