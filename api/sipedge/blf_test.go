package sipedge

import (
	"encoding/xml"
	"strings"
	"testing"
)

func TestDialogInfo(t *testing.T) {
	calls := []LineCall{
		{ID: "c1", State: "ringing", Peer: "+14155550123"},
		{ID: "c2", State: "active", Peer: "1004"},
		{ID: "c3", State: "held", Peer: "1005", Locked: true},
	}
	body := string(DialogInfo("sip:1001@example.com", 7, calls))
	for _, want := range []string{
		`<?xml version="1.0" encoding="UTF-8"?>`,
		`<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" xmlns:sb="urn:switchboard:dialog" version="7" state="full" entity="sip:1001@example.com">`,
		`<dialog id="c1" call-id="c1" direction="recipient"><state>early</state><remote><identity>sip:+14155550123@example.com</identity></remote></dialog>`,
		`<dialog id="c2" call-id="c2" direction="recipient"><state>confirmed</state>`,
		`<dialog id="c3" call-id="c3" direction="recipient"><state>confirmed</state><remote><identity>sip:1005@example.com</identity></remote><local><target uri="sip:1001@example.com"><param pname="+sip.rendering" pval="no"></param></target></local><sb:locked></sb:locked></dialog>`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("dialog-info lacks %s\n%s", want, body)
		}
	}
	var doc struct {
		Dialogs []struct {
			ID    string `xml:"id,attr"`
			State string `xml:"state"`
		} `xml:"dialog"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil || len(doc.Dialogs) != 3 {
		t.Fatalf("not well-formed: %v %+v", err, doc)
	}
	if idle := string(DialogInfo("sip:1001@example.com", 1, nil)); strings.Contains(idle, "<dialog ") {
		t.Fatalf("an idle line has no dialogs: %s", idle)
	}
}
