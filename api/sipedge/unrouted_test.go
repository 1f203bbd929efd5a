package sipedge

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/emiago/sipgo/sip"

	"github.com/switchboard/switchboard/cluster/metrics"
	pb "github.com/switchboard/switchboard/proto"
)

// trunkDir takes every source for the trunk "carrier".
type trunkDir struct{}

func (trunkDir) HA1(string, string) (string, string, bool)          { return "", "", false }
func (trunkDir) User(string) (Identity, bool)                       { return Identity{}, false }
func (trunkDir) Resolve(string) (string, bool)                      { return "", false }
func (trunkDir) Line(string) (string, bool)                         { return "", false }
func (trunkDir) TrunkBySource(netip.Addr) (trunkID string, ok bool) { return "carrier", true }

// lookup places every grain at pid (nil: the cluster places none).
type lookup struct{ pid *actor.PID }

func (l lookup) Get(*cluster.ClusterIdentity) *actor.PID      { return l.pid }
func (lookup) RemovePid(*cluster.ClusterIdentity, *actor.PID) {}
func (lookup) Setup(*cluster.Cluster, []string, bool)         {}
func (lookup) Shutdown()                                      {}

// unroutedEdge serves an edge on loopback whose call grains are placed by
// lk, and returns it with a UDP socket to call it from.
func unroutedEdge(t *testing.T, lk func(*actor.ActorSystem) lookup, now func() time.Time) (*Edge, *net.UDPConn) {
	t.Helper()
	sys := actor.NewActorSystem()
	cl := &cluster.Cluster{ActorSystem: sys, IdentityLookup: lk(sys)}
	e := New(Config{NodeID: "n1", Domain: "example.com", Host: "127.0.0.1", Dir: trunkDir{},
		Cluster: func() *cluster.Cluster { return cl }})
	e.admit = newAdmission(now)
	addr, err := e.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { _ = e.Serve(ctx) }()
	t.Cleanup(func() { e.Close() })
	c, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return e, c
}

func sendInvite(t *testing.T, c *net.UDPConn, callID string) {
	t.Helper()
	body := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	local := c.LocalAddr().String()
	msg := "INVITE sip:+14155550102@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + callID + "\r\n" +
		"From: <sip:+14155550000@example.com>;tag=f-" + callID + "\r\n" +
		"To: <sip:+14155550102@example.com>\r\n" +
		"Call-ID: " + callID + "\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:carrier@" + local + ">\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Type: application/sdp\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// finalResponse reads responses until a final one (within 5 s).
func finalResponse(t *testing.T, c *net.UDPConn) *sip.Response {
	t.Helper()
	buf := make([]byte, 65535)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no final response: %v", err)
		}
		msg, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			t.Fatalf("parse %q: %v", buf[:n], err)
		}
		if res, ok := msg.(*sip.Response); ok && res.StatusCode >= 200 {
			return res
		}
	}
}

func checkRefused(t *testing.T, res *sip.Response) {
	t.Helper()
	if res.StatusCode != 503 {
		t.Fatalf("answered %d, want 503", res.StatusCode)
	}
	if h := res.GetHeader("Retry-After"); h == nil || strings.TrimSpace(h.Value()) == "" {
		t.Fatalf("503 without Retry-After:\n%s", res)
	}
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		t.Fatalf("503 without a To tag:\n%s", res)
	}
}

// A new call whose grain the cluster cannot place (Cluster.Get gives nil)
// is answered 503 with Retry-After at once, counted, and leaves no leg;
// it used to get a 100 Trying and nothing more, for good (issue 13's
// defect 7).
func TestInviteWithNoGrainIsRefused(t *testing.T) {
	e, c := unroutedEdge(t, func(*actor.ActorSystem) lookup { return lookup{} }, time.Now)
	before := series(t, metrics.SIPDropped)["no_grain"]
	sendInvite(t, c, "nograin1")
	checkRefused(t, finalResponse(t, c))
	if got := series(t, metrics.SIPDropped)["no_grain"] - before; got != 1 {
		t.Fatalf("no_grain counted %v times, want 1", got)
	}
	if n := e.ActiveLegs(); n != 0 {
		t.Fatalf("%d legs left", n)
	}
}

// A new call whose grain took the CallStart and then never acted is
// answered 503 by the edge once it has waited routeLimit, and the grain
// hears that the caller's leg failed.
func TestInviteNotTakenUpIsRefused(t *testing.T) {
	got := make(chan any, 8)
	var elapsed atomic.Int64 // the fake clock, since epoch
	clock := func() time.Time { return epoch.Add(time.Duration(elapsed.Load())) }
	e, c := unroutedEdge(t, func(sys *actor.ActorSystem) lookup {
		return lookup{pid: sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *pb.CallStart, *pb.LegEvent:
				got <- m
			}
		}))}
	}, clock)
	before := series(t, metrics.SIPDropped)["unrouted"]

	sendInvite(t, c, "silent1")
	var start *pb.CallStart
	select {
	case m := <-got:
		start = m.(*pb.CallStart)
	case <-time.After(5 * time.Second):
		t.Fatal("the grain never got the CallStart")
	}
	for _, tc := range []struct {
		at      time.Duration
		refused bool
	}{
		{routeLimit - time.Millisecond, false},
		{routeLimit, true},
	} {
		elapsed.Store(int64(tc.at))
		e.answerUnrouted()
		if legs := e.ActiveLegs(); (legs == 0) != tc.refused {
			t.Fatalf("after %v: %d legs up, refused %v", tc.at, legs, tc.refused)
		}
	}
	checkRefused(t, finalResponse(t, c))
	if n := series(t, metrics.SIPDropped)["unrouted"] - before; n != 1 {
		t.Fatalf("unrouted counted %v times, want 1", n)
	}
	select {
	case m := <-got:
		ev, ok := m.(*pb.LegEvent)
		if !ok || ev.Kind != pb.LegEvent_FAILED || ev.LegId != start.LegId {
			t.Fatalf("the grain heard %v, want its caller leg %s FAILED", m, start.LegId)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the grain never heard the leg failed")
	}
}
