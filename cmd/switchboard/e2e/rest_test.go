package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *sys) raw(method, path, tok, body string) (int, apiErr) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.base+path, bytes.NewReader([]byte(body)))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var e apiErr
	_ = json.Unmarshal(b, &e)
	return res.StatusCode, e
}

func TestRESTRefusals(t *testing.T) {
	s := startNode(t, nil)
	alice := s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	for _, c := range []struct {
		name, method, path, tok, body string
		status                        int
		code, field                   string
	}{
		{"no token", "GET", "/v1/users", "", "", 401, "unauthorized", ""},
		{"bad token", "GET", "/v1/users", "nope", "", 401, "unauthorized", ""},
		{"bad json", "POST", "/v1/users", s.token, `{"id":`, 400, "invalid_json", ""},
		{"unknown field", "POST", "/v1/users", s.token, `{"id":"x","colour":"red"}`, 400, "unknown_field", "colour"},
		{"wrong type", "POST", "/v1/users", s.token, `{"id":"carol","name":"C","extension":1003,"sip_password":"carol-secret"}`, 400, "invalid_field", "extension"},
		{"bad extension", "POST", "/v1/users", s.token, `{"id":"carol","name":"C","extension":"x1","sip_password":"carol-secret"}`, 400, "invalid_field", "extension"},
		{"short password", "POST", "/v1/users", s.token, `{"id":"carol","name":"C","extension":"1003","sip_password":"short"}`, 400, "invalid_field", "sip_password"},
		{"duplicate extension", "POST", "/v1/users", s.token, `{"id":"carol","name":"C","extension":"1001","sip_password":"carol-secret"}`, 409, "conflict", ""},
		{"user lists users", "GET", "/v1/users", alice.Token, "", 403, "forbidden", ""},
		{"user reads other's history", "GET", "/v1/users/bob/history", alice.Token, "", 403, "forbidden", ""},
		{"user changes own extension", "PATCH", "/v1/users/alice", alice.Token, `{"extension":"1009"}`, 403, "forbidden", ""},
		{"unknown call", "POST", "/v1/calls/nosuchcall/hold", s.token, "", 404, "not_found", ""},
		{"unknown route", "GET", "/v1/nothing", s.token, "", 404, "not_found", ""},
	} {
		status, e := s.raw(c.method, c.path, c.tok, c.body)
		if status != c.status || e.Error.Code != c.code || !strings.Contains(e.Error.Message, c.field) {
			t.Errorf("%s: got %d %+v, want %d %s naming %q", c.name, status, e.Error, c.status, c.code, c.field)
		}
	}
	if status, _ := s.raw("PATCH", "/v1/users/alice", alice.Token, `{"timezone":"Europe/Paris"}`); status != 200 {
		t.Fatalf("a user may change their own timezone: %d", status)
	}
	if status, _ := s.raw("GET", "/v1/users/alice/history", alice.Token, ""); status != 200 {
		t.Fatalf("a user reads their own history: %d", status)
	}
}
