package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// The sms scenario: a carrier texts a Team SMS queue's number from many
// outside numbers at a rate, each MESSAGE timed to its 202, and every
// accepted message is looked for afterwards in the queue's threads, its
// sms-stats and a member's event stream. Then members race: every member
// replies to every one of a set of unclaimed threads at once, and each
// thread must have been claimed by exactly one of them, the others told who
// holds it, and exactly one reply, the winner's, must leave through the
// trunk from the queue's number.

// smsOptions are the scenario's flags.
type smsOptions struct {
	rates   []float64     // MESSAGEs a second from the carrier, one run per rate
	step    time.Duration // how long each rate is offered
	peers   int           // outside numbers texting in turn (0: a new number per message)
	agents  int           // members of each queue, each replying with their own token
	threads int           // threads raced for in each claim burst
	rounds  int           // claim bursts
}

const (
	// smsTrunkIP is the address the scenario's carrier sends from, trusted
	// by a trunk of its own, which is also the node's outbound trunk: the
	// members' replies come back to the same socket.
	smsTrunkIP = "127.0.0.4"
	smsTrunkID = "bench-sms"
)

// smsInboundResult is one rate of MESSAGEs into a queue of its own.
type smsInboundResult struct {
	Queue    string         `json:"queue"`
	Rate     float64        `json:"rate_per_s"`
	Seconds  float64        `json:"seconds"`
	Peers    int            `json:"peers"` // distinct outside numbers the messages came from
	Offered  int            `json:"offered"`
	Accepted int            `json:"accepted"` // answered 202
	Failed   map[string]int `json:"failed,omitempty"`
	Achieved float64        `json:"achieved_per_s"` // accepted over the seconds offered
	// The MESSAGE to its final answer, over the accepted ones.
	P50ms float64 `json:"accepted_p50_ms"`
	P95ms float64 `json:"accepted_p95_ms"`
	P99ms float64 `json:"accepted_p99_ms"`
	// CPUSeconds is the node's while the messages were offered (and
	// answered); per message offered.
	CPUSeconds       float64 `json:"node_cpu_s"`
	CPUPerMsgMs      float64 `json:"node_cpu_ms_per_message"`
	EtcdWritesPerMsg float64 `json:"node_etcd_writes_per_message"`
	RSSKB            int64   `json:"node_rss_kb"`
	// After the run: the node's heap in use (after a collection when it
	// serves pprof), its goroutines, and the thread grains it holds.
	HeapKB       int64    `json:"node_heap_inuse_kb"`
	Goroutines   int      `json:"node_goroutines"`
	ThreadGrains int      `json:"node_thread_grains"`
	GenCPU       float64  `json:"generator_cpu_s"`
	Shown        smsShown `json:"shown"`
}

// smsShown is where the run's messages show up afterwards.
type smsShown struct {
	Threads      int `json:"threads"`       // GET /v1/sms/threads?owner=<queue>
	Messages     int `json:"messages"`      // inbound messages on those threads
	StatsInbound int `json:"stats_inbound"` // GET /v1/queues/<queue>/sms-stats
	SSEReceived  int `json:"sse_received"`  // sms.received on a member's event stream
	SSEDropped   int `json:"sse_dropped"`   // events the node dropped for that stream
	// Findings: a count outside what was sent (fewer than were accepted, or
	// more than were offered).
	Findings []string `json:"findings,omitempty"`
}

// smsClaimsResult is one burst: every agent replying to every thread.
type smsClaimsResult struct {
	Queue   string `json:"queue"`
	Round   int    `json:"round"`
	Agents  int    `json:"agents"`
	Threads int    `json:"threads"`
	Replies int    `json:"replies"` // POSTs in the burst
	// BurstMs: the burst's start to its last answer; ClaimsPerS is threads
	// over that.
	BurstMs    float64 `json:"burst_ms"`
	ClaimsPerS float64 `json:"claims_per_s"`
	// From the burst's start: every answer, and each thread's winning 200.
	AnswerP50ms float64 `json:"answer_p50_ms"`
	AnswerP99ms float64 `json:"answer_p99_ms"`
	ClaimP50ms  float64 `json:"claim_p50_ms"`
	ClaimP99ms  float64 `json:"claim_p99_ms"`
	// The burst's start to the last winner's reply at the trunk.
	DeliveredMs         float64         `json:"delivered_ms"`
	CPUSeconds          float64         `json:"node_cpu_s"`
	CPUPerReplyMs       float64         `json:"node_cpu_ms_per_reply"`
	EtcdWritesPerThread float64         `json:"node_etcd_writes_per_thread"`
	Checks              smsClaimsChecks `json:"checks"`
}

// smsClaimsChecks are what the burst must show: each thread claimed once,
// the others refused naming the holder, one reply out per thread.
type smsClaimsChecks struct {
	Claimed      int `json:"claimed"`       // threads with exactly one 200
	DoubleClaims int `json:"double_claims"` // threads with more than one 200
	Unclaimed    int `json:"unclaimed"`     // threads with no 200
	Refused      int `json:"refused"`       // 409 thread_claimed naming the winner
	// WrongHolder: 409 thread_claimed naming someone other than the one 200.
	WrongHolder int `json:"refusals_naming_another"`
	// Other: answers neither 200 nor 409 thread_claimed, by "status code".
	Other map[string]int `json:"other_answers,omitempty"`
	// At the trunk: replies to the threads' peers.
	TrunkReplies   int `json:"trunk_replies"`
	NoReply        int `json:"threads_without_reply"`
	ExtraReplies   int `json:"extra_replies"`           // beyond one per thread, or to no thread's peer
	WrongFrom      int `json:"replies_not_from_queue"`  // From is not the queue's number
	NotWinners     int `json:"replies_not_the_winners"` // the text of an agent who did not win
	HolderDisagree int `json:"claimed_by_disagrees"`    // the thread's claimed_by afterwards is not the winner
	// SSEClaimed counts sms.claimed on a member's stream (one per thread
	// unless the node dropped events for it: SSEDropped).
	SSEClaimed int `json:"sse_claimed"`
	SSEDropped int `json:"sse_dropped"`
	// SSEClaimsOff: how far sms.claimed is from one per thread, when the
	// node dropped none of the stream's events.
	SSEClaimsOff int `json:"sse_claimed_off"`
}

// violations is the sum of what must be 0.
func (c smsClaimsChecks) violations() int {
	return c.DoubleClaims + c.Unclaimed + c.WrongHolder + failures(c.Other) + c.NoReply + c.ExtraReplies +
		c.WrongFrom + c.NotWinners + c.HolderDisagree + c.SSEClaimsOff
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// claimAnswer is one agent's answer to their reply.
type claimAnswer struct {
	agent        string
	status       int
	code, holder string
	took         time.Duration // from the burst's start
}

// smsMsg is a MESSAGE that reached the trunk, and when.
type smsMsg struct {
	from, to, text string
	at             time.Time
}

// replyText is what agent replies to peer: the text at the trunk says
// whose reply went out.
func replyText(agent, peer string) string { return "reply from " + agent + " to " + peer }

// tallyClaims checks a burst: answers by thread, the threads' peers, the
// MESSAGEs the trunk got, and each thread's claimed_by afterwards.
func tallyClaims(threads []string, peerOf map[string]string, answers map[string][]claimAnswer, trunk []smsMsg,
	queueNumber string, claimedBy map[string]string) smsClaimsChecks {
	c := smsClaimsChecks{Other: map[string]int{}, TrunkReplies: len(trunk)}
	byPeer := map[string][]smsMsg{}
	for _, m := range trunk {
		byPeer[m.to] = append(byPeer[m.to], m)
	}
	for _, t := range threads {
		winner := ""
		wins := 0
		for _, a := range answers[t] {
			if a.status == http.StatusOK {
				wins++
				winner = a.agent
			}
		}
		switch wins {
		case 0:
			c.Unclaimed++
		case 1:
			c.Claimed++
		default:
			c.DoubleClaims++
			winner = ""
		}
		for _, a := range answers[t] {
			switch {
			case a.status == http.StatusOK:
			case a.status == http.StatusConflict && a.code == "thread_claimed" && a.holder == winner && winner != "":
				c.Refused++
			case a.status == http.StatusConflict && a.code == "thread_claimed":
				c.WrongHolder++
			default:
				c.Other[strings.TrimSpace(strconv.Itoa(a.status)+" "+a.code)]++
			}
		}
		peer := peerOf[t]
		got := byPeer[peer]
		delete(byPeer, peer)
		switch {
		case len(got) == 0:
			c.NoReply++
		case len(got) > 1:
			c.ExtraReplies += len(got) - 1
		}
		for _, m := range got {
			if m.from != queueNumber {
				c.WrongFrom++
			}
			if winner == "" || m.text != replyText(winner, peer) {
				c.NotWinners++
			}
		}
		if winner != "" && claimedBy[t] != winner {
			c.HolderDisagree++
		}
	}
	for _, ms := range byPeer {
		c.ExtraReplies += len(ms)
	}
	if len(c.Other) == 0 {
		c.Other = nil
	}
	return c
}

// shownFindings says where a count of what showed up falls outside what
// was sent: below the accepted (a 202 is a promise the message is stored),
// or above the offered (stored twice). Between the two are messages whose
// answer was lost or late but which were stored.
func shownFindings(s smsShown, offered, accepted, threadsOffered, threadsAccepted int) []string {
	var out []string
	check := func(what string, got, low, high int) {
		switch {
		case got < low:
			out = append(out, fmt.Sprintf("%s: %d, fewer than the %d accepted", what, got, low))
		case got > high:
			out = append(out, fmt.Sprintf("%s: %d, more than the %d offered", what, got, high))
		}
	}
	check("threads", s.Threads, threadsAccepted, threadsOffered)
	check("messages on the threads", s.Messages, accepted, offered)
	check("sms-stats inbound", s.StatsInbound, accepted, offered)
	// The stream is best effort: a count short of what was sent is a finding
	// only when the node dropped none of its events.
	if s.SSEDropped == 0 {
		check("sms.received events", s.SSEReceived, accepted, offered)
	}
	return out
}

// ---- the carrier --------------------------------------------------------------

// smsTrunk is the carrier: one SIP socket that sends MESSAGEs from any
// outside number, and takes the MESSAGEs the node sends out through it.
type smsTrunk struct {
	ua   *sipgo.UserAgent
	cli  *sipgo.Client
	addr string
	node sip.Uri

	mu     sync.Mutex
	got    []smsMsg
	signal chan struct{} // a MESSAGE arrived (buffered 1)
}

func newSMSTrunk(n *node) (*smsTrunk, error) {
	pc, err := net.ListenPacket("udp", smsTrunkIP+":0")
	if err != nil {
		return nil, fmt.Errorf("sms trunk: %w", err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	host, nodePort, err := net.SplitHostPort(n.sip)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("sms trunk: node address %q: %w", n.sip, err)
	}
	np, _ := strconv.Atoi(nodePort)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("bench-carrier"), sipgo.WithUserAgentHostname(domain))
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("sms trunk: %w", err)
	}
	log := debugLog()
	var srvOpts []sipgo.ServerOption
	var cliOpts []sipgo.ClientOption
	if log != nil {
		srvOpts, cliOpts = append(srvOpts, sipgo.WithServerLogger(log)), append(cliOpts, sipgo.WithClientLogger(log))
	}
	srv, err := sipgo.NewServer(ua, srvOpts...)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("sms trunk: %w", err)
	}
	// Requests leave from the listener: the node trusts the trunk by it.
	cli, err := sipgo.NewClient(ua, append(cliOpts, sipgo.WithClientHostname(smsTrunkIP), sipgo.WithClientPort(port),
		sipgo.WithClientConnectionAddr(pc.LocalAddr().String()))...)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("sms trunk: %w", err)
	}
	t := &smsTrunk{ua: ua, cli: cli, addr: pc.LocalAddr().String(), node: sip.Uri{Scheme: "sip", Host: host, Port: np},
		signal: make(chan struct{}, 1)}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		m := smsMsg{text: string(req.Body()), at: time.Now()}
		if f := req.From(); f != nil {
			m.from = f.Address.User
		}
		if to := req.To(); to != nil {
			m.to = to.Address.User
		}
		t.mu.Lock()
		t.got = append(t.got, m)
		t.mu.Unlock()
		select {
		case t.signal <- struct{}{}:
		default:
		}
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() { _ = srv.ServeUDP(pc) }()
	for deadline := time.Now().Add(2 * time.Second); ua.TransportLayer().Pool("udp").Get(t.addr) == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.close()
			return nil, fmt.Errorf("sms trunk: listener %s not serving", t.addr)
		}
	}
	return t, nil
}

func (t *smsTrunk) close() { _ = t.ua.Close() }

// send sends text from the outside number from to the number to, and
// returns the final answer's status and how long it took.
func (t *smsTrunk) send(ctx context.Context, from, to, text string) (int, time.Duration, error) {
	uri := t.node
	uri.User = to
	req := sip.NewRequest(sip.MESSAGE, uri)
	fh := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: from, Host: smsTrunkIP}, Params: sip.NewParams()}
	fh.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(fh)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: to, Host: domain}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	req.SetBody([]byte(text))
	req.SetTransport("UDP")
	t0 := time.Now()
	res, err := t.cli.Do(ctx, req)
	if err != nil {
		return 0, 0, fmt.Errorf("MESSAGE from %s to %s: %w", from, to, err)
	}
	return res.StatusCode, time.Since(t0), nil
}

// take returns the MESSAGEs that arrived since the last take.
func (t *smsTrunk) take() []smsMsg {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.got
	t.got = nil
	return out
}

// await waits until at least want MESSAGEs have arrived since the last
// take, or until within passes, then settles for quiet, so that a
// duplicate following the last is counted too.
func (t *smsTrunk) await(want int, within, quiet time.Duration) {
	deadline := time.After(within)
	for {
		t.mu.Lock()
		n := len(t.got)
		t.mu.Unlock()
		if n >= want {
			break
		}
		select {
		case <-t.signal:
		case <-deadline:
			return
		}
	}
	time.Sleep(quiet)
}

// ---- the REST side --------------------------------------------------------------

// request sends a JSON request with token and returns the status and the
// body.
func (n *node) request(c *http.Client, token, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, "http://"+n.http+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return res.StatusCode, data, nil
}

// smsThread is a thread as GET /v1/sms/threads lists it.
type smsThread struct {
	ID        string `json:"id"`
	Peer      string `json:"peer"`
	ClaimedBy string `json:"claimed_by"`
	Messages  []struct {
		Direction string `json:"direction"`
	} `json:"messages"`
}

// smsThreads lists owner's threads, every page.
func (n *node) smsThreads(owner string) ([]smsThread, error) {
	var out []smsThread
	cursor := ""
	for {
		path := "/v1/sms/threads?owner=" + url.QueryEscape(owner)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		code, body, err := n.request(http.DefaultClient, n.token, "GET", path, nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("threads of %s: status %d: %s", owner, code, body)
		}
		var page struct {
			Items []smsThread `json:"items"`
			Next  string      `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("threads of %s: %w", owner, err)
		}
		out = append(out, page.Items...)
		if page.Next == "" || page.Next == cursor {
			return out, nil
		}
		cursor = page.Next
	}
}

// smsStatsInbound reads the queue's sms-stats inbound count.
func (n *node) smsStatsInbound(queue string) (int, error) {
	code, body, err := n.request(http.DefaultClient, n.token, "GET", "/v1/queues/"+url.PathEscape(queue)+"/sms-stats", nil)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("sms-stats of %s: status %d: %s", queue, code, body)
	}
	var st struct {
		Inbound int `json:"inbound"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("sms-stats of %s: %w", queue, err)
	}
	return st.Inbound, nil
}

// threadGrains reads how many thread grains the node holds (-1 when it
// cannot tell).
func (n *node) threadGrains() int {
	res, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `switchboard_actors{kind="thread"} `); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// smsEvents counts the sms.* events on one token's event stream, by type
// and thread owner.
type smsEvents struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	counts  map[string]int // "<type> <owner>"
	dropped int
}

// watchSMS opens the event stream of token.
func (n *node) watchSMS(token string) (*smsEvents, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+n.http+"/v1/events", nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("events: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("events: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		cancel()
		return nil, fmt.Errorf("events: status %d", res.StatusCode)
	}
	e := &smsEvents{cancel: cancel, done: make(chan struct{}), counts: map[string]int{}}
	connected := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(e.done)
		defer res.Body.Close()
		readSSE(res.Body, func(typ, data string) {
			if !strings.HasPrefix(typ, "sms.") {
				return
			}
			var ev struct {
				Data struct {
					Owner string `json:"owner"`
				} `json:"data"`
			}
			_ = json.Unmarshal([]byte(data), &ev)
			e.mu.Lock()
			e.counts[typ+" "+ev.Data.Owner]++
			e.mu.Unlock()
		}, func(comment string) {
			once.Do(func() { close(connected) })
			e.mu.Lock()
			e.dropped += droppedIn(comment)
			e.mu.Unlock()
		})
	}()
	// The stream says ": connected" once it is subscribed.
	select {
	case <-connected:
	case <-e.done:
	case <-time.After(5 * time.Second):
	}
	return e, nil
}

// count is how many events of typ about owner's threads arrived.
func (e *smsEvents) count(typ, owner string) (n, dropped int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[typ+" "+owner], e.dropped
}

// await waits until want events of typ about owner arrived, or within.
func (e *smsEvents) await(typ, owner string, want int, within time.Duration) (n, dropped int) {
	for deadline := time.Now().Add(within); ; time.Sleep(20 * time.Millisecond) {
		n, dropped = e.count(typ, owner)
		if n >= want || time.Now().After(deadline) {
			return n, dropped
		}
	}
}

func (e *smsEvents) close() {
	e.cancel()
	<-e.done
}

// droppedIn reads the count of the node's comment that events were
// dropped for a stream that fell behind (0 for any other comment).
func droppedIn(comment string) int {
	k, _, ok := strings.Cut(comment, " events dropped")
	if !ok {
		return 0
	}
	v, err := strconv.Atoi(strings.TrimSpace(k))
	if err != nil {
		return 0
	}
	return v
}

// readSSE reads a Server-Sent Events stream: on gets each event's type and
// data, comment each comment line's text.
func readSSE(r io.Reader, on func(typ, data string), comment func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	typ, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				on(typ, data)
			}
			typ, data = "", ""
		case strings.HasPrefix(line, ":"):
			comment(strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:"):
			d := strings.TrimPrefix(line[len("data:"):], " ")
			if data != "" {
				data += "\n"
			}
			data += d
		}
	}
}

// ---- the scenario ---------------------------------------------------------------

type smsBench struct {
	n      *node
	o      smsOptions
	trunk  *smsTrunk
	agents []string
	tokens map[string]string
	peer   int // outside numbers used so far
}

func smsAgentID(i int) string { return "sa" + strconv.Itoa(i+1) }

// smsRuns runs the inbound rates, then the claim bursts.
func smsRuns(ctx context.Context, n *node, o smsOptions) ([]smsInboundResult, []smsClaimsResult, error) {
	if o.agents < 1 || o.agents > 500 || o.threads < 1 || o.peers < 0 {
		return nil, nil, errors.New("sms: -agents is 1..500, -threads at least 1, -peers at least 0")
	}
	trunk, err := newSMSTrunk(n)
	if err != nil {
		return nil, nil, err
	}
	defer trunk.close()
	b := &smsBench{n: n, o: o, trunk: trunk, tokens: map[string]string{}}
	if err := b.provision(); err != nil {
		return nil, nil, err
	}
	var in []smsInboundResult
	k := 0
	for _, rate := range o.rates {
		if ctx.Err() != nil {
			break
		}
		k++
		fmt.Printf("sms: %.0f MESSAGEs/s for %s from the trunk into a Team SMS queue of %d members\n", rate, o.step, o.agents)
		r, err := b.inbound(k, rate)
		printSMSInbound(r)
		in = append(in, r)
		if err != nil {
			return in, nil, err
		}
	}
	var cl []smsClaimsResult
	for round := range max(o.rounds, 1) {
		if ctx.Err() != nil {
			break
		}
		k++
		fmt.Printf("sms claims %d: %d members each reply to %d unclaimed threads at once\n", round+1, o.agents, o.threads)
		r, err := b.claims(k, round+1)
		printSMSClaims(r)
		cl = append(cl, r)
		if err != nil {
			return in, cl, err
		}
	}
	return in, cl, smsFindings(in, cl)
}

// provision creates the trunk (the node's outbound trunk, so replies come
// back here) and the agents, keeping each agent's token.
func (b *smsBench) provision() error {
	_, _ = b.n.api("DELETE", "/v1/trunks/"+smsTrunkID, nil) // a node kept from an earlier run (-sip)
	code, err := b.n.api("POST", "/v1/trunks", map[string]any{"id": smsTrunkID, "address": b.trunk.addr,
		"inbound_cidrs": []string{smsTrunkIP + "/32"}, "outbound": true})
	if err == nil && code != http.StatusCreated {
		err = fmt.Errorf("sms: create trunk: status %d", code)
	}
	if err != nil {
		return err
	}
	for i := range b.o.agents {
		id := smsAgentID(i)
		code, body, err := b.n.request(http.DefaultClient, b.n.token, "POST", "/v1/users", map[string]any{"id": id,
			"name": "Agent " + strconv.Itoa(i+1), "extension": strconv.Itoa(72001 + i), "sip_password": password})
		if err == nil && code == http.StatusConflict { // kept from an earlier run: a new token
			code, body, err = b.n.request(http.DefaultClient, b.n.token, "POST", "/v1/users/"+id+"/token", nil)
		}
		if err == nil && code >= 300 {
			err = fmt.Errorf("sms: agent %s: status %d: %s", id, code, body)
		}
		if err != nil {
			return err
		}
		var u struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(body, &u); err != nil || u.Token == "" {
			return fmt.Errorf("sms: agent %s: no token in %s", id, body)
		}
		b.agents = append(b.agents, id)
		b.tokens[id] = u.Token
	}
	return nil
}

// queue creates the Team SMS queue k of every agent and returns its id and
// number.
func (b *smsBench) queue(k int) (string, string, error) {
	id := "bench-sms" + strconv.Itoa(k)
	number := fmt.Sprintf("+14155580%03d", k)
	members := make([]map[string]any, len(b.agents))
	for i, a := range b.agents {
		members[i] = map[string]any{"user": a, "order": 1}
	}
	_, _ = b.n.api("DELETE", "/v1/queues/"+id, nil) // a node kept from an earlier run (-sip)
	code, err := b.n.api("POST", "/v1/queues", map[string]any{"id": id, "name": "Bench SMS " + strconv.Itoa(k),
		"numbers": []string{number}, "members": members, "team_sms": true})
	if err == nil && code != http.StatusCreated {
		err = fmt.Errorf("sms: create queue %s: status %d", id, code)
	}
	return id, number, err
}

// newPeer is an outside number not used before in this run of the bench.
func (b *smsBench) newPeer() string {
	b.peer++
	return fmt.Sprintf("+1650%07d", b.peer)
}

// inbound offers MESSAGEs at rate into a queue of its own, then looks for
// every accepted one.
func (b *smsBench) inbound(k int, rate float64) (smsInboundResult, error) {
	id, number, err := b.queue(k)
	res := smsInboundResult{Queue: id, Rate: rate, Seconds: b.o.step.Seconds(), Failed: map[string]int{}}
	if err != nil {
		return res, err
	}
	// The outside numbers, chosen up front: a message's is by its index.
	total := int(rate * b.o.step.Seconds())
	peers := make([]string, min(total, b.o.peers))
	if b.o.peers == 0 {
		peers = make([]string, total)
	}
	for i := range peers {
		peers[i] = b.newPeer()
	}
	if len(peers) == 0 {
		return res, nil
	}
	ev, err := b.n.watchSMS(b.tokens[b.agents[0]])
	if err != nil {
		return res, err
	}
	defer ev.close()

	var mu sync.Mutex
	offeredTo, acceptedFrom := map[string]bool{}, map[string]bool{}
	next := 0
	gen0, m0 := selfCPU(), b.n.scrape(false)
	st := paced(b.n, "sms", rate, b.o.step, func() (time.Duration, string) {
		mu.Lock()
		peer := peers[next%len(peers)]
		next++
		offeredTo[peer] = true
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, took, err := b.trunk.send(ctx, peer, number, "hello from "+peer)
		switch {
		case err != nil:
			return 0, "timeout_or_transport"
		case code != http.StatusAccepted:
			return 0, strconv.Itoa(code)
		}
		mu.Lock()
		acceptedFrom[peer] = true
		mu.Unlock()
		return took, ""
	})
	progress("")
	res.GenCPU, res.RSSKB = selfCPU()-gen0, b.n.rss()
	m1 := b.n.scrape(true)
	res.HeapKB, res.Goroutines, res.ThreadGrains = int64(m1.heapBytes/1024), int(m1.goroutines), b.n.threadGrains()
	res.Offered, res.Accepted, res.Failed, res.Achieved = int(st.Attempted), int(st.Succeeded), st.Failed, st.Achieved
	res.P50ms, res.P95ms, res.P99ms = st.SetupP50ms, st.SetupP95ms, st.SetupP99ms
	res.CPUSeconds = st.TargetCPU
	res.Peers = len(offeredTo)
	if res.Offered > 0 {
		res.CPUPerMsgMs = res.CPUSeconds * 1000 / float64(res.Offered)
		res.EtcdWritesPerMsg = (m1.etcdWrites - m0.etcdWrites) / float64(res.Offered)
	}
	if len(res.Failed) == 0 {
		res.Failed = nil
	}

	// A 202 comes once the message is stored: the threads and the stats
	// show it at once; the events may trail.
	shown, err := b.shown(id)
	if err != nil {
		return res, err
	}
	shown.SSEReceived, shown.SSEDropped = ev.await("sms.received", id, res.Accepted, 10*time.Second)
	shown.Findings = shownFindings(shown, res.Offered, res.Accepted, len(offeredTo), len(acceptedFrom))
	res.Shown = shown
	return res, nil
}

// shown counts the queue's threads, their inbound messages and its
// sms-stats inbound.
func (b *smsBench) shown(queue string) (smsShown, error) {
	var s smsShown
	ts, err := b.n.smsThreads(queue)
	if err != nil {
		return s, err
	}
	s.Threads = len(ts)
	for _, t := range ts {
		for _, m := range t.Messages {
			if m.Direction == "in" {
				s.Messages++
			}
		}
	}
	s.StatsInbound, err = b.n.smsStatsInbound(queue)
	return s, err
}

// claims opens threads unclaimed threads in a queue of its own (a MESSAGE
// from each of as many outside numbers), then every agent replies to every
// thread at once.
func (b *smsBench) claims(k, round int) (smsClaimsResult, error) {
	id, number, err := b.queue(k)
	res := smsClaimsResult{Queue: id, Round: round, Agents: len(b.agents), Threads: b.o.threads}
	if err != nil {
		return res, err
	}
	threads := make([]string, b.o.threads)
	peerOf := map[string]string{}
	var wg sync.WaitGroup
	errs := make(chan error, len(threads))
	sem := make(chan struct{}, 32)
	for i := range threads {
		peer := b.newPeer()
		threads[i] = id + ":" + peer
		peerOf[threads[i]] = peer
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code, _, err := b.trunk.send(ctx, peer, number, "please call me back")
			if err == nil && code != http.StatusAccepted {
				err = fmt.Errorf("sms: MESSAGE from %s to %s: status %d", peer, number, code)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return res, fmt.Errorf("sms: opening the threads: %w", err)
	}
	if ts, err := b.n.smsThreads(id); err != nil || len(ts) != len(threads) {
		return res, fmt.Errorf("sms: %s lists %d threads of %d opened: %v", id, len(ts), len(threads), err)
	}
	ev, err := b.n.watchSMS(b.tokens[b.agents[0]])
	if err != nil {
		return res, err
	}
	defer ev.close()

	// A connection per reply, opened before the burst: the burst times the
	// claims, not TCP handshakes.
	replies := len(threads) * len(b.agents)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: replies, MaxIdleConnsPerHost: replies}}
	defer client.CloseIdleConnections()
	b.warm(client, replies)
	b.trunk.take()

	var mu sync.Mutex
	answers := map[string][]claimAnswer{}
	start := make(chan struct{})
	var t0 time.Time
	cpu0, m0 := b.n.cpu(), b.n.scrape(false)
	for _, t := range threads {
		path := "/v1/sms/threads/" + url.PathEscape(t) + "/reply"
		for _, a := range b.agents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				a := b.reply(client, a, path, replyText(a, peerOf[t]))
				a.took = time.Since(t0)
				mu.Lock()
				answers[t] = append(answers[t], a)
				mu.Unlock()
			}()
		}
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	burst := time.Since(t0)
	b.trunk.await(len(threads), 10*time.Second, 500*time.Millisecond)
	trunk := b.trunk.take()
	res.CPUSeconds = b.n.cpu() - cpu0
	m1 := b.n.scrape(false)
	for _, m := range trunk {
		res.DeliveredMs = max(res.DeliveredMs, float64(m.at.Sub(t0).Microseconds())/1000)
	}

	claimedBy := map[string]string{}
	ts, err := b.n.smsThreads(id)
	if err != nil {
		return res, err
	}
	for _, t := range ts {
		claimedBy[t.ID] = t.ClaimedBy
	}
	res.Replies = replies
	res.BurstMs = float64(burst.Microseconds()) / 1000
	res.ClaimsPerS = float64(len(threads)) / burst.Seconds()
	var all, wins []time.Duration
	for _, as := range answers {
		for _, a := range as {
			all = append(all, a.took)
			if a.status == http.StatusOK {
				wins = append(wins, a.took)
			}
		}
	}
	res.AnswerP50ms, res.AnswerP99ms = pct(all, 0.5), pct(all, 0.99)
	res.ClaimP50ms, res.ClaimP99ms = pct(wins, 0.5), pct(wins, 0.99)
	res.CPUPerReplyMs = res.CPUSeconds * 1000 / float64(replies)
	res.EtcdWritesPerThread = (m1.etcdWrites - m0.etcdWrites) / float64(len(threads))
	res.Checks = tallyClaims(threads, peerOf, answers, trunk, number, claimedBy)
	c := &res.Checks
	c.SSEClaimed, c.SSEDropped = ev.await("sms.claimed", id, len(threads), 5*time.Second)
	time.Sleep(200 * time.Millisecond) // a second claim's event would trail the first
	if c.SSEClaimed, c.SSEDropped = ev.count("sms.claimed", id); c.SSEDropped == 0 {
		c.SSEClaimsOff = abs(c.SSEClaimed - len(threads))
	}
	return res, nil
}

// warm opens conns connections to the node at once and leaves them idle
// in client's pool.
func (b *smsBench) warm(client *http.Client, conns int) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if res, err := client.Get("http://" + b.n.http + "/healthz"); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	close(start)
	wg.Wait()
}

// reply posts agent's reply and reads the answer: the status, and for a
// refusal its code and holder.
func (b *smsBench) reply(client *http.Client, agent, path, text string) claimAnswer {
	a := claimAnswer{agent: agent}
	code, body, err := b.n.request(client, b.tokens[agent], "POST", path, map[string]any{"text": text})
	if err != nil {
		a.code = "transport"
		if os.Getenv("BENCH_DEBUG") != "" {
			fmt.Fprintln(os.Stderr, "reply:", err)
		}
		return a
	}
	a.status = code
	if code != http.StatusOK {
		var e struct {
			Error struct {
				Code   string `json:"code"`
				Holder string `json:"holder"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		a.code, a.holder = e.Error.Code, e.Error.Holder
	}
	return a
}

func printSMSInbound(r smsInboundResult) {
	fmt.Printf("  %s (%.0f/s for %.0fs from %d numbers): %d offered, %d accepted (%.1f/s), failed %s\n",
		r.Queue, r.Rate, r.Seconds, r.Peers, r.Offered, r.Accepted, r.Achieved, fmtFailed(r.Failed))
	fmt.Printf("    MESSAGE → 202 p50 %.1f p95 %.1f p99 %.1f ms; node cpu %.2f s (%.2f ms per message), etcd writes %.1f per message; generator cpu %.2f s\n",
		r.P50ms, r.P95ms, r.P99ms, r.CPUSeconds, r.CPUPerMsgMs, r.EtcdWritesPerMsg, r.GenCPU)
	fmt.Printf("    afterwards: node rss %.1f MiB, heap in use %.1f MiB, %d goroutines, %d thread grains\n",
		float64(r.RSSKB)/1024, float64(r.HeapKB)/1024, r.Goroutines, r.ThreadGrains)
	s := r.Shown
	fmt.Printf("    shown: %d threads, %d messages on them, sms-stats inbound %d, sms.received %d (dropped %d): ",
		s.Threads, s.Messages, s.StatsInbound, s.SSEReceived, s.SSEDropped)
	if len(s.Findings) == 0 {
		fmt.Println("every accepted message")
	} else {
		fmt.Printf("NOT AS SENT: %s\n", strings.Join(s.Findings, "; "))
	}
}

func printSMSClaims(r smsClaimsResult) {
	c := r.Checks
	fmt.Printf("  %s: %d replies to %d threads in %.1f ms: %.0f claims/s; answers p50 %.1f p99 %.1f ms, claims p50 %.1f p99 %.1f ms from the start\n",
		r.Queue, r.Replies, r.Threads, r.BurstMs, r.ClaimsPerS, r.AnswerP50ms, r.AnswerP99ms, r.ClaimP50ms, r.ClaimP99ms)
	fmt.Printf("    the last winner's reply at the trunk %.1f ms from the start; node cpu %.2f s (%.2f ms per reply), etcd writes %.1f per thread\n",
		r.DeliveredMs, r.CPUSeconds, r.CPUPerReplyMs, r.EtcdWritesPerThread)
	fmt.Printf("    claimed once %d, refused naming the holder %d; at the trunk %d replies; sms.claimed %d (dropped %d)\n",
		c.Claimed, c.Refused, c.TrunkReplies, c.SSEClaimed, c.SSEDropped)
	fmt.Printf("    never: double claims %d, unclaimed %d, refusals naming another %d, other answers %s, threads without a reply %d, extra replies %d, not from the queue %d, not the winner's %d, claimed_by disagrees %d, sms.claimed off by %d\n",
		c.DoubleClaims, c.Unclaimed, c.WrongHolder, fmtFailed(c.Other), c.NoReply, c.ExtraReplies, c.WrongFrom, c.NotWinners, c.HolderDisagree, c.SSEClaimsOff)
}

// smsFindings is an error naming the runs that broke a promise, nil when
// none did.
func smsFindings(in []smsInboundResult, cl []smsClaimsResult) error {
	var bad []string
	for _, r := range in {
		if len(r.Shown.Findings) > 0 {
			bad = append(bad, fmt.Sprintf("%s: %s", r.Queue, strings.Join(r.Shown.Findings, ", ")))
		}
	}
	for _, r := range cl {
		if v := r.Checks.violations(); v > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d of what must never happen", r.Queue, v))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("sms: %s", strings.Join(bad, "; "))
}
