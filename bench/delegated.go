package main

import (
	"fmt"
	"time"

	"github.com/switchboard/switchboard/bench/sipp"
)

// delegated climbs the same ladder three times in one run: calls to a plain
// user, and calls to a delegator (Dan) whose two delegates (Ann, Bob) ring
// with him at once, or delegates first (Ann answers in both; Dan and Bob
// ring and are cancelled). The difference is what delegation costs.
func delegated(n *node, rates []float64, step, bound time.Duration, hold bool) ([]ladderResult, error) {
	caller, err := n.carrier(noMedia)
	if err != nil {
		return nil, err
	}
	defer caller.Close()
	for _, u := range []struct {
		id     string
		answer bool
	}{{"callee", true}, {"dan", false}, {"ann", true}, {"bob", false}} {
		p, err := n.phone(u.id, u.answer, noMedia)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		go drain(p)
	}
	var out []ladderResult
	for _, m := range []struct{ name, number, mode string }{
		{"plain", calleeNum, ""},
		{"simultaneous", dlgNum, ""},
		{"delegates_then_me", dlgNum, "delegates_then_me"},
	} {
		if err := n.ringMode(m.mode); err != nil {
			return out, err
		}
		fmt.Printf("delegated ladder: %s\n", m.name)
		res := climb(m.name, rates, step, bound, func(r float64, d time.Duration) (sipp.Step, error) {
			return goRung(n, caller, m.number, r, d, hold), nil
		})
		res.TargetRSS = n.rss()
		out = append(out, res)
	}
	return out, nil
}
