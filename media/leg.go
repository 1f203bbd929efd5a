package media

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/pion/srtp/v3"

	"github.com/switchboard/switchboard/media/sdp"
)

const suite = "AES_CM_128_HMAC_SHA1_80"

// Leg is one SIP leg's media: its sockets, what its remote agreed to, and
// the outbound stream (SSRC, sequence, timestamp) of what it hears.
type Leg struct {
	w         *Worker
	id        string
	sock      sockets // its reader's until done; the pool's after close
	ssrc      uint32
	stopping  atomic.Bool   // close has asked the reader to return
	done      chan struct{} // closed when the reader has returned
	closeOnce sync.Once

	// Negotiation, under mu.
	mu        sync.Mutex
	offer     *sdp.Session // the remote's last offer
	offerIdx  int          // its m= line we answer
	offerTag  int          // crypto tag we answer with
	sentSRTP  bool         // our last offer was RTP/SAVP
	codecs    []sdp.Format // what the remote agreed to (or offered)
	direction string       // what the remote asked for
	sdpAddr   netip.AddrPort
	localKey  []byte        // our SDES master key||salt, made once per leg
	txCtx     *srtp.Context // its encrypt context, in out.tx while SRTP is on
	remoteKey []byte
	sessID    uint64
	version   uint64
	lastSDP   []byte

	// Read by the packet path without mu.
	table     atomic.Pointer[codecTable]
	dest      atomic.Pointer[peer]
	rxCtx     atomic.Pointer[srtp.Context] // used by the reader goroutine only
	listeners atomic.Pointer[[]*Leg]       // legs that hear this one

	rx        rxState // the reader goroutine's own
	outMu     sync.Mutex
	outClosed bool     // under outMu: the leg has ended, and its socket may be another leg's now
	out       outState // what this leg hears; written by other legs' readers, the tone clock and the mix clock

	// This leg's audio while it is a mix source, else nil (mix.go): most
	// legs never are, so its buffers are not part of every leg.
	cap      atomic.Pointer[capture]
	mixo     mixOut                   // the mix clock's state for what this leg hears
	chimeReq atomic.Uint32            // 1 + the Tone of a chime asked for, 0 none; the mix clock starts it
	rec      atomic.Pointer[recorder] // the recording of what this leg receives, else nil (record.go)

	counters
}

// peer is where a leg's media goes. It is replaced whole so the reader,
// the forwarders and the negotiation never see half of a change.
type peer struct {
	addr    netip.AddrPort // invalid until the SDP or a latch gives one
	latched bool           // addr is the source seen, not the SDP's
	recv    bool           // the remote wants media (not sendonly/inactive)
}

func newLeg(w *Worker, id string, sock sockets) (*Leg, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("media: leg %s: random: %w", id, err)
	}
	l := &Leg{w: w, id: id, sock: sock, done: make(chan struct{}),
		ssrc: binary.BigEndian.Uint32(b[0:]), sessID: uint64(binary.BigEndian.Uint32(b[4:]))}
	// RFC 3550: random initial sequence number and timestamp.
	l.out.seq = binary.BigEndian.Uint16(b[8:])
	l.out.ts = binary.BigEndian.Uint32(b[10:])
	l.table.Store(noCodecs)
	l.dest.Store(&peer{recv: true})
	l.listeners.Store(noListeners)
	return l, nil
}

// LocalPort is the leg's RTP port.
func (l *Leg) LocalPort() int { return l.sock.port }

// Codecs is what the remote of this leg agreed to (or offered, before an answer).
func (l *Leg) Codecs() []sdp.Format {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.codecs)
}

// RemoteDirection is the direction the remote last asked for ("sendonly"
// also for an RFC 2543 hold with c=0.0.0.0).
func (l *Leg) RemoteDirection() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.direction
}

// codecTable maps one leg's payload types to codecs and back. It is never
// changed once stored, so legs share the empty one.
type codecTable struct {
	at    [128]uint8 // 1 + the index in fmts of a payload type's codec; 0 unknown
	fmts  []ptKey    // each codec once, with its first PT
	dtmf  int16      // PT of telephone-event, -1 none
	pcmu  int16
	pcma  int16
	g711  int16 // PT of the first G.711 codec agreed (what the mixer sends), -1 none
	g711A bool  // it is PCMA
}

type ptKey struct {
	key  string
	pt   uint8
	rate uint32
}

var (
	noCodecs    = newTable(nil)
	noListeners = &[]*Leg{}
)

// commonKeys are the keys of common codecs, interned so that building a
// table for them allocates no strings.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"pcmu/8000", "pcma/8000", "telephone-event/8000", "cn/8000", "g722/8000", "g729/8000", "gsm/8000", "opus/48000"} {
		m[k] = k
	}
	return m
}()

// codecKey is the codec's lower-case name and rate, "pcmu/8000".
func codecKey(f sdp.Format) string {
	var buf [40]byte
	b := buf[:0]
	for i := 0; i < len(f.Name); i++ {
		c := f.Name[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(f.Name) + "/" + strconv.Itoa(f.Rate)
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	b = strconv.AppendInt(append(b, '/'), int64(f.Rate), 10)
	if k, ok := commonKeys[string(b)]; ok {
		return k
	}
	return string(b)
}

func newTable(fs []sdp.Format) *codecTable {
	t := &codecTable{dtmf: -1, pcmu: -1, pcma: -1, g711: -1}
	for _, f := range fs {
		if f.Name == "" || f.PT > 127 || f.Rate <= 0 {
			continue
		}
		k := codecKey(f)
		if i := slices.IndexFunc(t.fmts, func(p ptKey) bool { return p.key == k }); i >= 0 {
			t.at[f.PT] = uint8(i + 1)
			continue
		}
		if t.fmts == nil {
			t.fmts = make([]ptKey, 0, len(fs))
		}
		t.fmts = append(t.fmts, ptKey{key: k, pt: f.PT, rate: uint32(f.Rate)})
		t.at[f.PT] = uint8(len(t.fmts))
		switch k {
		case "telephone-event/8000":
			t.dtmf = int16(f.PT)
		case "pcmu/8000":
			t.pcmu = int16(f.PT)
		case "pcma/8000":
			t.pcma = int16(f.PT)
		}
		if t.g711 < 0 && (t.pcmu >= 0 || t.pcma >= 0) {
			t.g711, t.g711A = int16(f.PT), t.pcma >= 0
		}
	}
	return t
}

// codec is a payload type's codec key and clock rate, "" and 0 unknown.
func (t *codecTable) codec(pt uint8) (key string, rate uint32) {
	if i := t.at[pt&0x7f]; i > 0 {
		p := &t.fmts[i-1]
		return p.key, p.rate
	}
	return "", 0
}

// lookup is this leg's payload type for a codec key: a scan of a handful of
// entries beats a map for the per-packet path.
func (t *codecTable) lookup(key string) (pt uint8, rate uint32, ok bool) {
	for i := range t.fmts {
		if t.fmts[i].key == key {
			return t.fmts[i].pt, t.fmts[i].rate, true
		}
	}
	return 0, 0, false
}
