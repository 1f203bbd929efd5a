package sipp

import (
	"os"
	"path/filepath"
	"strconv"
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
	if _, err := readStats(t.TempDir()); err == nil {
		t.Fatal("no statistics file read as a result")
	}
}
