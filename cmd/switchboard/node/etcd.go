package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/store"
)

// etcdAccess is how every etcd client of this node proves itself: the
// store's, the membership provider's, and its own to an embedded etcd.
func (c Config) etcdAccess() store.Access {
	return store.Access{CAFile: c.EtcdCA, CertFile: c.EtcdCert, KeyFile: c.EtcdKey, User: c.EtcdUser, Password: c.EtcdPassword}
}

// connectEtcd starts the embedded etcd when no --etcd-endpoints are given,
// and returns the endpoints this node's clients dial and the store's client.
func (n *Node) connectEtcd(ctx context.Context) ([]string, *clientv3.Client, error) {
	cfg := n.cfg
	if err := cfg.checkEtcdPairs(); err != nil {
		return nil, nil, err
	}
	access := cfg.etcdAccess()
	if endpoints := splitList(cfg.EtcdEndpoints); len(endpoints) > 0 {
		if clear := access.ClearLogin(endpoints); len(clear) > 0 {
			n.log.Warn("the etcd password crosses the network unencrypted: serve etcd with TLS and give --etcd-ca and https:// endpoints, unless this network is private",
				"endpoints", clear)
		}
		cli, err := n.dialEtcd(ctx, access, endpoints)
		if err != nil {
			return nil, nil, fmt.Errorf("etcd: %w", err)
		}
		return endpoints, cli, nil
	}

	serverTLS := cfg.EtcdServerCert != "" || cfg.EtcdServerKey != ""
	ec := etcdembed.Config{
		Name: cfg.NodeID, DataDir: cfg.DataDir, ClientAddr: cfg.EtcdListen,
		CertFile: cfg.EtcdServerCert, KeyFile: cfg.EtcdServerKey,
		User: cfg.EtcdUser, Password: cfg.EtcdPassword, InsecureListen: cfg.EtcdInsecureListen,
	}
	if serverTLS {
		// One CA signs etcd's certificates: the one clients check the server
		// by also vouches for the clients.
		ec.ClientCAFile = cfg.EtcdCA
		if cfg.EtcdCA != "" && cfg.EtcdCert == "" {
			return nil, nil, errors.New("--etcd-ca makes the embedded etcd require client certificates, this node's own clients' too: give --etcd-cert and --etcd-key")
		}
	}
	var err error
	n.etcd, err = etcdembed.Start(ctx, ec, n.log)
	switch {
	case errors.Is(err, etcdembed.ErrExposed):
		return nil, nil, fmt.Errorf("--etcd-listen %s can be reached from other hosts, and etcd holds every user's password equivalents: "+
			"serve it with TLS (--etcd-server-cert, --etcd-server-key) and make clients authenticate "+
			"(--etcd-ca for client certificates, --etcd-user and --etcd-password for a login), or accept the risk with --etcd-insecure-listen", cfg.EtcdListen)
	case errors.Is(err, etcdembed.ErrAuthNeedsUser):
		return nil, nil, fmt.Errorf("the embedded etcd under --data-dir %s has authentication on: give --etcd-user and --etcd-password", cfg.DataDir)
	case err != nil:
		return nil, nil, fmt.Errorf("embedded etcd: %w", err)
	}
	endpoints := n.etcd.Endpoints()
	if cfg.EtcdUser == "" {
		// In process: no socket, no gRPC, no TLS on the node's busiest path.
		return endpoints, n.etcd.Client(), nil
	}
	// etcd refuses the in-process client once authentication is on.
	cli, err := n.dialEtcd(ctx, access, endpoints)
	if err != nil {
		return nil, nil, fmt.Errorf("embedded etcd at %v: %w", endpoints, err)
	}
	return endpoints, cli, nil
}

// checkEtcdPairs names the flag missing from a pair that only works whole.
func (c Config) checkEtcdPairs() error {
	for _, p := range []struct {
		a, b         string
		aName, bName string
	}{
		{c.EtcdUser, c.EtcdPassword, "--etcd-user", "--etcd-password (or SWITCHBOARD_ETCD_PASSWORD)"},
		{c.EtcdCert, c.EtcdKey, "--etcd-cert", "--etcd-key"},
		{c.EtcdServerCert, c.EtcdServerKey, "--etcd-server-cert", "--etcd-server-key"},
	} {
		if (p.a == "") != (p.b == "") {
			return fmt.Errorf("%s and %s go together: give both or neither", p.aName, p.bName)
		}
	}
	return nil
}

// dialEtcd dials with access, waiting for an etcd that does not answer yet:
// an etcd that starts after the node is normal. An etcd that answers but
// refuses the access, or whose certificate the access refuses, fails at
// once, naming the flags to check: no wait would change that.
func (n *Node) dialEtcd(ctx context.Context, access store.Access, endpoints []string) (*clientv3.Client, error) {
	cfg, err := access.ClientConfig(endpoints)
	if err != nil {
		return nil, err
	}
	for {
		// clientv3 cannot tell a refusal from an absence (it waits out its
		// dial timeout either way); the check can.
		err := store.Check(ctx, cfg)
		if err == nil {
			var cli *clientv3.Client
			if cli, err = clientv3.New(cfg); err == nil {
				return cli, nil
			}
			err = fmt.Errorf("dial %v: %w", endpoints, err) // etcd went away since the check, or refused the login then
		}
		if errors.Is(err, store.ErrAccess) {
			return nil, fmt.Errorf("%w: %s", err, accessHint(err))
		}
		if !unreachable(err) {
			return nil, err
		}
		n.log.Warn("etcd not reachable yet; waiting", "endpoints", endpoints, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// accessHint names the flags behind a refused etcd access.
func accessHint(err error) string {
	switch {
	case errors.Is(err, store.ErrServerCert):
		return "check --etcd-ca: it must be the CA that signed etcd's certificate (--etcd-server-cert for the embedded etcd), " +
			"and that certificate must name the host of each etcd endpoint"
	case errors.Is(err, store.ErrClientCert):
		return "check --etcd-cert and --etcd-key: etcd wants a client certificate signed by the CA it trusts for clients"
	case errors.Is(err, store.ErrLogin):
		return "check --etcd-user and its password (--etcd-password or SWITCHBOARD_ETCD_PASSWORD)"
	}
	return "check that the etcd endpoints speak TLS, and --etcd-ca, --etcd-cert and --etcd-key"
}

func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
