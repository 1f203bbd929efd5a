package sipedge

import (
	"context"
	"log/slog"

	"github.com/switchboard/switchboard/cluster/metrics"
)

// parseFailures wraps the logger of sipgo's stream transports (TCP, TLS):
// sipgo drops a message it cannot parse and only logs it (with the whole
// message, at error level). This counts those drops in /metrics and logs
// them at debug, so garbage on the wire cannot flood the log. Over UDP the
// transaction layer reads, and counts, itself.
type parseFailures struct{ next slog.Handler }

// sipgo's message for an unparseable datagram or stream message
// (sip/transport_udp.go, transport_tcp.go in v1.7.2).
const parseFailedMsg = "failed to parse"

func (h parseFailures) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h parseFailures) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == parseFailedMsg {
		metrics.SIPDropped.WithLabelValues("unparseable").Inc()
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r = slog.NewRecord(r.Time, slog.LevelDebug, "sip: dropped unparseable message", r.PC)
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h parseFailures) WithAttrs(as []slog.Attr) slog.Handler {
	return parseFailures{h.next.WithAttrs(as)}
}

func (h parseFailures) WithGroup(name string) slog.Handler {
	return parseFailures{h.next.WithGroup(name)}
}
