package thread

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard/switchboard/cluster/ask"
	"github.com/switchboard/switchboard/cluster/store"
	pb "github.com/switchboard/switchboard/proto"
)

// ID is the id of owner's thread with peer: the grain's identity.
func ID(owner, peer string) string { return owner + ":" + peer }

// Key is where the thread of owner and peer is stored, under owner's
// prefix so that an owner's threads are listed without a scan.
func Key(owner, peer string) string { return store.Key("sms-threads", owner, peer) }

// ownerPrefix is the prefix of owner's threads (the trailing slash keeps
// owner "q1" from listing "q10"'s).
func ownerPrefix(owner string) string { return store.Key("sms-threads", owner) + "/" }

// Client reaches thread grains: the node's SMS service commands threads
// only through it.
type Client struct{ r ask.Requester }

// NewClient returns a client over the cluster's grain requests.
func NewClient(r ask.Requester) Client { return Client{r: r} }

// Command sends cmd to its thread (cmd.ThreadId, else ID(cmd.Owner,
// cmd.Peer)). The answer is 200 with the thread as REST shows it, or a
// refusal's status, code, message and holder.
func (c Client) Command(cmd *pb.ThreadCommand) (*pb.ThreadResult, error) {
	id := cmd.ThreadId
	if id == "" {
		id = ID(cmd.Owner, cmd.Peer)
	}
	return ask.Grain[*pb.ThreadResult](c.r, KindName, id, cmd)
}

// List reads owner's stored threads from etcd, without waking their grains,
// the latest activity first. A claim whose release time has passed shows
// as released: its grain releases it at its next message, on whatever node
// it then runs.
func List(ctx context.Context, st store.Store, owner string) ([]View, error) {
	ts, err := stored(ctx, st, owner)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ts, func(a, b *Thread) int { return b.LastActivity.Compare(a.LastActivity) })
	out := make([]View, len(ts))
	for i, t := range ts {
		out[i] = t.View()
	}
	return out, nil
}

// SMSStats are a Team SMS queue's numbers since it began (GET
// /v1/queues/{id}/sms-stats).
type SMSStats struct {
	Inbound                  int     `json:"inbound"`
	Outbound                 int     `json:"outbound"`
	ManualReleased           int     `json:"manual_released"`
	TimeoutReleased          int     `json:"timeout_released"`
	AverageFirstReplySeconds float64 `json:"average_first_reply_seconds"`
}

// Stats sums the counters of owner's stored threads; a claim past its
// release time counts as released for silence, as List shows it.
func Stats(ctx context.Context, st store.Store, owner string) (SMSStats, error) {
	ts, err := stored(ctx, st, owner)
	if err != nil {
		return SMSStats{}, err
	}
	var s SMSStats
	var replies int
	var total time.Duration
	for _, t := range ts {
		s.Inbound += t.Inbound
		s.Outbound += t.Outbound
		s.ManualReleased += t.ManualReleases
		s.TimeoutReleased += t.TimeoutReleases
		replies += t.FirstReplies
		total += t.FirstReplyTotal
	}
	if replies > 0 {
		s.AverageFirstReplySeconds = total.Seconds() / float64(replies)
	}
	return s, nil
}

// stored reads owner's threads, each as of now (see List).
func stored(ctx context.Context, st store.Store, owner string) ([]*Thread, error) {
	kvs, err := st.List(ctx, ownerPrefix(owner), "", 0)
	if err != nil {
		return nil, fmt.Errorf("threads of %s: %w", owner, err)
	}
	now := time.Now()
	out := make([]*Thread, 0, len(kvs))
	for _, kv := range kvs {
		var t Thread
		if err := json.Unmarshal(kv.Value, &t); err != nil {
			return nil, fmt.Errorf("thread %s: decode: %w", kv.Key, err)
		}
		t.Step(Tick{}, now) // a lapsed claim, released (in this copy only)
		out = append(out, &t)
	}
	return out, nil
}

// Claim is a stored thread's claim: who holds it, and when it lapses for
// silence.
type Claim struct {
	Owner, Peer, Holder string
	Due                 time.Time
}

// Claimed lists every stored thread's claim: a node sweeps them so that a
// claim whose grain is not running (its node died), or whose holder left
// the queue, is released on time, by a grain woken for it.
func Claimed(ctx context.Context, st store.Store) ([]Claim, error) {
	kvs, err := st.List(ctx, store.Key("sms-threads")+"/", "", 0)
	if err != nil {
		return nil, fmt.Errorf("claimed threads: %w", err)
	}
	var out []Claim
	for _, kv := range kvs {
		var t Thread
		if err := json.Unmarshal(kv.Value, &t); err != nil || t.ClaimedBy == "" {
			continue
		}
		out = append(out, Claim{Owner: t.Owner, Peer: t.Peer, Holder: t.ClaimedBy, Due: t.LastActivity.Add(t.releaseAfter())})
	}
	return out, nil
}
