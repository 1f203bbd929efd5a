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

// dialEtcd dials with access, waiting for an etcd that does not answer yet,
// as a client without a user does by itself: one with a user logs in as it
// connects, and clientv3 gives that up after its dial timeout. A refused
// login or a bad configuration fails at once.
func (n *Node) dialEtcd(ctx context.Context, access store.Access, endpoints []string) (*clientv3.Client, error) {
	for {
		cli, err := access.Dial(endpoints)
		if err == nil || !unreachable(err) {
			return cli, err
		}
		n.log.Warn("etcd not reachable yet; waiting", "endpoints", endpoints, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
