// Package etcdembed runs a single-member etcd inside the switchboard process,
// for `go run ./cmd/switchboard` with no --etcd-endpoints and for tests.
// Other nodes may join it as clients through its client address.
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

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"go.uber.org/zap/zapcore"

	"github.com/switchboard/switchboard/cluster/store"
)

// readyTimeout bounds how long Start waits for etcd to serve; a healthy
// single member is ready in well under a second.
const readyTimeout = 30 * time.Second

// Config says where the embedded etcd keeps its data and listens.
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
	if c.DataDir == "" || c.ClientAddr == "" {
		return nil, errors.New("etcdembed: DataDir and ClientAddr are required")
	}
	if c.Name == "" {
		c.Name = "switchboard"
	}
	log = log.With("component", "etcd")
	closing := new(atomic.Bool)
	if c.PeerAddr == "" {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		c.PeerAddr = addr
	}
	clientURL, err := hostURL(c.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("etcdembed: client address: %w", err)
	}
	peerURL, err := hostURL(c.PeerAddr)
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
		s.endpoints = append(s.endpoints, "http://"+dialable(l.Addr().String()))
	}
	log.Info("embedded etcd ready", "endpoints", s.endpoints, "dir", dir)
	return s, nil
}

// Client is a client of this server that calls it in process: no gRPC, no
// loopback socket, no protobuf round trip per request. Close it before the
// server.
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

func hostURL(addr string) (url.URL, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return url.URL{}, err
	}
	return url.URL{Scheme: "http", Host: addr}, nil
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
