package call

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/cluster/directory"
)

type fakeDir struct {
	users []directory.User
	trunk *directory.Trunk
}

func (f fakeDir) UserByNumber(n string) (directory.User, bool) {
	for _, u := range f.users {
		for _, m := range u.Numbers {
			if m == n {
				return u, true
			}
		}
	}
	return directory.User{}, false
}

func (f fakeDir) Resolve(part string) (directory.User, bool) {
	for _, u := range f.users {
		if u.ID == part || u.Extension == part {
			return u, true
		}
	}
	return directory.User{}, false
}

func (f fakeDir) OutboundTrunk() (directory.Trunk, bool) {
	if f.trunk == nil {
		return directory.Trunk{}, false
	}
	return *f.trunk, true
}

func TestDialPlan(t *testing.T) {
	ann := directory.User{ID: "ann", Name: "Ann", Extension: "1001", Numbers: []string{"+14155550101"}}
	sec := directory.User{ID: "sec", Name: "Sec", Extension: "1002", SRTP: "required"}
	trunk := &directory.Trunk{ID: "carrier", Address: "203.0.113.7:5060"}
	for _, tc := range []struct {
		name, dialed string
		trunk        *directory.Trunk
		user         string
		srtp, e164   bool
		out          string // the trunk contact's URI
	}{
		{name: "extension", dialed: "1001", user: "ann"},
		{name: "user id", dialed: "ann", user: "ann"},
		{name: "owned number rings its owner, not the trunk", dialed: "+14155550101", trunk: trunk, user: "ann", e164: true},
		{name: "other number goes out", dialed: "+14155559999", trunk: trunk, e164: true, out: "sip:+14155559999@203.0.113.7:5060"},
		{name: "other number, no trunk", dialed: "+14155559999", e164: true},
		{name: "not E.164 never goes out", dialed: "5550100", trunk: trunk},
		{name: "SRTP policy comes with the user", dialed: "1002", user: "sec", srtp: true},
		{name: "too short to be E.164", dialed: "+1415", trunk: trunk},
	} {
		p := DialPlan{Dir: fakeDir{users: []directory.User{ann, sec}, trunk: tc.trunk}}
		party, srtp, isE164, out := p.Lookup(tc.dialed, false)
		user := ""
		if party != nil {
			user = party.UserID
		}
		uri := ""
		if out != nil {
			uri = out.URI
		}
		if user != tc.user || srtp != tc.srtp || isE164 != tc.e164 || uri != tc.out {
			t.Errorf("%s: user %q srtp %v e164 %v out %q; want %q %v %v %q", tc.name, user, srtp, isE164, uri, tc.user, tc.srtp, tc.e164, tc.out)
		}
	}
	if p := PartyOf(ann); p.Number != "1001" || p.External != "+14155550101" || p.Display != "Ann" {
		t.Errorf("PartyOf: %+v", p)
	}
}

func TestFeatureCode(t *testing.T) {
	for _, tc := range []struct {
		dialed string
		want   Feature
		ok     bool
	}{
		{"*81002", Feature{Action: FeaturePickup, Line: "1002"}, true},
		{"*7bob", Feature{Action: FeatureJoin, Line: "bob"}, true},
		{"*11002", Feature{Action: FeatureMonitor, Mode: ModeListen, Line: "1002"}, true},
		{"*21002", Feature{Action: FeatureMonitor, Mode: ModeWhisper, Line: "1002"}, true},
		{"*31002", Feature{Action: FeatureMonitor, Mode: ModeBarge, Line: "1002"}, true},
		{"*8", Feature{}, false},
		{"*3", Feature{}, false},
		{"1002", Feature{}, false},
		{"*91002", Feature{}, false},
		{"*41002", Feature{}, false},
	} {
		f, ok := FeatureCode(tc.dialed)
		if f != tc.want || ok != tc.ok {
			t.Errorf("%q: %+v %v, want %+v %v", tc.dialed, f, ok, tc.want, tc.ok)
		}
	}
}

// FeatureCode never panics, and what it reads is what was dialed: the
// code's prefix followed by the line.
func FuzzFeatureCode(f *testing.F) {
	for _, s := range []string{"*81002", "*7bob", "*11002", "*2", "*3*3", "", "*", "1002"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dialed string) {
		fc, ok := FeatureCode(dialed)
		if !ok {
			if fc != (Feature{}) {
				t.Fatalf("%q: not a code, yet %+v", dialed, fc)
			}
			return
		}
		if fc.Line == "" || !strings.HasSuffix(dialed, fc.Line) || len(dialed) != len(fc.Line)+2 {
			t.Fatalf("%q read as %+v", dialed, fc)
		}
	})
}
