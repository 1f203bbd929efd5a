package rest

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/cluster/directory"
)

// FuzzUserBody sends arbitrary bodies to user create and patch, as the admin
// and as the user: whatever the body, the answer is a 2xx or a 4xx in the
// error shape, never a 500 or a panic.
//
//	go test -run '^$' -fuzz FuzzUserBody -fuzztime 1m ./api/rest/
func FuzzUserBody(f *testing.F) {
	e := newEnv(f)
	_, aliceTok, err := e.deps.Directory.CreateUser(context.Background(), directory.UserInput{ID: "alice", Name: "Alice", Extension: "1001", SIPPassword: "alice-secret"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		`{"id":"bob","name":"Bob","extension":"1002","sip_password":"bob-secret"}`,
		`{"id":"carol","name":"Carol","extension":"1003","numbers":["+14155550103"],"sip_password":"carol-secret","timezone":"Europe/Paris",` +
			`"business_hours":{"mon":[["08:00","17:00"]],"sun":[]},"power_pack":true,"voicemail_enabled":true,"srtp":"required"}`,
		`{"name":"Alice B","timezone":"Asia/Tokyo","business_hours":{"fri":[["09:00","12:00"],["13:00","24:00"]]}}`,
		`{"extension":"1009","sip_password":"new-secret"}`,
		`{"numbers":null,"name":null}`,
		`{"business_hours":{"mon":[["08:00"]]}}`,
		`{"business_hours":{"mon":"x"}}`,
		`{"extension":1003}`,
		`{"id":`, `[]`, `null`, ``, `{}`, `{"a":1}`, `{"id":"x"}{"id":"y"}`, "{\"name\":\"\xff\"}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > BodyLimit {
			return // fasthttp answers 413 before the app; covered in TestClusterAndProbes
		}
		for _, c := range []struct{ method, path, tok string }{
			{"POST", "/v1/users", adminTok},
			{"PATCH", "/v1/users/alice", adminTok},
			{"PATCH", "/v1/users/alice", aliceTok},
		} {
			r := e.do(c.method, c.path, c.tok, body)
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

// FuzzContentType sends arbitrary Content-Types and bodies to a route that
// reads JSON: a non-empty body is refused with 415 exactly when its type is
// not JSON, and nothing answers 5xx.
//
//	go test -run '^$' -fuzz FuzzContentType -fuzztime 30s ./api/rest/
func FuzzContentType(f *testing.F) {
	e := newEnv(f)
	for _, seed := range [][2]string{
		{"application/json", `{"id":"bob","name":"Bob","extension":"1002","sip_password":"bob-secret"}`},
		{"application/json; charset=utf-8", `{}`},
		{"APPLICATION/JSON;CHARSET=UTF-8", `{"id":"x"}`},
		{"text/plain", `{"id":"carol","name":"Carol","extension":"1003","sip_password":"carol-secret"}`},
		{"application/x-www-form-urlencoded", "id=x&name=y"},
		{"application/json; charset=latin1", `{}`},
		{"application/json; charset=\"utf-8\"; x=\"", `{}`},
		{"", `{}`},
		{"", ""},
		{"text/plain", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		if len(body) > BodyLimit || strings.ContainsAny(contentType, "\r\n\x00") {
			return // 413 before the app; a header value cannot hold these
		}
		r := e.send("POST", "/v1/users", adminTok, contentType, body)
		if r.status >= 500 {
			t.Fatalf("%q %q: %d %s", contentType, body, r.status, r.body)
		}
		if refused := r.status == 415; refused != (body != "" && !isJSON(contentType)) {
			t.Fatalf("%q %q: %d %s", contentType, body, r.status, r.body)
		}
	})
}
