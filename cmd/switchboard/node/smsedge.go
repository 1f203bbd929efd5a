package node

import (
	"context"

	"github.com/switchboard/switchboard/api/rest"
	sipedge "github.com/switchboard/switchboard/api/sipedge"
	"github.com/switchboard/switchboard/cluster/directory"
)

// Receive takes a MESSAGE: from a trunk to an owned number, a message into
// that owner's thread; from a user's phone, as POST /v1/sms from their own
// number.
func (s smsService) Receive(ctx context.Context, m sipedge.InboundMessage) (int, string) {
	if m.From.TrunkID != "" {
		return sipAnswer(s.inbound(ctx, m.From.Number, m.To, m.Text))
	}
	u, ok := s.n.dir.UserByID(m.From.UserID)
	if !ok {
		return 403, "Forbidden"
	}
	from := u.Extension
	if len(u.Numbers) > 0 && directory.IsE164(m.To) {
		from = u.Numbers[0] // out through the trunk, the user's number shows
	}
	_, err := s.send(ctx, rest.Principal{UserID: u.ID}, from, []string{m.To}, m.Text)
	return sipAnswer(err)
}
