package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/cluster/directory"
)

// group is a monitoring group as the API shows it.
type group struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Supervisors []string `json:"supervisors"`
	Members     []string `json:"members"`
	Modes       []string `json:"modes"`
	NotifyAgent bool     `json:"notify_agent"`
	BargeTone   bool     `json:"barge_tone"`
}

func (g group) String() string {
	b, _ := json.Marshal(g)
	return string(b)
}

func TestMonitoringGroups(t *testing.T) {
	e := newEnv(t)
	sue := e.user("sue", "1001")
	e.user("gus", "1002")
	e.user("gia", "1003")

	r := e.do("POST", "/v1/monitoring-groups", adminTok, `{"id":"sales","name":"Sales floor","supervisors":["sue"],"members":["gus","gia"],"modes":["whisper","listen"]}`)
	e.expect("create", r, 201, "", "")
	var g group
	r.decode(t, &g)
	// Modes come back in the interface's order; notify_agent is off and
	// barge_tone on by default.
	want := `{"id":"sales","name":"Sales floor","supervisors":["sue"],"members":["gus","gia"],"modes":["listen","whisper"],"notify_agent":false,"barge_tone":true}`
	if g.String() != want {
		t.Fatalf("created %s, want %s", g, want)
	}
	r = e.do("POST", "/v1/monitoring-groups", adminTok, `{"id":"support"}`)
	e.expect("create with defaults", r, 201, "", "")
	r.decode(t, &g)
	if want := `{"id":"support","name":"support","supervisors":[],"members":[],"modes":["listen","whisper","barge","takeover"],"notify_agent":false,"barge_tone":true}`; g.String() != want {
		t.Fatalf("created %s, want %s", g, want)
	}

	r = e.do("GET", "/v1/monitoring-groups/sales", adminTok, "")
	e.expect("read", r, 200, "", "")
	r.decode(t, &g)
	if g.Name != "Sales floor" || len(g.Members) != 2 {
		t.Fatalf("read %s", g)
	}

	r = e.do("PATCH", "/v1/monitoring-groups/sales", adminTok, `{"members":["gia"],"notify_agent":true,"barge_tone":false,"name":null}`)
	e.expect("patch", r, 200, "", "")
	r.decode(t, &g)
	if want := `{"id":"sales","name":"Sales floor","supervisors":["sue"],"members":["gia"],"modes":["listen","whisper"],"notify_agent":true,"barge_tone":false}`; g.String() != want {
		t.Fatalf("patched %s, want %s", g, want)
	}

	var page struct {
		Items []group `json:"items"`
		Next  string  `json:"next"`
	}
	r = e.do("GET", "/v1/monitoring-groups?limit=1", adminTok, "")
	e.expect("list", r, 200, "", "")
	r.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "sales" || page.Next != "sales" {
		t.Fatalf("first page: %s", r.body)
	}
	r = e.do("GET", "/v1/monitoring-groups?limit=1&cursor=sales", adminTok, "")
	r.decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].ID != "support" || page.Next != "" {
		t.Fatalf("second page: %s", r.body)
	}

	e.expect("delete", e.do("DELETE", "/v1/monitoring-groups/support", adminTok, ""), 204, "", "")
	e.expect("read deleted", e.do("GET", "/v1/monitoring-groups/support", adminTok, ""), 404, "not_found", "monitoring group")
	e.expect("delete deleted", e.do("DELETE", "/v1/monitoring-groups/support", adminTok, ""), 404, "not_found", "monitoring group")

	// Only the admin: a supervisor's own token may not even read its group.
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/monitoring-groups", `{"id":"mine","supervisors":["sue"],"members":["gus"]}`},
		{"GET", "/v1/monitoring-groups", ""},
		{"GET", "/v1/monitoring-groups/sales", ""},
		{"PATCH", "/v1/monitoring-groups/sales", `{"modes":["takeover"]}`},
		{"DELETE", "/v1/monitoring-groups/sales", ""},
	} {
		e.expect("user "+c.method+" "+c.path, e.do(c.method, c.path, sue.Token, c.body), 403, "forbidden", "admin")
	}
	r = e.do("GET", "/v1/monitoring-groups/sales", adminTok, "")
	r.decode(t, &g)
	if g.Modes[0] != "listen" || len(g.Members) != 1 {
		t.Fatalf("a refused request changed the group: %s", g)
	}
	e.expect("no token", e.do("GET", "/v1/monitoring-groups", "", ""), 401, "unauthorized", "Bearer")
}

// Every invalid input is a 400 naming the field as the client sent it; a
// taken id 409; an unknown group 404.
func TestMonitoringGroupErrors(t *testing.T) {
	e := newEnv(t)
	e.user("sue", "1001")
	e.user("gus", "1002")
	e.expect("create", e.do("POST", "/v1/monitoring-groups", adminTok, `{"id":"sales","supervisors":["sue"],"members":["gus"]}`), 201, "", "")

	long := strings.Repeat("x", 65)
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"missing id", "POST", "/v1/monitoring-groups", `{"supervisors":["sue"]}`, 400, "invalid_field", "id: is required"},
		{"id not a slug", "POST", "/v1/monitoring-groups", `{"id":"Sales Team"}`, 400, "invalid_field", "id: must be a slug"},
		{"duplicate id", "POST", "/v1/monitoring-groups", `{"id":"sales"}`, 409, "conflict", "monitoring group sales"},
		{"name too long", "POST", "/v1/monitoring-groups", fmt.Sprintf(`{"id":"g","name":%q}`, long), 400, "invalid_field", "name: must be at most 64"},
		{"name with a line break", "POST", "/v1/monitoring-groups", `{"id":"g","name":"a\nb"}`, 400, "invalid_field", "name: must be one line"},
		{"unknown supervisor", "POST", "/v1/monitoring-groups", `{"id":"g","supervisors":["sue","nobody"]}`, 400, "invalid_field", `supervisors[1]: is not a user: no user has the id "nobody"`},
		{"supervisor twice", "POST", "/v1/monitoring-groups", `{"id":"g","supervisors":["sue","sue"]}`, 400, "invalid_field", "supervisors[1]: is listed twice"},
		{"unknown member", "POST", "/v1/monitoring-groups", `{"id":"g","members":["ghost"]}`, 400, "invalid_field", "members[0]: is not a user"},
		{"member twice", "POST", "/v1/monitoring-groups", `{"id":"g","members":["gus","gus"]}`, 400, "invalid_field", "members[1]: is listed twice"},
		{"supervisor not a string", "POST", "/v1/monitoring-groups", `{"id":"g","supervisors":["sue",7]}`, 400, "invalid_field", "supervisors[1]: must be a string"},
		{"members not a list", "POST", "/v1/monitoring-groups", `{"id":"g","members":"gus"}`, 400, "invalid_field", "members: must be an array"},
		{"no mode", "POST", "/v1/monitoring-groups", `{"id":"g","modes":[]}`, 400, "invalid_field", "modes: must name at least one mode"},
		{"unknown mode", "POST", "/v1/monitoring-groups", `{"id":"g","modes":["listen","shout"]}`, 400, "invalid_field", "modes[1]: must be listen, whisper, barge or takeover"},
		{"mode twice", "POST", "/v1/monitoring-groups", `{"id":"g","modes":["barge","barge"]}`, 400, "invalid_field", "modes[1]: is listed twice"},
		{"mode not a string", "POST", "/v1/monitoring-groups", `{"id":"g","modes":[true]}`, 400, "invalid_field", "modes[0]: must be a string"},
		{"notify_agent not a bool", "POST", "/v1/monitoring-groups", `{"id":"g","notify_agent":"yes"}`, 400, "invalid_field", "notify_agent: must be true or false"},
		{"barge_tone not a bool", "POST", "/v1/monitoring-groups", `{"id":"g","barge_tone":1}`, 400, "invalid_field", "barge_tone: must be true or false"},
		{"unknown field", "POST", "/v1/monitoring-groups", `{"id":"g","agents":["gus"]}`, 400, "unknown_field", "agents"},
		{"not JSON", "POST", "/v1/monitoring-groups", `{"id":`, 400, "invalid_json", "JSON"},
		{"patch unknown member", "PATCH", "/v1/monitoring-groups/sales", `{"members":["gus","ghost"]}`, 400, "invalid_field", "members[1]: is not a user"},
		{"patch no mode", "PATCH", "/v1/monitoring-groups/sales", `{"modes":[]}`, 400, "invalid_field", "modes: must name at least one mode"},
		{"patch unknown mode", "PATCH", "/v1/monitoring-groups/sales", `{"modes":["spy"]}`, 400, "invalid_field", "modes[0]"},
		{"patch blank name", "PATCH", "/v1/monitoring-groups/sales", `{"name":" "}`, 400, "invalid_field", "name: must not be empty"},
		{"patch the id", "PATCH", "/v1/monitoring-groups/sales", `{"id":"other"}`, 400, "unknown_field", "id"},
		{"patch a wrong type", "PATCH", "/v1/monitoring-groups/sales", `{"supervisors":{"sue":true}}`, 400, "invalid_field", "supervisors: must be an array"},
		{"patch unknown group", "PATCH", "/v1/monitoring-groups/nope", `{"name":"x"}`, 404, "not_found", "monitoring group"},
		{"read unknown group", "GET", "/v1/monitoring-groups/nope", "", 404, "not_found", "monitoring group"},
		{"delete unknown group", "DELETE", "/v1/monitoring-groups/nope", "", 404, "not_found", "monitoring group"},
		{"bad limit", "GET", "/v1/monitoring-groups?limit=0", "", 400, "invalid_field", "limit"},
	} {
		e.expect(c.name, e.do(c.method, c.path, adminTok, c.body), c.status, c.code, c.mentions)
	}
	e.expect("a form post", e.send("POST", "/v1/monitoring-groups", adminTok, "application/x-www-form-urlencoded", "id=g"), 415, "unsupported_media_type", "application/json")

	var g group
	r := e.do("GET", "/v1/monitoring-groups/sales", adminTok, "")
	r.decode(t, &g)
	if want := `{"id":"sales","name":"sales","supervisors":["sue"],"members":["gus"],"modes":["listen","whisper","barge","takeover"],"notify_agent":false,"barge_tone":true}`; g.String() != want {
		t.Fatalf("refused requests changed the group: %s", g)
	}
	r = e.do("GET", "/v1/monitoring-groups", adminTok, "")
	if !strings.Contains(string(r.body), `"items":[{"id":"sales"`) || strings.Contains(string(r.body), `"id":"g"`) {
		t.Fatalf("an invalid group was stored: %s", r.body)
	}
}

// FuzzMonitoringGroupBody sends arbitrary bodies to group create and patch:
// whatever the body, the answer is a 2xx or a 4xx in the error shape, never
// a 500 or a panic.
//
//	go test -run '^$' -fuzz FuzzMonitoringGroupBody -fuzztime 30s ./api/rest/
func FuzzMonitoringGroupBody(f *testing.F) {
	e := newEnv(f)
	for i, id := range []string{"sue", "gus"} {
		if _, _, err := e.deps.Directory.CreateUser(context.Background(), directory.UserInput{ID: id, Name: id, Extension: strconv.Itoa(1001 + i), SIPPassword: id + "-secret"}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := e.deps.Directory.CreateMonitoringGroup(context.Background(), directory.MonitoringGroupInput{ID: "sales"}); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"id":"team","name":"Team","supervisors":["sue"],"members":["gus"],"modes":["listen","barge"],"notify_agent":true,"barge_tone":false}`,
		`{"id":"t2","supervisors":["sue","sue"]}`,
		`{"id":"t3","members":["ghost"],"modes":[]}`,
		`{"modes":["takeover","shout"],"name":null}`,
		`{"supervisors":[1],"members":{"a":1}}`,
		`{"name":"a\u202eb"}`,
		`{"id":`, `[]`, `null`, ``, `{}`, `{"x":1}`, `{"id":"a"}{"id":"b"}`, "{\"name\":\"\xff\"}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > BodyLimit {
			return // fasthttp answers 413 before the app
		}
		for _, c := range []struct{ method, path string }{{"POST", "/v1/monitoring-groups"}, {"PATCH", "/v1/monitoring-groups/sales"}} {
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
