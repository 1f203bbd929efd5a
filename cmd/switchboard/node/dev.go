package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/asynkron/protoactor-go/actor"
)

func actorPID(addr, name string) *actor.PID { return actor.NewPID(addr, name) }

// printDev tells a newcomer how to get two phones talking.
func (n *Node) printDev() {
	base := "http://" + n.httpAddr
	fmt.Fprintf(os.Stderr, `
Switchboard is up (dev mode).
  admin token: %[1]s
  SIP:         %[2]s (UDP and TCP), domain %[3]s
Create two users:
  curl -s -H 'Authorization: Bearer %[1]s' -H 'Content-Type: application/json' -d '{"id":"alice","name":"Alice","extension":"1001","sip_password":"alice-secret"}' %[4]s/v1/users
  curl -s -H 'Authorization: Bearer %[1]s' -H 'Content-Type: application/json' -d '{"id":"bob","name":"Bob","extension":"1002","sip_password":"bob-secret"}' %[4]s/v1/users
Register two phones (e.g. baresip) as 1001 / alice-secret and 1002 / bob-secret
at sip:%[2]s, then dial 1002 from the first.
  calls now: curl -s -H 'Authorization: Bearer %[1]s' %[4]s/v1/calls

`, n.adminTok, n.sipPublic, n.cfg.Domain, base)
}

// quieter drops protoactor's info-level chatter (topology, dead letters on
// shutdown) unless the node logs at debug.
type quieter struct{ slog.Handler }

func (q quieter) Enabled(ctx context.Context, l slog.Level) bool {
	if l < slog.LevelWarn {
		return q.Handler.Enabled(ctx, slog.LevelDebug) && q.Handler.Enabled(ctx, l)
	}
	return q.Handler.Enabled(ctx, l)
}

func (q quieter) WithAttrs(as []slog.Attr) slog.Handler { return quieter{q.Handler.WithAttrs(as)} }
func (q quieter) WithGroup(n string) slog.Handler       { return quieter{q.Handler.WithGroup(n)} }
