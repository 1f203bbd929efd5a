package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/switchboard/switchboard/actors/monitoring"
	"github.com/switchboard/switchboard/cluster/directory"
	pb "github.com/switchboard/switchboard/proto"
)

func TestGatherFacts(t *testing.T) {
	sales := directory.MonitoringGroup{ID: "sales", Name: "Sales", Supervisors: []string{"sue"}, Members: []string{"gus"},
		Modes: []monitoring.Mode{monitoring.Listen}, NotifyAgent: true}
	groups := func(s string) []directory.MonitoringGroup {
		if s == "sue" {
			return []directory.MonitoringGroup{sales}
		}
		return nil
	}
	users := []string{"sue", "gus", "dee", "del", "pam"}
	// Lines and who holds which role on them, as the delegator grains know.
	roles := map[[2]string]string{
		{"del", "dee"}: "delegate", // dee accepted del's invitation
		{"gus", "pam"}: "none",     // pam's invitation is pending
		{"gus", "gus"}: "owner",
	}
	down := errors.New("grain unreachable")
	for _, tc := range []struct {
		name  string
		s, g  string
		fail  string // the line whose grain fails
		want  monitoring.Facts
		asked []string // lines asked, in order
		err   bool
	}{
		{name: "a group", s: "sue", g: "gus", want: monitoring.Facts{Groups: []monitoring.Group{{ID: "sales", Supervisors: []string{"sue"},
			Members: []string{"gus"}, Modes: []monitoring.Mode{monitoring.Listen}, NotifyAgent: true}}}, asked: []string{"gus", "sue"}},
		{name: "the delegate monitors the delegator", s: "dee", g: "del", want: monitoring.Facts{Delegation: true}, asked: []string{"del"}},
		{name: "the delegator monitors the delegate", s: "del", g: "dee", want: monitoring.Facts{Delegation: true}, asked: []string{"dee", "del"}},
		{name: "a pending delegate is no delegate", s: "pam", g: "gus", want: monitoring.Facts{}, asked: []string{"gus", "pam"}},
		{name: "no relation", s: "gus", g: "dee", want: monitoring.Facts{}, asked: []string{"dee", "gus"}},
		{name: "a caller who is not a user", s: "sue", g: "+14155550100", want: monitoring.Facts{}},
		{name: "a supervisor who is not a user", s: "ghost", g: "gus", want: monitoring.Facts{}},
		{name: "a grain that cannot answer", s: "sue", g: "gus", fail: "sue", asked: []string{"gus", "sue"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			access := func(line, user string) (*pb.Access, error) {
				asked = append(asked, line)
				if line == tc.fail {
					return nil, down
				}
				role := roles[[2]string{line, user}]
				if role == "" {
					role = "none"
				}
				return &pb.Access{Role: role}, nil
			}
			got, err := gatherFacts(tc.s, tc.g, groups, func(id string) bool { return slices.Contains(users, id) }, access)
			if tc.err != (err != nil) || tc.err && !errors.Is(err, down) {
				t.Fatalf("error %v, want one: %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) || !slices.Equal(asked, tc.asked) {
				t.Fatalf("facts %+v asking %v, want %+v asking %v", got, asked, tc.want, tc.asked)
			}
		})
	}
}

// A group created and changed over REST, and a delegation accepted over
// REST, are the facts the call grain gets; the rule grants by them.
func TestMonitorFactsFromREST(t *testing.T) {
	n, err := Start(context.Background(), Config{
		SIPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", MediaIP: "127.0.0.1", RTPPorts: "34600-34699",
		DataDir: t.TempDir(), EtcdListen: "127.0.0.1:0", NodeID: "n1", ClusterAddr: "127.0.0.1:0", Domain: "switchboard.test",
		AdminToken: "test-admin-token-for-monitoring-facts", DrainTimeout: time.Second,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	api := func(method, path, tok string, body any, want int) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != want {
			got, _ := io.ReadAll(res.Body)
			t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, got, want)
		}
	}
	admin := n.AdminToken()
	for i, id := range []string{"sue", "gus", "dee"} {
		api("POST", "/v1/users", admin, map[string]any{"id": id, "name": id, "extension": string(rune('1'+i)) + "001", "sip_password": id + "-secret"}, 201)
	}
	api("POST", "/v1/monitoring-groups", admin, map[string]any{"id": "sales", "supervisors": []string{"sue"}, "members": []string{"gus"},
		"modes": []string{"listen", "whisper"}, "notify_agent": true}, 201)

	facts := func(s, g string) monitoring.Facts {
		t.Helper()
		f, err := n.monitorFacts(nil, s, g)
		if err != nil {
			t.Fatalf("facts(%s, %s): %v", s, g, err)
		}
		return f
	}
	want := monitoring.Facts{Groups: []monitoring.Group{{ID: "sales", Supervisors: []string{"sue"}, Members: []string{"gus"},
		Modes: []monitoring.Mode{monitoring.Listen, monitoring.Whisper}, NotifyAgent: true, BargeTone: true}}}
	if got := facts("sue", "gus"); !reflect.DeepEqual(got, want) {
		t.Fatalf("facts %+v, want %+v", got, want)
	}
	grant, refusal := monitoring.May("sue", "gus", facts("sue", "gus"))
	if refusal != nil || !slices.Equal(grant.Modes, []monitoring.Mode{monitoring.Listen, monitoring.Whisper}) || !grant.NotifyAgent || !grant.BargeTone {
		t.Fatalf("sue over gus: %+v %v", grant, refusal)
	}
	if _, refusal := monitoring.May("sue", "dee", facts("sue", "dee")); refusal == nil || refusal.Code != "not_allowed" {
		t.Fatalf("sue over dee, in no group: %+v", refusal)
	}

	api("PATCH", "/v1/monitoring-groups/sales", admin, map[string]any{"modes": []string{"barge"}, "members": []string{"gus", "dee"}}, 200)
	grant, refusal = monitoring.May("sue", "dee", facts("sue", "dee"))
	if refusal != nil || !slices.Equal(grant.Modes, []monitoring.Mode{monitoring.Barge}) {
		t.Fatalf("sue over dee after the patch: %+v %v", grant, refusal)
	}

	// dee accepts gus's invitation: each may monitor the other, with every mode.
	if f := facts("dee", "gus"); f.Delegation {
		t.Fatal("a delegation before any invitation")
	}
	api("POST", "/v1/users/gus/delegates", admin, map[string]any{"delegate": "dee", "privileges": []string{}}, 201)
	if f := facts("dee", "gus"); f.Delegation {
		t.Fatal("a pending invitation counted as a delegation")
	}
	api("POST", "/v1/users/dee/delegations/gus/accept", admin, nil, 200)
	for _, pair := range [][2]string{{"dee", "gus"}, {"gus", "dee"}} {
		grant, refusal := monitoring.May(pair[0], pair[1], facts(pair[0], pair[1]))
		if refusal != nil || !slices.Equal(grant.Modes, monitoring.Modes) || grant.NotifyAgent {
			t.Fatalf("%s over %s: %+v %v", pair[0], pair[1], grant, refusal)
		}
	}

	api("DELETE", "/v1/monitoring-groups/sales", admin, nil, 204)
	if f := facts("sue", "gus"); len(f.Groups) != 0 {
		t.Fatalf("a deleted group is still a fact: %+v", f)
	}
}
