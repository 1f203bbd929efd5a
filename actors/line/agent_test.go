package line

import (
	"testing"
	"time"
)

func TestAgentClaims(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	free := AgentFacts{Registered: true}
	type op struct {
		do          string // claim | serve | release | wrap
		queue, call string
		facts       AgentFacts
		at          time.Duration
		until       time.Duration // claim: the ring's end (0: none); wrap: the wrap-up's
		want        bool          // claim: granted; release: released
	}
	for _, tc := range []struct {
		name string
		ops  []op
	}{
		{"a free member is claimed once; a second queue waits", []op{
			{do: "claim", queue: "sales", call: "c1", facts: free, want: true},
			{do: "claim", queue: "sales", call: "c1", facts: free, want: true},
			{do: "claim", queue: "support", call: "c2", facts: free, want: false},
			{do: "claim", queue: "sales", call: "c3", facts: free, want: false},
		}},
		{"a declined offer frees the member", []op{
			{do: "claim", queue: "sales", call: "c1", facts: free, want: true},
			{do: "release", queue: "support", call: "c1", want: false},
			{do: "release", queue: "sales", call: "c1", want: true},
			{do: "claim", queue: "support", call: "c2", facts: free, want: true},
		}},
		{"a served call holds the member through its wrap-up, across queues", []op{
			{do: "claim", queue: "sales", call: "c1", facts: free, want: true},
			{do: "serve", queue: "sales", call: "c1"},
			{do: "release", queue: "sales", call: "c9", want: false},
			{do: "claim", queue: "support", call: "c2", facts: free, at: time.Second, want: false},
			{do: "wrap", queue: "sales", call: "c1", at: 60 * time.Second, until: 90 * time.Second},
			{do: "claim", queue: "support", call: "c2", facts: free, at: 89 * time.Second, want: false},
			{do: "claim", queue: "support", call: "c2", facts: free, at: 90 * time.Second, want: true},
		}},
		{"a ring claim whose release was lost lapses at its time; a served one does not", []op{
			{do: "claim", queue: "sales", call: "c1", facts: free, until: 30 * time.Second, want: true},
			{do: "claim", queue: "support", call: "c2", facts: free, at: 29 * time.Second, want: false},
			{do: "claim", queue: "support", call: "c2", facts: free, at: 30 * time.Second, until: 60 * time.Second, want: true},
			{do: "serve", queue: "support", call: "c2"},
			{do: "claim", queue: "sales", call: "c3", facts: free, at: 90 * time.Second, want: false},
		}},
		{"offline, or on a call unless the queue allows it", []op{
			{do: "claim", queue: "sales", call: "c1", facts: AgentFacts{}, want: false},
			{do: "claim", queue: "sales", call: "c1", facts: AgentFacts{Registered: true, OnCall: true}, want: false},
			{do: "claim", queue: "sales", call: "c1", facts: AgentFacts{Registered: true, OnCall: true, AllowOnCall: true}, want: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a Agent
			for i, o := range tc.ops {
				now := t0.Add(o.at)
				switch o.do {
				case "claim":
					var until time.Time
					if o.until > 0 {
						until = t0.Add(o.until)
					}
					if got := a.Claim(o.queue, o.call, o.facts, until, now); got != o.want {
						t.Fatalf("op %d: claim %s/%s = %v, want %v (agent %+v)", i, o.queue, o.call, got, o.want, a)
					}
				case "serve":
					a.Serve(o.queue, o.call)
				case "release":
					if got := a.Release(o.queue, o.call); got != o.want {
						t.Fatalf("op %d: release %s/%s = %v, want %v", i, o.queue, o.call, got, o.want)
					}
				case "wrap":
					a.WrapUp(o.queue, o.call, t0.Add(o.until))
				}
			}
		})
	}
}

func TestAgentPresence(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	a := Agent{}
	a.Claim("sales", "c1", AgentFacts{Registered: true}, time.Time{}, t0)
	// The claiming queue too: it must not offer the member another call
	// before the phones stop ringing for this one (the call releases it).
	if taken, _ := a.Presence(t0); !taken {
		t.Error("a claimed member is not shown taken")
	}
	a.WrapUp("sales", "c1", t0.Add(30*time.Second))
	if taken, until := a.Presence(t0); taken || !until.Equal(t0.Add(30*time.Second)) {
		t.Errorf("after the call: taken %v, wrap-up until %v", taken, until)
	}
	if _, until := a.Presence(t0.Add(31 * time.Second)); !until.IsZero() {
		t.Errorf("a wrap-up that is over still shows until %v", until)
	}
}
