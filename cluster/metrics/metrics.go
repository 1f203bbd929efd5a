// Package metrics holds the node's Prometheus collectors. Every package that
// counts something updates these; /metrics serves Registry.
package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// registrations counts bindings when /metrics is scraped (SetRegistrations).
var registrations atomic.Pointer[func() float64]

// SetRegistrations names how switchboard_registrations is counted: asked at
// each scrape, so it is what the store holds, not a tally that can drift.
func SetRegistrations(count func() float64) { registrations.Store(&count) }

// Registry is what /metrics exposes.
var Registry = prometheus.NewRegistry()

var (
	CallsActive = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_calls_active", Help: "Calls whose grain is active on this node.",
	})
	CallsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_calls_total", Help: "Calls ended, by outcome.",
	}, []string{"outcome"})
	CallSetupSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "switchboard_call_setup_seconds",
		Help:    "Time from the caller's INVITE to the first ringing or answer sent back.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
	})
	Registrations = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_registrations", Help: "Registered contacts in the cluster, as etcd holds them.",
	}, func() float64 {
		if f := registrations.Load(); f != nil {
			return (*f)()
		}
		return 0
	})
	SIPMessagesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_sip_messages_in_total", Help: "SIP messages received, by kind (request method or response).",
	}, []string{"kind"})
	SIPMessagesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_sip_messages_out_total", Help: "SIP messages sent, by kind.",
	}, []string{"kind"})
	SIPDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_sip_messages_dropped_total", Help: "SIP input dropped or refused, by reason.",
	}, []string{"reason"})
	SIPTransactions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_sip_transactions", Help: "SIP transactions the node holds (finished ones linger up to 64·T1), by side.",
	}, []string{"side"})
	RTPRelayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_rtp_packets_relayed_total", Help: "RTP packets forwarded by the media relay.",
	})
	RTPDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_rtp_packets_dropped_total", Help: "RTP packets not forwarded, by reason.",
	}, []string{"reason"})
	RTPLost = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_rtp_packets_lost_total", Help: "RTP packets missing in received sequence numbers.",
	})
	MediaWorkers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "switchboard_media_workers", Help: "Media workers (one per call) on this node.",
	})
	Actors = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_actors", Help: "Grains active on this node, by kind.",
	}, []string{"kind"})
	EtcdSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchboard_etcd_request_seconds",
		Help:    "Latency of etcd requests, by operation.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .5, 1},
	}, []string{"op"})
)

// Logins (kind sip: digest, rest: bearer token) and the guard that refuses
// sources failing too often.
var (
	AuthFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_auth_failures_total", Help: "Failed logins checked (wrong password or token, unknown user), by kind.",
	}, []string{"kind"})
	AuthBlocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_auth_blocks_total", Help: "Sources blocked for failed logins, by kind and rule (source: too many from it; user: it failed for a user under attack).",
	}, []string{"kind", "reason"})
	AuthRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_auth_refused_total", Help: "Requests refused because their source is blocked (SIP ones unchecked, REST ones with an invalid token), by kind.",
	}, []string{"kind"})
	blockedCounts = map[string]*atomic.Pointer[func() float64]{"sip": {}, "rest": {}}
)

// SetBlockedSources names how switchboard_auth_blocked_sources{kind} is
// counted: asked at each scrape, since blocks end with time, not an event.
func SetBlockedSources(kind string, count func() float64) { blockedCounts[kind].Store(&count) }

func blockedSources(kind string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchboard_auth_blocked_sources", Help: "Sources refused now for failed logins, by kind.",
		ConstLabels: prometheus.Labels{"kind": kind},
	}, func() float64 {
		if f := blockedCounts[kind].Load(); f != nil {
			return (*f)()
		}
		return 0
	})
}

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		CallsActive, CallsTotal, CallSetupSeconds, Registrations,
		SIPMessagesIn, SIPMessagesOut, SIPDropped, SIPTransactions,
		RTPRelayed, RTPDropped, RTPLost, MediaWorkers, Actors, EtcdSeconds,
		AuthFailures, AuthBlocks, AuthRefused, blockedSources("sip"), blockedSources("rest"),
	)
}
