package rest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard/switchboard/cluster/events"
)

const (
	// sseBuffer events wait for a slow client before it starts missing some.
	sseBuffer = 256
	// KeepAlive is how often an idle event stream gets a comment line, so
	// proxies keep it open and a departed client is noticed.
	KeepAlive = 15 * time.Second
)

// mayView: the admin sees every event, a user those naming them.
func mayView(p Principal, e events.Event) bool {
	return p.Admin || slices.Contains(e.Users, p.UserID)
}

// events streams the Server-Sent Events the principal may see until the
// client goes away or the server shuts down.
func (a *api) events(c *fiber.Ctx) error {
	p := principal(c)
	sub := a.d.Events.Subscribe(sseBuffer)
	done := c.Context().Done() // closed by the server's Shutdown
	log := a.log
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderConnection, "keep-alive")
	c.Set("X-Accel-Buffering", "no")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer sub.Close()
		keep := time.NewTicker(KeepAlive)
		defer keep.Stop()
		dropped := int64(0)
		w.WriteString(": connected\n\n")
		// Writes go to a buffer; Flush reports a departed client.
		for w.Flush() == nil {
			select {
			case <-done:
				return
			case <-keep.C:
				w.WriteString(": keepalive\n\n")
			case e, ok := <-sub.C:
				if !ok {
					return
				}
				if n := sub.Dropped(); n > dropped {
					// The client should re-read what it shows.
					fmt.Fprintf(w, ": %d events dropped while this stream was behind\n\n", n-dropped)
					dropped = n
				}
				if !mayView(p, e) {
					continue
				}
				data, err := json.Marshal(e)
				if err != nil {
					log.Error("event not encodable", "type", e.Type, "err", err)
					continue
				}
				fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
			}
		}
	})
	return nil
}
