package delegator

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The cast: Dan (New York) delegates to Ann (primary), Bob (backup, his own
// hours 08:00-17:00 in Los Angeles), Cat (opted out), Dee (invited, not yet
// accepted) and Eve (no Answer Calls). Fay is on nobody's line.
var (
	weekdays = map[string][][]string{"mon": {{"08:00", "17:00"}}, "tue": {{"08:00", "17:00"}}, "wed": {{"08:00", "17:00"}},
		"thu": {{"08:00", "17:00"}}, "fri": {{"08:00", "17:00"}}, "sat": {}, "sun": {}}
	dan = Person{ID: "dan", Name: "Dan", Numbers: []string{"+14155550100"}, Timezone: "America/New_York", Hours: weekdays, PowerPack: true}
	// 11:00 in Los Angeles, 14:00 in New York on a Monday.
	mondayMorningLA = time.Date(2026, 11, 23, 19, 0, 0, 0, time.UTC)
	// 18:00 in Los Angeles (after Bob's hours), 21:00 in New York.
	mondayEveningLA = time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC)
	// 07:30 in Los Angeles: Bob's hours have not begun.
	mondayEarlyLA = time.Date(2026, 11, 23, 15, 30, 0, 0, time.UTC)
	// Saturday noon in Los Angeles.
	saturdayLA = time.Date(2026, 11, 28, 20, 0, 0, 0, time.UTC)
)

func people() map[string]Person {
	return map[string]Person{
		"ann": {ID: "ann", Name: "Ann", Timezone: "Europe/London", Numbers: []string{"+14155550101"}},
		"bob": {ID: "bob", Name: "Bob", Timezone: "America/Los_Angeles", Hours: weekdays},
		"cat": {ID: "cat", Name: "Cat", Timezone: "UTC"},
		"dee": {ID: "dee", Name: "Dee", Timezone: "UTC"},
		"eve": {ID: "eve", Name: "Eve", Timezone: "UTC"},
		"fay": {ID: "fay", Name: "Fay", Timezone: "UTC", Numbers: []string{"+14155550199"}},
	}
}

func line(t *testing.T) *State {
	t.Helper()
	s := NewState("dan")
	admin := Actor{Admin: true}
	invite := func(who string, order int, ps ...Privilege) {
		if _, err := s.Invite(Actor{User: "dan"}, people()[who], ps, order); err != nil {
			t.Fatalf("invite %s: %v", who, err)
		}
	}
	invite("ann", 0, AnswerCalls, PickupHold, OptInOut)
	invite("bob", 1, AnswerCalls, BusinessHours)
	invite("cat", 1, AnswerCalls, OptInOut)
	invite("dee", 0, AnswerCalls)
	invite("eve", 0, PlaceCalls)
	for _, who := range []string{"ann", "bob", "cat", "eve"} {
		if _, err := s.Respond(admin, who, "accept"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Respond(Actor{User: "cat"}, "cat", "opt_out"); err != nil {
		t.Fatal(err)
	}
	return s
}

func show(p Plan) string {
	if p.Voicemail {
		return "voicemail"
	}
	var parts []string
	for _, st := range p.Stages {
		parts = append(parts, strings.Join(st.Users, "+"))
	}
	return strings.Join(parts, " > ")
}

func TestRingPlan(t *testing.T) {
	vip := Caller{Number: "+14155550199"} // Fay, once she is on the list
	other := Caller{Number: "+12125550000"}
	cases := []struct {
		name   string
		vip    *VIP // nil: VIP delegation off
		noPP   bool // the delegator has no Power Pack
		vm     bool // the delegator has voicemail
		edit   func(*State)
		caller Caller
		at     time.Time
		want   string
	}{
		// VIP delegation off: everybody who may ring, at once (INTERFACE.md).
		{name: "off: delegator and ringing delegates together", caller: other, at: mondayMorningLA, want: "dan+ann+bob"},
		{name: "off: Bob after his own hours", caller: other, at: mondayEveningLA, want: "dan+ann"},
		{name: "off: Bob before his own hours", caller: other, at: mondayEarlyLA, want: "dan+ann"},
		{name: "off: Bob on Saturday", caller: other, at: saturdayLA, want: "dan+ann"},
		{name: "off: Ann's hours do not matter without the privilege", caller: other, at: saturdayLA,
			edit: func(s *State) { s.Delegations[s.find("ann")].Privileges = []Privilege{AnswerCalls} }, want: "dan+ann"},
		{name: "off: a delegate without answer_calls never rings", caller: other, at: mondayMorningLA,
			edit: func(s *State) { s.Delegations[s.find("ann")].Privileges = []Privilege{PickupHold} }, want: "dan+bob"},
		{name: "off: opted back in", caller: other, at: mondayMorningLA,
			edit: func(s *State) { s.Respond(Actor{User: "cat"}, "cat", "opt_in") }, want: "dan+ann+bob+cat"},
		{name: "off: declined never rings", caller: other, at: mondayMorningLA,
			edit: func(s *State) { s.Respond(Actor{User: "ann"}, "ann", "decline") }, want: "dan+bob"},
		{name: "on but no Power Pack: plain delegation", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly}, noPP: true,
			caller: other, at: mondayMorningLA, want: "dan+ann+bob"},

		// VIP callers.
		{name: "vip: ring me only", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly}, caller: vip, at: mondayMorningLA, want: "dan"},
		{name: "vip: me first, delegates next in sequence", vip: &VIP{Enabled: true, VIPMode: MeThenDelegates, EverybodyElse: MeOnly},
			caller: vip, at: mondayMorningLA, want: "dan > ann > bob"},
		{name: "vip: me first, delegates next, Bob off hours", vip: &VIP{Enabled: true, VIPMode: MeThenDelegates, EverybodyElse: MeOnly},
			caller: vip, at: mondayEveningLA, want: "dan > ann"},
		{name: "vip matched by a user's own number", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly},
			caller: Caller{User: "fay"}, at: mondayMorningLA, want: "dan"},

		// Everybody else, each mode.
		{name: "else: simultaneous", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: Simultaneous}, caller: other, at: mondayMorningLA, want: "dan+ann+bob"},
		{name: "else: delegates first, me next", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesThenMe}, caller: other, at: mondayMorningLA, want: "ann > bob > dan"},
		{name: "else: me first, delegates next", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: MeThenDelegates}, caller: other, at: mondayMorningLA, want: "dan > ann > bob"},
		{name: "else: delegates only", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly}, caller: other, at: mondayMorningLA, want: "ann > bob"},
		{name: "else: me only", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: MeOnly}, caller: other, at: mondayMorningLA, want: "dan"},
		{name: "else: voicemail", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: Voicemail}, vm: true, caller: other, at: mondayMorningLA, want: "voicemail"},
		{name: "else: same order rings together", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly}, caller: other, at: mondayMorningLA,
			edit: func(s *State) { s.Respond(Actor{User: "cat"}, "cat", "opt_in") }, want: "ann > bob+cat"},
		{name: "else: delegates only, nobody in hours, voicemail", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly}, vm: true, caller: other, at: mondayEveningLA,
			edit: func(s *State) { s.Respond(Actor{Admin: true}, "ann", "opt_out") }, want: "voicemail"},
		{name: "else: delegates only, nobody in hours, no voicemail: the delegator", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly}, caller: other, at: mondayEveningLA,
			edit: func(s *State) { s.Respond(Actor{Admin: true}, "ann", "opt_out") }, want: "dan"},
		{name: "else: delegates first, Bob off hours", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesThenMe}, caller: other, at: saturdayLA, want: "ann > dan"},

		// A delegate calling the delegator (and so a warm transfer to them).
		{name: "delegate not on the VIP list is routed away from the delegator", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly},
			caller: Caller{User: "ann"}, at: mondayMorningLA, want: "bob"},
		{name: "delegate not on the VIP list, nobody else: voicemail", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly},
			caller: Caller{User: "ann"}, at: mondayEveningLA, want: "voicemail"},
		{name: "delegate on the VIP list reaches the delegator", vip: &VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: DelegatesOnly},
			edit: func(s *State) { s.Contacts = append(s.Contacts, "ann") }, caller: Caller{User: "ann"}, at: mondayMorningLA, want: "dan"},
		{name: "with VIP off a delegate calling rings the delegator and the others", caller: Caller{User: "ann"}, at: mondayMorningLA, want: "dan+bob"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := line(t)
			me := dan
			me.PowerPack = !tc.noPP
			me.VoicemailEnabled = tc.vm
			if tc.vip != nil {
				s.VIP = *tc.vip
				s.VIP.RingSeconds = 15
				s.Contacts = []string{"+14155550199"}
			}
			if tc.edit != nil {
				tc.edit(s)
			}
			p := s.RingPlan(me, people(), tc.caller, tc.at)
			if got := show(p); got != tc.want {
				t.Fatalf("plan = %q, want %q", got, tc.want)
			}
			for _, st := range p.Stages {
				if st.Seconds != s.VIP.RingSeconds {
					t.Fatalf("stage rings %d s, want the setting's %d", st.Seconds, s.VIP.RingSeconds)
				}
			}
		})
	}
}

func TestVIPSettingsRefusals(t *testing.T) {
	none := NewState("dan") // no delegates at all
	pending := NewState("dan")
	pending.Invite(Actor{User: "dan"}, people()["ann"], []Privilege{AnswerCalls}, 0)
	cases := []struct {
		name  string
		s     *State
		me    Person
		by    Actor
		v     VIP
		code  string
		state int
	}{
		{"no power pack", line(t), Person{ID: "dan"}, Actor{User: "dan"}, VIP{Enabled: true}, "power_pack_required", 422},
		{"vip me_then_delegates without an answering delegate", none, dan, Actor{User: "dan"}, VIP{Enabled: true, VIPMode: MeThenDelegates, EverybodyElse: MeOnly}, "needs_answering_delegate", 422},
		{"simultaneous without an answering delegate", none, dan, Actor{User: "dan"}, VIP{Enabled: true, EverybodyElse: Simultaneous}, "needs_answering_delegate", 422},
		{"a pending delegate does not count", pending, dan, Actor{User: "dan"}, VIP{Enabled: true, EverybodyElse: DelegatesOnly}, "needs_answering_delegate", 422},
		{"voicemail mode without voicemail", line(t), dan, Actor{User: "dan"}, VIP{Enabled: true, EverybodyElse: Voicemail}, "voicemail_disabled", 422},
		{"bad mode", line(t), dan, Actor{User: "dan"}, VIP{Enabled: true, EverybodyElse: "sometimes"}, "invalid_field", 400},
		{"bad ring seconds", line(t), dan, Actor{User: "dan"}, VIP{Enabled: true, RingSeconds: 2}, "invalid_field", 400},
		{"a delegate may not change them", line(t), dan, Actor{User: "ann"}, VIP{Enabled: true}, "forbidden", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.s.VIP
			_, err := tc.s.PutVIP(tc.by, tc.me, tc.v)
			var r *Refusal
			if !errors.As(err, &r) || r.Code != tc.code || r.Status != tc.state {
				t.Fatalf("got %v, want %d %s", err, tc.state, tc.code)
			}
			if tc.s.VIP != before {
				t.Fatal("a refused PUT changed the settings")
			}
		})
	}
	// Allowed with no answering delegate: me only, and voicemail when enabled.
	vm := dan
	vm.VoicemailEnabled = true
	for _, ee := range []string{MeOnly, Voicemail} {
		if _, err := NewState("dan").PutVIP(Actor{User: "dan"}, vm, VIP{Enabled: true, EverybodyElse: ee}); err != nil {
			t.Fatalf("everybody_else %s with no delegates: %v", ee, err)
		}
	}
	// Missing fields take defaults.
	v, err := line(t).PutVIP(Actor{Admin: true}, dan, VIP{Enabled: true})
	if err != nil || v != (VIP{Enabled: true, VIPMode: MeOnly, EverybodyElse: Simultaneous, RingSeconds: DefaultRingSeconds}) {
		t.Fatalf("defaults: %+v %v", v, err)
	}
}

func TestDelegationLifecycle(t *testing.T) {
	s := NewState("dan")
	ann := people()["ann"]
	steps := []struct {
		name string
		do   func() error
		code string // "" for success
	}{
		{"a delegate cannot invite", func() error { _, err := s.Invite(Actor{User: "ann"}, people()["bob"], nil, 0); return err }, "forbidden"},
		{"self delegation", func() error { _, err := s.Invite(Actor{User: "dan"}, dan, nil, 0); return err }, "self_delegation"},
		{"unknown privilege", func() error {
			_, err := s.Invite(Actor{User: "dan"}, ann, []Privilege{"fly"}, 0)
			return err
		}, "invalid_field"},
		{"invite", func() error {
			_, err := s.Invite(Actor{User: "dan"}, ann, []Privilege{AnswerCalls, ManageVIP}, 0)
			return err
		}, ""},
		{"invite twice", func() error { _, err := s.Invite(Actor{User: "dan"}, ann, nil, 0); return err }, "already_delegate"},
		{"someone else cannot accept for Ann", func() error { _, err := s.Respond(Actor{User: "bob"}, "ann", "accept"); return err }, "forbidden"},
		{"pending: no access yet", func() error {
			if r, _ := s.Access("ann"); r != Nobody {
				return errors.New("pending delegate has access")
			}
			return nil
		}, ""},
		{"opt out before accepting", func() error { _, err := s.Respond(Actor{User: "ann"}, "ann", "opt_out"); return err }, "not_accepted"},
		{"accept", func() error { _, err := s.Respond(Actor{User: "ann"}, "ann", "accept"); return err }, ""},
		{"accepted: access with her privileges", func() error {
			if r, ps := s.Access("ann"); r != Delegate || len(ps) != 2 {
				return errors.New("accepted delegate lacks access")
			}
			return nil
		}, ""},
		{"opt out without the privilege", func() error { _, err := s.Respond(Actor{User: "ann"}, "ann", "opt_out"); return err }, "missing_privilege"},
		{"the admin opts her out anyway", func() error { _, err := s.Respond(Actor{Admin: true}, "ann", "opt_out"); return err }, ""},
		{"VIP contact while VIP is off", func() error { return s.AddContact(Actor{User: "ann"}, "+14155550199") }, "vip_disabled"},
		{"turn VIP on", func() error {
			_, err := s.PutVIP(Actor{User: "dan"}, dan, VIP{Enabled: true, EverybodyElse: DelegatesOnly})
			return err
		}, ""},
		{"Ann manages VIPs", func() error { return s.AddContact(Actor{User: "ann"}, "+14155550199") }, ""},
		{"Bob does not", func() error { return s.AddContact(Actor{User: "bob"}, "+14155550198") }, "forbidden"},
		{"remove an unknown contact", func() error { return s.RemoveContact(Actor{User: "dan"}, "+1") }, "not_found"},
		{"Ann leaves", func() error { return s.Remove(Actor{User: "ann"}, "ann") }, ""},
		{"and cannot manage VIPs any more", func() error { return s.AddContact(Actor{User: "ann"}, "+14155550198") }, "forbidden"},
	}
	for _, st := range steps {
		err := st.do()
		var r *Refusal
		switch {
		case st.code == "" && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.code != "" && (!errors.As(err, &r) || r.Code != st.code):
			t.Fatalf("%s: got %v, want %s", st.name, err, st.code)
		}
	}
}

// BenchmarkRingPlan is the delegator grain's core answering "who rings" for
// a line with five delegates, VIP on and business hours to check.
func BenchmarkRingPlan(b *testing.B) {
	s := NewState("dan")
	ps := people()
	for i, who := range []string{"ann", "bob", "cat", "dee", "eve"} {
		if _, err := s.Invite(Actor{User: "dan"}, ps[who], []Privilege{AnswerCalls, BusinessHours}, i); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Respond(Actor{Admin: true}, who, "accept"); err != nil {
			b.Fatal(err)
		}
		p := ps[who]
		p.Hours, p.Timezone = weekdays, "America/Los_Angeles"
		ps[who] = p
	}
	if _, err := s.PutVIP(Actor{User: "dan"}, dan, VIP{Enabled: true, VIPMode: MeThenDelegates, EverybodyElse: DelegatesThenMe}); err != nil {
		b.Fatal(err)
	}
	s.Contacts = []string{"+14155550199", "+14155550198", "+14155550197"}
	caller := Caller{Number: "+12125550000"}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if p := s.RingPlan(dan, ps, caller, mondayMorningLA); len(p.Stages) != 6 {
			b.Fatalf("plan %s", show(p))
		}
	}
}

// The join chime (000 L114) is an optional privacy setting: off for a new
// line and for a state stored before it existed; only the delegator or the
// admin changes it; the line's accepted delegates may read it.
func TestPrivacy(t *testing.T) {
	s := line(t)
	if s.Privacy.JoinChime {
		t.Fatal("the chime is on for a new line")
	}
	var old State
	if err := json.Unmarshal([]byte(`{"delegator":"dan","vip":{"vip_mode":"me_only"}}`), &old); err != nil || old.Privacy.JoinChime {
		t.Fatalf("a stored state without privacy settings: %+v %v", old.Privacy, err)
	}
	steps := []struct {
		by     Actor
		chime  bool
		status int // 0: accepted
	}{
		{Actor{User: "ann"}, true, 403},
		{Actor{User: "fay"}, true, 403},
		{Actor{User: "dan"}, true, 0},
		{Actor{Admin: true}, false, 0},
		{Actor{User: "dan"}, true, 0},
	}
	want := false
	for i, st := range steps {
		got, err := s.PutPrivacy(st.by, Privacy{JoinChime: st.chime})
		var r *Refusal
		switch {
		case st.status == 0 && err != nil:
			t.Fatalf("step %d: %v", i, err)
		case st.status != 0 && (!errors.As(err, &r) || r.Status != st.status):
			t.Fatalf("step %d: got %v, want %d", i, err, st.status)
		case st.status == 0:
			want = st.chime
			if got.JoinChime != want {
				t.Fatalf("step %d: answered %+v", i, got)
			}
		}
		if s.Privacy.JoinChime != want {
			t.Fatalf("step %d: chime %v, want %v", i, s.Privacy.JoinChime, want)
		}
	}
	for who, may := range map[Actor]bool{{User: "dan"}: true, {Admin: true}: true, {User: "ann"}: true, {User: "dee"}: false, {User: "fay"}: false} {
		if s.MayReadPrivacy(who) != may {
			t.Errorf("%+v may read the privacy settings: %v, want %v", who, !may, may)
		}
	}
}
