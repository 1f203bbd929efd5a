package line

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The registrar core's tests are stories: a sequence of REGISTERs (or prunes)
// at offsets from a fake clock's base time, each with the exact Result it must
// give and the bindings the line must hold afterwards. Expectations come from
// INTERFACE.md section 2 (clamp 60..3600, 423, Expires 0 and Contact: *
// remove, bindings expire on their own) and RFC 3261 section 10.3.

var t0 = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

const (
	desk = "sip:bob@192.0.2.10:5060"
	soft = "sip:bob@198.51.100.20:52000;transport=tcp"
	ata  = "sip:bob@203.0.113.7:5062"
)

// binding is what the edge sends for one Contact of a REGISTER from desk's
// network; Expires is left for the core to compute.
func binding(contact, callID string, cseq uint32) Binding {
	return Binding{Contact: contact, NodeID: "n1", NodeAddr: "10.0.0.1:8090", Source: "192.0.2.10:5060", Transport: "UDP", CallID: callID, CSeq: cseq}
}

func reg(contact, callID string, cseq uint32, expiresIn int) Register {
	return Register{Binding: binding(contact, callID, cseq), ExpiresIn: expiresIn}
}

// granted is the binding as the core must persist it: expiring at t0+at.
func granted(contact, callID string, cseq uint32, at time.Duration) Binding {
	b := binding(contact, callID, cseq)
	b.Expires = t0.Add(at)
	return b
}

func ok(persist ...Binding) Result {
	return Result{Status: 200, Reason: "OK", Persist: persist}
}

func removed(contacts ...string) Result {
	return Result{Status: 200, Reason: "OK", Remove: contacts}
}

var (
	tooBrief   = Result{Status: 423, Reason: "Interval Too Brief"}
	outOfOrder = Result{Status: 400, Reason: "CSeq out of order"}
	starNeeds0 = Result{Status: 400, Reason: "Contact: * needs Expires: 0"}
)

// lstep is one input of a line story: a REGISTER when reg is set, else a
// prune (Expire) whose returned contacts are compared (sorted) with gone.
type lstep struct {
	at   time.Duration
	reg  *Register
	want Result
	gone []string
	// After the step, at the same time: Contacts(now) in order as
	// "contact@+expiry/callid:cseq" and NextExpiry as an offset ("-" none).
	contacts string
	next     string
}

func r(x Register) *Register { return &x }

func contactsSummary(bs []Binding) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("%s@+%s/%s:%d", b.Contact, b.Expires.Sub(t0), b.CallID, b.CSeq)
	}
	return strings.Join(parts, " ")
}

func nextSummary(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "+" + t.Sub(t0).String()
}

func runLine(t *testing.T, steps []lstep) *Line {
	t.Helper()
	l := New("bob")
	for i, st := range steps {
		now := t0.Add(st.at)
		if st.reg != nil {
			got := l.Step(*st.reg, now)
			if !reflect.DeepEqual(got, st.want) {
				t.Errorf("step %d (+%s REGISTER %+v):\n got  %+v\n want %+v", i, st.at, *st.reg, got, st.want)
			}
		} else {
			gone := l.Expire(now)
			slices.Sort(gone)
			if !slices.Equal(gone, st.gone) {
				t.Errorf("step %d (+%s Expire): gone %q, want %q", i, st.at, gone, st.gone)
			}
		}
		if got := contactsSummary(l.Contacts(now)); got != st.contacts {
			t.Errorf("step %d (+%s): contacts\n got  %s\n want %s", i, st.at, got, st.contacts)
		}
		if got := nextSummary(l.NextExpiry()); got != st.next {
			t.Errorf("step %d (+%s): next expiry %s, want %s", i, st.at, got, st.next)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	return l
}

func TestRegistrar(t *testing.T) {
	cases := []struct {
		name  string
		steps []lstep
	}{
		{"expires is clamped to 60..3600: below 60 is 423, above 3600 is granted 3600", []lstep{
			{reg: r(reg(desk, "c1", 1, 59)), want: tooBrief, contacts: "", next: "-"},
			{reg: r(reg(desk, "c1", 2, 1)), want: tooBrief, contacts: "", next: "-"},
			{reg: r(reg(desk, "c1", 3, 60)), want: ok(granted(desk, "c1", 3, time.Minute)),
				contacts: desk + "@+1m0s/c1:3", next: "+1m0s"},
			{reg: r(reg(soft, "c2", 1, 3601)), want: ok(granted(soft, "c2", 1, time.Hour)),
				contacts: soft + "@+1h0m0s/c2:1 " + desk + "@+1m0s/c1:3", next: "+1m0s"},
			{at: 10 * time.Second, reg: r(reg(ata, "c3", 1, 3600)), want: ok(granted(ata, "c3", 1, time.Hour+10*time.Second)),
				contacts: ata + "@+1h0m10s/c3:1 " + soft + "@+1h0m0s/c2:1 " + desk + "@+1m0s/c1:3", next: "+1m0s"},
			{at: 20 * time.Second, reg: r(reg(ata, "c3", 2, 86400)), want: ok(granted(ata, "c3", 2, time.Hour+20*time.Second)),
				contacts: ata + "@+1h0m20s/c3:2 " + soft + "@+1h0m0s/c2:1 " + desk + "@+1m0s/c1:3", next: "+1m0s"},
		}},
		{"a 423 leaves an existing binding as it was", []lstep{
			{reg: r(reg(desk, "c1", 1, 120)), want: ok(granted(desk, "c1", 1, 2*time.Minute)), contacts: desk + "@+2m0s/c1:1", next: "+2m0s"},
			{at: 30 * time.Second, reg: r(reg(desk, "c1", 2, 30)), want: tooBrief, contacts: desk + "@+2m0s/c1:1", next: "+2m0s"},
		}},
		{"negative expires is refused", []lstep{
			{reg: r(reg(desk, "c1", 1, -1)), want: Result{Status: 400, Reason: "Expires must not be negative"}, contacts: "", next: "-"},
		}},
		{"a refresh moves the expiry; Expires 0 removes one binding", []lstep{
			{reg: r(reg(desk, "c1", 1, 600)), want: ok(granted(desk, "c1", 1, 10*time.Minute)), contacts: desk + "@+10m0s/c1:1", next: "+10m0s"},
			{reg: r(reg(soft, "c2", 7, 300)), want: ok(granted(soft, "c2", 7, 5*time.Minute)),
				contacts: desk + "@+10m0s/c1:1 " + soft + "@+5m0s/c2:7", next: "+5m0s"},
			{at: 9 * time.Minute, reg: r(reg(desk, "c1", 2, 600)), want: ok(granted(desk, "c1", 2, 19*time.Minute)),
				contacts: desk + "@+19m0s/c1:2", next: "+19m0s"}, // soft expired at +5m on its own
			{at: 10 * time.Minute, reg: r(reg(desk, "c1", 3, 0)), want: removed(desk), contacts: "", next: "-"},
		}},
		{"Expires 0 for a contact that is not bound is a 200 that changes nothing", []lstep{
			{reg: r(reg(desk, "c1", 1, 600)), want: ok(granted(desk, "c1", 1, 10*time.Minute)), contacts: desk + "@+10m0s/c1:1", next: "+10m0s"},
			{reg: r(reg(soft, "c2", 1, 0)), want: removed(), contacts: desk + "@+10m0s/c1:1", next: "+10m0s"},
		}},
		{"Contact: * with Expires 0 removes every binding", []lstep{
			{reg: r(reg(soft, "c2", 1, 600)), want: ok(granted(soft, "c2", 1, 10*time.Minute)), contacts: soft + "@+10m0s/c2:1", next: "+10m0s"},
			{reg: r(reg(desk, "c1", 1, 300)), want: ok(granted(desk, "c1", 1, 5*time.Minute)),
				contacts: soft + "@+10m0s/c2:1 " + desk + "@+5m0s/c1:1", next: "+5m0s"},
			{at: time.Minute, reg: r(Register{RemoveAll: true}), want: removed(desk, soft), contacts: "", next: "-"},
			{at: 2 * time.Minute, reg: r(Register{RemoveAll: true}), want: removed(), contacts: "", next: "-"},
		}},
		{"Contact: * with a non-zero Expires is 400 and removes nothing", []lstep{
			{reg: r(reg(desk, "c1", 1, 300)), want: ok(granted(desk, "c1", 1, 5*time.Minute)), contacts: desk + "@+5m0s/c1:1", next: "+5m0s"},
			{reg: r(Register{RemoveAll: true, ExpiresIn: 3600}), want: starNeeds0, contacts: desk + "@+5m0s/c1:1", next: "+5m0s"},
			{reg: r(Register{RemoveAll: true, ExpiresIn: 60}), want: starNeeds0, contacts: desk + "@+5m0s/c1:1", next: "+5m0s"},
		}},
		{"Contact: * from the same Call-ID needs a higher CSeq (RFC 3261 10.3 step 6)", []lstep{
			{reg: r(reg(desk, "c1", 5, 300)), want: ok(granted(desk, "c1", 5, 5*time.Minute)), contacts: desk + "@+5m0s/c1:5", next: "+5m0s"},
			{reg: r(reg(soft, "c2", 1, 600)), want: ok(granted(soft, "c2", 1, 10*time.Minute)),
				contacts: soft + "@+10m0s/c2:1 " + desk + "@+5m0s/c1:5", next: "+5m0s"},
			{reg: r(Register{RemoveAll: true, Binding: Binding{CallID: "c1", CSeq: 5}}), want: outOfOrder,
				contacts: soft + "@+10m0s/c2:1 " + desk + "@+5m0s/c1:5", next: "+5m0s"},
			{reg: r(Register{RemoveAll: true, Binding: Binding{CallID: "c1", CSeq: 6}}), want: removed(desk, soft), contacts: "", next: "-"},
		}},
		{"Contact: * from another Call-ID removes bindings whatever their CSeq", []lstep{
			{reg: r(reg(desk, "c1", 900, 300)), want: ok(granted(desk, "c1", 900, 5*time.Minute)), contacts: desk + "@+5m0s/c1:900", next: "+5m0s"},
			{reg: r(Register{RemoveAll: true, Binding: Binding{CallID: "c9", CSeq: 1}}), want: removed(desk), contacts: "", next: "-"},
		}},
		{"same Call-ID with a lower or equal CSeq is 400; a new Call-ID is accepted", []lstep{
			{reg: r(reg(desk, "c1", 10, 600)), want: ok(granted(desk, "c1", 10, 10*time.Minute)), contacts: desk + "@+10m0s/c1:10", next: "+10m0s"},
			{at: time.Minute, reg: r(reg(desk, "c1", 9, 3600)), want: outOfOrder, contacts: desk + "@+10m0s/c1:10", next: "+10m0s"},
			{at: time.Minute, reg: r(reg(desk, "c1", 10, 3600)), want: outOfOrder, contacts: desk + "@+10m0s/c1:10", next: "+10m0s"},
			{at: time.Minute, reg: r(reg(desk, "c1", 10, 0)), want: outOfOrder, contacts: desk + "@+10m0s/c1:10", next: "+10m0s"},
			// The phone rebooted: new Call-ID, CSeq starts over.
			{at: 2 * time.Minute, reg: r(reg(desk, "c2", 1, 600)), want: ok(granted(desk, "c2", 1, 12*time.Minute)),
				contacts: desk + "@+12m0s/c2:1", next: "+12m0s"},
			// The old Call-ID's late request is a different Call-ID now: it wins (RFC 3261 10.3 step 7).
			{at: 3 * time.Minute, reg: r(reg(desk, "c1", 11, 600)), want: ok(granted(desk, "c1", 11, 13*time.Minute)),
				contacts: desk + "@+13m0s/c1:11", next: "+13m0s"},
		}},
		{"CSeq is per binding: another contact from the same Call-ID is independent", []lstep{
			{reg: r(reg(desk, "c1", 10, 600)), want: ok(granted(desk, "c1", 10, 10*time.Minute)), contacts: desk + "@+10m0s/c1:10", next: "+10m0s"},
			{reg: r(reg(soft, "c1", 3, 600)), want: ok(granted(soft, "c1", 3, 10*time.Minute)),
				contacts: desk + "@+10m0s/c1:10 " + soft + "@+10m0s/c1:3", next: "+10m0s"},
		}},
		{"a binding expires on its own at its time", []lstep{
			{reg: r(reg(desk, "c1", 1, 60)), want: ok(granted(desk, "c1", 1, time.Minute)), contacts: desk + "@+1m0s/c1:1", next: "+1m0s"},
			{reg: r(reg(soft, "c2", 1, 3600)), want: ok(granted(soft, "c2", 1, time.Hour)),
				contacts: soft + "@+1h0m0s/c2:1 " + desk + "@+1m0s/c1:1", next: "+1m0s"},
			{at: 59 * time.Second, gone: nil, contacts: soft + "@+1h0m0s/c2:1 " + desk + "@+1m0s/c1:1", next: "+1m0s"},
			{at: 60 * time.Second, gone: []string{desk}, contacts: soft + "@+1h0m0s/c2:1", next: "+1h0m0s"},
			{at: 61 * time.Second, gone: nil, contacts: soft + "@+1h0m0s/c2:1", next: "+1h0m0s"},
			{at: 2 * time.Hour, gone: []string{soft}, contacts: "", next: "-"},
		}},
		{"after expiry the old Call-ID's stale CSeq registers afresh", []lstep{
			{reg: r(reg(desk, "c1", 10, 60)), want: ok(granted(desk, "c1", 10, time.Minute)), contacts: desk + "@+1m0s/c1:10", next: "+1m0s"},
			{at: 90 * time.Second, reg: r(reg(desk, "c1", 3, 60)), want: ok(granted(desk, "c1", 3, 150*time.Second)),
				contacts: desk + "@+2m30s/c1:3", next: "+2m30s"},
		}},
		{"Expire prunes several at once", []lstep{
			{reg: r(reg(desk, "c1", 1, 60)), want: ok(granted(desk, "c1", 1, time.Minute)), contacts: desk + "@+1m0s/c1:1", next: "+1m0s"},
			{reg: r(reg(soft, "c2", 1, 120)), want: ok(granted(soft, "c2", 1, 2*time.Minute)),
				contacts: soft + "@+2m0s/c2:1 " + desk + "@+1m0s/c1:1", next: "+1m0s"},
			{reg: r(reg(ata, "c3", 1, 180)), want: ok(granted(ata, "c3", 1, 3*time.Minute)),
				contacts: ata + "@+3m0s/c3:1 " + soft + "@+2m0s/c2:1 " + desk + "@+1m0s/c1:1", next: "+1m0s"},
			{at: 150 * time.Second, gone: []string{desk, soft}, contacts: ata + "@+3m0s/c3:1", next: "+3m0s"},
		}},
		{"Contacts lists the longest-lived first, ties by contact", []lstep{
			{reg: r(reg(soft, "c2", 1, 600)), want: ok(granted(soft, "c2", 1, 10*time.Minute)), contacts: soft + "@+10m0s/c2:1", next: "+10m0s"},
			{reg: r(reg(desk, "c1", 1, 600)), want: ok(granted(desk, "c1", 1, 10*time.Minute)),
				contacts: desk + "@+10m0s/c1:1 " + soft + "@+10m0s/c2:1", next: "+10m0s"},
			{at: time.Minute, reg: r(reg(ata, "c3", 1, 300)), want: ok(granted(ata, "c3", 1, 6*time.Minute)),
				contacts: desk + "@+10m0s/c1:1 " + soft + "@+10m0s/c2:1 " + ata + "@+6m0s/c3:1", next: "+6m0s"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runLine(t, tc.steps) })
	}
}

// Contacts filters by time even before anything prunes: a binding past its
// expiry is never handed out to ring, though it is still held until Expire.
func TestContactsHidesExpiredBeforePrune(t *testing.T) {
	l := New("bob")
	if res := l.Step(reg(desk, "c1", 1, 60), t0); res.Status != 200 {
		t.Fatalf("register: %+v", res)
	}
	if got := contactsSummary(l.Contacts(t0.Add(time.Minute))); got != "" {
		t.Fatalf("contacts at expiry: %s, want none", got)
	}
	if got := contactsSummary(l.Contacts(t0.Add(time.Minute - time.Nanosecond))); got != desk+"@+1m0s/c1:1" {
		t.Fatalf("contacts just before expiry: %s", got)
	}
	if len(l.Bindings) != 1 || nextSummary(l.NextExpiry()) != "+1m0s" {
		t.Fatalf("Contacts changed the line: %d bindings, next %s", len(l.Bindings), nextSummary(l.NextExpiry()))
	}
}

// fill registers MaxBindings contacts; contact i expires at +(600+i*60)s
// except that the ones listed in tied all expire at +300s.
func fill(t *testing.T, l *Line, tied ...int) {
	t.Helper()
	for i := range MaxBindings {
		exp := 600 + i*60
		if slices.Contains(tied, i) {
			exp = 300
		}
		if res := l.Step(reg(dev(i), fmt.Sprintf("c%d", i), 1, exp), t0); res.Status != 200 || len(res.Remove) != 0 {
			t.Fatalf("register %d: %+v", i, res)
		}
	}
}

func dev(i int) string { return fmt.Sprintf("sip:bob@192.0.2.%d:5060", 100+i) }

func TestBindingCap(t *testing.T) {
	newcomer := func(at time.Duration) (Register, Binding) {
		return reg(ata, "cx", 1, 3600), granted(ata, "cx", 1, at+time.Hour)
	}
	t.Run("a new contact over the cap evicts the soonest-expiring", func(t *testing.T) {
		l := New("bob")
		fill(t, l, 7) // dev(7) expires first (+5m)
		in, want := newcomer(time.Minute)
		got := l.Step(in, t0.Add(time.Minute))
		exp := Result{Status: 200, Reason: "OK", Persist: []Binding{want}, Remove: []string{dev(7)}}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("got %+v\nwant %+v", got, exp)
		}
		if len(l.Bindings) != MaxBindings {
			t.Fatalf("%d bindings, want %d", len(l.Bindings), MaxBindings)
		}
		if _, ok := l.Bindings[dev(7)]; ok {
			t.Fatalf("evicted binding still held")
		}
		if _, ok := l.Bindings[ata]; !ok {
			t.Fatalf("new binding not held")
		}
		if n := nextSummary(l.NextExpiry()); n != "+10m0s" { // dev(0) is now the soonest
			t.Fatalf("next expiry %s, want +10m0s", n)
		}
	})
	t.Run("equal expiries evict the same one every time (lowest contact)", func(t *testing.T) {
		for range 50 { // map order changes from run to run; the choice must not
			l := New("bob")
			fill(t, l, 3, 12, 17)
			in, want := newcomer(0)
			got := l.Step(in, t0)
			exp := Result{Status: 200, Reason: "OK", Persist: []Binding{want}, Remove: []string{dev(3)}}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("got %+v\nwant %+v", got, exp)
			}
		}
	})
	t.Run("refreshing a contact already bound at the cap evicts nobody", func(t *testing.T) {
		l := New("bob")
		fill(t, l)
		got := l.Step(reg(dev(4), "c4", 2, 3600), t0.Add(time.Minute))
		exp := ok(granted(dev(4), "c4", 2, time.Minute+time.Hour))
		if !reflect.DeepEqual(got, exp) || len(l.Bindings) != MaxBindings {
			t.Fatalf("got %+v (%d bindings)\nwant %+v", got, len(l.Bindings), exp)
		}
	})
	t.Run("an expired binding makes room before anyone is evicted", func(t *testing.T) {
		l := New("bob")
		fill(t, l, 9) // dev(9) expires at +5m
		in, want := newcomer(5 * time.Minute)
		got := l.Step(in, t0.Add(5*time.Minute))
		if !reflect.DeepEqual(got, ok(want)) {
			t.Fatalf("got %+v\nwant %+v", got, ok(want))
		}
		if len(l.Bindings) != MaxBindings {
			t.Fatalf("%d bindings, want %d", len(l.Bindings), MaxBindings)
		}
	})
	t.Run("a refused REGISTER at the cap evicts nobody", func(t *testing.T) {
		l := New("bob")
		fill(t, l)
		if got := l.Step(reg(ata, "cx", 1, 30), t0); !reflect.DeepEqual(got, tooBrief) || len(l.Bindings) != MaxBindings {
			t.Fatalf("got %+v (%d bindings)", got, len(l.Bindings))
		}
	})
}

func TestNextExpiry(t *testing.T) {
	l := New("bob")
	if !l.NextExpiry().IsZero() {
		t.Fatalf("empty line: next expiry %v, want zero", l.NextExpiry())
	}
	steps := []struct {
		at   time.Duration
		in   Register
		next string
	}{
		{0, reg(desk, "c1", 1, 600), "+10m0s"},
		{0, reg(soft, "c2", 1, 120), "+2m0s"},
		{time.Minute, reg(ata, "c3", 1, 3600), "+2m0s"},
		{time.Minute, reg(soft, "c2", 2, 0), "+10m0s"}, // the soonest one went
		{5 * time.Minute, reg(desk, "c1", 2, 3600), "+1h1m0s"},
		{6 * time.Minute, Register{RemoveAll: true}, "-"},
	}
	for i, st := range steps {
		if res := l.Step(st.in, t0.Add(st.at)); res.Status != 200 {
			t.Fatalf("step %d: %+v", i, res)
		}
		if got := nextSummary(l.NextExpiry()); got != st.next {
			t.Fatalf("step %d: next expiry %s, want %s", i, got, st.next)
		}
	}
}
