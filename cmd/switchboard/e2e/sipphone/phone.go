// Package sipphone is a small SIP phone for tests and the load harness: it
// registers with digest, places and answers calls, holds and resumes by
// re-INVITE, and sends and counts real RTP (PCMU, 20 ms) on loopback.
package sipphone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
)

// Config of a phone.
type Config struct {
	User     string // digest username (user id or extension)
	Password string
	Domain   string
	Server   string // host:port of the switchboard node
	IP       string // local IP to bind (default 127.0.0.1)
	Log      *slog.Logger
	// AutoAnswer answers incoming calls after this delay (0: ring only
	// until Answer is called on the incoming call).
	AutoAnswer   time.Duration
	AutoAnswerOn bool
	// SRTP offers RTP/SAVP with a crypto line instead of plain RTP.
	SRTP bool
	// Backlog is how many unread incoming calls Incoming holds (default
	// 16); calls beyond it still ring and auto-answer but are not listed.
	Backlog int
	// MediaAddr, when valid, is advertised in every SDP instead of a socket
	// per call: a load generator owns that socket and sends and receives
	// for all calls itself (SendRTP is then unavailable).
	MediaAddr netip.AddrPort
	// UserAgent is the User-Agent header of its REGISTERs (none if empty).
	UserAgent string
}

// Phone is one SIP user agent with its own socket.
type Phone struct {
	cfg      Config
	ua       *sipgo.UserAgent
	srv      *sipgo.Server
	cli      *sipgo.Client
	dua      sipgo.DialogUA
	addr     string // host:port we listen on
	cancel   context.CancelFunc
	incoming chan *Call
	notifies chan Notify
	messages chan Message

	mu    sync.Mutex
	calls map[string]*Call // dialog id -> call
}

// New starts a phone listening on a free UDP port.
func New(cfg Config) (*Phone, error) {
	if cfg.IP == "" {
		cfg.IP = "127.0.0.1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	pc, err := net.ListenPacket("udp", cfg.IP+":0")
	if err != nil {
		return nil, err
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sipphone"), sipgo.WithUserAgentHostname(cfg.Domain))
	if err != nil {
		pc.Close()
		return nil, err
	}
	srv, _ := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Log))
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientHostname(cfg.IP), sipgo.WithClientPort(port),
		// Send from the listener, so carriers trusted by source address see it.
		sipgo.WithClientConnectionAddr(pc.LocalAddr().String()), sipgo.WithClientLogger(cfg.Log))
	p := &Phone{cfg: cfg, ua: ua, srv: srv, cli: cli, addr: pc.LocalAddr().String(), incoming: make(chan *Call, max(cfg.Backlog, 16)), notifies: make(chan Notify, 64), messages: make(chan Message, 64), calls: map[string]*Call{}}
	p.dua = sipgo.DialogUA{Client: cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: cfg.User, Host: cfg.IP, Port: port}}}
	srv.OnInvite(p.onInvite)
	srv.OnAck(p.onAck)
	srv.OnBye(p.onBye)
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		n := Notify{Body: string(req.Body())}
		if h := req.GetHeader("Subscription-State"); h != nil {
			n.State = h.Value()
		}
		select {
		case p.notifies <- n:
		default:
		}
	})
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		m := Message{Text: string(req.Body())}
		if f := req.From(); f != nil {
			m.From, m.FromName = f.Address.User, f.DisplayName
		}
		if h := req.ContentType(); h != nil {
			m.ContentType = h.Value()
		}
		select {
		case p.messages <- m:
		default:
		}
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { _ = srv.ServeUDP(pc) }()
	go func() { <-ctx.Done(); pc.Close() }()
	// Requests can leave from the listener only once Serve has pooled it.
	for deadline := time.Now().Add(2 * time.Second); ua.TransportLayer().Pool("udp").Get(p.addr) == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			p.Close()
			return nil, fmt.Errorf("sipphone: listener %s not serving", p.addr)
		}
	}
	return p, nil
}

// Addr is where the phone listens.
func (p *Phone) Addr() string { return p.addr }

// Close stops the phone and its calls' media.
func (p *Phone) Close() {
	p.mu.Lock()
	for _, c := range p.calls {
		if c.media != nil {
			c.media.close()
		}
	}
	p.mu.Unlock()
	p.cancel()
	_ = p.ua.Close()
}

// Incoming delivers calls that ring this phone.
func (p *Phone) Incoming() <-chan *Call { return p.incoming }

func (p *Phone) serverURI(user string) sip.Uri {
	host, port, _ := net.SplitHostPort(p.cfg.Server)
	pn, _ := strconv.Atoi(port)
	return sip.Uri{Scheme: "sip", User: user, Host: host, Port: pn}
}

// Register binds this phone's contact for expires seconds and returns the
// final response.
func (p *Phone) Register(ctx context.Context, expires int) (*sip.Response, error) {
	return p.RegisterContact(ctx, expires, p.dua.ContactHDR.Address.String())
}

// RegisterContact registers an explicit contact URI ("*" for all).
func (p *Phone) RegisterContact(ctx context.Context, expires int, contact string) (*sip.Response, error) {
	uri := p.serverURI("")
	uri.User = ""
	req := sip.NewRequest(sip.REGISTER, uri)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.cfg.Domain}, Params: sip.NewParams()}
	from := &sip.FromHeader{Address: to.Address, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(to)
	req.AppendHeader(from)
	if contact == "*" {
		req.AppendHeader(sip.NewHeader("Contact", "*"))
	} else {
		req.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
	}
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if p.cfg.UserAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", p.cfg.UserAgent))
	}
	req.SetTransport("UDP")
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == 401 {
		return p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.cfg.User, Password: p.cfg.Password})
	}
	return res, nil
}

// Notify is a NOTIFY the phone received (busy lamp updates).
type Notify struct {
	State string // Subscription-State
	Body  string
}

// Message is a MESSAGE (RFC 3428) the phone received.
type Message struct {
	From, FromName, ContentType, Text string
}

// Messages delivers received MESSAGEs.
func (p *Phone) Messages() <-chan Message { return p.messages }

// SendMessage sends a MESSAGE with text (as contentType, "" for
// text/plain) to target, answering a digest challenge.
func (p *Phone) SendMessage(ctx context.Context, target, contentType string, text []byte) (*sip.Response, error) {
	if contentType == "" {
		contentType = "text/plain"
	}
	req := sip.NewRequest(sip.MESSAGE, p.serverURI(target))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: p.cfg.Domain}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	req.SetBody(text)
	req.SetTransport("UDP")
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && p.cfg.Password != "" {
		return p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.cfg.User, Password: p.cfg.Password})
	}
	return res, nil
}

// Notifies delivers received NOTIFYs.
func (p *Phone) Notifies() <-chan Notify { return p.notifies }

// Subscribe subscribes to the dialog state (busy lamp) of target's line,
// answering a digest challenge.
func (p *Phone) Subscribe(ctx context.Context, target string, expires int) (*sip.Response, error) {
	req := sip.NewRequest(sip.SUBSCRIBE, p.serverURI(target))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: p.cfg.Domain}, Params: sip.NewParams()})
	req.AppendHeader(&p.dua.ContactHDR)
	req.AppendHeader(sip.NewHeader("Event", "dialog"))
	req.AppendHeader(sip.NewHeader("Accept", "application/dialog-info+xml"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.SetTransport("UDP")
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		return p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.cfg.User, Password: p.cfg.Password})
	}
	return res, nil
}

// Call is one call of this phone, placed or received.
type Call struct {
	p        *Phone
	out      *sipgo.DialogClientSession
	in       *sipgo.DialogServerSession
	inTx     sip.ServerTransaction
	media    *rtpLeg
	From     string // caller's From user part (incoming)
	FromName string
	PAI      string
	answered chan struct{}
	ended    chan struct{}
	endOnce  sync.Once
	Request  *sip.Request // the INVITE received (incoming)
}

// ErrRejected carries a non-2xx final response: its code, and its
// Warning's value when it has one.
type ErrRejected struct {
	Code       int
	Warning    string
	RetryAfter string
}

func (e *ErrRejected) Error() string { return fmt.Sprintf("call rejected with %d", e.Code) }

// Dial calls target (extension, user id or number) and waits for the
// answer; onProgress sees every provisional response code.
func (p *Phone) Dial(ctx context.Context, target string, onProgress func(code int)) (*Call, error) {
	return p.DialWith(ctx, target, nil, onProgress)
}

// DialWith is Dial with extra headers on the INVITE ("Name: value").
func (p *Phone) DialWith(ctx context.Context, target string, headers []string, onProgress func(code int)) (*Call, error) {
	m, err := p.newRTPLeg()
	if err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.INVITE, p.serverURI(target))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: p.cfg.Domain}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ":")
		req.AppendHeader(sip.NewHeader(strings.TrimSpace(name), strings.TrimSpace(value)))
	}
	req.SetBody(m.offer("sendrecv"))
	req.SetTransport("UDP")
	d, err := p.dua.WriteInvite(ctx, req)
	if err != nil {
		m.close()
		return nil, err
	}
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: p.cfg.User, Password: p.cfg.Password, OnResponse: func(r *sip.Response) error {
		if r.IsProvisional() && onProgress != nil {
			onProgress(r.StatusCode)
		}
		return nil
	}})
	if err != nil {
		m.close()
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			rej := &ErrRejected{Code: de.Res.StatusCode}
			if w := de.Res.GetHeader("Warning"); w != nil {
				rej.Warning = w.Value()
			}
			if r := de.Res.GetHeader("Retry-After"); r != nil {
				rej.RetryAfter = r.Value()
			}
			return nil, rej
		}
		return nil, err
	}
	if err := m.setRemote(d.InviteResponse.Body()); err != nil {
		m.close()
		_ = d.Ack(ctx)
		_ = d.Bye(ctx)
		return nil, err
	}
	if err := d.Ack(ctx); err != nil {
		m.close()
		return nil, err
	}
	c := &Call{p: p, out: d, media: m, answered: make(chan struct{}), ended: make(chan struct{})}
	close(c.answered)
	p.track(d.ID, c)
	return c, nil
}

func (p *Phone) track(id string, c *Call) {
	p.mu.Lock()
	p.calls[id] = c
	p.mu.Unlock()
}

func (p *Phone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if req.To() != nil && req.To().Params.Has("tag") {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	d, err := p.dua.ReadInvite(req, tx)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	c := &Call{p: p, in: d, inTx: tx, Request: req, answered: make(chan struct{}), ended: make(chan struct{})}
	if f := req.From(); f != nil {
		c.From, c.FromName = f.Address.User, f.DisplayName
	}
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		c.PAI = h.Value()
	}
	p.track(d.ID, c)
	_ = d.Respond(180, "Ringing", nil)
	tx.OnCancel(func(*sip.Request) { c.end() })
	select {
	case p.incoming <- c:
	default:
	}
	if p.cfg.AutoAnswerOn {
		go func() {
			time.Sleep(p.cfg.AutoAnswer)
			if err := c.Answer(); err != nil {
				p.cfg.Log.Warn("sipphone: auto-answer failed", "call_id", req.CallID().Value(), "err", err)
			}
		}()
	}
	// Hold the transaction until answered or cancelled (sipgo ends it when
	// the handler returns).
	select {
	case <-c.answered:
	case <-c.ended:
	case <-tx.Done():
	}
}

// Answer answers an incoming call with our SDP and waits for the ACK.
func (c *Call) Answer() error {
	m, err := c.p.newRTPLeg()
	if err != nil {
		return err
	}
	if err := m.setRemote(c.Request.Body()); err != nil {
		m.close()
		_ = c.in.Respond(488, "Not Acceptable Here", nil)
		return err
	}
	c.media = m
	res := sip.NewResponseFromRequest(c.in.InviteRequest, 200, "OK", m.answer())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	// The INVITE handler holds the transaction open until answered is
	// closed: close it only once the 200 is out, or sipgo may end the
	// transaction under the write ("transaction terminated").
	err = c.in.WriteResponse(res)
	close(c.answered)
	return err
}

// Reject answers an incoming call with code.
func (c *Call) Reject(code int) error {
	defer c.end()
	return c.in.Respond(code, "Rejected", nil)
}

func (p *Phone) find(req *sip.Request) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, err := sip.DialogIDFromRequestUAS(req); err == nil {
		if c := p.calls[id]; c != nil {
			return c
		}
	}
	if id, err := sip.DialogIDFromRequestUAC(req); err == nil {
		return p.calls[id]
	}
	return nil
}

func (p *Phone) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := p.find(req); c != nil && c.in != nil {
		_ = c.in.ReadAck(req, tx)
	}
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.find(req)
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if c.in != nil {
		_ = c.in.ReadBye(req, tx)
	} else {
		_ = c.out.ReadBye(req, tx)
	}
	c.end()
}

func (c *Call) end() {
	c.endOnce.Do(func() {
		close(c.ended)
		if c.media != nil {
			c.media.close()
		}
	})
}

// Ended is closed when the call is over (BYE, CANCEL or our hangup).
func (c *Call) Ended() <-chan struct{} { return c.ended }

// Answered is closed once the call is answered.
func (c *Call) Answered() <-chan struct{} { return c.answered }

// Hangup sends BYE.
func (c *Call) Hangup(ctx context.Context) error {
	defer c.end()
	if c.out != nil {
		return c.out.Bye(ctx)
	}
	return c.in.Bye(ctx)
}

// Hold sends a re-INVITE with direction (sendonly or inactive); Resume
// sends sendrecv. Only for calls this phone placed.
func (c *Call) Hold(ctx context.Context, direction string) error {
	var (
		target sip.Uri
		do     func(context.Context, *sip.Request) (*sip.Response, error)
		write  func(*sip.Request) error
	)
	switch {
	case c.out != nil:
		target, do, write = c.out.InviteResponse.Contact().Address, c.out.Do, c.out.WriteRequest
	case c.in != nil && c.Request.Contact() != nil:
		// The answering side sends its re-INVITE to the caller's Contact.
		target, do, write = c.Request.Contact().Address, c.in.Do, c.in.WriteRequest
	default:
		return errors.New("sipphone: no dialog to re-INVITE on")
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(c.media.offer(direction))
	res, err := do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return &ErrRejected{Code: res.StatusCode}
	}
	ack := sip.NewRequest(sip.ACK, req.Recipient)
	ack.AppendHeader(sip.NewHeader("CSeq", fmt.Sprintf("%d ACK", req.CSeq().SeqNo)))
	return write(ack)
}

// Resume takes the call off hold.
func (c *Call) Resume(ctx context.Context) error { return c.Hold(ctx, "sendrecv") }

// SendRTP sends n PCMU packets, one every interval (0: as fast as possible).
func (c *Call) SendRTP(n int, interval time.Duration) error {
	return c.media.send(n, interval, silence[:])
}

// SendPayload is SendRTP with payload (one 20 ms PCMU frame, 160 bytes)
// instead of silence, so a test can tell who is heard.
func (c *Call) SendPayload(n int, interval time.Duration, payload []byte) error {
	return c.media.send(n, interval, payload)
}

// SendDigit sends a DTMF digit (0-9, *, #) as an RFC 4733 event.
func (c *Call) SendDigit(d byte) error {
	switch {
	case d >= '0' && d <= '9':
		return c.media.sendDigit(d - '0')
	case d == '*':
		return c.media.sendDigit(10)
	case d == '#':
		return c.media.sendDigit(11)
	}
	return fmt.Errorf("sipphone: %q is not a DTMF digit", d)
}

// Sent is how many RTP packets this call sent.
func (c *Call) Sent() int64 { return c.media.sent.Load() }

// Received is how many RTP packets arrived for this call, and how many of
// them carried the hold tone's payload type pattern is up to the caller.
func (c *Call) Received() int64 { return c.media.received.Load() }

// LastPayload returns a copy of the last RTP payload received.
func (c *Call) LastPayload() []byte { return c.media.lastPayload() }

// VariedFrames counts received frames that are not one byte repeated:
// silence and a test's constant voices are; a tone (hold music, a chime)
// is not.
func (c *Call) VariedFrames() int64 { return c.media.varied.Load() }

// RemoteSDP is the SDP the far end (switchboard) sent us.
func (c *Call) RemoteSDP() string { return c.media.remoteSDP }

// MediaAddr is our local RTP address.
func (c *Call) MediaAddr() string { return c.media.local.String() }

// RemoteMedia is where the far end (the relay) takes this call's RTP.
func (c *Call) RemoteMedia() netip.AddrPort { return c.media.remote.AddrPort() }

// ---- RTP ----------------------------------------------------------------------

type rtpLeg struct {
	conn      *net.UDPConn // nil when Config.MediaAddr is set
	local     netip.AddrPort
	remote    *net.UDPAddr
	remoteSDP string
	ssrc      uint32
	seq       uint16
	ts        uint32
	received  atomic.Int64
	varied    atomic.Int64 // frames that are not one repeated byte
	sent      atomic.Int64
	srtp      *srtpPair // nil for plain RTP
	mu        sync.Mutex
	last      []byte
	closed    atomic.Bool
	sendMu    sync.Mutex // guards seq, ts and the buffers below
	out       [256]byte
	enc       [512]byte
}

// silence is one 20 ms PCMU frame of silence.
var silence = func() (b [160]byte) {
	for i := range b {
		b[i] = 0xff
	}
	return
}()

func (p *Phone) newRTPLeg() (*rtpLeg, error) {
	m := &rtpLeg{ssrc: uint32(time.Now().UnixNano()), local: p.cfg.MediaAddr}
	if p.cfg.SRTP {
		m.srtp = newSRTPPair()
	}
	if m.local.IsValid() {
		return m, nil
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(p.cfg.IP)})
	if err != nil {
		return nil, err
	}
	m.conn, m.local = conn, conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go m.read()
	return m, nil
}

func (m *rtpLeg) offer(direction string) []byte {
	a := m.local
	proto := "RTP/AVP"
	crypto := ""
	if m.srtp != nil {
		proto = "RTP/SAVP"
		crypto = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + m.srtp.localKeyB64() + "\r\n"
	}
	return []byte(fmt.Sprintf("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d %s 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n%sa=%s\r\n",
		m.ssrc, a.Addr(), a.Addr(), a.Port(), proto, crypto, direction))
}

// answer is our SDP for an offer; the phone's own RTP/SRTP mode decides
// the profile (tests choose phones that fit the offer).
func (m *rtpLeg) answer() []byte { return m.offer("sendrecv") }

// setRemote reads the peer's c= and m= lines (and crypto for SRTP).
func (m *rtpLeg) setRemote(sdp []byte) error {
	m.remoteSDP = string(sdp)
	var ip string
	port := 0
	for _, line := range strings.Split(strings.ReplaceAll(string(sdp), "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "c=IN IP4 "):
			ip = strings.TrimSpace(strings.TrimPrefix(line, "c=IN IP4 "))
		case strings.HasPrefix(line, "m=audio "):
			f := strings.Fields(line)
			if len(f) > 1 {
				port, _ = strconv.Atoi(f[1])
			}
		case strings.HasPrefix(line, "a=crypto:") && m.srtp != nil:
			if err := m.srtp.setRemote(line); err != nil {
				return err
			}
		}
	}
	if ip == "" || port == 0 {
		return fmt.Errorf("sipphone: no audio address in SDP")
	}
	m.remote = &net.UDPAddr{IP: net.ParseIP(ip), Port: port}
	return nil
}

func (m *rtpLeg) send(n int, interval time.Duration, payload []byte) error {
	if m.conn == nil {
		return errors.New("sipphone: media is owned by Config.MediaAddr's socket")
	}
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	for i := 0; i < n; i++ {
		m.seq++
		m.ts += 160
		h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: m.seq, Timestamp: m.ts, SSRC: m.ssrc}
		hl, err := h.MarshalTo(m.out[:])
		if err != nil {
			return err
		}
		raw := append(m.out[:hl], payload...)
		if m.srtp != nil {
			if raw, err = m.srtp.protect(m.enc[:0], raw); err != nil {
				return err
			}
		}
		if _, err := m.conn.WriteToUDP(raw, m.remote); err != nil {
			return err
		}
		m.sent.Add(1)
		if interval > 0 {
			time.Sleep(interval)
		}
	}
	return nil
}

// sendDigit sends an RFC 4733 event's end packet three times, with the
// event's timestamp, as phones do (payload type 101, as offered).
func (m *rtpLeg) sendDigit(event byte) error {
	if m.conn == nil {
		return errors.New("sipphone: media is owned by Config.MediaAddr's socket")
	}
	m.sendMu.Lock()
	defer m.sendMu.Unlock()
	m.ts += 160
	for range 3 {
		m.seq++
		h := rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: m.seq, Timestamp: m.ts, SSRC: m.ssrc}
		hl, err := h.MarshalTo(m.out[:])
		if err != nil {
			return err
		}
		raw := append(m.out[:hl], event, 0x80|10, 0x03, 0x20) // end, volume -10 dBm0, 800 samples
		if m.srtp != nil {
			if raw, err = m.srtp.protect(m.enc[:0], raw); err != nil {
				return err
			}
		}
		if _, err := m.conn.WriteToUDP(raw, m.remote); err != nil {
			return err
		}
	}
	return nil
}

func (m *rtpLeg) read() {
	buf := make([]byte, 1500)
	out := make([]byte, 1500)
	for {
		n, _, err := m.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		if m.srtp != nil {
			if pkt, err = m.srtp.unprotect(out[:0], pkt); err != nil {
				continue
			}
		}
		var p rtp.Packet
		if p.Unmarshal(pkt) != nil {
			continue
		}
		m.received.Add(1)
		if varied(p.Payload) {
			m.varied.Add(1)
		}
		m.mu.Lock()
		m.last = append(m.last[:0], p.Payload...)
		m.mu.Unlock()
	}
}

func (m *rtpLeg) lastPayload() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.last...)
}

func (m *rtpLeg) close() {
	if m.closed.CompareAndSwap(false, true) && m.conn != nil {
		m.conn.Close()
	}
}

// varied reports whether a payload holds more than one byte value. The bench
// runs these phones by the thousand, so it allocates nothing.
func varied(b []byte) bool {
	for _, c := range b {
		if c != b[0] {
			return true
		}
	}
	return false
}
