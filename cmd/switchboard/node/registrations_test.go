package node

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/actors/line"
	"github.com/switchboard/switchboard/api/rest"
)

// REST shows a binding's expiry in whole seconds of UTC, its transport in
// lower case, and its node by id.
func TestRestRegistration(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	b := line.Binding{Contact: "sip:1001@192.0.2.10:5060;transport=tcp", Expires: time.Date(2026, 3, 1, 10, 5, 0, 999_000_000, paris),
		NodeID: "n2", NodeAddr: "10.0.0.2:7000", Source: "192.0.2.10:40000", Transport: "TCP", CallID: "x", CSeq: 3, UserAgent: "Desk/1.0"}
	want := rest.Registration{Contact: "sip:1001@192.0.2.10:5060;transport=tcp", Source: "192.0.2.10:40000", Transport: "tcp",
		UserAgent: "Desk/1.0", ExpiresAt: time.Date(2026, 3, 1, 9, 5, 0, 0, time.UTC), Node: "n2"}
	got := restRegistration(b)
	if got != want || got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("%+v, want %+v", got, want)
	}
}
