package store_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/switchboard/switchboard/cluster/etcdembed/pkitest"
	"github.com/switchboard/switchboard/cluster/store"
)

// Every etcd client is made from Access.ClientConfig: it carries the TLS and
// the user, and refuses a configuration that would not be what it says.
func TestClientConfig(t *testing.T) {
	pki := pkitest.Write(t)
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	https := []string{"https://127.0.0.1:2379"}
	full := store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: "sb", Password: "pw"}
	for _, tc := range []struct {
		name      string
		access    store.Access
		endpoints []string
		wantErr   bool
		wantTLS   bool
		wantCerts int
		wantUser  string
	}{
		{name: "plain", endpoints: []string{"http://127.0.0.1:2379"}},
		{name: "everything", access: full, endpoints: https, wantTLS: true, wantCerts: 1, wantUser: "sb"},
		{name: "CA only", access: store.Access{CAFile: pki.CA}, endpoints: https, wantTLS: true},
		{name: "scheme-less endpoint takes the TLS", access: full, endpoints: []string{"127.0.0.1:2379"}, wantTLS: true, wantCerts: 1, wantUser: "sb"},
		{name: "user over plain", access: store.Access{User: "sb", Password: "pw"}, endpoints: []string{"http://127.0.0.1:2379"}, wantUser: "sb"},
		{name: "no endpoints", access: full, wantErr: true},
		{name: "http endpoint with TLS", access: full, endpoints: []string{"https://a:2379", "http://b:2379"}, wantErr: true},
		{name: "user without password", access: store.Access{User: "sb"}, endpoints: https, wantErr: true},
		{name: "password without user", access: store.Access{Password: "pw"}, endpoints: https, wantErr: true},
		{name: "certificate without key", access: store.Access{CertFile: pki.ClientCert}, endpoints: https, wantErr: true},
		{name: "key without certificate", access: store.Access{KeyFile: pki.ClientKey}, endpoints: https, wantErr: true},
		{name: "missing CA file", access: store.Access{CAFile: pki.CA + ".gone"}, endpoints: https, wantErr: true},
		{name: "CA file without PEM", access: store.Access{CAFile: notPEM}, endpoints: https, wantErr: true},
		{name: "key of another certificate", access: store.Access{CertFile: pki.ClientCert, KeyFile: pki.ServerKey}, endpoints: https, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.access.ClientConfig(tc.endpoints)
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (cfg.TLS != nil) != tc.wantTLS {
				t.Fatalf("TLS %v, want %v", cfg.TLS != nil, tc.wantTLS)
			}
			if tc.wantTLS && (cfg.TLS.RootCAs == nil || len(cfg.TLS.Certificates) != tc.wantCerts) {
				t.Fatalf("TLS roots %v, %d client certificates; want roots and %d", cfg.TLS.RootCAs != nil, len(cfg.TLS.Certificates), tc.wantCerts)
			}
			if cfg.Username != tc.wantUser || (tc.wantUser != "" && cfg.Password != tc.access.Password) {
				t.Fatalf("user %q, want %q with its password", cfg.Username, tc.wantUser)
			}
			if cfg.DialTimeout == 0 || cfg.DialKeepAliveTime == 0 || len(cfg.DialOptions) == 0 {
				t.Fatal("the shared dial settings are missing")
			}
		})
	}
}

// A login that would cross the network unencrypted is named, endpoint by
// endpoint; TLS, loopback or no login at all is not.
func TestClearLogin(t *testing.T) {
	login := store.Access{User: "sb", Password: "pw"}
	for _, tc := range []struct {
		name      string
		access    store.Access
		endpoints []string
		want      []string
	}{
		{name: "no login", endpoints: []string{"http://10.0.0.1:2379"}},
		{name: "TLS", access: store.Access{CAFile: "ca.pem", User: "sb", Password: "pw"}, endpoints: []string{"10.0.0.1:2379"}},
		{name: "https with the system's CAs", access: login, endpoints: []string{"https://etcd.example:2379"}},
		{name: "loopback", access: login, endpoints: []string{"http://127.0.0.1:2379", "localhost:2379", "http://[::1]:2379"}},
		{name: "unix socket", access: login, endpoints: []string{"unix:///run/etcd.sock"}},
		{name: "remote", access: login, endpoints: []string{"http://127.0.0.1:2379", "http://10.0.0.1:2379", "etcd2:2379"}, want: []string{"http://10.0.0.1:2379", "etcd2:2379"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.access.ClearLogin(tc.endpoints); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
