package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tortureDir finds sipgo's copy of the RFC 4475 messages beside the source
// of its parser that this test binary was built from. (Asking `go list`
// failed now and then while other go commands held the module cache.)
func tortureDir(t *testing.T) string {
	file, _ := runtime.FuncForPC(reflect.ValueOf(sip.NewParser).Pointer()).FileLine(0)
	if file == "" {
		t.Fatal("no source position for sipgo's parser (built with -trimpath?)")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "torture")
}

func sendUDP(t *testing.T, conn *net.UDPConn, to *net.UDPAddr, msg []byte) string {
	t.Helper()
	if _, err := conn.WriteToUDP(msg, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// Every RFC 4475 torture message goes to the node: it answers what it can
// parse (with a 4xx/5xx or a challenge, never a crash), drops and counts what
// it cannot, and still answers an OPTIONS afterwards.
func TestTortureMessages(t *testing.T) {
	s := startNode(t, nil)
	dir := tortureDir(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", s.n.SIPAddr())
	var sent int
	for _, sub := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, f := range files {
			msg, err := os.ReadFile(f)
			if err != nil || len(msg) == 0 {
				continue
			}
			sent++
			reply := sendUDP(t, conn, to, msg)
			if reply == "" {
				continue
			}
			code := 0
			fmt.Sscanf(reply, "SIP/2.0 %d", &code)
			if code < 100 || (code >= 200 && code < 300 && !strings.Contains(string(msg[:20]), "OPTIONS")) {
				t.Errorf("%s/%s: unexpected answer %q", sub, filepath.Base(f), firstLine(reply))
			}
		}
	}
	if sent < 20 {
		t.Fatalf("only %d torture messages found in %s", sent, dir)
	}
	opts := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-after-torture\r\nMax-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: after-torture\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		s.n.SIPAddr(), conn.LocalAddr(), domain, s.n.SIPAddr())
	if reply := sendUDP(t, conn, to, []byte(opts)); !strings.HasPrefix(reply, "SIP/2.0 407") && !strings.HasPrefix(reply, "SIP/2.0 200") {
		t.Fatalf("node does not answer OPTIONS after the torture run: %q", firstLine(reply))
	}
	if v := metric(t, s, "switchboard_sip_messages_dropped_total"); v == 0 {
		t.Fatal("dropped or refused messages are not counted in /metrics")
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// metric sums every sample of a metric family in /metrics.
func metric(t *testing.T, s *sys, name string) float64 {
	t.Helper()
	res, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var total float64
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name) {
			var v float64
			f := strings.Fields(line)
			fmt.Sscanf(f[len(f)-1], "%g", &v)
			total += v
		}
	}
	return total
}
