package node

import (
	"github.com/switchboard/switchboard/api/authguard"
	"github.com/switchboard/switchboard/cluster/metrics"
)

// loginGuards builds the guards of SIP digest and REST token logins from
// one configuration, counted apart (a REST client's bad token says nothing
// of its phones), and shows their blocked sources in /metrics. Both are
// nil when the configuration turns guarding off.
func loginGuards(cfg authguard.Config) (sip, rest *authguard.Guard) {
	sip, rest = authguard.New(cfg), authguard.New(cfg)
	metrics.SetBlockedSources("sip", func() float64 { return float64(sip.Count()) })
	metrics.SetBlockedSources("rest", func() float64 { return float64(rest.Count()) })
	return sip, rest
}
