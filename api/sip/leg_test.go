package sipedge

import (
	"context"
	"log/slog"
	"regexp"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

type sentRequest struct {
	wire, dest, transport string
}

// answered dials through u and returns the answered dialog. Its INVITE has
// fixed tags, Call-ID, CSeq and branch, so that two dialogs are alike.
func answered(t *testing.T, e *Edge) *sipgo.DialogClientSession {
	t.Helper()
	req, err := e.newInvite(benchOriginate)
	if err != nil {
		t.Fatal(err)
	}
	req.From().Params.Add("tag", "callertag")
	callID := sip.CallIDHeader("call-1")
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 7, MethodName: sip.INVITE})
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: e.cfg.Host, Port: e.cfg.Port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.RFC3261BranchMagicCookie+".invite")
	req.PrependHeader(via)
	dtx, err := e.dua.WriteInvite(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if err := dtx.WaitAnswer(context.Background(), sipgo.AnswerOptions{}); err != nil {
		t.Fatal(err)
	}
	return dtx
}

// The ACK and BYE of an outbound leg are on the wire what sipgo's own Ack
// and Bye send, and go to the same place.
func TestDialogRequestAsSipgo(t *testing.T) {
	branch := regexp.MustCompile(`branch=[^;\r\n]+`)
	for name, u := range map[string]*uas{
		"contact":         {contact: calleeContact},
		"contact no port": {contact: &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "10.0.0.3"}}},
		"no contact":      {},
		"record-route":    {contact: calleeContact, recordRoute: []string{"<sip:10.0.0.8:5062;lr>", "<sip:10.0.0.9;lr;transport=udp>"}},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := New(Config{NodeID: "n1", Domain: "example.com", Host: "10.0.0.1", Port: 5060, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			sent := map[sip.RequestMethod][]sentRequest{}
			u.log = e.cfg.Log
			u.sent = func(req *sip.Request, wire string) {
				sent[req.Method] = append(sent[req.Method], sentRequest{branch.ReplaceAllString(wire, "branch=*"), req.Destination(), req.Transport()})
			}
			e.cli.TxRequester = u

			theirs := answered(t, e)
			if err := theirs.Ack(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := theirs.Bye(context.Background()); err != nil {
				t.Fatal(err)
			}
			ours := answered(t, e)
			if err := ours.WriteAck(context.Background(), dialogRequest(ours, sip.ACK)); err != nil {
				t.Fatal(err)
			}
			if err := ours.WriteBye(context.Background(), dialogRequest(ours, sip.BYE)); err != nil {
				t.Fatal(err)
			}

			for _, m := range []sip.RequestMethod{sip.ACK, sip.BYE} {
				if len(sent[m]) != 2 {
					t.Fatalf("%d %s sent, want 2", len(sent[m]), m)
				}
				if want, got := sent[m][0], sent[m][1]; got != want {
					t.Errorf("%s differs from sipgo's:\nsipgo: %+v\nours:  %+v", m, want, got)
				}
			}
		})
	}
}
