// Package line is the line grain: one virtual actor per user, owner of the
// user's registrations (and, with delegation, the line's shared state).
// machine.go is the pure core; grain.go the adapter.
package line

import (
	"sort"
	"time"
)

// Registrar limits from INTERFACE.md.
const (
	MinExpires  = 60
	MaxExpires  = 3600
	MaxBindings = 20
)

// Binding is one registered contact.
type Binding struct {
	Contact   string
	Expires   time.Time
	NodeID    string
	NodeAddr  string
	Source    string // host:port the REGISTER came from
	Transport string
	CallID    string
	CSeq      uint32
	UserAgent string // the REGISTER's User-Agent (shown over REST only)
}

// Line holds a user's bindings keyed by contact URI.
type Line struct {
	User     string
	Bindings map[string]Binding
}

// New returns an empty line for user.
func New(user string) *Line { return &Line{User: user, Bindings: map[string]Binding{}} }

// Register is one REGISTER's contact (or Contact: * when RemoveAll).
type Register struct {
	Binding   Binding // Expires ignored; computed from ExpiresIn
	ExpiresIn int     // seconds asked for; 0 removes
	RemoveAll bool
}

// Result of a REGISTER: the SIP status and what to write.
type Result struct {
	Status  int
	Reason  string
	Persist []Binding // bindings to write with a lease to their expiry
	Remove  []string  // contacts whose stored binding is removed
}

// Step applies a REGISTER at now. Rules: RFC 3261 10.3 with INTERFACE.md's
// clamp (423 below 60 s, at most 3600 s), Call-ID/CSeq ordering, and a cap on
// bindings per user (the one expiring soonest gives way).
func (l *Line) Step(r Register, now time.Time) Result {
	l.Expire(now)
	if r.ExpiresIn < 0 {
		return Result{Status: 400, Reason: "Expires must not be negative"}
	}
	if r.RemoveAll {
		if r.ExpiresIn != 0 {
			return Result{Status: 400, Reason: "Contact: * needs Expires: 0"}
		}
		// RFC 3261 10.3 step 6: a binding from the same Call-ID goes only for a
		// higher CSeq, else nothing is removed (when the edge passes Call-ID).
		if id := r.Binding.CallID; id != "" {
			for _, ob := range l.Bindings {
				if ob.CallID == id && r.Binding.CSeq <= ob.CSeq {
					return Result{Status: 400, Reason: "CSeq out of order"}
				}
			}
		}
		res := Result{Status: 200, Reason: "OK"}
		for c := range l.Bindings {
			res.Remove = append(res.Remove, c)
		}
		sort.Strings(res.Remove)
		l.Bindings = map[string]Binding{}
		return res
	}
	if r.ExpiresIn > 0 && r.ExpiresIn < MinExpires {
		return Result{Status: 423, Reason: "Interval Too Brief"}
	}
	b := r.Binding
	if old, ok := l.Bindings[b.Contact]; ok && old.CallID == b.CallID && b.CSeq <= old.CSeq {
		return Result{Status: 400, Reason: "CSeq out of order"}
	}
	if r.ExpiresIn == 0 {
		if _, ok := l.Bindings[b.Contact]; !ok {
			return Result{Status: 200, Reason: "OK"}
		}
		delete(l.Bindings, b.Contact)
		return Result{Status: 200, Reason: "OK", Remove: []string{b.Contact}}
	}
	b.Expires = now.Add(time.Duration(min(r.ExpiresIn, MaxExpires)) * time.Second)
	res := Result{Status: 200, Reason: "OK", Persist: []Binding{b}}
	if _, ok := l.Bindings[b.Contact]; !ok && len(l.Bindings) >= MaxBindings {
		victim := ""
		for c, ob := range l.Bindings {
			v := l.Bindings[victim]
			if victim == "" || ob.Expires.Before(v.Expires) || (ob.Expires.Equal(v.Expires) && c < victim) {
				victim = c
			}
		}
		delete(l.Bindings, victim)
		res.Remove = append(res.Remove, victim)
	}
	l.Bindings[b.Contact] = b
	return res
}

// Expire drops bindings whose time has passed and returns their contacts.
func (l *Line) Expire(now time.Time) []string {
	var gone []string
	for c, b := range l.Bindings {
		if !now.Before(b.Expires) {
			delete(l.Bindings, c)
			gone = append(gone, c)
		}
	}
	return gone
}

// Contacts lists the live bindings at now, the longest-lived first (the
// device registered most recently rings first in logs; forking rings all).
func (l *Line) Contacts(now time.Time) []Binding {
	out := make([]Binding, 0, len(l.Bindings))
	for _, b := range l.Bindings {
		if now.Before(b.Expires) {
			out = append(out, b)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Expires.Equal(out[j].Expires) {
			return out[i].Expires.After(out[j].Expires)
		}
		return out[i].Contact < out[j].Contact
	})
	return out
}

// NextExpiry is when the adapter should wake to prune (zero: nothing to do).
func (l *Line) NextExpiry() time.Time {
	var t time.Time
	for _, b := range l.Bindings {
		if t.IsZero() || b.Expires.Before(t) {
			t = b.Expires
		}
	}
	return t
}
