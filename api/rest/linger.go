package rest

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
)

// A request whose body is over BodyLimit (or whose headers are too large)
// is answered as soon as its headers are read, and fasthttp then closes
// the connection while the client may still be sending. Closing a socket
// with unread data makes the kernel send a reset, which can reach the
// client before it has read the answer: it sees "connection reset by
// peer" instead of the 413. So such a connection closes as nginx's
// lingering close does: the answer is followed by a FIN, and what the
// client still sends is read and dropped, within bounds, before the
// socket is closed.
const (
	lingerTime  = 5 * time.Second
	lingerBytes = 64 << 20
)

// Serve serves app on ln; use it rather than app.Listener, so that a
// client sending too much reads the answer.
func Serve(app *fiber.App, ln net.Listener) error {
	return app.Listener(lingerListener{ln})
}

type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

// lingerConn drains before closing once lingerOnClose marked it.
type lingerConn struct {
	net.Conn
	linger atomic.Bool
}

func (c *lingerConn) Close() error {
	if !c.linger.Swap(false) {
		return c.Conn.Close()
	}
	// Off fasthttp's worker: the drain may last lingerTime.
	go c.drain()
	return nil
}

func (c *lingerConn) drain() {
	defer c.Conn.Close()
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
}

// lingerOnClose marks the request's connection (when Serve accepted it)
// to drain when fasthttp closes it.
func lingerOnClose(c *fiber.Ctx) {
	if lc, ok := c.Context().Conn().(*lingerConn); ok {
		lc.linger.Store(true)
	}
}
