package rest

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/metrics"
)

// source is the client's address as the socket has it. Forwarded headers
// are not trusted: the API belongs on a private address, and behind a
// proxy the proxy is what is counted.
func source(c *fiber.Ctx) netip.Addr {
	a, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	return a.Unmap()
}

// refuse answers an invalid token from a source blocked for wait with
// 429. The guess still counts, so a source that keeps guessing stays
// blocked; it is not logged one by one, as a flood would fill the log.
func (a *api) refuse(c *fiber.Ctx, src netip.Addr, wait time.Duration) error {
	metrics.AuthRefused.WithLabelValues("rest").Inc()
	a.count(src)
	secs := int(math.Ceil(wait.Seconds()))
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return fail(c, fiber.StatusTooManyRequests, "too_many_requests",
		fmt.Sprintf("Too many invalid tokens came from this address; retry after %d s.", secs))
}

// tokenFailed logs and counts a bad token from an unblocked src.
func (a *api) tokenFailed(c *fiber.Ctx, src netip.Addr) {
	metrics.AuthFailures.WithLabelValues("rest").Inc()
	a.log.Info("rest: invalid token", "source", src, "method", c.Method(), "path", c.Path())
	a.count(src)
}

// count tells the guard of a bad token from src, and logs a block it
// causes.
func (a *api) count(src netip.Addr) {
	if o := a.d.Guard.Fail(src, ""); o.Blocked {
		metrics.AuthBlocks.WithLabelValues("rest", string(o.Reason)).Inc()
		a.log.Warn("rest: source blocked for invalid tokens", "source", o.Source, "for", o.For)
	}
}
