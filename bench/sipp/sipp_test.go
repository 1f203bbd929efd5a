package sipp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readStats takes sipp's last cumulative line and its per-call setup times.
func TestReadStats(t *testing.T) {
	dir := t.TempDir()
	stat := "StartTime;OutgoingCall(C);SuccessfulCall(C);FailedCall(C);FailedTimeoutOnRecv(C);FailedCallRejected(C);Retransmissions(C);\n" +
		"x;10;10;0;0;0;0;\n" +
		"x;100;97;3;2;1;5;\n"
	var rtt = "Date_ms;response_time_ms;rtd_no\n"
	for i := 1; i <= 100; i++ {
		rtt += "1.0;" + strconv.Itoa(i) + ";setup\n"
	}
	rtt += "1.0;999;other\n"
	if err := os.WriteFile(filepath.Join(dir, "stat.csv"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uac_1_rtt.csv"), []byte(rtt), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := readStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Attempted != 100 || st.Succeeded != 97 || st.Retransmissions != 5 {
		t.Fatalf("attempted %d succeeded %d retransmissions %d", st.Attempted, st.Succeeded, st.Retransmissions)
	}
	if len(st.Failed) != 2 || st.Failed["TimeoutOnRecv"] != 2 || st.Failed["CallRejected"] != 1 {
		t.Fatalf("failed by reason %v", st.Failed)
	}
	if st.Clean() {
		t.Fatal("a rung with failed calls is clean")
	}
	if st.SetupP50ms != 50 || st.SetupP95ms != 95 || st.SetupP99ms != 99 {
		t.Fatalf("setup p50/p95/p99 %v/%v/%v, want 50/95/99 (the other rtd ignored)", st.SetupP50ms, st.SetupP95ms, st.SetupP99ms)
	}
	if st.RefusedUndercount {
		t.Fatal("no UAC log, yet the refusals are said to be undercounted")
	}
	if _, err := readStats(t.TempDir()); err == nil {
		t.Fatal("no statistics file read as a result")
	}

	// A log at its cap: sipp wrote no more, so the refusals read are a
	// floor.
	if err := os.WriteFile(filepath.Join(dir, errorsFile), []byte(strings.Repeat("\n", errorLogCap)), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := readStats(dir); err != nil || !st.RefusedUndercount {
		t.Fatalf("a full UAC log: undercount %v, %v", st.RefusedUndercount, err)
	}
}

// readRefusals names why calls timed out: the final responses sipp ignored
// (each call once, however often the response was retransmitted), not the
// provisional or late 2xx ones it also logs.
func TestReadRefusals(t *testing.T) {
	dir := t.TempDir()
	entry := func(callID, expecting, status string) string {
		return "2026-12-07\t21:46:16.337154\t1796679976.337154: Continuing call on unexpected message for Call-Id '" + callID +
			"': while expecting '" + expecting + "' (index 1), received 'SIP/2.0 " + status + "\n" +
			"Via: SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bK-5605-1494-0\nCSeq: 1 INVITE\nContent-Length: 0\n\n'"
	}
	log := "The following events occurred:\n" +
		"2026-12-07\t21:46:14.585419\t1796679974.585419: Dead call 129-5605@127.0.0.3 (successful), received 'SIP/2.0 200 OK\nCSeq: 2 BYE\n\n'" +
		entry("1494-5605@127.0.0.3", "100", "503 Service Unavailable") +
		entry("1495-5605@127.0.0.3", "100", "503 Service Unavailable") +
		entry("1494-5605@127.0.0.3", "100", "503 Service Unavailable") + // retransmitted
		entry("1496-5605@127.0.0.3", "100", "480 Temporarily Unavailable") +
		entry("1497-5605@127.0.0.3", "200", "180 Ringing") // after the 200: not a refusal
	path := filepath.Join(dir, errorsFile)
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readRefusals(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["503"] != 2 || got["480"] != 1 {
		t.Fatalf("refused by code %v, want 503: 2 and 480: 1", got)
	}
	if got, err := readRefusals(filepath.Join(dir, "none.log")); err != nil || got != nil {
		t.Fatalf("no log: %v, %v; want nothing refused", got, err)
	}
}
