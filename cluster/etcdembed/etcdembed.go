// Package etcdembed runs a single-member etcd inside the switchboard process,
// for `go run ./cmd/switchboard` with no --etcd-endpoints and for tests.
// Other nodes may join it as clients through its client address, which it
// serves on another host's reach only with TLS and client authentication
// (certificates, users or both) unless told otherwise.
package etcdembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap/zapcore"

	"github.com/switchboard/switchboard/cluster/store"
)

// readyTimeout bounds how long Start waits for etcd to serve; a healthy
// single member is ready in well under a second.
const readyTimeout = 30 * time.Second

// Config says where the embedded etcd keeps its data, where it listens and
// whom it lets in.
type Config struct {
	// Name of the etcd member; empty means "switchboard".
	Name string
	// DataDir is the node's data directory; etcd keeps its files in DataDir/etcd.
	DataDir string
	// ClientAddr is host:port for clients, e.g. 127.0.0.1:2379. Port 0 picks a
	// free port (see Endpoints).
	ClientAddr string
	// PeerAddr is host:port for raft peers; empty picks a free loopback port.
	PeerAddr string
	// CertFile and KeyFile make ClientAddr serve TLS only.
	CertFile, KeyFile string
	// ClientCAFile, with TLS, makes etcd refuse clients without a certificate
	// signed by this CA.
	ClientCAFile string
	// User and Password turn etcd's authentication on: at the first start
	// User is created with etcd's root role (and "root" without a password,
	// which etcd requires), and every client must then log in. On a later
	// start the users etcd already has stand; Password is not re-set.
	User, Password string
	// InsecureListen lets ClientAddr be reachable from other hosts without
	// TLS and client authentication. Without it Start refuses that, since
	// etcd holds every user's password equivalents.
	InsecureListen bool
}

// ErrExposed is Start's answer to a ClientAddr other hosts can reach when
// TLS or client authentication is missing and InsecureListen is not set.
var ErrExposed = errors.New("etcdembed: a client address reachable from other hosts needs TLS and client authentication")

// ErrAuthNeedsUser is Start's answer when etcd's data has authentication on
// but Config names no user: the node's own client would be refused.
var ErrAuthNeedsUser = errors.New("etcdembed: etcd has authentication on but no user is configured")

func (c Config) tls() bool { return c.CertFile != "" || c.KeyFile != "" }

// check refuses what cannot work or would leave etcd open to the network.
func (c Config) check() error {
	if c.DataDir == "" || c.ClientAddr == "" {
		return errors.New("etcdembed: DataDir and ClientAddr are required")
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("etcdembed: TLS needs both a certificate and a key file")
	}
	if c.ClientCAFile != "" && !c.tls() {
		return errors.New("etcdembed: client certificates (a client CA) need TLS (a certificate and key)")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("etcdembed: a user needs a password and a password needs a user")
	}
	authenticated := c.ClientCAFile != "" || c.User != ""
	if !loopback(c.ClientAddr) && !c.InsecureListen && !(c.tls() && authenticated) {
		return fmt.Errorf("%w (client address %s)", ErrExposed, c.ClientAddr)
	}
	return nil
}

// Server is a running embedded etcd.
type Server struct {
	etcd      *embed.Etcd
	endpoints []string
	log       *slog.Logger
	closing   *atomic.Bool
	closeOnce sync.Once
}

// Start starts etcd and waits until it serves clients. A second Start on the
// same DataDir resumes the data of the first.
func Start(ctx context.Context, c Config, log *slog.Logger) (*Server, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.Name == "" {
		c.Name = "switchboard"
	}
	log = log.With("component", "etcd")
	if c.User != "" {
		if err := setUpAuth(ctx, c, log); err != nil {
			return nil, err
		}
	}
	s, err := start(ctx, c, log)
	if err != nil {
		return nil, err
	}
	auth := s.etcd.Server.AuthStore().IsAuthEnabled()
	if auth && c.User == "" {
		s.Close()
		return nil, ErrAuthNeedsUser
	}
	log.Info("embedded etcd ready", "endpoints", s.endpoints, "dir", s.etcd.Config().Dir, "tls", c.tls(),
		"client_certs", c.ClientCAFile != "", "auth", auth)
	return s, nil
}

// setUpAuth turns authentication on, if etcd's data does not have it yet,
// with etcd serving only a private loopback port: a client that connected
// while it was off would never log in (clientv3 then goes on without a
// token, and etcd takes its certificate's name for the user).
func setUpAuth(ctx context.Context, c Config, log *slog.Logger) error {
	private := Config{Name: c.Name, DataDir: c.DataDir, ClientAddr: "127.0.0.1:0"}
	s, err := start(ctx, private, log)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.enableAuth(ctx, c.User, c.Password)
}

// start runs etcd on c, checked, and waits until it serves clients.
func start(ctx context.Context, c Config, log *slog.Logger) (*Server, error) {
	closing := new(atomic.Bool)
	if c.PeerAddr == "" {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		c.PeerAddr = addr
	}
	scheme := "http"
	if c.tls() {
		scheme = "https"
	}
	clientURL, err := hostURL(scheme, c.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: client address: %w", err)
	}
	// A single member has no peers: its peer port stays plain, on loopback.
	peerURL, err := hostURL("http", c.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: peer address: %w", err)
	}
	dir := filepath.Join(c.DataDir, "etcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcdembed: data dir: %w", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{advertised(clientURL)}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{advertised(peerURL)}
	cfg.InitialCluster = cfg.InitialClusterFromName(c.Name)
	// etcd warns about its single-port, simple-token setup on every start and
	// reports its listeners closing as errors on every stop: keep errors only,
	// and none once Close has begun.
	cfg.LogLevel = "error"
	etcdLog := slog.New(quietOnClose{Handler: log.Handler(), closing: closing})
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(store.ZapLogger(etcdLog, zapcore.ErrorLevel))
	// Leases and registrations churn revisions; keep an hour of history for
	// watchers that resume, and no more.
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	if c.tls() {
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile: c.CertFile, KeyFile: c.KeyFile,
			TrustedCAFile: c.ClientCAFile, ClientCertAuth: c.ClientCAFile != "",
		}
	}
	// The HTTP/JSON gateway is surface no client of ours uses; with client
	// certificates on it would also need a server certificate fit for
	// client use.
	cfg.EnableGRPCGateway = false

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: start in %s: %w", dir, err)
	}
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcdembed: failed while starting: %w", err)
	case <-timer.C:
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcdembed: not ready after %s", readyTimeout)
	case <-ctx.Done():
		closing.Store(true)
		e.Close()
		return nil, fmt.Errorf("etcdembed: start: %w", ctx.Err())
	}

	s := &Server{etcd: e, log: log, closing: closing}
	for _, l := range e.Clients {
		s.endpoints = append(s.endpoints, scheme+"://"+dialable(l.Addr().String()))
	}
	return s, nil
}

// enableAuth makes user a root-role user and turns authentication on,
// unless it is on already, through the in-process client, which etcd lets
// do anything until then. Each step tolerates having been done, so a start
// that failed halfway is finished by the next.
func (s *Server) enableAuth(ctx context.Context, user, password string) error {
	if s.etcd.Server.AuthStore().IsAuthEnabled() {
		return nil
	}
	cli := s.Client()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := cli.RoleAdd(ctx, rootRole); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
		return fmt.Errorf("etcdembed: add role root: %w", err)
	}
	if user != rootUser {
		// etcd enables authentication only with a root user; one without a
		// password can log in only by a client certificate naming it.
		if err := addUser(ctx, cli, rootUser, "", &clientv3.UserAddOptions{NoPassword: true}); err != nil {
			return err
		}
	}
	if err := addUser(ctx, cli, user, password, nil); err != nil {
		return err
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("etcdembed: enable authentication: %w", err)
	}
	s.log.Info("etcd authentication enabled", "user", user)
	return nil
}

const rootUser, rootRole = "root", "root"

// addUser creates name with the root role, setting the password of one
// left by an interrupted start.
func addUser(ctx context.Context, cli *clientv3.Client, name, password string, opts *clientv3.UserAddOptions) error {
	if opts == nil {
		opts = &clientv3.UserAddOptions{}
	}
	_, err := cli.UserAddWithOptions(ctx, name, password, opts)
	if errors.Is(err, rpctypes.ErrUserAlreadyExist) && !opts.NoPassword {
		_, err = cli.UserChangePassword(ctx, name, password)
	}
	if err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("etcdembed: add user %s: %w", name, err)
	}
	if _, err := cli.UserGrantRole(ctx, name, rootRole); err != nil {
		return fmt.Errorf("etcdembed: grant root role to %s: %w", name, err)
	}
	return nil
}

// Client is a client of this server that calls it in process: no gRPC, no
// loopback socket, no protobuf round trip per request. It carries no user,
// so once authentication is on etcd refuses it: a node then dials its own
// etcd with its user like any other client. Close it before the server.
func (s *Server) Client() *clientv3.Client { return v3client.New(s.etcd.Server) }

// Endpoints are client URLs a clientv3 client in this process can dial.
func (s *Server) Endpoints() []string { return s.endpoints }

// Close stops etcd; its data stays in DataDir/etcd. It waits (up to about
// 7 s) for clients' open watch streams, so close local clients first.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.etcd.Close()
		s.log.Info("embedded etcd stopped")
	})
	return nil
}

func hostURL(scheme, addr string) (url.URL, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return url.URL{}, err
	}
	return url.URL{Scheme: scheme, Host: addr}, nil
}

// loopback reports whether host:port can be reached from this machine only.
// A wildcard or a host name other than localhost may be reached from others.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// advertised replaces a wildcard listen host with loopback: a wildcard is
// not an address anyone can reach.
func advertised(u url.URL) url.URL {
	u.Host = dialable(u.Host)
	return u
}

func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// freeLoopbackAddr asks the kernel for a free port. The peer port only
// matters to raft peers, and a single member has none, so a rare race with
// another process taking the port first shows up as a clear start error.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("etcdembed: pick peer port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// quietOnClose drops etcd's records once the server is closing.
type quietOnClose struct {
	slog.Handler
	closing *atomic.Bool
}

func (h quietOnClose) Enabled(ctx context.Context, l slog.Level) bool {
	return !h.closing.Load() && h.Handler.Enabled(ctx, l)
}

func (h quietOnClose) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietOnClose{Handler: h.Handler.WithAttrs(attrs), closing: h.closing}
}

func (h quietOnClose) WithGroup(name string) slog.Handler {
	return quietOnClose{Handler: h.Handler.WithGroup(name), closing: h.closing}
}
