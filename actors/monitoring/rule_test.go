package monitoring

import (
	"reflect"
	"strings"
	"testing"
)

func TestMay(t *testing.T) {
	sales := Group{ID: "sales", Supervisors: []string{"sue"}, Members: []string{"gus", "gia"}, Modes: []Mode{Listen, Whisper}, BargeTone: true}
	support := Group{ID: "support", Supervisors: []string{"sue", "sam"}, Members: []string{"gus"}, Modes: []Mode{Barge}, NotifyAgent: true}
	quiet := Group{ID: "quiet", Supervisors: []string{"sue"}, Members: []string{"gus"}, Modes: []Mode{Takeover}}
	all := []Mode{Listen, Whisper, Barge, Takeover}
	for _, tc := range []struct {
		name   string
		s, g   string
		facts  Facts
		want   Grant
		refuse string // a word of the refusal's message; "" when granted
	}{
		{name: "a group's supervisor over its member", s: "sue", g: "gus", facts: Facts{Groups: []Group{sales}},
			want: Grant{Modes: []Mode{Listen, Whisper}, BargeTone: true}},
		{name: "another member of the same group", s: "sue", g: "gia", facts: Facts{Groups: []Group{sales}},
			want: Grant{Modes: []Mode{Listen, Whisper}, BargeTone: true}},
		{name: "the group's notice and no barge tone", s: "sam", g: "gus", facts: Facts{Groups: []Group{support}},
			want: Grant{Modes: []Mode{Barge}, NotifyAgent: true}},
		{name: "two groups: union of modes, notice and tone when any says so", s: "sue", g: "gus", facts: Facts{Groups: []Group{quiet, support, sales}},
			want: Grant{Modes: all, NotifyAgent: true, BargeTone: true}},
		{name: "only the groups covering the pair count", s: "sue", g: "gia", facts: Facts{Groups: []Group{support, sales, quiet}},
			want: Grant{Modes: []Mode{Listen, Whisper}, BargeTone: true}},
		{name: "a delegation: every mode, no notice, barge tone", s: "dee", g: "del", facts: Facts{Delegation: true},
			want: Grant{Modes: all, BargeTone: true}},
		{name: "a queue's admin over its member", s: "qa", g: "gus", facts: Facts{QueueAdmin: true},
			want: Grant{Modes: all, BargeTone: true}},
		{name: "shared line group members with monitoring on", s: "sl1", g: "sl2", facts: Facts{SharedLine: true},
			want: Grant{Modes: all, BargeTone: true}},
		{name: "a delegation adds every mode to a group's, and its notice stays", s: "sam", g: "gus", facts: Facts{Groups: []Group{support}, Delegation: true},
			want: Grant{Modes: all, NotifyAgent: true, BargeTone: true}},
		{name: "a group without a barge tone and a relation with one", s: "sue", g: "gus", facts: Facts{Groups: []Group{quiet}, SharedLine: true},
			want: Grant{Modes: all, BargeTone: true}},

		{name: "no relation at all", s: "sue", g: "bob", facts: Facts{}, refuse: "sue may not monitor bob"},
		{name: "a group's member over its supervisor", s: "gus", g: "sue", facts: Facts{Groups: []Group{sales}}, refuse: "no monitoring group"},
		{name: "a supervisor of another group", s: "sam", g: "gia", facts: Facts{Groups: []Group{support, sales}}, refuse: "sam may not monitor gia"},
		{name: "supervisor over a non-member", s: "sue", g: "bob", facts: Facts{Groups: []Group{sales, support, quiet}}, refuse: "bob"},
		{name: "fellow members of a group", s: "gia", g: "gus", facts: Facts{Groups: []Group{sales}}, refuse: "gia may not"},
		{name: "oneself, even as one's own group's supervisor", s: "sue", g: "sue", facts: Facts{Groups: []Group{{Supervisors: []string{"sue"}, Members: []string{"sue"}, Modes: all}}, Delegation: true},
			refuse: "their own calls"},
		{name: "no supervisor", s: "", g: "gus", facts: Facts{Groups: []Group{sales}, Delegation: true}, refuse: "Only a user"},
		{name: "no monitored user (a trunk's side)", s: "sue", g: "", facts: Facts{Groups: []Group{sales}}, refuse: "Only a user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, r := May(tc.s, tc.g, tc.facts)
			if tc.refuse != "" {
				if r == nil {
					t.Fatalf("granted %+v, want a refusal", got)
				}
				if r.Status != 403 || r.Code != "not_allowed" || !strings.Contains(r.Message, tc.refuse) || !strings.HasSuffix(r.Message, ".") {
					t.Fatalf("refusal %d %s %q, want 403 not_allowed mentioning %q", r.Status, r.Code, r.Message, tc.refuse)
				}
				if r.Error() != r.Message {
					t.Fatalf("Error() %q", r.Error())
				}
				return
			}
			if r != nil {
				t.Fatalf("refused: %s", r.Message)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("grant %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestGrantCheck(t *testing.T) {
	some := Grant{Modes: []Mode{Listen, Barge}}
	for _, tc := range []struct {
		name    string
		grant   Grant
		mode    Mode
		mention string // a word of the refusal; "" when allowed
	}{
		{"an allowed mode", some, Barge, ""},
		{"another allowed mode", some, Listen, ""},
		{"a mode the groups leave out", some, Whisper, "only listen, barge"},
		{"takeover left out", some, Takeover, "takeover"},
		{"a grant of no mode", Grant{Modes: []Mode{}}, Listen, "no mode is"},
		{"not a mode", Grant{Modes: Modes}, "shout", "shout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.grant.Check(tc.mode)
			if tc.mention == "" {
				if r != nil || !tc.grant.Allows(tc.mode) {
					t.Fatalf("refused: %v", r)
				}
				return
			}
			if r == nil || r.Status != 403 || r.Code != "mode_not_allowed" || !strings.Contains(r.Message, tc.mention) {
				t.Fatalf("got %+v, want 403 mode_not_allowed mentioning %q", r, tc.mention)
			}
		})
	}
}

func TestModeValid(t *testing.T) {
	for _, m := range Modes {
		if !m.Valid() {
			t.Errorf("%s is not valid", m)
		}
	}
	for _, m := range []Mode{"", "Listen", "talk", "listen "} {
		if m.Valid() {
			t.Errorf("%q is valid", m)
		}
	}
}
