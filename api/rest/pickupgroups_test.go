package rest

import "testing"

func TestPickupGroups(t *testing.T) {
	e := newEnv(t)
	ann := e.user("ann", "1001")
	bob := e.user("bob", "1002")
	cat := e.user("cat", "1003")

	r := e.do("POST", "/v1/pickup-groups", adminTok, `{"id":"floor","members":["ann","bob"]}`)
	e.expect("create", r, 201, "", "")
	if want := `{"id":"floor","members":["ann","bob"],"delay_seconds":10}`; string(r.body) != want {
		t.Fatalf("created %s, want %s", r.body, want)
	}
	for _, tok := range []string{adminTok, ann.Token, bob.Token} {
		e.expect("read", e.do("GET", "/v1/pickup-groups/floor", tok, ""), 200, "", "")
	}
	e.expect("read by a non-member", e.do("GET", "/v1/pickup-groups/floor", cat.Token, ""), 403, "forbidden", "its members")
	r = e.do("PATCH", "/v1/pickup-groups/floor", adminTok, `{"delay_seconds":0}`)
	if e.expect("patch", r, 200, "", ""); string(r.body) != `{"id":"floor","members":["ann","bob"],"delay_seconds":0}` {
		t.Fatalf("patched %s", r.body)
	}
	for _, c := range []struct {
		name, method, path, tok, body string
		status                        int
		code, mentions                string
	}{
		{"delay too long", "POST", "/v1/pickup-groups", adminTok, `{"id":"g","delay_seconds":121}`, 400, "invalid_field", "delay_seconds: must be from 0 to 120"},
		{"delay negative", "PATCH", "/v1/pickup-groups/floor", adminTok, `{"delay_seconds":-1}`, 400, "invalid_field", "delay_seconds"},
		{"an unknown member", "POST", "/v1/pickup-groups", adminTok, `{"id":"g","members":["ghost"]}`, 422, "unknown_user", "members[0]"},
		{"members not a list", "POST", "/v1/pickup-groups", adminTok, `{"id":"g","members":"ann"}`, 400, "invalid_field", "members: must be an array"},
		{"a name", "POST", "/v1/pickup-groups", adminTok, `{"id":"g","name":"G"}`, 400, "unknown_field", "name"},
		{"duplicate id", "POST", "/v1/pickup-groups", adminTok, `{"id":"floor"}`, 409, "conflict", "pickup group floor"},
		{"patch unknown", "PATCH", "/v1/pickup-groups/nope", adminTok, `{"delay_seconds":1}`, 404, "not_found", "pickup group"},
		{"a member's write", "POST", "/v1/pickup-groups", ann.Token, `{"id":"g"}`, 403, "forbidden", "admin"},
		{"a member's list", "GET", "/v1/pickup-groups", ann.Token, ``, 403, "forbidden", "admin"},
		{"a member's patch", "PATCH", "/v1/pickup-groups/floor", ann.Token, `{"delay_seconds":1}`, 403, "forbidden", "admin"},
		{"a member's delete", "DELETE", "/v1/pickup-groups/floor", ann.Token, ``, 403, "forbidden", "admin"},
	} {
		e.expect(c.name, e.do(c.method, c.path, c.tok, c.body), c.status, c.code, c.mentions)
	}
	r = e.do("GET", "/v1/pickup-groups?limit=10", adminTok, "")
	if e.expect("list", r, 200, "", ""); string(r.body) != `{"items":[{"id":"floor","members":["ann","bob"],"delay_seconds":0}],"next":""}` {
		t.Fatalf("list %s", r.body)
	}
	e.expect("delete", e.do("DELETE", "/v1/pickup-groups/floor", adminTok, ""), 204, "", "")
	e.expect("read deleted", e.do("GET", "/v1/pickup-groups/floor", adminTok, ""), 404, "not_found", "pickup group")
}
