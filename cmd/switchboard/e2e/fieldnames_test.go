package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestRESTNamesInvalidFields sends one invalid value per field of every
// request body the reference documents, to a node whose grains apply the
// rules: each answer is a 400 invalid_field whose message starts with the
// field as the client wrote it (ring_seconds, numbers[0],
// business_hours.mon[0][1]), whichever layer refused it (the JSON reader,
// the directory, the delegator grain). A body field the table misses fails
// the test, so a new one must be added here.
func TestRESTNamesInvalidFields(t *testing.T) {
	s := startNode(t, nil)
	s.user("alice", "1001", "alice-secret")
	s.user("bob", "1002", "bob-secret")
	s.expect("POST", "/v1/users/alice/delegates", "", map[string]any{"delegate": "bob", "privileges": []string{}}, 201, "")
	s.expect("POST", "/v1/monitoring-groups", "", map[string]any{"id": "alice", "supervisors": []string{"alice"}, "members": []string{"bob"}}, 201, "")
	s.expect("POST", "/v1/queues", "", map[string]any{"id": "alice", "members": []map[string]any{{"user": "bob"}}}, 201, "")
	s.expect("POST", "/v1/shared-line-groups", "", map[string]any{"id": "alice", "members": []string{"bob"}}, 201, "")
	s.expect("POST", "/v1/pickup-groups", "", map[string]any{"id": "alice", "members": []string{"bob"}}, 201, "")

	user := func(field string, v any) map[string]any {
		b := map[string]any{"id": "carol", "name": "Carol", "extension": "1003", "sip_password": "carol-secret"}
		b[field] = v
		return b
	}
	without := func(b map[string]any, field string) map[string]any {
		delete(b, field)
		return b
	}
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	type body = map[string]any
	covered := map[string]bool{} // "<op> <top-level field>"
	for _, c := range []struct {
		op    string // as the reference names the route
		body  any
		field string
	}{
		{"POST /v1/users", without(user("id", nil), "id"), "id"},
		{"POST /v1/users", user("id", "Carol Smith"), "id"},
		{"POST /v1/users", user("id", 3), "id"},
		{"POST /v1/users", user("name", ""), "name"},
		{"POST /v1/users", user("name", "two\nlines"), "name"},
		{"POST /v1/users", user("name", strings.Repeat("n", 65)), "name"},
		{"POST /v1/users", user("name", true), "name"},
		{"POST /v1/users", user("extension", "x1"), "extension"},
		{"POST /v1/users", user("extension", 1003), "extension"},
		{"POST /v1/users", user("numbers", []string{"555"}), "numbers[0]"},
		{"POST /v1/users", user("numbers", []string{"+14155550101", "+14155550101"}), "numbers[1]"},
		{"POST /v1/users", user("numbers", many(51, func(i int) string { return fmt.Sprintf("+1415555%04d", i) })), "numbers"},
		{"POST /v1/users", user("numbers", []int{14155550101}), "numbers[0]"},
		{"POST /v1/users", user("numbers", "+14155550101"), "numbers"},
		{"POST /v1/users", user("sip_password", "short"), "sip_password"},
		{"POST /v1/users", user("sip_password", 12345678), "sip_password"},
		{"POST /v1/users", user("timezone", "Moon/Base"), "timezone"},
		{"POST /v1/users", user("timezone", "Local"), "timezone"},
		{"POST /v1/users", user("business_hours", body{"mon": [][]string{{"9", "17:00"}}}), "business_hours.mon[0]"},
		{"POST /v1/users", user("business_hours", body{"tue": [][]string{}, "mon": [][]any{{"08:00", 17}}}), "business_hours.mon[0][1]"},
		{"POST /v1/users", user("business_hours", body{"funday": [][]string{}}), "business_hours.funday"},
		{"POST /v1/users", user("business_hours", body{"mon": "all day"}), "business_hours.mon"},
		{"POST /v1/users", user("business_hours", body{"mon": [][]string{{"08:00", "09:00"}, {"09:00", "10:00"}, {"10:00", "11:00"}, {"11:00", "12:00"},
			{"12:00", "13:00"}, {"13:00", "14:00"}, {"14:00", "15:00"}, {"15:00", "16:00"}, {"16:00", "17:00"}}}), "business_hours.mon"},
		{"POST /v1/users", user("power_pack", "yes"), "power_pack"},
		{"POST /v1/users", user("voicemail_enabled", 1), "voicemail_enabled"},
		{"POST /v1/users", user("srtp", "always"), "srtp"},

		{"PATCH /v1/users/{id}", body{"name": " "}, "name"},
		{"PATCH /v1/users/{id}", body{"extension": "1"}, "sip_password"},
		{"PATCH /v1/users/{id}", body{"extension": "1", "sip_password": "new-secret"}, "extension"},
		{"PATCH /v1/users/{id}", body{"numbers": []string{"+14155550101", "0800"}}, "numbers[1]"},
		{"PATCH /v1/users/{id}", body{"sip_password": "short"}, "sip_password"},
		{"PATCH /v1/users/{id}", body{"timezone": "Europe/Nowhere"}, "timezone"},
		{"PATCH /v1/users/{id}", body{"business_hours": body{"sun": [][]string{{"18:00", "09:00"}}}}, "business_hours.sun[0]"},
		{"PATCH /v1/users/{id}", body{"power_pack": "no"}, "power_pack"},
		{"PATCH /v1/users/{id}", body{"voicemail_enabled": []bool{true}}, "voicemail_enabled"},
		{"PATCH /v1/users/{id}", body{"srtp": "sometimes"}, "srtp"},

		{"POST /v1/trunks", body{"id": "Carrier One"}, "id"},
		{"POST /v1/trunks", body{"id": "t1", "address": "no port"}, "address"},
		{"POST /v1/trunks", body{"id": "t1", "outbound": true}, "address"},
		{"POST /v1/trunks", body{"id": "t1", "inbound_cidrs": []string{"203.0.113.0/24", "nope"}}, "inbound_cidrs[1]"},
		{"POST /v1/trunks", body{"id": "t1", "inbound_cidrs": many(65, func(i int) string { return fmt.Sprintf("10.0.0.%d", i) })}, "inbound_cidrs"},
		{"POST /v1/trunks", body{"id": "t1", "outbound": "yes"}, "outbound"},

		{"POST /v1/calls", body{"to": "1002"}, "from_user"},
		{"POST /v1/calls", body{"from_user": 1001, "to": "1002"}, "from_user"},
		{"POST /v1/calls", body{"from_user": "alice", "to": ""}, "to"},
		{"POST /v1/calls", body{"from_user": "alice", "to": 1002}, "to"},
		{"POST /v1/calls", body{"from_user": "alice", "to": "1002", "on_behalf_of": 7}, "on_behalf_of"},

		{"POST /v1/calls/{id}/transfer", body{}, "to"},
		{"POST /v1/calls/{id}/transfer", body{"to": []string{"1002"}}, "to"},

		{"POST /v1/users/{id}/delegates", body{"privileges": []string{}}, "delegate"},
		{"POST /v1/users/{id}/delegates", body{"delegate": 2, "privileges": []string{}}, "delegate"},
		{"POST /v1/users/{id}/delegates", body{"delegate": "bob"}, "privileges"},
		{"POST /v1/users/{id}/delegates", body{"delegate": "bob", "privileges": []string{"fly"}}, "privileges[0]"},
		{"POST /v1/users/{id}/delegates", body{"delegate": "bob", "privileges": []string{"answer_calls", "answer_calls"}}, "privileges[1]"},
		{"POST /v1/users/{id}/delegates", body{"delegate": "bob", "privileges": []any{"answer_calls", 1}}, "privileges[1]"},
		{"POST /v1/users/{id}/delegates", body{"delegate": "bob", "privileges": []string{}, "order": -1}, "order"},
		{"POST /v1/users/{id}/delegates", body{"delegate": "bob", "privileges": []string{}, "order": "first"}, "order"},

		{"PATCH /v1/users/{id}/delegates/{delegate}", body{"privileges": []string{"answer_calls", "fly"}}, "privileges[1]"},
		{"PATCH /v1/users/{id}/delegates/{delegate}", body{"privileges": "answer_calls"}, "privileges"},
		{"PATCH /v1/users/{id}/delegates/{delegate}", body{"order": -2}, "order"},
		{"PATCH /v1/users/{id}/delegates/{delegate}", body{"order": 1.5}, "order"},

		{"PUT /v1/users/{id}/vip", body{"enabled": "yes"}, "enabled"},
		{"PUT /v1/users/{id}/vip", body{"vip_mode": "everyone"}, "vip_mode"},
		{"PUT /v1/users/{id}/vip", body{"everybody_else": "sometimes"}, "everybody_else"},
		{"PUT /v1/users/{id}/vip", body{"ring_seconds": 2}, "ring_seconds"},
		{"PUT /v1/users/{id}/vip", body{"ring_seconds": 500}, "ring_seconds"},
		{"PUT /v1/users/{id}/vip", body{"ring_seconds": "20"}, "ring_seconds"},

		{"POST /v1/users/{id}/vip/contacts", body{}, "contact"},
		{"POST /v1/users/{id}/vip/contacts", body{"contact": "555"}, "contact"},
		{"POST /v1/users/{id}/vip/contacts", body{"contact": 14155550100}, "contact"},

		{"PUT /v1/users/{id}/privacy", body{"join_chime": "on"}, "join_chime"},

		{"POST /v1/calls/{id}/monitor", body{}, "mode"},
		{"POST /v1/calls/{id}/monitor", body{"mode": 1}, "mode"},
		{"POST /v1/calls/{id}/monitor", body{"mode": "shout"}, "mode"},
		{"POST /v1/calls/{id}/monitor", body{"mode": "listen"}, "supervisor"},
		{"POST /v1/calls/{id}/monitor", body{"mode": "listen", "supervisor": 5}, "supervisor"},

		{"POST /v1/monitoring-groups", body{"id": "Team One"}, "id"},
		{"POST /v1/monitoring-groups", body{"id": "g2", "name": 5}, "name"},
		{"POST /v1/monitoring-groups", body{"id": "g2", "supervisors": []string{"nobody"}}, "supervisors[0]"},
		{"POST /v1/monitoring-groups", body{"id": "g2", "members": "bob"}, "members"},
		{"POST /v1/monitoring-groups", body{"id": "g2", "modes": []string{"listen", "fly"}}, "modes[1]"},
		{"POST /v1/monitoring-groups", body{"id": "g2", "notify_agent": "yes"}, "notify_agent"},
		{"POST /v1/monitoring-groups", body{"id": "g2", "barge_tone": 1}, "barge_tone"},

		{"PATCH /v1/monitoring-groups/{id}", body{"name": false}, "name"},
		{"PATCH /v1/monitoring-groups/{id}", body{"supervisors": []string{"alice", "alice"}}, "supervisors[1]"},
		{"PATCH /v1/monitoring-groups/{id}", body{"members": []string{"nobody"}}, "members[0]"},
		{"PATCH /v1/monitoring-groups/{id}", body{"modes": []string{}}, "modes"},
		{"PATCH /v1/monitoring-groups/{id}", body{"notify_agent": "no"}, "notify_agent"},
		{"PATCH /v1/monitoring-groups/{id}", body{"barge_tone": []bool{}}, "barge_tone"},

		{"POST /v1/queues", body{"id": "Queue Two"}, "id"},
		{"POST /v1/queues", body{"id": "q2", "name": 5}, "name"},
		{"POST /v1/queues", body{"id": "q2", "extension": "x"}, "extension"},
		{"POST /v1/queues", body{"id": "q2", "numbers": []string{"555"}}, "numbers[0]"},
		{"POST /v1/queues", body{"id": "q2", "members": []body{{"user": "bob", "order": -1}}}, "members[0].order"},
		{"POST /v1/queues", body{"id": "q2", "members": []string{"bob"}}, "members[0]"},
		{"POST /v1/queues", body{"id": "q2", "distribution": "random"}, "distribution"},
		{"POST /v1/queues", body{"id": "q2", "ring_seconds": 4}, "ring_seconds"},
		{"POST /v1/queues", body{"id": "q2", "max_wait_seconds": 7201}, "max_wait_seconds"},
		{"POST /v1/queues", body{"id": "q2", "max_calls": 0}, "max_calls"},
		{"POST /v1/queues", body{"id": "q2", "wrap_up_seconds": -1}, "wrap_up_seconds"},
		{"POST /v1/queues", body{"id": "q2", "receive_while_on_call": "yes"}, "receive_while_on_call"},
		{"POST /v1/queues", body{"id": "q2", "service_level_seconds": 601}, "service_level_seconds"},
		{"POST /v1/queues", body{"id": "q2", "claim_release_seconds": 9}, "claim_release_seconds"},
		{"POST /v1/queues", body{"id": "q2", "timezone": "Moon/Base"}, "timezone"},
		{"POST /v1/queues", body{"id": "q2", "business_hours": body{"mon": [][]string{{"9", "17:00"}}}}, "business_hours.mon[0]"},
		{"POST /v1/queues", body{"id": "q2", "holidays": []body{{"date": "2026-02-30"}}}, "holidays[0].date"},
		{"POST /v1/queues", body{"id": "q2", "overflow": body{"business": body{"kind": "fax"}}}, "overflow.business.kind"},
		{"POST /v1/queues", body{"id": "q2", "overflow": body{"closed": body{"kind": "number", "id": "555"}}}, "overflow.closed.id"},
		{"POST /v1/queues", body{"id": "q2", "admins": []string{"bob", "bob"}}, "admins[1]"},
		{"POST /v1/queues", body{"id": "q2", "team_sms": 1}, "team_sms"},

		{"PATCH /v1/queues/{id}", body{"name": " "}, "name"},
		{"PATCH /v1/queues/{id}", body{"extension": "5"}, "extension"},
		{"PATCH /v1/queues/{id}", body{"numbers": "+14155550150"}, "numbers"},
		{"PATCH /v1/queues/{id}", body{"members": []body{{"user": 7}}}, "members[0].user"},
		{"PATCH /v1/queues/{id}", body{"distribution": 2}, "distribution"},
		{"PATCH /v1/queues/{id}", body{"ring_seconds": 121}, "ring_seconds"},
		{"PATCH /v1/queues/{id}", body{"max_wait_seconds": 9}, "max_wait_seconds"},
		{"PATCH /v1/queues/{id}", body{"max_calls": 501}, "max_calls"},
		{"PATCH /v1/queues/{id}", body{"wrap_up_seconds": 601}, "wrap_up_seconds"},
		{"PATCH /v1/queues/{id}", body{"receive_while_on_call": []bool{}}, "receive_while_on_call"},
		{"PATCH /v1/queues/{id}", body{"service_level_seconds": 4}, "service_level_seconds"},
		{"PATCH /v1/queues/{id}", body{"claim_release_seconds": 3601}, "claim_release_seconds"},
		{"PATCH /v1/queues/{id}", body{"timezone": "Local"}, "timezone"},
		{"PATCH /v1/queues/{id}", body{"business_hours": body{"funday": [][]string{}}}, "business_hours.funday"},
		{"PATCH /v1/queues/{id}", body{"holidays": []body{{"date": "2026-01-01", "name": "a\nb"}}}, "holidays[0].name"},
		{"PATCH /v1/queues/{id}", body{"overflow": body{"business": body{"kind": "user"}}}, "overflow.business.id"},
		{"PATCH /v1/queues/{id}", body{"admins": "bob"}, "admins"},
		{"PATCH /v1/queues/{id}", body{"team_sms": "no"}, "team_sms"},

		{"POST /v1/queues/{id}/members/{user}/opt-out", body{"reason": strings.Repeat("r", 101)}, "reason"},
		{"POST /v1/queues/{id}/members/{user}/opt-out", body{"reason": 5}, "reason"},

		{"POST /v1/shared-line-groups", body{"id": "Front Desk"}, "id"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "name": "a\nb"}, "name"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "extension": 7000}, "extension"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "numbers": []string{"+1"}}, "numbers[0]"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "members": []string{"bob", "bob"}}, "members[1]"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "ring_seconds": 301}, "ring_seconds"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "lock_policy": "yes"}, "lock_policy"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "monitoring": 1}, "monitoring"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "timezone": "Mars/Olympus"}, "timezone"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "business_hours": body{"sun": [][]string{{"10:00"}}}}, "business_hours.sun[0]"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "holidays": "2026-01-01"}, "holidays"},
		{"POST /v1/shared-line-groups", body{"id": "g2", "overflow": body{"business": body{"kind": "disconnect", "id": "bob"}}}, "overflow.business.id"},

		{"PATCH /v1/shared-line-groups/{id}", body{"name": 1}, "name"},
		{"PATCH /v1/shared-line-groups/{id}", body{"extension": "front"}, "extension"},
		{"PATCH /v1/shared-line-groups/{id}", body{"numbers": []string{"+14155550150", "+14155550150"}}, "numbers[1]"},
		{"PATCH /v1/shared-line-groups/{id}", body{"members": []int{1}}, "members[0]"},
		{"PATCH /v1/shared-line-groups/{id}", body{"ring_seconds": 4}, "ring_seconds"},
		{"PATCH /v1/shared-line-groups/{id}", body{"lock_policy": 0}, "lock_policy"},
		{"PATCH /v1/shared-line-groups/{id}", body{"monitoring": "on"}, "monitoring"},
		{"PATCH /v1/shared-line-groups/{id}", body{"timezone": 3}, "timezone"},
		{"PATCH /v1/shared-line-groups/{id}", body{"business_hours": body{"mon": "all day"}}, "business_hours.mon"},
		{"PATCH /v1/shared-line-groups/{id}", body{"holidays": []body{{"date": "2026-1-1"}}}, "holidays[0].date"},
		{"PATCH /v1/shared-line-groups/{id}", body{"overflow": body{"closed": body{"kind": "ivr"}}}, "overflow.closed.kind"},

		{"POST /v1/pickup-groups", body{"id": "Floor 1"}, "id"},
		{"POST /v1/pickup-groups", body{"id": "p2", "members": "bob"}, "members"},
		{"POST /v1/pickup-groups", body{"id": "p2", "delay_seconds": 121}, "delay_seconds"},

		{"PATCH /v1/pickup-groups/{id}", body{"members": []string{"bob", "bob"}}, "members[1]"},
		{"PATCH /v1/pickup-groups/{id}", body{"delay_seconds": -1}, "delay_seconds"},

		{"POST /v1/sms", body{"to": []string{"1002"}, "text": "hi"}, "from"},
		{"POST /v1/sms", body{"from": 14155550150, "to": []string{"1002"}, "text": "hi"}, "from"},
		{"POST /v1/sms", body{"from": "+14155550150", "to": []string{}, "text": "hi"}, "to"},
		{"POST /v1/sms", body{"from": "+14155550150", "to": "1002", "text": "hi"}, "to"},
		{"POST /v1/sms", body{"from": "+14155550150", "to": []string{"1002", ""}, "text": "hi"}, "to[1]"},
		{"POST /v1/sms", body{"from": "+14155550150", "to": []any{"1002", 1003}, "text": "hi"}, "to[1]"},
		{"POST /v1/sms", body{"from": "+14155550150", "to": []string{"1002"}, "text": ""}, "text"},
		{"POST /v1/sms", body{"from": "+14155550150", "to": []string{"1002"}, "text": strings.Repeat("x", 1601)}, "text"},

		{"POST /v1/sms/threads/{id}/reply", body{}, "text"},
		{"POST /v1/sms/threads/{id}/reply", body{"text": 5}, "text"},

		{"POST /v1/sms/threads/{id}/transfer", body{}, "to"},
		{"POST /v1/sms/threads/{id}/transfer", body{"to": []string{"bob"}}, "to"},

		{"GET /v1/users?limit=0", nil, "limit"},
		{"GET /v1/registrations?limit=501", nil, "limit"},
		{"GET /v1/sms/threads", nil, "owner"},
	} {
		covered[c.op+" "+strings.FieldsFunc(c.field, func(r rune) bool { return r == '.' || r == '[' })[0]] = true
		method, route, _ := strings.Cut(c.op, " ")
		path := strings.NewReplacer("{id}", "alice", "{delegate}", "bob", "{user}", "bob").Replace(route)
		var e apiErr
		status := s.api(method, path, "", c.body, &e)
		b, _ := json.Marshal(c.body)
		if status != 400 || e.Error.Code != "invalid_field" || !strings.HasPrefix(e.Error.Message, c.field+": ") || !strings.HasSuffix(e.Error.Message, ".") {
			t.Errorf("%s %s: got %d %s %q, want 400 invalid_field starting %q", c.op, b, status, e.Error.Code, e.Error.Message, c.field+": ")
		}
	}
	for _, f := range bodyFields(t, s) {
		if !covered[f] {
			t.Errorf("%s: no invalid value tried", f)
		}
	}
}

// bodyFields lists "<METHOD> <route> <field>" for every field of every
// request body the served reference documents.
func bodyFields(t *testing.T, s *sys) []string {
	type schema struct {
		Ref        string                     `json:"$ref"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"` // "parameters" is no operation
		Components struct{ Schemas map[string]schema }   `json:"components"`
	}
	if status := s.api("GET", "/v1/openapi.json", "", nil, &doc); status != 200 {
		t.Fatalf("openapi.json: %d", status)
	}
	var out []string
	for route, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				RequestBody *struct {
					Content map[string]struct{ Schema schema } `json:"content"`
				} `json:"requestBody"`
			}
			if method == "parameters" || json.Unmarshal(raw, &op) != nil || op.RequestBody == nil {
				continue
			}
			sc := op.RequestBody.Content["application/json"].Schema
			if sc.Ref != "" {
				sc = doc.Components.Schemas[strings.TrimPrefix(sc.Ref, "#/components/schemas/")]
			}
			if len(sc.Properties) == 0 {
				t.Fatalf("%s %s: a request body without properties", method, route)
			}
			for f := range sc.Properties {
				out = append(out, strings.ToUpper(method)+" "+route+" "+f)
			}
		}
	}
	if len(out) < 30 {
		t.Fatalf("only %d body fields found in openapi.json", len(out))
	}
	return out
}
