// Package storetest gives a test its own etcd: an embedded server on a
// free port with its data in the test's temporary directory, and a store
// over it, both closed when the test ends.
package storetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/switchboard/switchboard/cluster/etcdembed"
	"github.com/switchboard/switchboard/cluster/store"
)

// New starts an etcd for t and returns a store over it.
func New(t testing.TB) store.Store {
	t.Helper()
	srv, err := etcdembed.Start(context.Background(), etcdembed.Config{DataDir: t.TempDir(), ClientAddr: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cli, err := store.Dial(srv.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewEtcd(cli)
	t.Cleanup(func() { _ = st.Close() })
	return st
}
