package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Why etcd and a client cannot talk, however long the client waits: the
// configuration on one side must change. The others wrap ErrAccess.
var (
	// ErrAccess alone: another TLS failure this client's side found (the
	// endpoint speaks something else than TLS, no protocol version or cipher
	// in common).
	ErrAccess = errors.New("store: etcd access misconfigured")
	// ErrServerCert: this client does not accept etcd's certificate (signed
	// by another CA than the client trusts, not naming the endpoint's host,
	// expired).
	ErrServerCert = fmt.Errorf("%w: this client does not accept etcd's certificate", ErrAccess)
	// ErrClientCert: etcd refused this client's certificate, or its lack of one.
	ErrClientCert = fmt.Errorf("%w: etcd refused this client's certificate", ErrAccess)
	// ErrLogin: etcd refused the user and password.
	ErrLogin = fmt.Errorf("%w: etcd refused the login", ErrAccess)
)

// checkAttempts bounds the connections Check makes to one endpoint. Under
// TLS 1.3 the client's side of the handshake is done before etcd judges the
// client's certificate, and gRPC, writing its preface meanwhile, sometimes
// reports the broken pipe of etcd's closing instead of etcd's alert (about
// one connection in six on loopback). A fresh connection is another draw.
const checkAttempts = 10

// Check asks etcd at each of cfg's endpoints, without waiting for an etcd
// that is not up, whether cfg gets in: TLS both ways and, with a user, the
// login. It returns nil once an endpoint lets it in, and an error wrapping
// ErrAccess as soon as one refuses: etcd answered, and retrying cannot
// help. Any other error (nothing listening, a timeout) may pass once etcd
// is up.
//
// A clientv3 client cannot tell these apart: its requests, and the login it
// makes as it is created, wait for a connection until their deadline and
// then report only that.
func Check(ctx context.Context, cfg clientv3.Config) error {
	var first error
	for _, ep := range cfg.Endpoints {
		err := checkEndpoint(ctx, cfg, ep)
		if err == nil || errors.Is(err, ErrAccess) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func checkEndpoint(ctx context.Context, cfg clientv3.Config, ep string) error {
	target, creds, ok := grpcTarget(ep, cfg.TLS)
	if !ok {
		return nil // not a TCP endpoint: clientv3 will say
	}
	if cfg.DialTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		err := ask(ctx, target, creds, cfg)
		if err == nil {
			return nil
		}
		if reason := refusal(err); reason != nil {
			return fmt.Errorf("%w (%s: %w)", reason, ep, err)
		}
		if attempt == checkAttempts || !closedUnderfoot(err) || ctx.Err() != nil {
			return fmt.Errorf("store: etcd %s: %w", ep, err)
		}
	}
}

// ask makes the cheapest request that proves the access, on a connection of
// its own: the login when there is a user, else the status, which etcd
// answers anyone its TLS lets in. Its error is etcd's, as clientv3 would
// return it.
func ask(ctx context.Context, target string, creds credentials.TransportCredentials, cfg clientv3.Config) error {
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.DialOptions...)...)
	if err != nil {
		return fmt.Errorf("store: check etcd: %w", err)
	}
	defer conn.Close()
	// Fail fast (gRPC's default, unlike clientv3's): a connection that fails
	// ends the call with that connection's error.
	if cfg.Username == "" {
		_, err := pb.NewMaintenanceClient(conn).Status(ctx, &pb.StatusRequest{})
		return err
	}
	_, err = pb.NewAuthClient(conn).Authenticate(ctx, &pb.AuthenticateRequest{Name: cfg.Username, Password: cfg.Password})
	err = rpctypes.Error(err)
	if errors.Is(err, rpctypes.ErrAuthNotEnabled) {
		return nil // clientv3 then goes on without a token
	}
	return err
}

// closedUnderfoot reports whether err is a connection that etcd closed while
// this client wrote: the draw checkAttempts is about.
func closedUnderfoot(err error) bool {
	msg := status.Convert(err).Message()
	return status.Code(err) == codes.Unavailable &&
		(strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset by peer"))
}

// refusal names the ErrAccess that err is, or returns nil. gRPC reports a
// failed connection as Unavailable with the cause only in its message. A
// connection closed during the handshake is no refusal: a TCP load balancer
// with no etcd behind it does that too (and so, alas, does a plain etcd
// spoken TLS to).
func refusal(err error) error {
	if errors.Is(err, rpctypes.ErrAuthFailed) { // a wrong user or a wrong password alike
		return ErrLogin
	}
	if status.Code(err) != codes.Unavailable {
		return nil
	}
	msg := status.Convert(err).Message()
	switch {
	case strings.Contains(msg, "x509: "):
		return ErrServerCert
	case strings.Contains(msg, "remote error: tls: "):
		return ErrClientCert
	case strings.Contains(msg, "authentication handshake failed: tls: "):
		return ErrAccess
	}
	return nil
}

// grpcTarget is the address to dial for a clientv3 endpoint and how to
// secure it, as clientv3 does: https:// with TLS, http:// without, and a
// bare host:port with TLS when it is configured.
func grpcTarget(ep string, cfg *tls.Config) (string, credentials.TransportCredentials, bool) {
	scheme, host, found := strings.Cut(ep, "://")
	if !found {
		scheme, host = "", ep
	}
	switch {
	case scheme == "https" || (scheme == "" && cfg != nil):
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12} // the system's CAs
		}
		return host, credentials.NewTLS(cfg), true
	case scheme == "http" || scheme == "":
		return host, insecure.NewCredentials(), true
	}
	return "", nil, false
}
