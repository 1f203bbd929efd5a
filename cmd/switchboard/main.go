// Command switchboard runs one node of the Switchboard phone system. With no
// flags it is a complete single-node system on an embedded etcd under ./data.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard/switchboard/api/sipedge/txn"
	"github.com/switchboard/switchboard/cmd/switchboard/node"
	"github.com/switchboard/switchboard/cmd/switchboard/stackfloor"
)

// gcPercent is the GC target when GOGC is not set. The live heap is small
// (tens of MB) but every cycle scans thousands of goroutine stacks (a few
// per call); at the default 100 the collector took a third of the CPU under
// setup load (bench/RESULTS.md). Heap headroom is cheap next to that.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	// A new call's goroutine and the actor workers start with a stack they
	// need not grow.
	stackfloor.Hold(stackfloor.Holders, stackfloor.HoldKiB)
	cfg, err := parseFlags(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		cfg.Log.Error("switchboard: start failed", "err", err)
		os.Exit(1)
	}
	select {
	case <-ctx.Done():
	case <-n.Evicted():
		cfg.Log.Error("switchboard: evicted from the cluster; exiting so a restart rejoins")
		n.Close()
		os.Exit(1)
	}
	cfg.Log.Info("switchboard: draining", "timeout", cfg.DrainTimeout)
	if err := n.Drain(cfg.DrainTimeout); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		cfg.Log.Warn("switchboard: drain", "err", err)
	}
	n.Close()
}

// parseFlags reads flags, each of which also reads SWITCHBOARD_<NAME>.
func parseFlags(args []string, getenv func(string) string) (node.Config, error) {
	fs := flag.NewFlagSet("switchboard", flag.ContinueOnError)
	var c node.Config
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, envOr(getenv, name, def), usage) }
	str(&c.SIPAddr, "sip-addr", "0.0.0.0:5060", "SIP over UDP and TCP on this address")
	str(&c.SIPTLSAddr, "sip-tls-addr", "", "SIP over TLS (needs --tls-cert and --tls-key)")
	str(&c.TLSCert, "tls-cert", "", "TLS certificate file")
	str(&c.TLSKey, "tls-key", "", "TLS key file")
	str(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST API, /metrics, /healthz, /readyz")
	str(&c.MediaIP, "media-ip", "", "IP written into SDP (default: the SIP address's IP, or the first non-loopback)")
	str(&c.SIPAdvertise, "sip-advertise", "", "IP written in Contact and Via instead of the address a phone reached (a NAT's public address); empty: the address each request arrived on")
	str(&c.RTPPorts, "rtp-ports", "20000-29999", "UDP port range of the media relay")
	str(&c.DataDir, "data-dir", "./data", "embedded etcd data and stored media")
	str(&c.EtcdEndpoints, "etcd-endpoints", "", "comma list of etcd client URLs; empty starts an embedded etcd")
	str(&c.EtcdListen, "etcd-listen", "127.0.0.1:2379", "client address of the embedded etcd; one other hosts can reach needs --etcd-server-cert/--etcd-server-key and --etcd-ca or --etcd-user (or --etcd-insecure-listen)")
	str(&c.EtcdCA, "etcd-ca", "", "CA file that signed etcd's certificates: clients check etcd with it, and an embedded etcd serving TLS requires client certificates signed by it")
	str(&c.EtcdCert, "etcd-cert", "", "client certificate file this node shows etcd (with --etcd-key)")
	str(&c.EtcdKey, "etcd-key", "", "key file of --etcd-cert")
	str(&c.EtcdUser, "etcd-user", "", "etcd user this node logs in as; on the node running the embedded etcd it turns etcd's authentication on at first start")
	str(&c.EtcdPassword, "etcd-password", "", "password of --etcd-user (prefer SWITCHBOARD_ETCD_PASSWORD: a flag shows in ps)")
	str(&c.EtcdServerCert, "etcd-server-cert", "", "certificate file the embedded etcd serves TLS with (with --etcd-server-key); it must name the --etcd-listen address")
	str(&c.EtcdServerKey, "etcd-server-key", "", "key file of --etcd-server-cert")
	insecure := envOr(getenv, "etcd-insecure-listen", "false") == "true"
	fs.BoolVar(&c.EtcdInsecureListen, "etcd-insecure-listen", insecure, "let the embedded etcd listen where other hosts reach it without TLS and client authentication (anyone who reaches it reads every password equivalent)")
	host, _ := os.Hostname()
	str(&c.NodeID, "node-id", host, "unique name of this node in the cluster")
	str(&c.ClusterAddr, "cluster-addr", "127.0.0.1:0", "address for actor-to-actor traffic between nodes")
	str(&c.Domain, "domain", "switchboard.local", "SIP domain and digest realm")
	str(&c.AdminToken, "admin-token", "", "bearer token with the admin role (generated and kept under --data-dir when empty)")
	str(&c.LogLevel, "log-level", "info", "debug, info, warn, error")
	str(&c.PprofAddr, "pprof-addr", "", "serve /debug/pprof on this address (empty: off); keep it on loopback")
	digestAlgs := envOr(getenv, "sip-digest", "md5")
	fs.StringVar(&digestAlgs, "sip-digest", digestAlgs, "digest algorithms SIP challenges offer, in order: md5, sha256, or sha256,md5 (RFC 8760 order)")
	drain := envOr(getenv, "drain-timeout", "30s")
	fs.StringVar(&drain, "drain-timeout", drain, "how long SIGTERM lets active calls finish")
	rtpTimeout := envOr(getenv, "rtp-timeout", "60s")
	fs.StringVar(&rtpTimeout, "rtp-timeout", rtpTimeout, "end a call after this long without RTP")
	tcpPerSource := envOr(getenv, "sip-tcp-per-source", strconv.Itoa(txn.DefaultConnsPerSource))
	fs.StringVar(&tcpPerSource, "sip-tcp-per-source", tcpPerSource, "SIP TCP and TLS connections one address (an IPv6 /64) may hold open; one more is reset. Phones behind one NAT share its address")
	tcpFirst := envOr(getenv, "sip-tcp-first-message", txn.DefaultFirstMessageTimeout.String())
	fs.StringVar(&tcpFirst, "sip-tcp-first-message", tcpFirst, "how long a SIP TCP or TLS connection may wait for its first SIP message before it is closed")
	dev := envOr(getenv, "dev", "false") == "true"
	fs.BoolVar(&c.Dev, "dev", dev, "friendlier first run: print the admin token and how to create users and register phones")
	guard := guardFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.AuthGuard, err = guard.config(); err != nil {
		return c, err
	}
	if c.DrainTimeout, err = time.ParseDuration(drain); err != nil {
		return c, fmt.Errorf("--drain-timeout: %w", err)
	}
	if c.RTPTimeout, err = time.ParseDuration(rtpTimeout); err != nil {
		return c, fmt.Errorf("--rtp-timeout: %w", err)
	}
	if c.DigestAlgorithms, err = node.ParseDigestAlgorithms(digestAlgs); err != nil {
		return c, err
	}
	if c.SIPTCPPerSource, err = strconv.Atoi(tcpPerSource); err != nil || c.SIPTCPPerSource < 1 {
		return c, fmt.Errorf("--sip-tcp-per-source: %q is not a whole number of 1 or more", tcpPerSource)
	}
	if c.SIPTCPFirstMessage, err = time.ParseDuration(tcpFirst); err != nil || c.SIPTCPFirstMessage <= 0 {
		return c, fmt.Errorf("--sip-tcp-first-message: %q is not a positive duration such as 10s", tcpFirst)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return c, fmt.Errorf("--log-level: %w", err)
	}
	c.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return c, nil
}

func envOr(getenv func(string) string, flagName, def string) string {
	if v := getenv("SWITCHBOARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))); v != "" {
		return v
	}
	return def
}
