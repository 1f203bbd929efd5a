package thread

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The thread core's tests are stories on a fake clock: inputs at offsets
// (in seconds) from t0, each with the exact effects (rendered as text) and
// refusal it must give. Expectations come from INTERFACE.md §5 "SMS and
// Team SMS".

var t0 = time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func offset(t time.Time) string { return fmt.Sprintf("+%ds", int(t.Sub(t0)/time.Second)) }

// The queue "help" (number 400) with members ann and ben and admin boss;
// the customer is 777.
var (
	members = []string{"ann", "ben"}
	admins  = []string{"boss"}
)

func newQueueThread() *Thread { return New(ID("help", "777"), "help", KindQueue, "777", "400") }

func inbound(text string) Inbound { return Inbound{Text: text, Members: members, Admins: admins} }
func reply(by, text string) Reply { return Reply{By: by, Text: text, Members: members, Admins: admins} }
func release(by string) Release   { return Release{By: by, Members: members, Admins: admins} }
func adminRelease(by string) Release {
	return Release{By: by, Admin: true, Members: members, Admins: admins}
}
func transfer(by, to string) Transfer {
	return Transfer{By: by, To: to, Members: members, Admins: admins}
}
func get() Get { return Get{Members: members, Admins: admins} }

func render(effects []Effect) string {
	parts := make([]string, len(effects))
	for i, e := range effects {
		switch e := e.(type) {
		case Persist:
			parts[i] = "persist"
		case Send:
			text := e.Text
			switch text {
			case StopReply:
				text = "<stop>"
			case StartReply:
				text = "<start>"
			case HelpReply:
				text = "<help>"
			}
			parts[i] = fmt.Sprintf("send %s>%s %s", e.From, e.To, text)
		case Notify:
			parts[i] = e.Type
			if e.Reason != "" {
				parts[i] += "(" + e.Reason + ")"
			}
			if e.Thread.ClaimedBy != "" {
				parts[i] += " holder=" + e.Thread.ClaimedBy
			}
			parts[i] += " ->" + strings.Join(e.Users, ",")
			if e.Message != nil {
				parts[i] += fmt.Sprintf(" %q", e.Message.Text)
			}
		case WakeAt:
			parts[i] = "wake none"
			if !e.At.IsZero() {
				parts[i] = "wake " + offset(e.At)
			}
		default:
			parts[i] = fmt.Sprintf("?%#v", e)
		}
	}
	return strings.Join(parts, "; ")
}

func renderErr(err error) string {
	var r *Refusal
	switch {
	case err == nil:
		return ""
	case errors.As(err, &r):
		s := fmt.Sprintf("%d %s", r.Status, r.Code)
		if r.Holder != "" {
			s += " holder=" + r.Holder
		}
		return s
	}
	return "error " + err.Error()
}

// reload persists t and reads it back, as a new activation does.
func reload(t *testing.T, th *Thread) *Thread {
	t.Helper()
	b, err := json.Marshal(th)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back Thread
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return &back
}

type tstep struct {
	at     int
	in     any
	want   string
	err    string                         // the refusal, rendered
	check  func(t *testing.T, th *Thread) // more to assert after the step
	reload bool                           // persist and reload the thread before the step
}

func TestStories(t *testing.T) {
	cases := []struct {
		name  string
		th    func() *Thread
		steps []tstep
	}{
		{name: "a reply claims the thread; another member's is refused naming the holder", steps: []tstep{
			{at: 0, in: inbound("my order is late"), want: `persist; sms.received ->ann,ben "my order is late"`},
			{at: 10, in: reply("ann", "on its way"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 on its way; wake +310s"},
			{at: 20, in: reply("ben", "me too"), err: "409 thread_claimed holder=ann"},
			{at: 30, in: reply("ann", "tomorrow"), want: "persist; send 400>777 tomorrow; wake +330s"},
			// Claimed: only the holder hears of the customer's messages.
			{at: 40, in: inbound("thanks"), want: `persist; sms.received holder=ann ->ann "thanks"; wake +340s`},
			{at: 41, in: reply("zed", "hi"), err: "403 not_a_member"},
			{at: 42, in: get(), want: "", check: func(t *testing.T, th *Thread) {
				if th.ClaimedBy != "ann" || !th.ClaimedAt.Equal(at(10)) || !th.LastActivity.Equal(at(40)) || len(th.Messages) != 4 {
					t.Errorf("thread %+v", th)
				}
			}},
		}},
		{name: "the holder or an admin releases; others 403; an unclaimed thread 409", steps: []tstep{
			{at: 0, in: release("ann"), err: "409 not_claimed"},
			{at: 1, in: reply("ann", "hello"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 hello; wake +301s"},
			{at: 2, in: release("ben"), err: "403 forbidden"},
			{at: 3, in: release("ann"), want: "persist; sms.released(manual) ->ann,ben,boss; wake none"},
			{at: 4, in: release("ann"), err: "409 not_claimed"},
			{at: 5, in: reply("ben", "Ben here"), want: "persist; sms.claimed holder=ben ->ann,ben,boss; send 400>777 Ben here; wake +305s"},
			// The queue's admin is no member, and releases anyway.
			{at: 6, in: adminRelease("boss"), want: "persist; sms.released(manual) ->ann,ben,boss; wake none", check: func(t *testing.T, th *Thread) {
				if th.ManualReleases != 2 || th.TimeoutReleases != 0 {
					t.Errorf("releases: manual %d, timeout %d", th.ManualReleases, th.TimeoutReleases)
				}
			}},
		}},
		{name: "the holder transfers to another member; the new holder replies", steps: []tstep{
			{at: 0, in: transfer("ann", "ben"), err: "409 not_claimed"},
			{at: 1, in: reply("ann", "hello"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 hello; wake +301s"},
			{at: 2, in: transfer("ben", "ben"), err: "403 forbidden"},
			{at: 3, in: Transfer{By: "boss", To: "ben", Members: members, Admins: admins}, err: "403 forbidden"},
			{at: 4, in: transfer("ann", "zed"), err: "422 not_a_member"},
			// Not a message: the silence still counts from +1s.
			{at: 5, in: transfer("ann", "ben"), want: "persist; sms.released(transfer) ->ann,ben,boss; sms.claimed holder=ben ->ann,ben,boss"},
			{at: 6, in: reply("ann", "me again"), err: "409 thread_claimed holder=ben"},
			{at: 7, in: reply("ben", "Ben here"), want: "persist; send 400>777 Ben here; wake +307s"},
		}},
		{name: "silence for the release time releases the claim; a message either way restarts the count", steps: []tstep{
			{at: 0, in: inbound("hi"), want: `persist; sms.received ->ann,ben "hi"`},
			{at: 0, in: reply("ann", "hello"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 hello; wake +300s"},
			// A timer that fired early changes nothing and is set again.
			{at: 299, in: Tick{}, want: "wake +300s"},
			{at: 299, in: reply("ben", "mine?"), err: "409 thread_claimed holder=ann"},
			{at: 300, in: Tick{}, want: "persist; sms.released(timeout) ->ann,ben,boss"},
			{at: 400, in: reply("ben", "Ben here"), want: "persist; sms.claimed holder=ben ->ann,ben,boss; send 400>777 Ben here; wake +700s"},
			// The customer's message at +600s restarts the count...
			{at: 600, in: inbound("still there?"), want: `persist; sms.received holder=ben ->ben "still there?"; wake +900s`},
			{at: 700, in: Tick{}, want: "wake +900s"},
			// ...and so does the holder's.
			{at: 800, in: reply("ben", "yes"), want: "persist; send 400>777 yes; wake +1100s"},
			{at: 1099, in: reply("ann", "mine?"), err: "409 thread_claimed holder=ben"},
			// Due and not yet woken: any input releases it first, so Ann's
			// reply claims it.
			{at: 1100, in: reply("ann", "Ann here"), want: "persist; sms.released(timeout) ->ann,ben,boss; sms.claimed holder=ann ->ann,ben,boss; send 400>777 Ann here; wake +1400s",
				check: func(t *testing.T, th *Thread) {
					if th.TimeoutReleases != 2 || th.ManualReleases != 0 {
						t.Errorf("releases: timeout %d, manual %d", th.TimeoutReleases, th.ManualReleases)
					}
				}},
		}},
		{name: "claim_release_seconds comes with the facts and is remembered", steps: []tstep{
			{at: 0, in: Reply{By: "ann", Text: "hello", Members: members, ClaimRelease: 60 * time.Second},
				want: "persist; sms.claimed holder=ann ->ann,ben; send 400>777 hello; wake +60s"},
			{at: 30, in: Tick{}, want: "wake +60s"},
			{at: 60, in: Tick{}, want: "persist; sms.released(timeout) ->ann,ben"},
		}},
		{name: "a holder taken out of the queue loses the claim", steps: []tstep{
			{at: 0, in: reply("ann", "hello"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 hello; wake +300s"},
			{at: 10, in: Inbound{Text: "hi", Members: []string{"ben"}, Admins: admins},
				want: `persist; sms.released(removed) ->ben,boss; sms.received ->ben "hi"; wake none`},
			{at: 11, in: Reply{By: "ann", Text: "still me", Members: []string{"ben"}, Admins: admins}, err: "403 not_a_member"},
		}},
		{name: "STOP opts the peer out and START back in; HELP is answered; each from the number texted", steps: []tstep{
			{at: 0, in: inbound(" Stop "), want: "persist; send 400>777 <stop>"},
			{at: 1, in: reply("ann", "sorry to see you go"), err: "409 recipient_opted_out"},
			{at: 2, in: Inbound{Text: "HELP", Number: "401", Members: members, Admins: admins}, want: "persist; send 401>777 <help>"},
			{at: 3, in: inbound("stop please"), want: `persist; sms.received ->ann,ben "stop please"`},
			{at: 4, in: reply("ann", "hm"), err: "409 recipient_opted_out"},
			{at: 5, in: inbound("start"), want: "persist; send 401>777 <start>"},
			{at: 6, in: reply("ann", "welcome back"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 401>777 welcome back; wake +306s",
				check: func(t *testing.T, th *Thread) {
					var texts []string
					for _, m := range th.Messages {
						texts = append(texts, m.Direction+":"+m.Text)
					}
					if got := strings.Join(texts, "|"); got != "in: Stop |in:HELP|in:stop please|in:start|out:welcome back" {
						t.Errorf("messages %s", got)
					}
					// Keywords are not messages to answer.
					if th.Inbound != 1 || th.Outbound != 1 {
						t.Errorf("inbound %d, outbound %d", th.Inbound, th.Outbound)
					}
				}},
		}},
		{name: "a colleague's STOP is a word, not a keyword", steps: []tstep{
			{at: 0, in: Inbound{Text: "STOP", Internal: true, Members: members, Admins: admins}, want: `persist; sms.received ->ann,ben "STOP"`},
			{at: 1, in: reply("ann", "stop what?"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 stop what?; wake +301s"},
		}},
		{name: "text is 1 to 1600 bytes", steps: []tstep{
			{at: 0, in: reply("ann", ""), err: "400 invalid_field"},
			{at: 1, in: reply("ann", strings.Repeat("é", 801)), err: "400 invalid_field"},
			{at: 2, in: inbound(""), err: "400 invalid_field"},
			{at: 3, in: reply("ann", strings.Repeat("é", 800)), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 " + strings.Repeat("é", 800) + "; wake +303s"},
		}},
		{name: "a user's thread is never claimed", th: func() *Thread { return New(ID("cat", "777"), "cat", KindUser, "777", "500") }, steps: []tstep{
			{at: 0, in: Inbound{Text: "hi Cat", Members: []string{"cat"}}, want: `persist; sms.received ->cat "hi Cat"`},
			{at: 1, in: Reply{By: "cat", Text: "hi", Members: []string{"cat"}}, want: "persist; send 500>777 hi"},
			{at: 2, in: Reply{By: "ann", Text: "hi", Members: []string{"cat"}}, err: "403 not_a_member"},
			{at: 3, in: Release{By: "cat", Members: []string{"cat"}}, err: "409 not_claimed"},
			{at: 4, in: Inbound{Text: "bye", Members: []string{"cat"}}, want: `persist; sms.received ->cat "bye"`},
		}},
		{name: "counters and the first reply time", steps: []tstep{
			{at: 0, in: inbound("one"), want: `persist; sms.received ->ann,ben "one"`},
			{at: 10, in: inbound("two"), want: `persist; sms.received ->ann,ben "two"`},
			{at: 30, in: reply("ann", "a"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 a; wake +330s"},
			{at: 40, in: reply("ann", "b"), want: "persist; send 400>777 b; wake +340s"},
			{at: 50, in: inbound("three"), want: `persist; sms.received holder=ann ->ann "three"; wake +350s`},
			{at: 60, in: reply("ann", "c"), want: "persist; send 400>777 c; wake +360s", check: func(t *testing.T, th *Thread) {
				if th.Inbound != 3 || th.Outbound != 3 || th.FirstReplies != 2 || th.FirstReplyTotal != 40*time.Second || !th.AwaitingFirstReply.IsZero() {
					t.Errorf("in %d out %d first %d total %v awaiting %v", th.Inbound, th.Outbound, th.FirstReplies, th.FirstReplyTotal, th.AwaitingFirstReply)
				}
			}},
		}},
		{name: "a reloaded thread keeps its claim and re-arms the release from the stored activity", steps: []tstep{
			{at: 0, in: inbound("hi"), want: `persist; sms.received ->ann,ben "hi"`},
			{at: 100, in: reply("ann", "hello"), want: "persist; sms.claimed holder=ann ->ann,ben,boss; send 400>777 hello; wake +400s"},
			{at: 200, in: get(), reload: true, want: "wake +400s"},
			{at: 250, in: reply("ben", "mine?"), reload: true, err: "409 thread_claimed holder=ann", want: "wake +400s"},
			{at: 400, in: Tick{}, reload: true, want: "persist; sms.released(timeout) ->ann,ben,boss"},
			// Unclaimed and reloaded: nothing to arm.
			{at: 500, in: get(), reload: true, want: "", check: func(t *testing.T, th *Thread) {
				if th.Inbound != 1 || th.Outbound != 1 || th.FirstReplies != 1 || th.FirstReplyTotal != 100*time.Second || th.TimeoutReleases != 1 {
					t.Errorf("counters lost in the reload: %+v", th)
				}
			}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th := newQueueThread()
			if tc.th != nil {
				th = tc.th()
			}
			for _, s := range tc.steps {
				if s.reload {
					th = reload(t, th)
				}
				effects, err := th.Step(s.in, at(s.at))
				if got := render(effects); got != s.want {
					t.Errorf("+%ds %#v:\n got  %s\n want %s", s.at, s.in, got, s.want)
				}
				if got := renderErr(err); got != s.err {
					t.Errorf("+%ds %#v: refusal %q, want %q", s.at, s.in, got, s.err)
				}
				if s.check != nil {
					s.check(t, th)
				}
			}
		})
	}
}

// The refusal's message names the holder by id (INTERFACE: "its message
// naming the holder").
func TestClaimedMessageNamesHolder(t *testing.T) {
	th := newQueueThread()
	th.Step(reply("ann", "hello"), t0)
	_, err := th.Step(reply("ben", "hi"), at(1))
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Message, "ann") {
		t.Fatalf("refusal %v", err)
	}
}

func TestKeepsNewestMessages(t *testing.T) {
	th := newQueueThread()
	for i := range keptMessages + 2 {
		th.Step(inbound(fmt.Sprint("m", i)), at(i))
	}
	if len(th.Messages) != keptMessages || th.Messages[0].ID != "3" || th.Messages[keptMessages-1].ID != fmt.Sprint(keptMessages+2) {
		t.Fatalf("%d messages, from %s to %s", len(th.Messages), th.Messages[0].ID, th.Messages[len(th.Messages)-1].ID)
	}
}

func TestJSON(t *testing.T) {
	th := newQueueThread()
	th.Step(Inbound{Text: "hi", At: at(-1), Members: members}, t0)
	b, err := json.Marshal(th.View())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"help:777","owner":"help","owner_kind":"queue","peer":"777","claimed_by":"","claimed_at":null,"last_activity_at":"2026-03-02T15:00:00Z",` +
		`"messages":[{"id":"1","direction":"in","text":"hi","by":"777","at":"2026-03-02T14:59:59Z"}]}`
	if string(b) != want {
		t.Errorf("unclaimed view\n got  %s\n want %s", b, want)
	}
	effects, _ := th.Step(reply("ann", "hello"), at(5))
	var claimed Notify
	for _, e := range effects {
		if n, ok := e.(Notify); ok {
			claimed = n
		}
	}
	b, err = json.Marshal(Notice{Summary: claimed.Thread, Reason: claimed.Reason, Message: claimed.Message})
	if err != nil {
		t.Fatal(err)
	}
	want = `{"id":"help:777","owner":"help","owner_kind":"queue","peer":"777","claimed_by":"ann","claimed_at":"2026-03-02T15:00:05Z","last_activity_at":"2026-03-02T15:00:05Z"}`
	if string(b) != want {
		t.Errorf("sms.claimed data\n got  %s\n want %s", b, want)
	}
}
