package kamailio

import (
	"net"
	"testing"
	"time"
)

// The config the harness writes passes Kamailio's own check, and the proxy
// it starts answers the readiness probe and is gone after Stop.
func TestStartAnswersAndStops(t *testing.T) {
	if !Available() {
		t.Skip("kamailio is not installed (apt-get install kamailio)")
	}
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	p, err := Start(t.TempDir(), Options{Listen: addr, Forward: "127.0.0.1:9", ShmMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	if p.RSS() == 0 {
		t.Fatal("no RSS read for the proxy")
	}
	p.Stop()
	select {
	case <-p.Exited():
	case <-time.After(time.Second):
		t.Fatalf("kamailio (pid %d) still running after Stop", pid)
	}
}
