package rest

import (
	"fmt"
	"strings"
	"testing"
)

func TestSharedLineGroups(t *testing.T) {
	e := newEnv(t)
	ann := e.user("ann", "1001")
	bob := e.user("bob", "1002")
	cat := e.user("cat", "1003")

	r := e.do("POST", "/v1/shared-line-groups", adminTok, `{"id":"front","name":"Front desk","extension":"7000","members":["ann","bob"],"lock_policy":true}`)
	e.expect("create", r, 201, "", "")
	want := `{"id":"front","name":"Front desk","extension":"7000","numbers":[],"members":["ann","bob"],"ring_seconds":30,"lock_policy":true,` +
		`"monitoring":false,"timezone":"UTC","business_hours":null,"holidays":[],"overflow":{"business":{"kind":"disconnect"},"closed":{"kind":"disconnect"}}}`
	if string(r.body) != want {
		t.Fatalf("created %s, want %s", r.body, want)
	}
	for _, tok := range []string{adminTok, ann.Token, bob.Token} {
		r := e.do("GET", "/v1/shared-line-groups/front", tok, "")
		if e.expect("read", r, 200, "", ""); string(r.body) != want {
			t.Fatalf("read %s", r.body)
		}
	}
	e.expect("read by a non-member", e.do("GET", "/v1/shared-line-groups/front", cat.Token, ""), 403, "forbidden", "its members")
	e.expect("read unknown", e.do("GET", "/v1/shared-line-groups/nope", ann.Token, ""), 404, "not_found", "shared line group")

	r = e.do("PATCH", "/v1/shared-line-groups/front", adminTok, `{"members":["bob"],"monitoring":true,"overflow":{"closed":{"kind":"user","id":"cat"}}}`)
	e.expect("patch", r, 200, "", "")
	if s := string(r.body); !strings.Contains(s, `"members":["bob"]`) || !strings.Contains(s, `"lock_policy":true,"monitoring":true`) ||
		!strings.Contains(s, `"closed":{"kind":"user","id":"cat"}`) {
		t.Fatalf("patched %s", s)
	}
	e.expect("a former member", e.do("GET", "/v1/shared-line-groups/front", ann.Token, ""), 403, "forbidden", "its members")

	ten := make([]string, 10)
	for i := range ten {
		e.user(fmt.Sprintf("u%d", i), fmt.Sprintf("20%02d", i))
		ten[i] = fmt.Sprintf("%q", fmt.Sprintf("u%d", i))
	}
	numbers := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf(`"+1415555%04d"`, i)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"ten members", "POST", "/v1/shared-line-groups", `{"id":"ten","members":[` + strings.Join(ten, ",") + `],"numbers":[` + numbers(10) + `]}`, 201, "", ""},
		{"an 11th member", "PATCH", "/v1/shared-line-groups/ten", `{"members":[` + strings.Join(ten, ",") + `,"ann"]}`, 422, "too_many_members", "members: a shared line group has at most 10 members"},
		{"an 11th number", "POST", "/v1/shared-line-groups", `{"id":"g","numbers":[` + numbers(11) + `]}`, 422, "too_many_numbers", "numbers: a shared line group has at most 10 numbers"},
		{"an unknown member", "POST", "/v1/shared-line-groups", `{"id":"g","members":["ann","ghost"]}`, 422, "unknown_user", "members[1]"},
		{"a member twice", "POST", "/v1/shared-line-groups", `{"id":"g","members":["ann","ann"]}`, 400, "invalid_field", "members[1]: is listed twice"},
		{"a taken extension", "POST", "/v1/shared-line-groups", `{"id":"g","extension":"1001"}`, 409, "conflict", "extension 1001"},
		{"a taken number", "POST", "/v1/shared-line-groups", `{"id":"g","numbers":["+14155550003"]}`, 409, "conflict", "number +14155550003"},
		{"ring too long", "POST", "/v1/shared-line-groups", `{"id":"g","ring_seconds":301}`, 400, "invalid_field", "ring_seconds: must be from 5 to 300"},
		{"lock_policy not a bool", "POST", "/v1/shared-line-groups", `{"id":"g","lock_policy":"yes"}`, 400, "invalid_field", "lock_policy: must be true or false"},
		{"an unknown queue", "POST", "/v1/shared-line-groups", `{"id":"g","overflow":{"business":{"kind":"queue","id":"nope"}}}`, 422, "unknown_queue", "overflow.business.id"},
		{"voicemail", "POST", "/v1/shared-line-groups", `{"id":"g","overflow":{"business":{"kind":"voicemail"}}}`, 422, "voicemail_unavailable", "overflow.business.kind"},
		{"duplicate id", "POST", "/v1/shared-line-groups", `{"id":"front"}`, 409, "conflict", "shared line group front"},
		{"a member's write", "POST", "/v1/shared-line-groups", `{"id":"g"}`, 403, "forbidden", "admin"},
		{"a member's list", "GET", "/v1/shared-line-groups", ``, 403, "forbidden", "admin"},
		{"a member's patch", "PATCH", "/v1/shared-line-groups/front", `{"ring_seconds":10}`, 403, "forbidden", "admin"},
		{"a member's delete", "DELETE", "/v1/shared-line-groups/front", ``, 403, "forbidden", "admin"},
	} {
		tok := adminTok
		if strings.HasPrefix(c.name, "a member's") {
			tok = bob.Token
		}
		e.expect(c.name, e.do(c.method, c.path, tok, c.body), c.status, c.code, c.mentions)
	}
	r = e.do("GET", "/v1/shared-line-groups", adminTok, "")
	if e.expect("list", r, 200, "", ""); !strings.Contains(string(r.body), `"id":"front"`) || !strings.Contains(string(r.body), `"id":"ten"`) || strings.Contains(string(r.body), `"id":"g"`) {
		t.Fatalf("list %s", r.body)
	}
	e.expect("delete", e.do("DELETE", "/v1/shared-line-groups/front", adminTok, ""), 204, "", "")
	e.expect("delete again", e.do("DELETE", "/v1/shared-line-groups/front", adminTok, ""), 404, "not_found", "shared line group")
	e.expect("its extension is free", e.do("POST", "/v1/queues", adminTok, `{"id":"q","extension":"7000"}`), 201, "", "")
}
