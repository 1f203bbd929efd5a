package rest

import (
	"context"
	"strings"
	"testing"

	pb "github.com/switchboard/switchboard/proto"
)

func TestIsJSON(t *testing.T) {
	for _, c := range []struct {
		contentType string
		json        bool
	}{
		{"application/json", true},
		{"Application/JSON", true},
		{"application/json; charset=utf-8", true},
		{"application/json;charset=UTF-8", true},
		{"application/json ; charset=\"utf-8\"", true},
		{"", false},
		{"text/plain", false},
		{"text/plain; charset=utf-8", false},
		{"text/json", false},
		{"application/x-www-form-urlencoded", false},
		{"multipart/form-data; boundary=x", false},
		{"application/jsonx", false},
		{"application/json-patch+json", false},
		{"application/json; charset=latin1", false},
		{"application/json; charset=", false},
		{"application/json;;", false},
		{"application/", false},
	} {
		if got := isJSON(c.contentType); got != c.json {
			t.Errorf("isJSON(%q) = %v, want %v", c.contentType, got, c.json)
		}
	}
}

// A body that would create a user is refused unless it is declared JSON,
// and nothing is created.
func TestCreateUserNeedsJSON(t *testing.T) {
	e := newEnv(t)
	body := `{"id":"alice","name":"Alice","extension":"1001","sip_password":"alice-secret"}`
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "application/json; charset=iso-8859-1"} {
		e.expect("create as "+ct, e.send("POST", "/v1/users", adminTok, ct, body), 415, "unsupported_media_type", "application/json")
		if _, ok := e.deps.Directory.UserByID("alice"); ok {
			t.Fatalf("a %q body created the user", ct)
		}
	}
	e.expect("no token first", e.send("POST", "/v1/users", "", "text/plain", body), 401, "unauthorized", "Bearer")
	e.expect("empty body without a type", e.send("POST", "/v1/users", adminTok, "", ""), 400, "invalid_json", "JSON object")
	e.expect("create as JSON with charset", e.send("POST", "/v1/users", adminTok, "application/json; charset=utf-8", body), 201, "", "")
}

// fakeDelegation accepts every command, so the routes that reach the
// delegator grain answer without one.
type fakeDelegation struct{}

func (fakeDelegation) Command(context.Context, *pb.DelegatorCommand) (*pb.DelegatorResult, error) {
	return &pb.DelegatorResult{Status: 204}, nil
}
func (fakeDelegation) Lines(context.Context, string) ([]Line, error)    { return nil, nil }
func (fakeDelegation) Shared(context.Context, string) ([]string, error) { return nil, nil }

// Every documented route that takes a body refuses one in another media
// type with 415 and reads one in application/json; every route without a
// body ignores what is sent, so a bodiless POST needs no Content-Type.
// GETs are left out: none takes a body, and /v1/events would stream.
func TestJSONBodyRoutes(t *testing.T) {
	e := newEnv(t)
	e.deps.Delegation = fakeDelegation{}
	e.deps.SMS = newFakeSMS() // without it a thread's bodiless release answers 503
	e.app = New(e.deps, testLog())
	e.user("alice", "1001")
	e.user("bob", "1002")
	params := strings.NewReplacer("{id}", "alice", "{delegate}", "bob", "{delegator}", "bob", "{contact}", "bob", "{entry}", "none")

	ops := loadDoc(t).operations(t)
	var withBody, without int
	// Bodies first: the bodiless routes include deleting alice.
	for _, bodies := range []bool{true, false} {
		for _, o := range ops {
			_, takesBody := o.op["requestBody"]
			if o.method == "GET" || takesBody != bodies {
				continue
			}
			name, path := o.method+" "+o.path, params.Replace(o.path)
			if takesBody {
				withBody++
				e.expect(name+" as text/plain", e.send(o.method, path, adminTok, "text/plain", `{}`), 415, "unsupported_media_type", "application/json")
				for _, c := range []struct{ contentType, body string }{{"application/json", `{}`}, {"application/json; charset=utf-8", `{}`}, {"", ""}} {
					if r := e.send(o.method, path, adminTok, c.contentType, c.body); r.status == 415 || r.status >= 500 {
						t.Errorf("%s with %q %q: %d %s", name, c.contentType, c.body, r.status, r.body)
					}
				}
				continue
			}
			without++
			for _, c := range []struct{ contentType, body string }{{"", ""}, {"text/plain", "hello"}} {
				if r := e.send(o.method, path, adminTok, c.contentType, c.body); r.status == 415 || r.status >= 500 {
					t.Errorf("%s with %q %q: %d %s", name, c.contentType, c.body, r.status, r.body)
				}
			}
		}
	}
	if withBody < 9 || without < 10 {
		t.Fatalf("only %d routes with a body and %d without were tried", withBody, without)
	}
	e.expect("hold without a Content-Type", e.send("POST", "/v1/calls/call-a/hold", adminTok, "", ""), 200, "", "")
}
