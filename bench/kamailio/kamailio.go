// Package kamailio runs Debian's Kamailio as the reference SIP proxy of the
// setup-rate ladder: stateful (tm), record-routing, relaying every new
// INVITE to one fixed destination (the sipp UAS). The harness writes the
// config, so the comparison is reproducible.
package kamailio

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchboard/switchboard/bench/proc"
)

// Options of one Kamailio instance.
type Options struct {
	Listen  string // ip:port
	Forward string // ip:port every new dialog is relayed to
	Workers int    // UDP worker processes (2 is best on 2 cores: BENCH-NOTES.md)
	ShmMB   int    // shared memory; 1 GB avoids running out at 2,000 calls/s
}

// Available reports whether the kamailio binary is installed.
func Available() bool { _, err := exec.LookPath("kamailio"); return err == nil }

const config = `#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=%d
auto_aliases=no
listen=udp:%s
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "pv.so"
loadmodule "textops.so"
modparam("rr", "enable_full_lr", 1)

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("OPTIONS") && $rU == "ping") {
		sl_send_reply("200", "OK"); # the harness's readiness probe
		exit;
	}
	if (has_totag()) {
		if (loose_route()) {
			t_relay();
			exit;
		}
		if (is_method("ACK")) {
			if (t_check_trans()) {
				t_relay();
			}
			exit;
		}
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	t_check_trans();
	if (is_method("INVITE")) {
		record_route();
	}
	$du = "sip:%s";
	if (!t_relay()) {
		sl_reply_error();
	}
}
`

// Start writes the config into dir and runs Kamailio in the foreground of
// its process group, waiting until its port answers.
func Start(dir string, o Options) (*proc.Proc, error) {
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.ShmMB == 0 {
		o.ShmMB = 1024
	}
	cfg := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, config, o.Workers, o.Listen, o.Forward), 0o644); err != nil {
		return nil, fmt.Errorf("kamailio: write config: %w", err)
	}
	check := exec.Command("kamailio", "-c", "-f", cfg)
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kamailio: config check: %w: %s", err, out)
	}
	p, err := proc.Start("kamailio", filepath.Join(dir, "kamailio.log"),
		"-f", cfg, "-DD", "-E", "-m", strconv.Itoa(o.ShmMB), "-M", "16", "-P", filepath.Join(dir, "kamailio.pid"), "-Y", dir)
	if err != nil {
		return nil, err
	}
	if err := waitUDP(o.Listen, 10*time.Second, p); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// waitUDP sends OPTIONS until the proxy answers anything (a 404 will do).
func waitUDP(addr string, d time.Duration, p *proc.Proc) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		select {
		case <-p.Exited():
			return fmt.Errorf("kamailio: exited at start (see its log)")
		default:
		}
		msg := fmt.Sprintf("OPTIONS sip:ping@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-ping%d\r\nFrom: <sip:bench@localhost>;tag=1\r\nTo: <sip:ping@%s>\r\nCall-ID: ping-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 1\r\nContent-Length: 0\r\n\r\n",
			addr, conn.LocalAddr(), time.Now().UnixNano(), addr, time.Now().UnixNano())
		_, _ = conn.Write([]byte(msg))
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := conn.Read(buf); err == nil {
			return nil
		}
	}
	return fmt.Errorf("kamailio: %s did not answer within %s", addr, d)
}
