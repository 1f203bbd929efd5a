package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"golang.org/x/net/ipv4"

	"github.com/switchboard/switchboard/cmd/switchboard/e2e/sipphone"
)

// The queue scenario: callers arrive from the trunk into a call queue whose
// members' phones answer after a random delay and hang up after a while,
// with RTP from both. Every caller and every member phone is watched from
// its own side: who was offered what and when, whose audio reached whom.
// A race run rings many members for a burst of callers, all answering at
// once, and counts what must never happen: a caller connected to two
// members, a member offered two calls at once.

// queueOptions are the scenario's flags.
type queueOptions struct {
	rates        []float64     // callers arriving per second, one run per rate
	step         time.Duration // how long callers arrive at each rate
	members      int
	distribution string
	talk         time.Duration // a member hangs up this long after answering
	answerMax    time.Duration // a member answers after a random 0..answerMax
	patience     time.Duration // a caller no member has reached by then hangs up
	maxWait      int           // the queue's max_wait_seconds
	maxCalls     int           // the queue's max_calls
	raceMembers  int           // race runs: members answering at once (0: no race)
	raceCallers  int           // race runs: callers in the burst (0: as many as members)
	raceRounds   int
}

// The two sides of the scenario's media: every caller's RTP leaves and
// arrives on one socket, every member's on another.
const (
	qCallers = iota
	qMembers
)

// serviceLevel is the queue's service_level_seconds (its default): the
// callers' own service level is computed against it.
const serviceLevel = 20 * time.Second

// queueResult is one run: callers at a rate for a while, or a race burst.
type queueResult struct {
	Queue        string  `json:"queue"`
	Kind         string  `json:"kind"` // rate | race
	Rate         float64 `json:"rate_per_s,omitempty"`
	Seconds      float64 `json:"arrival_seconds,omitempty"`
	Members      int     `json:"members"`
	Distribution string  `json:"distribution"`
	Callers      int     `json:"callers"`
	// What the callers saw.
	Answered       int            `json:"answered"`
	Abandoned      int            `json:"abandoned"`
	OverflowedFull int            `json:"overflowed_full"`     // refused at once (480): max_calls were waiting
	OverflowedWait int            `json:"overflowed_max_wait"` // hung up by the queue while waiting
	Failed         map[string]int `json:"failed,omitempty"`
	// OfferP50ms: the caller's INVITE to the first member's INVITE.
	OfferP50ms float64 `json:"offer_p50_ms"`
	OfferP99ms float64 `json:"offer_p99_ms"`
	// WaitP50s: the queue's 200 to the first frame of the member's audio at
	// the caller (the members' random answer delay included).
	WaitP50s  float64 `json:"wait_p50_s"`
	WaitP99s  float64 `json:"wait_p99_s"`
	WaitMeanS float64 `json:"wait_mean_s"`
	// BridgeP50ms: the member's 200 to the first frame of their audio at
	// the caller (the member's phone sends every 2 ms until heard).
	BridgeP50ms         float64 `json:"bridge_p50_ms"`
	BridgeP99ms         float64 `json:"bridge_p99_ms"`
	ServiceLevelPercent float64 `json:"service_level_percent"` // as the callers saw it
	CPUSeconds          float64 `json:"node_cpu_s"`
	CPUPerCallMs        float64 `json:"node_cpu_ms_per_call"` // per caller offered
	RSSKB               int64   `json:"node_rss_kb"`
	// HeapKB and Goroutines are the node's once every call is over (the
	// heap after a collection when the node serves pprof): what the run
	// left behind, which RSS (never given back at once) hides.
	HeapKB            int64   `json:"node_heap_inuse_kb"`
	Goroutines        int     `json:"node_goroutines"`
	EtcdWritesPerCall float64 `json:"node_etcd_writes_per_call"`
	GenCPU            float64 `json:"generator_cpu_s"`
	// Stats is GET /v1/queues/{id}/stats once every call is over;
	// Disagreements lists where it differs from what the callers saw.
	Stats         queueStats  `json:"stats"`
	Disagreements []string    `json:"disagreements,omitempty"`
	Checks        queueChecks `json:"checks"`
}

// queueChecks are what the phones saw that the queue promises never
// happens (the first six must be 0), and how often members lost a race.
type queueChecks struct {
	// CallerHeardTwo: callers who heard the audio of two members.
	CallerHeardTwo int `json:"callers_connected_twice"`
	// HeardByTwo: callers whose audio reached two members.
	HeardByTwo int `json:"callers_heard_by_two_members"`
	// Crossed: a caller heard a member who never heard that caller.
	Crossed int `json:"crossed_bridges"`
	// TwoOffers: a member's phone had two INVITEs ringing at once.
	TwoOffers overlap `json:"members_offered_two_at_once"`
	// OfferWhileServing: an INVITE rang while the member was on a queue call.
	OfferWhileServing overlap `json:"members_offered_while_on_a_call"`
	// TwoServed: a member was on two queue calls at once.
	TwoServed overlap `json:"members_on_two_calls"`
	// LostRaces: a member answered, the node hung up on them, and they
	// never heard the caller (another member was first).
	LostRaces       int `json:"lost_races"`
	AnswerFailed    int `json:"answers_failed"`   // the member's 200 could not be sent (the offer was gone)
	UnmatchedOffers int `json:"unmatched_offers"` // a member INVITE from no caller of the run
	Stray           int `json:"stray_packets"`    // RTP from no leg's relay port
}

// overlap counts pairs of intervals on one phone that overlap, and the
// longest such overlap.
type overlap struct {
	Count     int     `json:"count"`
	LongestMs float64 `json:"longest_ms"`
}

func (o *overlap) add(d time.Duration) {
	o.Count++
	o.LongestMs = max(o.LongestMs, float64(d.Microseconds())/1000)
}

// queueStats is the stats endpoint's answer.
type queueStats struct {
	Waiting             int     `json:"waiting"`
	LongestWaitSeconds  int     `json:"longest_wait_seconds"`
	Completed           int     `json:"completed"`
	Abandoned           int     `json:"abandoned"`
	Overflowed          int     `json:"overflowed"`
	AverageWaitSeconds  int     `json:"average_wait_seconds"`
	ServiceLevelPercent float64 `json:"service_level_percent"`
	Members             []struct {
		User   string `json:"user"`
		State  string `json:"state"`
		Reason string `json:"reason,omitempty"`
	} `json:"members"`
}

// settled: nobody waits and no member rings or talks.
func (s queueStats) settled() bool {
	for _, m := range s.Members {
		if m.State == "ringing" || m.State == "on_call" {
			return false
		}
	}
	return s.Waiting == 0
}

// ---- the frames: who sent them ------------------------------------------------

const (
	markLen    = 7 // "SQ", kind, id
	kindCaller = 'C'
	kindMember = 'M'
	qPktLen    = 12 + 160
)

// mark writes the scenario's marker at the start of a PCMU payload: the
// relay forwards a bridged call's frames untouched, so whoever hears one
// knows whose it is (a prompt or a mix carries none).
func mark(payload []byte, kind byte, id uint32) {
	payload[0], payload[1], payload[2] = 'S', 'Q', kind
	binary.BigEndian.PutUint32(payload[3:markLen], id)
}

// parseMark reads a payload's marker.
func parseMark(payload []byte) (kind byte, id uint32, ok bool) {
	if len(payload) < markLen || payload[0] != 'S' || payload[1] != 'Q' || (payload[2] != kindCaller && payload[2] != kindMember) {
		return 0, 0, false
	}
	return payload[2], binary.BigEndian.Uint32(payload[3:markLen]), true
}

// ---- media: one socket per side, sent in batches --------------------------------

// qLeg is one phone's stream of a call: it sends a marked frame every
// 20 ms to its relay port (every 2 ms while probing, so that the moment its
// audio first gets through is seen to within a few ms), and records whom it
// heard from that port.
type qLeg struct {
	id         uint32
	kind       byte
	dst        *net.UDPAddr
	relay      netip.AddrPort
	ssrc       uint32
	seq        uint16
	ts         uint32
	next       time.Time
	probeUntil time.Time
	pkt        [qPktLen]byte
	// Under queueMedia.mu.
	heard  map[uint32]time.Time // the other side's ids, first heard
	first  chan struct{}        // closed at the first frame of the other side
	frames int64                // marked frames heard
	other  int64                // frames with no marker (prompts, tones)
}

type queueMedia struct {
	conns [2]*net.UDPConn
	pcs   [2]*ipv4.PacketConn
	done  chan struct{}
	wg    sync.WaitGroup

	mu    sync.Mutex
	legs  [2]map[netip.AddrPort]*qLeg
	probe map[uint32]*qLeg // member id -> its leg while probing
	stray [2]int
	out   []ipv4.Message
}

func newQueueMedia() (*queueMedia, error) {
	m := &queueMedia{done: make(chan struct{}), probe: map[uint32]*qLeg{}}
	for side := range m.conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			m.close()
			return nil, fmt.Errorf("queue media: %w", err)
		}
		_ = c.SetReadBuffer(8 << 20)
		_ = c.SetWriteBuffer(8 << 20)
		m.conns[side], m.pcs[side] = c, ipv4.NewPacketConn(c)
		m.legs[side] = map[netip.AddrPort]*qLeg{}
	}
	m.wg.Add(3)
	go m.send()
	go m.receive(qCallers)
	go m.receive(qMembers)
	return m, nil
}

func (m *queueMedia) addr(side int) netip.AddrPort {
	return m.conns[side].LocalAddr().(*net.UDPAddr).AddrPort()
}

func (m *queueMedia) close() {
	select {
	case <-m.done:
		return
	default:
	}
	close(m.done)
	for _, c := range m.conns {
		if c != nil {
			c.Close()
		}
	}
	m.wg.Wait()
}

// add starts a leg on side towards the relay port relay; a member's leg
// probes for up to probe.
func (m *queueMedia) add(side int, relay netip.AddrPort, id uint32, probe time.Duration) *qLeg {
	// A phone's SDP address reads as IPv4-mapped; frames arrive from plain IPv4.
	relay = netip.AddrPortFrom(relay.Addr().Unmap(), relay.Port())
	kind := byte(kindCaller)
	if side == qMembers {
		kind = kindMember
	}
	now := time.Now()
	l := &qLeg{id: id, kind: kind, relay: relay, dst: net.UDPAddrFromAddrPort(relay), ssrc: rand.Uint32(), next: now,
		probeUntil: now.Add(probe), heard: map[uint32]time.Time{}, first: make(chan struct{})}
	for i := 12; i < qPktLen; i++ {
		l.pkt[i] = 0xff // PCMU silence after the marker
	}
	mark(l.pkt[12:], kind, id)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.legs[side][relay] = l
	if probe > 0 {
		m.probe[id] = l
	}
	return l
}

// remove stops a leg; what it heard stays readable with heard.
func (m *queueMedia) remove(side int, l *qLeg) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.legs[side][l.relay] == l {
		delete(m.legs[side], l.relay)
	}
	if m.probe[l.id] == l {
		delete(m.probe, l.id)
	}
}

// heard copies whom l heard, and when first.
func (m *queueMedia) heard(l *qLeg) map[uint32]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[uint32]time.Time, len(l.heard))
	for k, v := range l.heard {
		out[k] = v
	}
	return out
}

// send ticks every 2 ms: each leg whose 20 ms are up, or that probes,
// sends its next frame; one sendmmsg per side per tick.
func (m *queueMedia) send() {
	defer m.wg.Done()
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
		}
		now := time.Now()
		m.mu.Lock()
		for side, legs := range m.legs {
			m.out = m.out[:0]
			for _, l := range legs {
				if now.Before(l.next) && !now.Before(l.probeUntil) {
					continue
				}
				if !now.Before(l.next) {
					l.next = l.next.Add(20 * time.Millisecond)
					if l.next.Before(now) { // behind (a stall): start afresh rather than burst
						l.next = now.Add(20 * time.Millisecond)
					}
				}
				l.seq++
				l.ts += 160
				h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: l.seq, Timestamp: l.ts, SSRC: l.ssrc}
				_, _ = h.MarshalTo(l.pkt[:12])
				m.out = append(m.out, ipv4.Message{Buffers: [][]byte{l.pkt[:]}, Addr: l.dst})
			}
			for ms := m.out; len(ms) > 0; {
				n, err := m.pcs[side].WriteBatch(ms, 0)
				if err != nil {
					break // closed, or the kernel is behind: the frames are lost, as a phone's would be
				}
				ms = ms[n:]
			}
		}
		m.mu.Unlock()
	}
}

// receive credits every frame arriving on side to the leg its relay port
// serves.
func (m *queueMedia) receive(side int) {
	defer m.wg.Done()
	ms := make([]ipv4.Message, 64)
	for i := range ms {
		ms[i].Buffers = [][]byte{make([]byte, 1500)}
	}
	for {
		n, err := m.pcs[side].ReadBatch(ms, 0)
		if err != nil {
			return
		}
		now := time.Now()
		m.mu.Lock()
		for _, msg := range ms[:n] {
			ua, _ := msg.Addr.(*net.UDPAddr)
			if ua == nil {
				continue
			}
			src := ua.AddrPort()
			m.credit(side, netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), msg.Buffers[0][:msg.N], now)
		}
		m.mu.Unlock()
	}
}

// credit (under mu) records a frame from relay port src on side.
func (m *queueMedia) credit(side int, src netip.AddrPort, pkt []byte, now time.Time) {
	l := m.legs[side][src]
	if l == nil {
		m.stray[side]++
		return
	}
	var h rtp.Header
	hl, err := h.Unmarshal(pkt)
	if err != nil {
		return
	}
	kind, id, ok := parseMark(pkt[hl:])
	if !ok || kind == l.kind {
		l.other++
		return
	}
	l.frames++
	if _, seen := l.heard[id]; seen {
		return
	}
	l.heard[id] = now
	if len(l.heard) == 1 {
		close(l.first)
	}
	// A member's audio got through: it may send at the usual pace now.
	if p := m.probe[id]; side == qCallers && p != nil {
		p.probeUntil = time.Time{}
		delete(m.probe, id)
	}
}

// ---- the phones -----------------------------------------------------------------

// interval is a span of time on a member's phone: an INVITE ringing, or a
// call answered.
type interval struct{ from, to time.Time }

type queueMember struct {
	id    uint32 // 1-based, the marker of its frames
	phone *sipphone.Phone

	mu     sync.Mutex
	rings  []interval // INVITE received -> answered, cancelled or refused
	serves []interval // answered -> hung up (by either side)
	legs   []*qLeg    // its calls' media, for what it heard
}

// memberOverlaps counts, on one member's phone, INVITEs that rang while
// another rang or while a call was answered, and answered calls that
// overlapped. Only strictly overlapping spans count: one ending at the
// instant the other starts does not.
func memberOverlaps(rings, serves []interval) (twoOffers, offerWhileServing, twoServed overlap) {
	pairs := func(a, b []interval, same bool, o *overlap) {
		for i, x := range a {
			for j, y := range b {
				if same && j <= i {
					continue
				}
				if d := minTime(x.to, y.to).Sub(maxTime(x.from, y.from)); d > 0 {
					o.add(d)
				}
			}
		}
	}
	pairs(rings, rings, true, &twoOffers)
	pairs(rings, serves, false, &offerWhileServing)
	pairs(serves, serves, true, &twoServed)
	return
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// queueCaller is one call from the trunk into the queue.
type queueCaller struct {
	id     uint32
	number string // its phone's, the From of the members' INVITEs

	invite, answered time.Time // INVITE sent, the queue's 200
	// Under queueBench.mu.
	offered time.Time            // the first member INVITE seen for it
	answers map[uint32]time.Time // member -> their 200
	// Written by the caller's goroutine alone.
	outcome string // answered | abandoned | overflowed_full | overflowed_wait | anything else: failed
	leg     *qLeg
}

// callerPool lends trunk phones, each with its own number, one call at a
// time: a member's INVITE shows the caller's number as From, so each call's
// offers are told apart.
type callerPool struct {
	n     *node
	media netip.AddrPort
	mu    sync.Mutex
	free  []*poolPhone
	all   []*poolPhone
}

type poolPhone struct {
	*sipphone.Phone
	number string
}

func (cp *callerPool) get() (*poolPhone, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if k := len(cp.free); k > 0 {
		p := cp.free[k-1]
		cp.free = cp.free[:k-1]
		return p, nil
	}
	number := fmt.Sprintf("+1650555%04d", len(cp.all)+1)
	p, err := sipphone.New(sipphone.Config{User: number, Domain: domain, Server: cp.n.sip, IP: trunkIP, MediaAddr: cp.media, Log: debugLog()})
	if err != nil {
		return nil, fmt.Errorf("caller phone: %w", err)
	}
	pp := &poolPhone{Phone: p, number: number}
	cp.all = append(cp.all, pp)
	return pp, nil
}

func (cp *callerPool) put(p *poolPhone) {
	cp.mu.Lock()
	cp.free = append(cp.free, p)
	cp.mu.Unlock()
}

func (cp *callerPool) close() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, p := range cp.all {
		p.Close()
	}
}

// queueBench runs the scenario on one node: its members' phones and the
// trunk's stay up across runs; each run has a queue of its own, so that
// the queue's counters are the run's.
type queueBench struct {
	n       *node
	o       queueOptions
	media   *queueMedia
	pool    *callerPool
	members []*queueMember
	nextID  atomic.Uint32
	offers  atomic.Int64 // members' calls in progress (a late INVITE may add one at any time)
	done    chan struct{}

	mu        sync.Mutex
	byNumber  map[string]*queueCaller // the calls up now, by their phone's number
	unmatched int
	answerMax time.Duration // this run's
	answerErr int
	lost      int
}

func queueMemberID(i int) string { return "qm" + strconv.Itoa(i+1) }

// queueRuns runs a queue per rate, then the race bursts.
func queueRuns(ctx context.Context, n *node, o queueOptions) ([]queueResult, error) {
	if o.members < 1 || o.members > 500 || o.raceMembers < 0 || o.raceMembers > 500 {
		return nil, errors.New("queue: -members and -race-members are 1..500 (0 for no race)")
	}
	media, err := newQueueMedia()
	if err != nil {
		return nil, err
	}
	defer media.close()
	b := &queueBench{n: n, o: o, media: media, done: make(chan struct{}), byNumber: map[string]*queueCaller{},
		pool: &callerPool{n: n, media: media.addr(qCallers)}}
	defer b.pool.close()
	defer close(b.done)
	if err := b.provision(max(o.members, o.raceMembers)); err != nil {
		return nil, err
	}
	defer func() {
		for _, m := range b.members {
			m.phone.Close()
		}
	}()
	var out []queueResult
	k := 0
	for _, rate := range o.rates {
		k++
		fmt.Printf("queue: %.0f callers/s for %s into %d members (%s), answering after 0-%s, talking %s; patience %s\n",
			rate, o.step, o.members, o.distribution, o.answerMax, o.talk, o.patience)
		r, err := b.run(ctx, k, o.members, o.distribution, max(o.maxCalls, 1), o.answerMax, func(call func()) {
			paceCalls(ctx, rate, o.step, call)
		})
		r.Kind, r.Rate, r.Seconds = "rate", rate, o.step.Seconds()
		printQueue(r)
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	if o.raceMembers > 0 {
		callers := o.raceCallers
		if callers <= 0 {
			callers = o.raceMembers
		}
		for round := range max(o.raceRounds, 1) {
			k++
			fmt.Printf("queue race %d: %d callers at once into %d members (%s), every member answering at once\n",
				round+1, callers, o.raceMembers, o.distribution)
			r, err := b.run(ctx, k, o.raceMembers, o.distribution, min(max(callers, o.maxCalls), 500), 0, func(call func()) {
				for range callers {
					call()
				}
			})
			r.Kind = "race"
			printQueue(r)
			out = append(out, r)
			if err != nil {
				return out, err
			}
		}
	}
	return out, queueFindings(out)
}

// paceCalls starts call rate times a second for d.
func paceCalls(ctx context.Context, rate float64, d time.Duration, call func()) {
	start := time.Now()
	for i := range int(rate * d.Seconds()) {
		if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		call()
	}
}

// provision creates count members and registers a phone for each, whose
// offers the scenario answers; existing users (409) are fine.
func (b *queueBench) provision(count int) error {
	for i := range count {
		code, err := b.n.api("POST", "/v1/users", map[string]any{"id": queueMemberID(i), "name": "Member " + strconv.Itoa(i+1),
			"extension": strconv.Itoa(71001 + i), "sip_password": password})
		if err == nil && code >= 300 && code != 409 {
			err = fmt.Errorf("provision member %s: status %d", queueMemberID(i), code)
		}
		if err != nil {
			return err
		}
	}
	for i := range count {
		p, err := b.n.phone(queueMemberID(i), false, b.media.addr(qMembers))
		if err != nil {
			return err
		}
		m := &queueMember{id: uint32(i + 1), phone: p}
		b.members = append(b.members, m)
		go b.ring(m)
	}
	return nil
}

// ring takes a member's offers as they come.
func (b *queueBench) ring(m *queueMember) {
	for {
		select {
		case <-b.done:
			return
		case in := <-m.phone.Incoming():
			b.offers.Add(1)
			go b.offer(m, in, time.Now())
		}
	}
}

// offer is one INVITE at a member's phone: it rings for a random while,
// unless withdrawn, then is answered; the member talks (RTP), then hangs
// up, unless the node hangs up first.
func (b *queueBench) offer(m *queueMember, in *sipphone.Call, at time.Time) {
	defer b.offers.Add(-1)
	b.mu.Lock()
	c := b.byNumber[in.From]
	switch {
	case c == nil:
		b.unmatched++
	case c.offered.IsZero():
		c.offered = at
	}
	answerMax := b.answerMax
	b.mu.Unlock()

	ring := interval{from: at}
	var delay time.Duration
	if answerMax > 0 {
		delay = rand.N(answerMax)
	}
	select {
	case <-in.Ended(): // withdrawn
		ring.to = time.Now()
		m.record(ring, nil, nil)
		return
	case <-time.After(delay):
	}
	err := in.Answer()
	answered := time.Now()
	ring.to = answered
	if err != nil {
		m.record(ring, nil, nil)
		b.mu.Lock()
		b.answerErr++
		b.mu.Unlock()
		return
	}
	if c != nil {
		b.mu.Lock()
		c.answers[m.id] = answered
		b.mu.Unlock()
	}
	leg := b.media.add(qMembers, in.RemoteMedia(), m.id, 2*time.Second)
	serve := interval{from: answered}
	select {
	case <-in.Ended():
		serve.to = time.Now()
	case <-time.After(b.o.talk):
		serve.to = time.Now() // free from here: the BYE is on its way
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = in.Hangup(ctx)
		cancel()
	}
	b.media.remove(qMembers, leg)
	if len(b.media.heard(leg)) == 0 && serve.to.Sub(serve.from) < b.o.talk {
		b.mu.Lock()
		b.lost++
		b.mu.Unlock()
	}
	m.record(ring, &serve, leg)
}

func (m *queueMember) record(ring interval, serve *interval, leg *qLeg) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rings = append(m.rings, ring)
	if serve != nil {
		m.serves = append(m.serves, *serve)
	}
	if leg != nil {
		m.legs = append(m.legs, leg)
	}
}

// call is one caller: it dials the queue from a trunk phone of its own and
// waits for a member's audio, the queue's hang-up, or its patience.
func (b *queueBench) call(number string) *queueCaller {
	c := &queueCaller{id: b.nextID.Add(1), answers: map[uint32]time.Time{}}
	p, err := b.pool.get()
	if err != nil {
		c.outcome = "phone"
		return c
	}
	defer b.pool.put(p)
	c.number = p.number
	b.mu.Lock()
	b.byNumber[p.number] = c
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.byNumber, p.number)
		b.mu.Unlock()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.invite = time.Now()
	call, err := p.Dial(ctx, number, nil)
	if err != nil {
		var rej *sipphone.ErrRejected
		switch {
		case errors.As(err, &rej) && rej.Code == 480:
			c.outcome = "overflowed_full"
		case errors.As(err, &rej):
			c.outcome = strconv.Itoa(rej.Code)
		default:
			c.outcome = "timeout_or_transport"
		}
		return c
	}
	c.answered = time.Now()
	c.leg = b.media.add(qCallers, call.RemoteMedia(), c.id, 0)
	defer b.media.remove(qCallers, c.leg)
	hangUp := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = call.Hangup(ctx)
	}
	select {
	case <-c.leg.first:
	case <-call.Ended():
		c.outcome = "ended_while_waiting"
		if time.Since(c.answered) >= time.Duration(b.o.maxWait)*time.Second-time.Second {
			c.outcome = "overflowed_wait"
		}
		return c
	case <-time.After(b.o.patience):
		hangUp()
		c.outcome = "abandoned"
		return c
	}
	c.outcome = "answered"
	// The member hangs up after talking; a call still up well after that
	// is ended here (and shows as a failure of the queue to hang up).
	select {
	case <-call.Ended():
	case <-time.After(b.o.talk + 10*time.Second):
		c.outcome = "not_hung_up"
		hangUp()
	}
	return c
}

// run creates queue k with the first members members, lets arrive start
// its callers, and measures once every call is over.
func (b *queueBench) run(ctx context.Context, k, members int, distribution string, maxCalls int, answerMax time.Duration, arrive func(call func())) (queueResult, error) {
	id := "bench-q" + strconv.Itoa(k)
	number := fmt.Sprintf("+14155570%03d", k)
	res := queueResult{Queue: id, Members: members, Distribution: distribution, Failed: map[string]int{}}
	var ms []map[string]any
	for i := range members {
		ms = append(ms, map[string]any{"user": queueMemberID(i), "order": i + 1})
	}
	_, _ = b.n.api("DELETE", "/v1/queues/"+id, nil) // a node kept from an earlier run (-sip)
	code, err := b.n.api("POST", "/v1/queues", map[string]any{"id": id, "name": "Bench " + strconv.Itoa(k), "extension": strconv.Itoa(7000 + k),
		"numbers": []string{number}, "members": ms, "distribution": distribution, "max_calls": maxCalls, "max_wait_seconds": b.o.maxWait})
	if err == nil && code != 201 {
		err = fmt.Errorf("create queue %s: status %d", id, code)
	}
	if err != nil {
		return res, err
	}
	if err := b.waitAvailable(id, members); err != nil {
		return res, err
	}
	b.mu.Lock()
	b.answerMax, b.unmatched, b.answerErr, b.lost = answerMax, 0, 0, 0
	b.mu.Unlock()
	for _, m := range b.members {
		m.mu.Lock()
		m.rings, m.serves, m.legs = nil, nil, nil
		m.mu.Unlock()
	}
	b.media.mu.Lock()
	b.media.stray = [2]int{}
	b.media.mu.Unlock()

	cpu0, gen0, m0 := b.n.cpu(), selfCPU(), b.n.scrape(false)
	var mu sync.Mutex
	var callers []*queueCaller
	var wg sync.WaitGroup
	start := time.Now()
	arrive(func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := b.call(number)
			mu.Lock()
			callers = append(callers, c)
			progress("%s: %d callers done, %.0fs", id, len(callers), time.Since(start).Seconds())
			mu.Unlock()
		}()
	})
	wg.Wait()
	for deadline := time.Now().Add(b.o.talk + 10*time.Second); b.offers.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	progress("")
	st, err := b.settledStats(id)
	res.CPUSeconds, res.GenCPU = b.n.cpu()-cpu0, selfCPU()-gen0
	res.RSSKB = b.n.rss()
	m1 := b.n.scrape(true)
	res.HeapKB, res.Goroutines = int64(m1.heapBytes/1024), int(m1.goroutines)
	res.Stats = st
	b.tally(&res, callers)
	if len(callers) > 0 {
		res.CPUPerCallMs = res.CPUSeconds * 1000 / float64(len(callers))
		res.EtcdWritesPerCall = (m1.etcdWrites - m0.etcdWrites) / float64(len(callers))
	}
	res.Disagreements = disagreements(res, st)
	return res, err
}

// waitAvailable waits until the queue sees every member available.
func (b *queueBench) waitAvailable(id string, members int) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := b.n.queueStats(id)
		if err == nil {
			ok := 0
			for _, m := range st.Members {
				if m.State == "available" {
					ok++
				}
			}
			if ok == members {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("queue %s: %d of %d members available after 10 s: %+v", id, ok, members, st.Members)
			}
		} else if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settledStats reads the queue's stats once nobody waits, rings or talks
// (or after 15 s).
func (b *queueBench) settledStats(id string) (queueStats, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := b.n.queueStats(id)
		if err == nil && st.settled() || time.Now().After(deadline) {
			return st, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tally counts what the callers and the members' phones saw.
func (b *queueBench) tally(res *queueResult, callers []*queueCaller) {
	res.Callers = len(callers)
	var offers, waits, bridges []time.Duration
	var waitSum time.Duration
	inSL := 0
	heardBy := map[uint32]map[uint32]bool{} // caller -> members whose leg heard it
	for _, m := range b.members {
		m.mu.Lock()
		two, during, served := memberOverlaps(m.rings, m.serves)
		for _, l := range m.legs {
			for c := range b.media.heard(l) {
				if heardBy[c] == nil {
					heardBy[c] = map[uint32]bool{}
				}
				heardBy[c][m.id] = true
			}
		}
		m.mu.Unlock()
		res.Checks.TwoOffers.merge(two)
		res.Checks.OfferWhileServing.merge(during)
		res.Checks.TwoServed.merge(served)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range callers {
		switch c.outcome {
		case "answered":
			res.Answered++
		case "abandoned":
			res.Abandoned++
		case "overflowed_full":
			res.OverflowedFull++
		case "overflowed_wait":
			res.OverflowedWait++
		default:
			res.Failed[c.outcome]++
		}
		if !c.offered.IsZero() {
			offers = append(offers, c.offered.Sub(c.invite))
		}
		if c.leg == nil {
			continue
		}
		heard := b.media.heard(c.leg)
		if len(heard) > 1 {
			res.Checks.CallerHeardTwo++
		}
		if len(heardBy[c.id]) > 1 {
			res.Checks.HeardByTwo++
		}
		var first time.Time
		var who uint32
		for m, at := range heard {
			if !heardBy[c.id][m] {
				res.Checks.Crossed++
			}
			if first.IsZero() || at.Before(first) {
				first, who = at, m
			}
		}
		if first.IsZero() {
			continue
		}
		w := first.Sub(c.answered)
		waits, waitSum = append(waits, w), waitSum+w
		if ans, ok := c.answers[who]; ok {
			bridges = append(bridges, first.Sub(ans))
			if ans.Sub(c.answered) <= serviceLevel {
				inSL++
			}
		}
	}
	res.OfferP50ms, res.OfferP99ms = pct(offers, 0.5), pct(offers, 0.99)
	res.WaitP50s, res.WaitP99s = pct(waits, 0.5)/1000, pct(waits, 0.99)/1000
	if len(waits) > 0 {
		res.WaitMeanS = waitSum.Seconds() / float64(len(waits))
	}
	res.BridgeP50ms, res.BridgeP99ms = pct(bridges, 0.5), pct(bridges, 0.99)
	res.ServiceLevelPercent = 100
	if n := res.Answered + res.Abandoned; n > 0 {
		res.ServiceLevelPercent = 100 * float64(inSL) / float64(n)
	}
	res.Checks.LostRaces, res.Checks.AnswerFailed, res.Checks.UnmatchedOffers = b.lost, b.answerErr, b.unmatched
	b.media.mu.Lock()
	res.Checks.Stray = b.media.stray[qCallers] + b.media.stray[qMembers]
	b.media.mu.Unlock()
}

func (o *overlap) merge(p overlap) {
	o.Count += p.Count
	o.LongestMs = max(o.LongestMs, p.LongestMs)
}

// disagreements lists where the queue's stats differ from what the callers
// saw. The average wait is in whole seconds, and a caller's wait ends at
// their member's audio rather than at the answer: within 1 s agrees.
func disagreements(r queueResult, st queueStats) []string {
	var out []string
	check := func(name string, stats, callers int) {
		if stats != callers {
			out = append(out, fmt.Sprintf("%s: stats %d, callers %d", name, stats, callers))
		}
	}
	check("waiting", st.Waiting, 0)
	check("completed", st.Completed, r.Answered)
	check("abandoned", st.Abandoned, r.Abandoned)
	check("overflowed", st.Overflowed, r.OverflowedFull+r.OverflowedWait)
	if r.Answered > 0 && (float64(st.AverageWaitSeconds) > r.WaitMeanS+1 || float64(st.AverageWaitSeconds) < r.WaitMeanS-1) {
		out = append(out, fmt.Sprintf("average wait: stats %d s, callers %.1f s", st.AverageWaitSeconds, r.WaitMeanS))
	}
	// One call either way is the most two clocks a few ms apart can differ by.
	if n := r.Answered + r.Abandoned; n > 0 {
		if d := st.ServiceLevelPercent - r.ServiceLevelPercent; d > 100/float64(n)+0.01 || d < -100/float64(n)-0.01 {
			out = append(out, fmt.Sprintf("service level: stats %.1f%%, callers %.1f%%", st.ServiceLevelPercent, r.ServiceLevelPercent))
		}
	}
	return out
}

// queueStats reads GET /v1/queues/{id}/stats.
func (n *node) queueStats(id string) (queueStats, error) {
	var st queueStats
	req, _ := http.NewRequest("GET", "http://"+n.http+"/v1/queues/"+id+"/stats", nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("queue stats %s: %w", id, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return st, fmt.Errorf("queue stats %s: %s", id, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("queue stats %s: %w", id, err)
	}
	return st, nil
}

// nodeMetrics are a few of the node's /metrics.
type nodeMetrics struct {
	heapBytes, goroutines float64
	etcdWrites            float64 // puts, transactions and deletes so far
}

// scrape reads the node's /metrics (zeroes when it cannot). With collect
// and pprof served (-pprof), a heap profile taken first collects the
// garbage, so that the heap is what is live.
func (n *node) scrape(collect bool) nodeMetrics {
	var m nodeMetrics
	if collect && n.pprof != "" {
		if res, err := http.Get("http://" + n.pprof + "/debug/pprof/heap?gc=1"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	}
	res, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return m
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		switch {
		case err != nil:
		case name == "go_memstats_heap_inuse_bytes":
			m.heapBytes = v
		case name == "go_goroutines":
			m.goroutines = v
		case name == `switchboard_etcd_request_seconds_count{op="put"}`, name == `switchboard_etcd_request_seconds_count{op="txn"}`,
			name == `switchboard_etcd_request_seconds_count{op="delete"}`:
			m.etcdWrites += v
		}
	}
	return m
}

func printQueue(r queueResult) {
	what := fmt.Sprintf("%.0f/s for %.0fs", r.Rate, r.Seconds)
	if r.Kind == "race" {
		what = "burst"
	}
	fmt.Printf("  %s (%s, %d members, %s): %d callers: answered %d, abandoned %d, overflowed %d (full %d, max wait %d), failed %s\n",
		r.Queue, what, r.Members, r.Distribution, r.Callers, r.Answered, r.Abandoned, r.OverflowedFull+r.OverflowedWait, r.OverflowedFull, r.OverflowedWait, fmtFailed(r.Failed))
	fmt.Printf("    first offer p50 %.1f p99 %.1f ms (INVITE → a member's INVITE); wait p50 %.2f p99 %.2f mean %.2f s (queue's 200 → member's audio); bridge p50 %.1f p99 %.1f ms (member's 200 → their audio at the caller)\n",
		r.OfferP50ms, r.OfferP99ms, r.WaitP50s, r.WaitP99s, r.WaitMeanS, r.BridgeP50ms, r.BridgeP99ms)
	fmt.Printf("    node cpu %.2f s (%.2f ms per caller), etcd writes %.1f per caller, rss %.1f MiB, afterwards heap in use %.1f MiB and %d goroutines; generator cpu %.2f s\n",
		r.CPUSeconds, r.CPUPerCallMs, r.EtcdWritesPerCall, float64(r.RSSKB)/1024, float64(r.HeapKB)/1024, r.Goroutines, r.GenCPU)
	st := r.Stats
	fmt.Printf("    stats:   waiting %d, completed %d, abandoned %d, overflowed %d, average wait %d s, service level %.1f%%\n",
		st.Waiting, st.Completed, st.Abandoned, st.Overflowed, st.AverageWaitSeconds, st.ServiceLevelPercent)
	fmt.Printf("    callers: waiting 0, completed %d, abandoned %d, overflowed %d, average wait %.1f s, service level %.1f%%: ",
		r.Answered, r.Abandoned, r.OverflowedFull+r.OverflowedWait, r.WaitMeanS, r.ServiceLevelPercent)
	if len(r.Disagreements) == 0 {
		fmt.Println("agree")
	} else {
		fmt.Printf("DISAGREE: %v\n", r.Disagreements)
	}
	c := r.Checks
	fmt.Printf("    never: caller connected twice %d, caller heard by two members %d, crossed %d, member offered two at once %d (longest %.1f ms), offered while on a call %d (longest %.1f ms), on two calls %d (longest %.1f ms)\n",
		c.CallerHeardTwo, c.HeardByTwo, c.Crossed, c.TwoOffers.Count, c.TwoOffers.LongestMs, c.OfferWhileServing.Count, c.OfferWhileServing.LongestMs, c.TwoServed.Count, c.TwoServed.LongestMs)
	fmt.Printf("    races lost %d, answers failed %d, unmatched offers %d, stray packets %d\n", c.LostRaces, c.AnswerFailed, c.UnmatchedOffers, c.Stray)
	if os.Getenv("BENCH_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "%+v\n", r)
	}
}

// violations is the sum of the counts that must be 0.
func (c queueChecks) violations() int {
	return c.CallerHeardTwo + c.HeardByTwo + c.Crossed + c.TwoOffers.Count + c.OfferWhileServing.Count + c.TwoServed.Count
}

// queueFindings is an error naming the runs that broke a promise or whose
// stats disagree with their callers, nil when none did.
func queueFindings(rs []queueResult) error {
	var bad []string
	for _, r := range rs {
		if v := r.Checks.violations(); v > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d of what must never happen", r.Queue, v))
		}
		if len(r.Disagreements) > 0 {
			bad = append(bad, fmt.Sprintf("%s: stats disagree with the callers", r.Queue))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("queue: %s", strings.Join(bad, "; "))
}
