package main

import (
	"strings"
	"testing"
	"time"
)

func TestSIPTCPFlags(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		perSource int
		first     time.Duration
		err       string // the flag a refusal names
	}{
		{name: "defaults", perSource: 1024, first: 10 * time.Second},
		{name: "flags", args: []string{"--sip-tcp-per-source=5000", "--sip-tcp-first-message=3s"}, perSource: 5000, first: 3 * time.Second},
		{name: "environment", env: map[string]string{"SWITCHBOARD_SIP_TCP_PER_SOURCE": "2000", "SWITCHBOARD_SIP_TCP_FIRST_MESSAGE": "30s"},
			perSource: 2000, first: 30 * time.Second},
		{name: "a flag beats the environment", args: []string{"--sip-tcp-per-source=8"}, env: map[string]string{"SWITCHBOARD_SIP_TCP_PER_SOURCE": "2000"},
			perSource: 8, first: 10 * time.Second},
		{name: "not a number", args: []string{"--sip-tcp-per-source=many"}, err: "--sip-tcp-per-source"},
		{name: "zero connections", args: []string{"--sip-tcp-per-source=0"}, err: "--sip-tcp-per-source"},
		{name: "negative", env: map[string]string{"SWITCHBOARD_SIP_TCP_PER_SOURCE": "-1"}, err: "--sip-tcp-per-source"},
		{name: "no unit", args: []string{"--sip-tcp-first-message=10"}, err: "--sip-tcp-first-message"},
		{name: "zero duration", args: []string{"--sip-tcp-first-message=0s"}, err: "--sip-tcp-first-message"},
		{name: "negative duration", env: map[string]string{"SWITCHBOARD_SIP_TCP_FIRST_MESSAGE": "-5s"}, err: "--sip-tcp-first-message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err+":") {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SIPTCPPerSource != tc.perSource || c.SIPTCPFirstMessage != tc.first {
				t.Fatalf("per source %d, first message %v; want %d, %v", c.SIPTCPPerSource, c.SIPTCPFirstMessage, tc.perSource, tc.first)
			}
		})
	}
}
