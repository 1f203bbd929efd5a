package sipedge

import (
	"strconv"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard/switchboard/cluster/metrics"
)

// Messages in and out by kind (request method or status code). Every call
// counts a dozen of them, and WithLabelValues checks and hashes its label
// each time: these keep each series once looked up. A series still appears
// in /metrics only once counted.
var (
	msgsIn  = &kinds{vec: metrics.SIPMessagesIn}
	msgsOut = &kinds{vec: metrics.SIPMessagesOut}
)

// methods are the request methods whose series are kept; others (rare, or
// garbage on the wire) are looked up each time.
var methods = [...]sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.OPTIONS, sip.REGISTER, sip.SUBSCRIBE, sip.NOTIFY}

type kinds struct {
	vec     *prometheus.CounterVec
	methods [len(methods)]atomic.Pointer[prometheus.Counter]
	codes   [600]atomic.Pointer[prometheus.Counter] // 100-699
}

// method counts a request.
func (k *kinds) method(m sip.RequestMethod) {
	for i, known := range methods {
		if m == known {
			k.series(&k.methods[i], string(m)).Inc()
			return
		}
	}
	k.vec.WithLabelValues(string(m)).Inc()
}

// code counts a response.
func (k *kinds) code(code int) {
	if code < 100 || code > 699 {
		k.vec.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	slot := &k.codes[code-100]
	if c := slot.Load(); c != nil {
		(*c).Inc()
		return
	}
	k.series(slot, strconv.Itoa(code)).Inc()
}

// series is slot's counter, looked up on first use. Two first uses at once
// both look up the same series.
func (k *kinds) series(slot *atomic.Pointer[prometheus.Counter], label string) prometheus.Counter {
	if c := slot.Load(); c != nil {
		return *c
	}
	c := k.vec.WithLabelValues(label)
	slot.Store(&c)
	return c
}
