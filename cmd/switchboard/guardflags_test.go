package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api/authguard"
)

func TestGuardFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(*authguard.Config) // applied to Defaults; nil with err
		off  bool
		err  string // the flag a refusal names
	}{
		{name: "defaults", want: func(*authguard.Config) {}},
		{name: "flags", args: []string{"--auth-fail-limit=5", "--auth-user-fail-limit=0", "--auth-fail-window=30s", "--auth-block=1m", "--auth-block-max=1h"},
			want: func(c *authguard.Config) {
				c.SourceLimit, c.UserLimit, c.Window, c.Block, c.MaxBlock = 5, 0, 30*time.Second, time.Minute, time.Hour
			}},
		{name: "environment", env: map[string]string{"SWITCHBOARD_AUTH_BLOCK": "2m"},
			want: func(c *authguard.Config) { c.Block = 2 * time.Minute }},
		{name: "a flag beats the environment", args: []string{"--auth-block=3m"}, env: map[string]string{"SWITCHBOARD_AUTH_BLOCK": "2m"},
			want: func(c *authguard.Config) { c.Block = 3 * time.Minute }},
		{name: "0 turns it off", args: []string{"--auth-fail-limit=0"}, off: true},
		{name: "not a number", args: []string{"--auth-fail-limit=ten"}, err: "--auth-fail-limit"},
		{name: "negative", args: []string{"--auth-user-fail-limit=-1"}, err: "--auth-user-fail-limit"},
		{name: "not a duration", args: []string{"--auth-fail-window=60"}, err: "--auth-fail-window"},
		{name: "zero duration", args: []string{"--auth-block=0s"}, err: "--auth-block"},
		{name: "max below block", args: []string{"--auth-block=2h", "--auth-block-max=1h"}, err: "--auth-block-max"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := guardFlags(fs, func(k string) string { return tt.env[k] })
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := f.config()
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err+":") {
					t.Fatalf("error %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.off {
				if authguard.New(got) != nil {
					t.Fatalf("%+v does not turn the guard off", got)
				}
				return
			}
			want := authguard.Defaults()
			tt.want(&want)
			got.Now, want.Now = nil, nil
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
				t.Fatalf("config %+v, want %+v", got, want)
			}
		})
	}
}
