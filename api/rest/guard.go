package rest

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/api/metrics"
)

// source is the client's address as the socket has it. Forwarded headers
// are not trusted: the API belongs on a private address, and behind a
// proxy the proxy is what is counted.
func source(c *fiber.Ctx) netip.Addr {
	a, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return a.Unmap()
}

// refuseBlocked answers 429 when src is blocked for bad tokens, before its
// token is looked at: a source guessing tokens is hostile, even if it
// holds a good one.
func (a *api) refuseBlocked(c *fiber.Ctx, src netip.Addr) (bool, error) {
	wait, blocked := a.d.Guard.Blocked(src)
	if !blocked {
		return false, nil
	}
	metrics.AuthRefused.WithLabelValues("rest").Inc()
	secs := int(math.Ceil(wait.Seconds()))
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return true, fail(c, fiber.StatusTooManyRequests, "too_many_requests",
		fmt.Sprintf("Too many invalid tokens came from this address; retry after %d s.", secs))
}

// tokenFailed logs and counts a bad token from src and tells the guard.
func (a *api) tokenFailed(c *fiber.Ctx, src netip.Addr) {
	metrics.AuthFailures.WithLabelValues("rest").Inc()
	a.log.Info("rest: invalid token", "source", src, "method", c.Method(), "path", c.Path())
	if o := a.d.Guard.Fail(src, ""); o.Blocked {
		metrics.AuthBlocks.WithLabelValues("rest", string(o.Reason)).Inc()
		a.log.Warn("rest: source blocked for invalid tokens", "source", o.Source, "for", o.For)
	}
}
