package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/api/authguard"
)

// guardFlagSet is the login guard's flags as given; config reads them
// after Parse.
type guardFlagSet struct{ limit, userLimit, window, block, blockMax string }

// guardFlags adds the flags of the login guard (api/authguard) to fs,
// each also read from SWITCHBOARD_<NAME>.
func guardFlags(fs *flag.FlagSet, getenv func(string) string) *guardFlagSet {
	d := authguard.Defaults()
	f := &guardFlagSet{}
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, envOr(getenv, name, def), usage) }
	str(&f.limit, "auth-fail-limit", strconv.Itoa(d.SourceLimit), "failed logins (SIP digest or REST token) from one address within --auth-fail-window that block it (an IPv6 address counts as its /64); 0 turns the limiter off")
	str(&f.userLimit, "auth-user-fail-limit", strconv.Itoa(d.UserLimit), "failed logins for one user, from any addresses, within --auth-fail-window after which an address failing for that user is blocked at its first failure (the user is never locked out); 0: no per-user rule")
	str(&f.window, "auth-fail-window", d.Window.String(), "the window failed logins are counted in")
	str(&f.block, "auth-block", d.Block.String(), "how long a blocked address is refused (SIP 403, REST 429); a repeat doubles it")
	str(&f.blockMax, "auth-block-max", d.MaxBlock.String(), "the longest block")
	return f
}

// config is the guard's configuration, or a zero one (off) when
// --auth-fail-limit is 0.
func (f *guardFlagSet) config() (authguard.Config, error) {
	c := authguard.Defaults()
	for _, v := range []struct {
		p     *int
		name  string
		value string
	}{{&c.SourceLimit, "auth-fail-limit", f.limit}, {&c.UserLimit, "auth-user-fail-limit", f.userLimit}} {
		n, err := strconv.Atoi(v.value)
		if err != nil || n < 0 {
			return c, fmt.Errorf("--%s: %q is not a whole number of 0 or more", v.name, v.value)
		}
		*v.p = n
	}
	for _, v := range []struct {
		p     *time.Duration
		name  string
		value string
	}{{&c.Window, "auth-fail-window", f.window}, {&c.Block, "auth-block", f.block}, {&c.MaxBlock, "auth-block-max", f.blockMax}} {
		d, err := time.ParseDuration(v.value)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("--%s: %q is not a positive duration such as 10m", v.name, v.value)
		}
		*v.p = d
	}
	if c.MaxBlock < c.Block {
		return c, fmt.Errorf("--auth-block-max: %s is shorter than --auth-block %s", c.MaxBlock, c.Block)
	}
	if c.SourceLimit == 0 {
		return authguard.Config{}, nil
	}
	return c, nil
}
