package rest

import (
	"strings"
	"testing"
	"time"
)

// POST/DELETE /v1/calls/{id}/monitor: the body read strictly (400 naming
// the field), a user monitors only as themself (403), the admin names the
// supervisor; the grain's answer (202 start, 200 switch, refusals with
// their codes) passes through with the call.
func TestMonitorCall(t *testing.T) {
	e := newEnv(t)
	sue := e.user("sue", "1009")
	e.calls.calls = append(e.calls.calls, Call{ID: "watched", State: "active", Line: "ann", Legs: []Leg{}, Monitors: []Monitor{{User: "sue", Mode: "listen", Since: time.Now()}}})
	e.calls.errs["taken"] = AsControlError(409, "taken_over", "the call has been taken over; monitoring is over")
	e.calls.errs["stranger"] = AsControlError(403, "not_allowed", "you may not monitor the parties of this call")

	e.expect("no mode", e.do("POST", "/v1/calls/call-a/monitor", sue.Token, `{}`), 400, "invalid_field", "mode:")
	e.expect("bad mode", e.do("POST", "/v1/calls/call-a/monitor", sue.Token, `{"mode":"shout"}`), 400, "invalid_field", "mode:")
	e.expect("mode of another type", e.do("POST", "/v1/calls/call-a/monitor", sue.Token, `{"mode":1}`), 400, "invalid_field", "mode:")
	e.expect("unknown field", e.do("POST", "/v1/calls/call-a/monitor", sue.Token, `{"mode":"listen","volume":3}`), 400, "unknown_field", "volume:")
	e.expect("as another", e.do("POST", "/v1/calls/call-a/monitor", sue.Token, `{"mode":"listen","supervisor":"bob"}`), 403, "forbidden", "yourself")
	e.expect("admin without supervisor", e.do("POST", "/v1/calls/call-a/monitor", adminTok, `{"mode":"listen"}`), 400, "invalid_field", "supervisor:")
	e.expect("unknown call", e.do("POST", "/v1/calls/nope/monitor", sue.Token, `{"mode":"listen"}`), 404, "not_found", "call")
	e.expect("not allowed", e.do("POST", "/v1/calls/stranger/monitor", sue.Token, `{"mode":"listen"}`), 403, "not_allowed", "monitor")
	e.expect("taken over", e.do("POST", "/v1/calls/taken/monitor", sue.Token, `{"mode":"whisper"}`), 409, "taken_over", "taken over")

	r := e.do("POST", "/v1/calls/call-a/monitor", sue.Token, `{"mode":"listen"}`)
	var c Call
	r.decode(t, &c)
	if r.status != 202 || c.ID != "call-a" {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	r = e.do("POST", "/v1/calls/watched/monitor", adminTok, `{"mode":"barge","supervisor":"sue"}`)
	r.decode(t, &c)
	if r.status != 200 || len(c.Monitors) != 1 || c.Monitors[0].User != "sue" || c.Monitors[0].Mode != "listen" {
		t.Fatalf("switch: %d %s", r.status, r.body)
	}
	e.expect("stop", e.do("DELETE", "/v1/calls/watched/monitor", sue.Token, ""), 200, "", "")
	e.expect("admin stops", e.do("DELETE", "/v1/calls/watched/monitor", adminTok, ""), 200, "", "")
	e.expect("stop as another", e.do("DELETE", "/v1/calls/watched/monitor?supervisor=bob", sue.Token, ""), 403, "forbidden", "yourself")
	e.calls.mu.Lock()
	defer e.calls.mu.Unlock()
	if got := strings.Join(e.calls.done, ";"); got != "monitor listen call-a as sue;monitor barge watched as sue;stop watched as sue;stop watched as " {
		t.Fatalf("asked the grain: %s", got)
	}
}
