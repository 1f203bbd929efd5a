package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Access is how this process's etcd clients reach etcd: TLS (the CA that
// signed etcd's certificate, and this node's client certificate) and an etcd
// user. The zero Access is plain, anonymous access, fit only for an etcd on
// loopback.
type Access struct {
	CAFile, CertFile, KeyFile string
	User, Password            string
}

// TLS reports whether clients speak TLS to etcd.
func (a Access) TLS() bool { return a.CAFile != "" || a.CertFile != "" || a.KeyFile != "" }

// ClientConfig is the one configuration every etcd client of the process is
// made from, so the store's, the membership provider's and any other client
// prove themselves to etcd the same way. It fails on a configuration that
// cannot work: unreadable files, half a certificate, a user without a
// password, or a plain http:// endpoint with TLS configured (clientv3 would
// silently drop the TLS). A login without TLS to another host passes: see
// ClearLogin.
func (a Access) ClientConfig(endpoints []string) (clientv3.Config, error) {
	if len(endpoints) == 0 {
		return clientv3.Config{}, errors.New("store: no etcd endpoints")
	}
	if (a.User == "") != (a.Password == "") {
		return clientv3.Config{}, errors.New("store: an etcd user needs a password and a password needs a user")
	}
	tlsCfg, err := a.tlsConfig()
	if err != nil {
		return clientv3.Config{}, err
	}
	if tlsCfg != nil {
		for _, ep := range endpoints {
			if u, err := url.Parse(ep); err == nil && u.Scheme == "http" {
				return clientv3.Config{}, fmt.Errorf("store: etcd endpoint %s is plain http but TLS is configured: write https://", ep)
			}
		}
	}
	return clientv3.Config{
		Endpoints: endpoints,
		TLS:       tlsCfg,
		Username:  a.User,
		Password:  a.Password,
		// Bounds the connection and, with a user, the authentication that
		// clientv3.New does before it returns.
		DialTimeout: 5 * time.Second,
		// Notice a dead connection (etcd host gone, NAT dropped) in seconds,
		// not at the next request's deadline; idle watchers need this too.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		PermitWithoutStream:  true,
		// grpc's default reconnect backoff grows to two minutes; after an
		// etcd restart we must be back within a member lease TTL, or our
		// keys (and our place in the cluster) expire.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 3 * time.Second,
		})},
		// The client warns on every retry while etcd is away; callers get
		// (and log) the errors that matter.
		Logger: ZapLogger(slog.Default().With("component", "etcd-client"), zapcore.ErrorLevel),
	}, nil
}

// ClearLogin lists the endpoints that the password would cross the network
// to unencrypted: without TLS and not on loopback. ClientConfig allows them,
// since an etcd on a private network or behind a tunnel may be the
// operator's informed choice (and the embedded etcd already refuses to
// listen that way unless told); whoever starts the clients should warn.
func (a Access) ClearLogin(endpoints []string) []string {
	if a.User == "" || a.TLS() {
		return nil
	}
	var out []string
	for _, ep := range endpoints {
		scheme, addr, found := strings.Cut(ep, "://")
		if !found {
			scheme, addr = "", ep
		}
		if scheme == "https" || scheme == "unix" || scheme == "unixs" || onLoopback(addr) {
			continue
		}
		out = append(out, ep)
	}
	return out
}

// onLoopback reports whether host:port can only be reached from this host.
func onLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// Dial connects to etcd at endpoints. Without a user the connection is lazy:
// Dial fails only on a bad configuration, and requests wait for etcd
// (bounded by their context). With a user, clientv3 authenticates before it
// returns, so Dial also fails when etcd cannot be reached within 5 s or
// refuses the password.
func (a Access) Dial(endpoints []string) (*clientv3.Client, error) {
	cfg, err := a.ClientConfig(endpoints)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: dial etcd %v: %w", endpoints, err)
	}
	return cli, nil
}

// Dial connects to etcd at endpoints with plain, anonymous access.
func Dial(endpoints []string) (*clientv3.Client, error) { return Access{}.Dial(endpoints) }

func (a Access) tlsConfig() (*tls.Config, error) {
	if !a.TLS() {
		return nil, nil
	}
	if (a.CertFile == "") != (a.KeyFile == "") {
		return nil, errors.New("store: an etcd client certificate needs both its certificate and its key file")
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.CAFile != "" {
		pem, err := os.ReadFile(a.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store: etcd CA: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store: etcd CA %s holds no PEM certificate", a.CAFile)
		}
	}
	if a.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(a.CertFile, a.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("store: etcd client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
