package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/etcdembed/pkitest"
	"github.com/switchboard/switchboard/cluster/store"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/freeport"
)

// Check tells an etcd that refuses the access (or that the access refuses)
// from one that is not there, with real TLS and a real login.
func TestCheck(t *testing.T) {
	pki, other := pkitest.Write(t), pkitest.Write(t)
	secure := etcdembed.Config{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CA, User: "sb", Password: "pw"}
	etcd := startEtcd(t, secure, "127.0.0.1:0")
	// The server certificate names 127.0.0.1, not this other loopback address.
	misnamed := startEtcd(t, secure, "127.0.0.2:0")
	plain := startEtcd(t, etcdembed.Config{}, "127.0.0.1:0")
	port, err := freeport.Find("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("https://127.0.0.1:%d", port) // nothing listens

	full := store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: "sb", Password: "pw"}
	with := func(change func(*store.Access)) store.Access { a := full; change(&a); return a }
	for _, tc := range []struct {
		name      string
		access    store.Access
		endpoints []string
		want      error // nil: let in
		also      error
	}{
		{name: "every credential", access: full, endpoints: etcd},
		{name: "certificate, no user", access: with(func(a *store.Access) { a.User, a.Password = "", "" }), endpoints: etcd},
		{name: "a dead endpoint, then a live one", access: full, endpoints: []string{dead, etcd[0]}},
		{name: "user where authentication is off", access: store.Access{User: "sb", Password: "pw"}, endpoints: plain},
		{name: "CA that did not sign etcd's certificate", access: with(func(a *store.Access) { a.CAFile = other.CA }), endpoints: etcd, want: store.ErrServerCert},
		{name: "CA that did not sign etcd's certificate, no user", access: with(func(a *store.Access) { a.CAFile, a.User, a.Password = other.CA, "", "" }), endpoints: etcd, want: store.ErrServerCert},
		{name: "certificate without the endpoint's address", access: full, endpoints: misnamed, want: store.ErrServerCert},
		{name: "client certificate of another CA", access: with(func(a *store.Access) { a.CertFile, a.KeyFile = other.ClientCert, other.ClientKey }), endpoints: etcd, want: store.ErrClientCert},
		{name: "no client certificate", access: with(func(a *store.Access) { a.CertFile, a.KeyFile = "", "" }), endpoints: etcd, want: store.ErrClientCert},
		{name: "wrong password", access: with(func(a *store.Access) { a.Password = "guess" }), endpoints: etcd, want: store.ErrLogin, also: rpctypes.ErrAuthFailed},
		{name: "unknown user", access: with(func(a *store.Access) { a.User = "nobody" }), endpoints: etcd, want: store.ErrLogin},
		{name: "TLS to a server that speaks something else", access: full, endpoints: []string{"https://" + notTLS(t)}, want: store.ErrAccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.access.ClientConfig(tc.endpoints)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = store.Check(ctx, cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want in, got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, store.ErrAccess) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.also != nil && !errors.Is(err, tc.also) {
				t.Fatalf("got %v, want it to wrap %v", err, tc.also)
			}
		})
	}

	// Nothing listening is not a refusal: the caller may wait for etcd. Nor
	// is a connection closed in the handshake, as a load balancer without
	// an etcd behind it does (and a plain etcd too).
	for _, ep := range []string{dead, strings.TrimPrefix(plain[0], "http://")} {
		cfg, err := store.Access{CAFile: pki.CA}.ClientConfig([]string{ep})
		if err != nil {
			t.Fatal(err)
		}
		err = store.Check(context.Background(), cfg)
		if err == nil || errors.Is(err, store.ErrAccess) || status.Code(err) != codes.Unavailable {
			t.Fatalf("%s: got %v, want Unavailable and no ErrAccess", ep, err)
		}
	}
}

// notTLS is the address of a server that greets in plain text, as SSH does.
func notTLS(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			c.Close()
		}
	}()
	return l.Addr().String()
}

func startEtcd(t *testing.T, c etcdembed.Config, addr string) []string {
	t.Helper()
	c.DataDir, c.ClientAddr = t.TempDir(), addr
	s, err := etcdembed.Start(context.Background(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Endpoints()
}
