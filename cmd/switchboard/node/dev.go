package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
)

// printDev tells a newcomer how to get two phones talking.
func (n *Node) printDev() {
	base := "http://" + n.httpAddr
	fmt.Fprintf(os.Stderr, `
Switchboard is up (dev mode).
  admin token: %[1]s
  data dir:    %[5]s
  SIP:         %[2]s (UDP and TCP), domain %[3]s
Create two users:
  curl -s -H 'Authorization: Bearer %[1]s' -H 'Content-Type: application/json' -d '{"id":"alice","name":"Alice","extension":"1001","sip_password":"alice-secret"}' %[4]s/v1/users
  curl -s -H 'Authorization: Bearer %[1]s' -H 'Content-Type: application/json' -d '{"id":"bob","name":"Bob","extension":"1002","sip_password":"bob-secret"}' %[4]s/v1/users
Register two phones (e.g. baresip) as 1001 / alice-secret and 1002 / bob-secret
at sip:%[6]s (or any of the SIP addresses above that the phone can reach),
then dial 1002 from the first.
  calls now: curl -s -H 'Authorization: Bearer %[1]s' %[4]s/v1/calls

`, n.adminTok, strings.Join(n.sipPublic, ", "), n.cfg.Domain, base, n.cfg.DataDir, n.sipPublic[0])
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

// phoneAddrs are the addresses a phone may register to: the advertised
// one, else the SIP address when it names one, else every address of the
// machine (the node answers on each, from the one the phone used).
func phoneAddrs(advertise netip.Addr, sipHost string, port int) []string {
	hostPort := func(a netip.Addr) string { return netip.AddrPortFrom(a.Unmap(), uint16(port)).String() }
	if advertise.IsValid() {
		return []string{hostPort(advertise)}
	}
	if a, err := netip.ParseAddr(sipHost); err == nil && !a.IsUnspecified() {
		return []string{hostPort(a)}
	}
	var out, loop []string
	addrs, _ := net.InterfaceAddrs()
	for _, ad := range addrs {
		ipn, ok := ad.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		a, _ := netip.AddrFromSlice(ipn.IP.To4())
		if a.IsLoopback() {
			loop = append(loop, hostPort(a))
		} else {
			out = append(out, hostPort(a))
		}
	}
	if out = append(out, loop...); len(out) == 0 {
		out = []string{hostPort(netip.AddrFrom4([4]byte{127, 0, 0, 1}))}
	}
	return out
}
