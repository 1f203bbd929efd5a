package main

import (
	"testing"

	"github.com/switchboard/switchboard/cmd/switchboard/node"
)

// The etcd access flags reach the node's configuration, from the command
// line or from SWITCHBOARD_<FLAG> (the password's intended way in).
func TestEtcdFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(node.Config) bool
	}{
		{
			name: "defaults: loopback, plain, anonymous",
			want: func(c node.Config) bool {
				return c.EtcdListen == "127.0.0.1:2379" && c.EtcdCA == "" && c.EtcdUser == "" && c.EtcdServerCert == "" && !c.EtcdInsecureListen
			},
		},
		{
			name: "client TLS and login from flags",
			args: []string{"--etcd-ca", "ca.pem", "--etcd-cert", "n.pem", "--etcd-key", "n-key.pem", "--etcd-user", "sb", "--etcd-password", "pw"},
			want: func(c node.Config) bool {
				return c.EtcdCA == "ca.pem" && c.EtcdCert == "n.pem" && c.EtcdKey == "n-key.pem" && c.EtcdUser == "sb" && c.EtcdPassword == "pw"
			},
		},
		{
			name: "password and server TLS from the environment",
			env: map[string]string{
				"SWITCHBOARD_ETCD_PASSWORD": "from-env", "SWITCHBOARD_ETCD_SERVER_CERT": "s.pem",
				"SWITCHBOARD_ETCD_SERVER_KEY": "s-key.pem", "SWITCHBOARD_ETCD_INSECURE_LISTEN": "true",
			},
			want: func(c node.Config) bool {
				return c.EtcdPassword == "from-env" && c.EtcdServerCert == "s.pem" && c.EtcdServerKey == "s-key.pem" && c.EtcdInsecureListen
			},
		},
		{
			name: "insecure listen by flag",
			args: []string{"--etcd-insecure-listen", "--etcd-listen", "0.0.0.0:2379"},
			want: func(c node.Config) bool { return c.EtcdInsecureListen && c.EtcdListen == "0.0.0.0:2379" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseFlags(tc.args, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}
