package txn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Connections are closed by the kernel's clock (a read deadline), not the
// layer's: these tests wait for a closure by reading until EOF, never by
// sleeping past a deadline. That a connection outlived a deadline is shown
// by one accepted after it being closed first.

// closeWait bounds the wait for a closure that must come.
const closeWait = 5 * time.Second

// record is one log record a test saw.
type record struct {
	level slog.Level
	msg   string
	attrs map[string]any
}

// logSink is a slog handler that keeps every record.
type logSink struct {
	mu    sync.Mutex
	recs  []record
	added chan struct{} // a record came; made by wait
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, msg: r.Message, attrs: map[string]any{}}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.Any(); return true })
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	added := s.added
	s.mu.Unlock()
	if added != nil {
		select {
		case added <- struct{}{}:
		default:
		}
	}
	return nil
}

// wait returns the records of msg once there is one; one must come within
// closeWait.
func (s *logSink) wait(t *testing.T, msg string) []record {
	t.Helper()
	s.mu.Lock()
	if s.added == nil {
		s.added = make(chan struct{}, 1)
	}
	added := s.added
	s.mu.Unlock()
	timeout := time.After(closeWait)
	for {
		if recs := s.records(msg); len(recs) > 0 {
			return recs
		}
		select {
		case <-added:
		case <-timeout:
			t.Fatalf("nothing logged as %q in %v", msg, closeWait)
		}
	}
}

func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }

func (s *logSink) records(msg string) []record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []record
	for _, r := range s.recs {
		if msg == "" || r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// noErrors: nothing was logged at error level.
func (s *logSink) noErrors(t *testing.T) {
	t.Helper()
	for _, r := range s.records("") {
		if r.level >= slog.LevelError {
			t.Errorf("logged at %v: %s %v", r.level, r.msg, r.attrs)
		}
	}
}

// expectClosed reads c until the layer closes it (EOF, or a reset), which
// must happen within closeWait.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(closeWait))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s still open after %v", c.LocalAddr(), closeWait)
	}
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: %v, want EOF or a reset", c.LocalAddr(), err)
	}
}

func (h *harness) count(reason string) int {
	n := 0
	for _, r := range h.dropped() {
		if r == reason {
			n++
		}
	}
	return n
}

// selfSigned is a TLS certificate for the tests' listeners.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "txn test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// streamTransport is TCP or TLS as the tests serve and dial it.
type streamTransport struct {
	name  string
	serve func(h *harness) net.Listener
	dial  func(t *testing.T, addr string) net.Conn
}

var streamTransports = []streamTransport{
	{"TCP", (*harness).serveTCP, func(t *testing.T, addr string) net.Conn {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{"TLS", (*harness).serveTLS, func(t *testing.T, addr string) net.Conn {
		c, err := tls.Dial("tcp4", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
}

// serveTLS has the harness's layer serve TLS too.
func (h *harness) serveTLS() net.Listener {
	ln, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{selfSigned(h.t)}})
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = h.l.ServeTLS(ln); close(done) }()
	h.t.Cleanup(func() { ln.Close(); <-done })
	return ln
}

// TestStreamFirstMessage: a connection that delivers no SIP message within
// FirstMessageTimeout is closed (one that sends nothing, and one that only
// sends keepalives), counted as tcp_idle, with nothing logged at error
// level; one whose first message came in time stays open past it.
func TestStreamFirstMessage(t *testing.T) {
	for _, tr := range streamTransports {
		t.Run(tr.name, func(t *testing.T) {
			sink := &logSink{}
			h := newHarness(t, func(c *Config) {
				c.FirstMessageTimeout = 200 * time.Millisecond
				c.TransportLog = slog.New(sink)
				c.Log = slog.New(sink)
			})
			ln := tr.serve(h)
			valid := h.stream(tr.dial(t, ln.Addr().String()))
			valid.sync()
			idle := tr.dial(t, ln.Addr().String())
			defer idle.Close()
			alive := tr.dial(t, ln.Addr().String())
			defer alive.Close()
			if _, err := alive.Write([]byte("\r\n\r\n")); err != nil {
				t.Fatal(err)
			}

			expectClosed(t, idle)
			expectClosed(t, alive)
			// Accepted before idle, so past its deadline too.
			valid.sync()
			if n := h.count("tcp_idle"); n != 2 {
				t.Errorf("tcp_idle counted %d times, want 2 (drops %v)", n, h.dropped())
			}
			if n := len(sink.records("sip: connection closed: no SIP message in time")); n != 2 {
				t.Errorf("%d debug lines for the closures, want 2", n)
			}
			sink.noErrors(t)
		})
	}
}

// TestStreamPerSourceCap: past ConnsPerSource connections from one address
// one more is closed at accept and counted as tcp_limit, while another
// address still connects; the refusals to one source are logged once per
// minute of the layer's clock, with how many there were.
func TestStreamPerSourceCap(t *testing.T) {
	sink := &logSink{}
	h := newHarness(t, func(c *Config) {
		c.ConnsPerSource = 2
		c.Log = slog.New(sink)
	})
	ln := h.serveTCP()
	dialFrom := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// refusedFrom: the reset may come before the dial returns.
	refusedFrom := func(ip string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp4", ln.Addr().String())
		if errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		expectClosed(t, c)
	}
	for range 2 {
		h.stream(dialFrom("127.0.0.1")).sync()
	}
	const refused = "sip: connections refused: the source holds its limit"
	refusedFrom("127.0.0.1")
	refusedFrom("127.0.0.1")
	h.stream(dialFrom("127.0.0.2")).sync()
	if n := h.count("tcp_limit"); n != 2 {
		t.Errorf("tcp_limit counted %d times, want 2", n)
	}
	h.clock.add(refusalLog)
	refusedFrom("127.0.0.1")
	lines := sink.records(refused)
	var counts []int64
	for _, r := range lines {
		if fmt.Sprint(r.attrs["source"]) != "127.0.0.1" {
			t.Errorf("refusal logged for source %v", r.attrs["source"])
		}
		counts = append(counts, r.attrs["refused"].(int64))
	}
	if !slices.Equal(counts, []int64{1, 2}) {
		t.Errorf("refusals logged with counts %v, want [1 2] (one line, then one a minute later)", counts)
	}
}

// TestStreamDefaultCap: by default one address holds far more than the 64
// connections of a first draft: an office of TCP phones behind one NAT
// address (100 here) all stay connected.
func TestStreamDefaultCap(t *testing.T) {
	h := newHarness(t)
	ln := h.serveTCP()
	for range 100 {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		h.stream(c).sync()
	}
	if n := h.count("tcp_limit"); n != 0 {
		t.Errorf("%d of 100 phones behind one address refused", n)
	}
}

// TestStreamSlotsFreed: a connection's close gives its source's slot back.
func TestStreamSlotsFreed(t *testing.T) {
	l := New(Config{ConnsPerSource: 1})
	defer l.Close()
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.listen("TCP", inner)
	defer ln.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accept := func() net.Conn {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		return c
	}
	dial()
	first := accept()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	_ = first.Close() // twice: the slot is given back once
	dial()
	second := accept()
	defer second.Close()

	third := dial()
	accepted := make(chan error, 1)
	go func() { _, err := ln.Accept(); accepted <- err }()
	expectClosed(t, third)
	ln.Close()
	if err := <-accepted; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after close: %v, want net.ErrClosed (the refused one never returned)", err)
	}
}

// flakyListener fails its first accepts with errs, then accepts.
type flakyListener struct {
	net.Listener
	errs []error
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return f.Listener.Accept()
}

// TestStreamAcceptRetries: running out of file descriptors is waited out
// (sipgo would stop serving at the first error); another error ends the
// serving.
func TestStreamAcceptRetries(t *testing.T) {
	inner, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := New(Config{})
	defer l.Close()
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	ln := l.listen("TCP", &flakyListener{Listener: inner, errs: []error{emfile, emfile}})
	c, err := net.Dial("tcp4", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept: %v, want the connection after two EMFILEs", err)
	}
	got.Close()

	other := errors.New("listener broken")
	ln = l.listen("TCP", &flakyListener{Listener: inner, errs: []error{other}})
	if _, err := ln.Accept(); !errors.Is(err, other) {
		t.Errorf("Accept: %v, want %v", err, other)
	}
}

// TestStreamResetIsDebug: a peer that resets its connection is one debug
// line of sipgo's, not an error.
func TestStreamResetIsDebug(t *testing.T) {
	for _, tr := range streamTransports {
		t.Run(tr.name, func(t *testing.T) {
			sink := &logSink{}
			h := newHarness(t, func(c *Config) { c.TransportLog = slog.New(sink) })
			ln := tr.serve(h)
			c := tr.dial(t, ln.Addr().String())
			h.stream(c).sync()
			raw := c
			if tc, ok := c.(*tls.Conn); ok {
				raw = tc.NetConn() // no close_notify first
			}
			_ = raw.(*net.TCPConn).SetLinger(0)
			raw.Close()
			for _, r := range sink.wait(t, "Read error") {
				if r.level != slog.LevelDebug {
					t.Errorf("Read error logged at %v, want debug: %v", r.level, r.attrs)
				}
			}
			sink.noErrors(t)
		})
	}
}

// TestPeerFaults: what sipgo logs at error level when a read ends one
// connection is lowered to debug, attributes kept; anything else passes
// as it is; a record lowered below what the next handler takes is dropped.
func TestPeerFaults(t *testing.T) {
	for _, tc := range []struct {
		level     slog.Level
		msg       string
		nextLevel slog.Level
		want      []slog.Level // what reaches the next handler
	}{
		{slog.LevelError, "Read error", slog.LevelDebug, []slog.Level{slog.LevelDebug}},
		{slog.LevelError, "Failed to pong keep alive", slog.LevelDebug, []slog.Level{slog.LevelDebug}},
		{slog.LevelError, "Read error", slog.LevelInfo, nil},
		{slog.LevelError, "failed to parse", slog.LevelInfo, []slog.Level{slog.LevelError}},
		{slog.LevelWarn, "Read error", slog.LevelDebug, []slog.Level{slog.LevelWarn}},
	} {
		t.Run(fmt.Sprintf("%s at %v", tc.msg, tc.level), func(t *testing.T) {
			sink := &logSink{}
			next := leveled{sink, tc.nextLevel}
			log := slog.New(peerFaults{next}).With("caller", "Transport<TCP>")
			log.Log(context.Background(), tc.level, tc.msg, "error", io.ErrUnexpectedEOF)
			var got []slog.Level
			for _, r := range sink.records("") {
				got = append(got, r.level)
				if r.attrs["error"] != io.ErrUnexpectedEOF {
					t.Errorf("attributes lost: %v", r.attrs)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("next handler got levels %v, want %v", got, tc.want)
			}
		})
	}
}

// leveled is a handler that takes records at min and above.
type leveled struct {
	slog.Handler
	min slog.Level
}

func (h leveled) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }
func (h leveled) WithAttrs(as []slog.Attr) slog.Handler        { return h }
