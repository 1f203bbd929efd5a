// Package cluster2 runs two nodes in one test process. protoactor-go has data
// races of its own when several members share a process, so this package
// runs without -race (test.sh).
package cluster2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchboard/switchboard/cluster/etcdembed/pkitest"
	"github.com/switchboard/switchboard/cluster/store"
	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
	"github.com/switchboard/switchboard/cmd/switchboard/node"
)

const domain = "switchboard.test"

// start runs a node; with, if any, changes its configuration first.
func start(t *testing.T, id, etcd string, rtp int, with ...func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.Config{
		SIPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", MediaIP: "127.0.0.1",
		RTPPorts: fmt.Sprintf("%d-%d", rtp, rtp+199), DataDir: t.TempDir(), EtcdEndpoints: etcd,
		EtcdListen: "127.0.0.1:0", NodeID: id, ClusterAddr: "127.0.0.1:0", Domain: domain,
		AdminToken: "cluster-admin", DrainTimeout: time.Second, RTPTimeout: 30 * time.Second,
		MembershipTTL: 3 * time.Second,
		Log:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, f := range with {
		f(&cfg)
	}
	n, err := node.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return n
}

func post(t *testing.T, n *node.Node, path string, body any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer cluster-admin")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

type member struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Calls int    `json:"calls"`
}

func members(t *testing.T, n *node.Node) []member {
	t.Helper()
	var body struct {
		Items []member `json:"items"`
	}
	get(t, n, "/v1/cluster", &body)
	return body.Items
}

type call struct {
	AnsweredBy string `json:"answered_by"`
	Node       string `json:"node"`
	GrainNode  string `json:"grain_node"`
}

func calls(t *testing.T, n *node.Node) []call {
	t.Helper()
	var body struct {
		Items []call `json:"items"`
	}
	get(t, n, "/v1/calls", &body)
	return body.Items
}

// get reads path's JSON into v, as the admin.
func get(t *testing.T, n *node.Node, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+path, nil)
	req.Header.Set("Authorization", "Bearer cluster-admin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func phone(t *testing.T, n *node.Node, user, pass string, auto bool) *sipphone.Phone {
	t.Helper()
	p, err := sipphone.New(sipphone.Config{User: user, Password: pass, Domain: domain, Server: n.SIPAddr(), AutoAnswerOn: auto})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := p.Register(ctx, 300); err != nil || res.StatusCode != 200 {
		t.Fatalf("register %s at %s: %v %v", user, n.SIPAddr(), res, err)
	}
	return p
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Alice is registered on node 1, Bob on node 2; Alice calls Bob through node
// 1 and they talk (the call grain lives wherever the hash puts it, the
// callee's INVITE leaves from node 2 where Bob registered, media stays on
// node 1). Then node 2 dies and node 1 notices within 10 s.
func TestTwoNodesCallAndFailure(t *testing.T) {
	n1 := start(t, "n1", "", 32000)
	defer n1.Close()
	n2 := start(t, "n2", n1.EtcdEndpoints(), 32400)
	n2closed := false
	defer func() {
		if !n2closed {
			n2.Close()
		}
	}()
	callAcross(t, n1, n2)

	n2.Abort()
	n2closed = true
	killed := time.Now()
	eventually(t, 10*time.Second, "node 1 to see node 2 down", func() bool {
		for _, m := range members(t, n1) {
			if m.ID == "n2" && m.State == "down" {
				return true
			}
		}
		return false
	})
	t.Logf("node 1 noticed node 2's death after %v", time.Since(killed).Round(time.Millisecond))
}

// callAcross waits for both nodes to see each other; then Alice, registered
// on n1, calls Bob, registered on n2, and they talk and hang up.
func callAcross(t *testing.T, n1, n2 *node.Node) {
	t.Helper()
	eventually(t, 10*time.Second, "both members alive", func() bool {
		alive := 0
		for _, m := range members(t, n1) {
			if m.State == "alive" {
				alive++
			}
		}
		return alive == 2
	})

	if code := post(t, n1, "/v1/users", map[string]any{"id": "alice", "name": "Alice", "extension": "1001", "sip_password": "alice-secret"}); code != 201 {
		t.Fatalf("create alice: %d", code)
	}
	if code := post(t, n2, "/v1/users", map[string]any{"id": "bob", "name": "Bob", "extension": "1002", "sip_password": "bob-secret"}); code != 201 {
		t.Fatalf("create bob: %d", code)
	}
	alice := phone(t, n1, "alice", "alice-secret", false)
	bob := phone(t, n2, "bob", "bob-secret", true)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	a, err := alice.Dial(ctx, "1002", nil)
	if err != nil {
		t.Fatalf("cross-node call: %v", err)
	}
	var b *sipphone.Call
	select {
	case b = <-bob.Incoming():
	case <-time.After(5 * time.Second):
		t.Fatal("bob's phone did not ring")
	}
	<-b.Answered()
	_ = a.SendRTP(40, 2*time.Millisecond)
	_ = b.SendRTP(40, 2*time.Millisecond)
	eventually(t, 5*time.Second, "RTP both ways across nodes", func() bool { return a.Received() >= 36 && b.Received() >= 36 })
	// Both nodes list the call alike: Bob talks, the media is on n1, and
	// the grain runs on the member that counts the call as its own.
	var grainNode string
	for _, m := range members(t, n1) {
		if m.Calls == 1 {
			grainNode = m.ID
		}
	}
	for _, n := range []*node.Node{n1, n2} {
		if cs := calls(t, n); len(cs) != 1 || cs[0] != (call{AnsweredBy: "bob", Node: "n1", GrainNode: grainNode}) || grainNode == "" {
			t.Fatalf("calls listed by %s: %+v, want bob answering, media on n1, the grain on %q", n.HTTPAddr(), cs, grainNode)
		}
	}
	if err := a.Hangup(ctx); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	select {
	case <-b.Ended():
	case <-time.After(5 * time.Second):
		t.Fatal("bob got no BYE")
	}
}

// The secure way to share node 1's embedded etcd: it serves TLS, requires
// client certificates and has authentication on; node 2 joins over https
// with the CA, a client certificate and the user. The cluster works as
// without them, and a client lacking any one of them reads nothing.
func TestTwoNodesOverEtcdTLSWithAuth(t *testing.T) {
	pki := pkitest.Write(t)
	access := store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: "switchboard", Password: "etcd-secret"}
	secure := func(c *node.Config) {
		c.EtcdCA, c.EtcdCert, c.EtcdKey = access.CAFile, access.CertFile, access.KeyFile
		c.EtcdUser, c.EtcdPassword = access.User, access.Password
	}
	n1 := start(t, "n1", "", 33000, secure, func(c *node.Config) {
		c.EtcdServerCert, c.EtcdServerKey = pki.ServerCert, pki.ServerKey
	})
	defer n1.Close()
	endpoints := n1.EtcdEndpoints()
	if !strings.HasPrefix(endpoints, "https://") {
		t.Fatalf("embedded etcd endpoints %q, want https", endpoints)
	}
	n2 := start(t, "n2", endpoints, 33400, secure)
	defer n2.Close()
	callAcross(t, n1, n2)

	eps := strings.Split(endpoints, ",")
	plain := make([]string, len(eps))
	for i, ep := range eps {
		plain[i] = "http://" + strings.TrimPrefix(ep, "https://")
	}
	alice := store.Key("users", "alice")
	if v, err := readKey(access, eps, alice); err != nil || len(v) == 0 {
		t.Fatalf("with every credential: %q, %v; want alice's record", v, err)
	}
	for _, tc := range []struct {
		name      string
		access    store.Access
		endpoints []string
	}{
		{name: "no TLS", access: store.Access{User: access.User, Password: access.Password}, endpoints: plain},
		{name: "TLS without a client certificate", access: store.Access{CAFile: pki.CA, User: access.User, Password: access.Password}, endpoints: eps},
		{name: "client certificate without a login", access: store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}, endpoints: eps},
		{name: "wrong password", access: store.Access{CAFile: pki.CA, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, User: access.User, Password: "guess"}, endpoints: eps},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := readKey(tc.access, tc.endpoints, alice); err == nil {
				t.Fatalf("read %s: %q, want a refusal", alice, v)
			}
		})
	}
}

// readKey reads key as a client with access would, giving up after a
// second: a refused TLS handshake never answers, it only retries.
func readKey(access store.Access, endpoints []string, key string) ([]byte, error) {
	cfg, err := access.ClientConfig(endpoints)
	if err != nil {
		return nil, err
	}
	cfg.DialTimeout = time.Second
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}
