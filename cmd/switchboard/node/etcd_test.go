package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/etcdembed/pkitest"
	"github.com/switchboard/switchboard/cluster/store"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/freeport"
)

// A node refuses an etcd setup that would not be what the operator asked
// for, naming the flags to change, before anything listens.
func TestConnectEtcdRefusals(t *testing.T) {
	pki := pkitest.Write(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{
			name: "embedded etcd on every address, plain",
			cfg:  Config{EtcdListen: "0.0.0.0:0"},
			want: "--etcd-insecure-listen",
		},
		{
			name: "embedded etcd on every address, TLS but nobody authenticated",
			cfg:  Config{EtcdListen: "0.0.0.0:0", EtcdServerCert: pki.ServerCert, EtcdServerKey: pki.ServerKey},
			want: "--etcd-insecure-listen",
		},
		{
			name: "password without user",
			cfg:  Config{EtcdListen: "127.0.0.1:0", EtcdPassword: "pw"},
			want: "--etcd-user and --etcd-password",
		},
		{
			name: "client certificate without key",
			cfg:  Config{EtcdEndpoints: "https://127.0.0.1:1", EtcdCert: pki.ClientCert},
			want: "--etcd-cert and --etcd-key",
		},
		{
			name: "server key without certificate",
			cfg:  Config{EtcdListen: "127.0.0.1:0", EtcdServerKey: pki.ServerKey},
			want: "--etcd-server-cert and --etcd-server-key",
		},
		{
			name: "client certificates required but this node has none",
			cfg:  Config{EtcdListen: "127.0.0.1:0", EtcdServerCert: pki.ServerCert, EtcdServerKey: pki.ServerKey, EtcdCA: pki.CA},
			want: "give --etcd-cert and --etcd-key",
		},
		{
			name: "plain endpoint with TLS configured",
			cfg:  Config{EtcdEndpoints: "http://10.0.0.1:2379", EtcdCA: pki.CA},
			want: "https://",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir, tc.cfg.NodeID = t.TempDir(), "n1"
			n := &Node{cfg: tc.cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			_, cli, err := n.connectEtcd(context.Background())
			if err == nil {
				cli.Close()
				n.etcd.Close()
				t.Fatal("want a refusal")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
			if n.etcd != nil {
				t.Fatal("the embedded etcd was left running")
			}
		})
	}
}

// Data whose etcd has authentication on needs the user to start again.
func TestConnectEtcdNeedsTheUserOnceAuthIsOn(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := etcdembed.Start(context.Background(), etcdembed.Config{Name: "n1", DataDir: dir, ClientAddr: "127.0.0.1:0", User: "sb", Password: "pw"}, log)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	n := &Node{cfg: Config{DataDir: dir, NodeID: "n1", EtcdListen: "127.0.0.1:0"}, log: log}
	if _, _, err := n.connectEtcd(context.Background()); err == nil || !strings.Contains(err.Error(), "give --etcd-user and --etcd-password") {
		t.Fatalf("got %v, want a refusal naming --etcd-user", err)
	}
}

// A node whose etcd (TLS, a login) is not up yet waits for it, as one
// without a login does, and then works.
func TestConnectEtcdWaitsForALateEtcd(t *testing.T) {
	pki := pkitest.Write(t)
	port, err := freeport.Find("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := Config{
		DataDir: t.TempDir(), NodeID: "n2", EtcdEndpoints: "https://" + addr,
		EtcdCA: pki.CA, EtcdCert: pki.ClientCert, EtcdKey: pki.ClientKey, EtcdUser: "sb", EtcdPassword: "pw",
	}
	waiting := make(chan struct{}, 1)
	log := slog.New(onMessage{Handler: slog.NewTextHandler(io.Discard, nil), msg: "etcd not reachable yet; waiting", seen: waiting})
	n := &Node{cfg: cfg, log: log}
	type result struct {
		cli *clientv3.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		_, cli, err := n.connectEtcd(context.Background())
		done <- result{cli, err}
	}()
	<-waiting
	s, err := etcdembed.Start(context.Background(), etcdembed.Config{
		DataDir: t.TempDir(), ClientAddr: addr, CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA, User: "sb", Password: "pw",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("after etcd came up: %v", r.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.cli.Put(ctx, "/switchboard/v1/ping", "x"); err != nil {
		t.Fatalf("put: %v", err)
	}
	r.cli.Close()
}

// A node whose etcd answers but refuses it, or whose certificate it
// refuses, fails at once (not at the deadline, which would mean it waited)
// with an error naming the flags to check; waiting would not change that.
func TestConnectEtcdFailsOnARefusal(t *testing.T) {
	pki, other := pkitest.Write(t), pkitest.Write(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	secure := etcdembed.Config{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA, User: "sb", Password: "pw"}
	var endpoints []string
	// The server certificate names 127.0.0.1, not the second address.
	for _, addr := range []string{"127.0.0.1:0", "127.0.0.2:0"} {
		c := secure
		c.DataDir, c.ClientAddr = t.TempDir(), addr
		s, err := etcdembed.Start(context.Background(), c, quiet)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		endpoints = append(endpoints, s.Endpoints()[0])
	}
	full := Config{
		EtcdEndpoints: endpoints[0],
		EtcdCA:        pki.CA, EtcdCert: pki.ClientCert, EtcdKey: pki.ClientKey, EtcdUser: "sb", EtcdPassword: "pw",
	}
	with := func(change func(*Config)) Config { c := full; change(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
		flag string
		also error
	}{
		{
			name: "etcd's certificate signed by another CA",
			cfg:  with(func(c *Config) { c.EtcdCA = other.CA }),
			want: store.ErrServerCert, flag: "--etcd-ca",
		},
		{
			name: "etcd's certificate signed by another CA, no login",
			cfg:  with(func(c *Config) { c.EtcdCA, c.EtcdUser, c.EtcdPassword = other.CA, "", "" }),
			want: store.ErrServerCert, flag: "--etcd-ca",
		},
		{
			name: "etcd's certificate without the endpoint's address",
			cfg:  with(func(c *Config) { c.EtcdEndpoints = endpoints[1] }),
			want: store.ErrServerCert, flag: "--etcd-ca",
		},
		{
			name: "client certificate signed by another CA",
			cfg:  with(func(c *Config) { c.EtcdCert, c.EtcdKey = other.ClientCert, other.ClientKey }),
			want: store.ErrClientCert, flag: "--etcd-cert",
		},
		{
			name: "no client certificate",
			cfg:  with(func(c *Config) { c.EtcdCert, c.EtcdKey = "", "" }),
			want: store.ErrClientCert, flag: "--etcd-cert",
		},
		{
			name: "wrong password",
			cfg:  with(func(c *Config) { c.EtcdPassword = "guess" }),
			want: store.ErrLogin, flag: "--etcd-user", also: rpctypes.ErrAuthFailed,
		},
		{
			name: "embedded etcd whose certificate --etcd-ca did not sign",
			cfg: Config{
				EtcdListen: "127.0.0.1:0", EtcdServerCert: pki.ServerCert, EtcdServerKey: pki.ServerKey,
				EtcdCA: other.CA, EtcdCert: other.ClientCert, EtcdKey: other.ClientKey, EtcdUser: "sb", EtcdPassword: "pw",
			},
			want: store.ErrServerCert, flag: "--etcd-server-cert",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir, tc.cfg.NodeID = t.TempDir(), "n1"
			n := &Node{cfg: tc.cfg, log: quiet}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, cli, err := n.connectEtcd(ctx)
			if n.etcd != nil {
				defer n.etcd.Close()
			}
			if err == nil {
				cli.Close()
				t.Fatal("want a refusal")
			}
			if ctx.Err() != nil || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.flag) {
				t.Fatalf("got %v (waited: %v), want %v naming %s", err, ctx.Err() != nil, tc.want, tc.flag)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("got %v, want it to wrap %v", err, tc.also)
			}
		})
	}
}

// A login that would cross the network unencrypted is allowed (the network
// may be private) but named at start.
func TestConnectEtcdWarnsOfAClearPassword(t *testing.T) {
	var logged strings.Builder
	n := &Node{
		cfg: Config{DataDir: t.TempDir(), NodeID: "n1", EtcdEndpoints: "http://127.0.0.1:1,http://192.0.2.1:2379", EtcdUser: "sb", EtcdPassword: "pw"},
		log: slog.New(slog.NewTextHandler(&logged, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // what it dials afterwards does not matter here
	if _, _, err := n.connectEtcd(ctx); err == nil {
		t.Fatal("connected to nothing")
	}
	if got := logged.String(); !strings.Contains(got, "level=WARN msg=\"the etcd password crosses the network unencrypted") ||
		!strings.Contains(got, "endpoints=[http://192.0.2.1:2379]") {
		t.Fatalf("no warning naming the remote endpoint only in:\n%s", got)
	}
}

// onMessage signals seen (without blocking) when a record with msg passes.
type onMessage struct {
	slog.Handler
	msg  string
	seen chan struct{}
}

func (h onMessage) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return h.Handler.Handle(ctx, r)
}
