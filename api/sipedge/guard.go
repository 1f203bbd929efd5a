package sipedge

import (
	"net/netip"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/cluster/metrics"
)

// sourceBlocked says whether ip is refused for failed logins. The caller
// answers with the same 403 a wrong password gets: a phone stops on it
// (silence would make it retransmit and retry), and a guessing tool cannot
// tell that even the right password would now be refused.
func (e *Edge) sourceBlocked(ip netip.Addr) bool {
	if _, blocked := e.cfg.Guard.Blocked(ip); !blocked {
		return false
	}
	metrics.AuthRefused.WithLabelValues("sip").Inc()
	return true
}

// loginFailed logs and counts a failed digest from ip, for the name tried
// (userID: whom the directory knows by it, if anyone), and tells the guard.
func (e *Edge) loginFailed(req *sip.Request, ip netip.Addr, name, userID string) {
	metrics.AuthFailures.WithLabelValues("sip").Inc()
	e.cfg.Log.Info("sip: login failed", "source", req.Source(), "user", name, "method", req.Method)
	o := e.cfg.Guard.Fail(ip, userID)
	if o.Watched {
		e.cfg.Log.Warn("sip: user under attack: a source failing for it is now blocked at its first failure", "user", userID)
	}
	if o.Blocked {
		metrics.AuthBlocks.WithLabelValues("sip", string(o.Reason)).Inc()
		e.cfg.Log.Warn("sip: source blocked for failed logins", "source", o.Source, "for", o.For, "rule", o.Reason, "user", name)
	}
}
