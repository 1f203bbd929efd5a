package rtpengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Error is a reply with "result": "error" (or any other non-success result,
// such as "load limit"); Reason is rtpengine's error-reason text.
type Error struct {
	Reason string
}

func (e *Error) Error() string { return e.Reason }

// ErrClosed is returned for requests on a closed client.
var ErrClosed = errors.New("ng: client closed")

// Client speaks rtpengine's ng control protocol over UDP. Each datagram is
// "<cookie> <bencoded dict>"; the reply carries the same cookie. It is safe
// for concurrent use.
type Client struct {
	// Timeout is how long one attempt waits for its reply, Retries how many
	// times a request is resent after that. Set them before first use.
	Timeout time.Duration
	Retries int

	server netip.AddrPort
	conn   *net.UDPConn
	prefix string
	seq    atomic.Uint64

	mu      sync.Mutex
	pending map[string]chan []byte

	done    chan struct{}
	readErr error // set before done is closed
}

// Dial opens a client for the ng listener at server.
func Dial(server netip.AddrPort) (*Client, error) {
	network := "udp6"
	if server.Addr().Unmap().Is4() {
		network = "udp4"
		server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	}
	// Unconnected on purpose: a connected socket surfaces ICMP
	// port-unreachable as read errors while the daemon is still starting.
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("ng: listen: %w", err)
	}
	// Bursts of replies from many concurrent calls overflow the default
	// buffer; best effort, the kernel caps it at rmem_max.
	conn.SetReadBuffer(1 << 20)
	// rtpengine caches replies by cookie, so cookies must not repeat across
	// clients or runs: a random prefix plus a counter.
	var p [6]byte
	rand.Read(p[:])
	c := &Client{
		Timeout: time.Second,
		Retries: 2,
		server:  server,
		conn:    conn,
		prefix:  hex.EncodeToString(p[:]),
		pending: map[string]chan []byte{},
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// Close stops the client; pending requests fail with ErrClosed.
func (c *Client) Close() error {
	return c.conn.Close()
}

func (c *Client) readLoop() {
	buf := make([]byte, 65536)
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				err = ErrClosed
			}
			c.readErr = err
			close(c.done)
			return
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != c.server {
			continue
		}
		cookie, body, ok := cut(buf[:n])
		if !ok {
			continue
		}
		c.mu.Lock()
		ch := c.pending[cookie]
		c.mu.Unlock()
		if ch == nil {
			continue // late reply to a retransmitted or abandoned request
		}
		select {
		case ch <- append([]byte(nil), body...):
		default: // duplicate reply; the first one already counts
		}
	}
}

func cut(msg []byte) (cookie string, body []byte, ok bool) {
	for i, b := range msg {
		if b == ' ' {
			return string(msg[:i]), msg[i+1:], i > 0
		}
	}
	return "", nil, false
}

// Request sends req and returns the decoded reply dictionary. A non-success
// "result" becomes an *Error. Retransmits reuse the cookie so rtpengine
// answers them from its cache instead of running the command twice.
func (c *Client) Request(ctx context.Context, req map[string]any) (map[string]any, error) {
	cmd, _ := req["command"].(string)
	body, err := Encode(req)
	if err != nil {
		return nil, fmt.Errorf("ng %s: %w", cmd, err)
	}
	cookie := c.prefix + "_" + strconv.FormatUint(c.seq.Add(1), 10)
	msg := append([]byte(cookie+" "), body...)

	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.pending[cookie] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, cookie)
		c.mu.Unlock()
	}()

	for attempt := 0; attempt <= c.Retries; attempt++ {
		if _, err := c.conn.WriteToUDPAddrPort(msg, c.server); err != nil {
			select {
			case <-c.done:
				return nil, fmt.Errorf("ng %s: %w", cmd, c.readErr)
			default:
			}
			return nil, fmt.Errorf("ng %s: send: %w", cmd, err)
		}
		timer := time.NewTimer(c.Timeout)
		select {
		case reply := <-ch:
			timer.Stop()
			return parseReply(cmd, reply)
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("ng %s: %w", cmd, ctx.Err())
		case <-c.done:
			timer.Stop()
			return nil, fmt.Errorf("ng %s: %w", cmd, c.readErr)
		}
	}
	return nil, fmt.Errorf("ng %s: no reply from %s after %d attempts of %v",
		cmd, c.server, c.Retries+1, c.Timeout)
}

func parseReply(cmd string, body []byte) (map[string]any, error) {
	v, err := Decode(body)
	if err != nil {
		return nil, fmt.Errorf("ng %s: reply: %w", cmd, err)
	}
	dict, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("ng %s: reply is %T, not a dictionary", cmd, v)
	}
	switch result, _ := dict["result"].(string); result {
	case "ok", "pong":
		return dict, nil
	case "error":
		reason, _ := dict["error-reason"].(string)
		if reason == "" {
			reason = "unspecified error"
		}
		return dict, fmt.Errorf("ng %s: %w", cmd, &Error{Reason: reason})
	default:
		return dict, fmt.Errorf("ng %s: %w", cmd, &Error{Reason: fmt.Sprintf("unexpected result %q", result)})
	}
}

// Ping checks that the daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.Request(ctx, map[string]any{"command": "ping"})
	if err != nil {
		return err
	}
	if reply["result"] != "pong" {
		return fmt.Errorf("ng ping: result %q, want pong", reply["result"])
	}
	return nil
}

// Offer sends an offer and returns the SDP rewritten for the callee. flags
// holds extra ng keys ("replace", "flags", "ICE", ...); it may be nil.
func (c *Client) Offer(ctx context.Context, callID, fromTag, sdp string, flags map[string]any) (string, error) {
	return c.sdpCommand(ctx, flags, map[string]any{"command": "offer", "call-id": callID, "from-tag": fromTag, "sdp": sdp})
}

// Answer sends the callee's answer and returns the SDP rewritten for the
// caller. flags is as for Offer.
func (c *Client) Answer(ctx context.Context, callID, fromTag, toTag, sdp string, flags map[string]any) (string, error) {
	return c.sdpCommand(ctx, flags, map[string]any{"command": "answer", "call-id": callID, "from-tag": fromTag, "to-tag": toTag, "sdp": sdp})
}

// sdpCommand sends keys on top of flags and returns the reply's SDP.
func (c *Client) sdpCommand(ctx context.Context, flags, keys map[string]any) (string, error) {
	req := maps.Clone(flags)
	if req == nil {
		req = map[string]any{}
	}
	maps.Copy(req, keys)
	return sdpReply(c.Request(ctx, req))
}

func sdpReply(reply map[string]any, err error) (string, error) {
	if err != nil {
		return "", err
	}
	sdp, ok := reply["sdp"].(string)
	if !ok || sdp == "" {
		return "", errors.New("ng: reply has no sdp")
	}
	return sdp, nil
}

// Delete ends the call. An empty fromTag deletes the whole call.
func (c *Client) Delete(ctx context.Context, callID, fromTag string) error {
	req := map[string]any{"command": "delete", "call-id": callID}
	if fromTag != "" {
		req["from-tag"] = fromTag
	}
	_, err := c.Request(ctx, req)
	return err
}
