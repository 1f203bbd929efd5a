package directory

import (
	"errors"
	"strings"
	"testing"
)

// injections are values that would add to or break a SIP header (or an SDP
// line) if written as they are.
var injections = []string{
	"Alice\r\nCall-Info: <sip:x>;answer-after=0",
	"Alice\nCall-Info: <sip:x>;answer-after=0",
	"Alice\rX: y",
	"Alice\x00",
	"Alice\tBob",
	"Alice\x7f",
	"Alice\u0085Bob",             // NEL, a C1 line break
	"Alice\u2028Bob",             // line separator
	"Alice\u202eboB",             // right-to-left override
	"Alice\xff\xfe",              // not UTF-8
	"\r\n",                       // nothing but a line break
	"Alice\r\n\r\nv=0\r\ns=evil", // an SDP body of its own
}

// uriBreakers are printable, but would end or extend a URI's user part, a
// host or a header value.
var uriBreakers = []string{`a"b`, "a>b", "a<b", "a;b", "a,b", "a b", "a@b", "a:b", "%0d%0a", "a?b", "a/b"}

// Every user or trunk field that is written into SIP is refused at save,
// on create and on patch, when it holds something that could inject a
// header; the error names the field.
func TestHeaderInjectionRefusedAtSave(t *testing.T) {
	type field struct {
		name     string
		payloads []string
		create   func(in *UserInput, v string)
		patch    func(p *UserPatch, v string) // nil: not patchable
	}
	pw := "new-secret"
	all := append(append([]string{}, injections...), uriBreakers...)
	fields := []field{
		{"id", all, func(in *UserInput, v string) { in.ID = v }, nil},
		{"name", injections, func(in *UserInput, v string) { in.Name = v }, func(p *UserPatch, v string) { p.Name = &v }},
		{"extension", all, func(in *UserInput, v string) { in.Extension = v },
			func(p *UserPatch, v string) { p.Extension, p.SIPPassword = &v, &pw }},
		{"numbers[0]", all, func(in *UserInput, v string) { in.Numbers = []string{v} },
			func(p *UserPatch, v string) { p.Numbers = &[]string{v} }},
	}
	existing, err := alice().user()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		for _, v := range f.payloads {
			in := alice()
			f.create(&in, v)
			var fe *FieldError
			if err := in.Validate(); !errors.As(err, &fe) || fe.Field != f.name {
				t.Errorf("create with %s %q: got %v, want a FieldError on %s", f.name, v, err, f.name)
			}
			if f.patch == nil {
				continue
			}
			var p UserPatch
			f.patch(&p, v)
			if _, err := p.apply(existing); !errors.As(err, &fe) || fe.Field != f.name {
				t.Errorf("patch of %s to %q: got %v, want a FieldError on %s", f.name, v, err, f.name)
			}
		}
	}
	for _, v := range all {
		for name, tr := range map[string]Trunk{
			"id":      {ID: v, Address: "carrier.example.net:5060", Outbound: true},
			"address": {ID: "carrier", Address: v + ":5060", Outbound: true},
		} {
			var fe *FieldError
			if err := tr.validate(); !errors.As(err, &fe) || fe.Field != name {
				t.Errorf("trunk %s %q: got %v, want a FieldError on %s", name, v, err, name)
			}
		}
	}
}

// Names are people's names: quotes, backslashes, accents and emoji are
// kept (the SIP edge escapes what must be), up to 64 characters.
func TestNamesAllowed(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{`Ann "The Boss" O\Brien`, true},
		{"Zoë Ångström-Łukasiewicz", true},
		{"مريم", true},
		{"李小龍", true},
		{"Family 👨\u200d👩\u200d👧", true}, // joined by zero-width joiners
		{"<sip:evil@example.com>;tag=1", true},
		{strings.Repeat("é", maxName), true},
		{strings.Repeat("é", maxName+1), false},
		{"   ", false},
		{"", false},
	} {
		var p UserPatch
		p.Name = &c.name
		u, err := alice().user()
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.apply(u)
		if c.ok && (err != nil || got.Name != c.name) {
			t.Errorf("name %q: %v, want it kept as it is", c.name, err)
		}
		var fe *FieldError
		if !c.ok && (!errors.As(err, &fe) || fe.Field != "name") {
			t.Errorf("name %q: %v, want a FieldError on name", c.name, err)
		}
	}
}
