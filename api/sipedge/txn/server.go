package txn

import (
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

type serverState uint8

const (
	// proceeding: no final response yet.
	proceeding serverState = iota
	// completed: a final response sent; an INVITE's (non-2xx) is resent
	// until its ACK, another request's answers its retransmissions.
	completed
	// accepted: an INVITE's 2xx sent (RFC 6026); resent until the dialog
	// sees its ACK.
	accepted
	// confirmed: only the key is kept, to absorb late retransmissions.
	confirmed
	terminated
)

// ServerTx is a server transaction: a request received and the responses
// sent to it.
type ServerTx struct {
	l      *Layer
	key    string // "" when the request could not be matched (not kept)
	invite bool
	to     peer

	mu        sync.Mutex
	state     serverState
	req       *sip.Request // until the final response
	last      []byte       // the last response, to resend (UDP only)
	tag       string       // To tag of our responses (INVITE), for the 487
	gen       uint32
	interval  time.Duration
	deadline  time.Time
	cancelled bool
	onCancel  func()
	onNoAck   func()
}

// Respond sends res. A 2xx to an INVITE is resent until Acked; a non-2xx
// final until its ACK arrives; a final response to any other request
// answers its retransmissions for 64·T1.
func (tx *ServerTx) Respond(res *sip.Response) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.respondLocked(res)
}

// RespondStateless sends a final response once and forgets the
// transaction, as a stateless proxy answers (RFC 3261 16.11): nothing is
// resent and a retransmitted request is answered anew. Challenges and
// refusals of unauthenticated requests go this way, so that a spoofed
// source gets one response per request sent, not eleven over 32 s.
func (tx *ServerTx) RespondStateless(res *sip.Response) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state != proceeding {
		return ErrFinal
	}
	_, err := tx.l.send(tx.to, res)
	tx.terminateLocked()
	return err
}

func (tx *ServerTx) respondLocked(res *sip.Response) error {
	if tx.state != proceeding {
		return ErrFinal
	}
	wire, err := tx.l.send(tx.to, res)
	if err != nil {
		// A transport error on a final response ends the transaction (RFC
		// 3261 17.2.4): its peer is gone, or was never reachable. One on a
		// provisional does not: the request's retransmissions must still
		// be absorbed, and the final may yet get through.
		if res.StatusCode >= 200 {
			tx.terminateLocked()
		}
		return err
	}
	if to := res.To(); tx.invite && to != nil && tx.tag == "" {
		tx.tag, _ = to.Params.Get("tag")
	}
	code := res.StatusCode
	if code < 200 {
		tx.last = wire
		return nil
	}
	tx.req, tx.onCancel = nil, nil
	tx.last = wire
	now := tx.l.now()
	tx.deadline = now.Add(linger)
	switch {
	case tx.invite && code < 300:
		tx.state = accepted
	case tx.invite:
		tx.state = completed
	case tx.to.reliable():
		tx.terminateLocked()
		return nil
	default:
		tx.state = completed
		tx.armLocked(linger) // timer J
		return nil
	}
	if tx.to.reliable() {
		tx.last = nil
		tx.armLocked(linger) // timer H or L: the ACK's deadline
		return nil
	}
	tx.interval = T1
	tx.armLocked(T1) // timer G, or the 2xx's retransmission
	return nil
}

func (tx *ServerTx) armLocked(d time.Duration) {
	tx.gen++
	tx.l.timers.after(tx.l.now(), d, tx, tx.gen)
}

func (tx *ServerTx) terminateLocked() {
	tx.state = terminated
	tx.gen++
	tx.req, tx.last, tx.onCancel, tx.onNoAck = nil, nil, nil, nil
	tx.l.forget(tx.key, tx)
}

func (tx *ServerTx) expire(gen uint32) {
	tx.mu.Lock()
	if gen != tx.gen || tx.state == terminated {
		tx.mu.Unlock()
		return
	}
	var noAck func()
	now := tx.l.now()
	switch {
	case tx.state == proceeding:
		// The INVITE's 200 ms: nothing sent yet, the user is slow.
		if tx.last == nil && tx.req != nil {
			_ = tx.respondLocked(sip.NewResponseFromRequest(tx.req, 100, "Trying", nil))
		}
	case (tx.state == accepted || tx.state == completed && tx.invite) && now.Before(tx.deadline):
		if tx.last != nil {
			_ = tx.l.resend(tx.to, tx.last)
		}
		tx.interval = min(2*tx.interval, T2)
		tx.armLocked(min(tx.interval, tx.deadline.Sub(now)))
	case tx.state == accepted:
		noAck = tx.onNoAck // timer L without an ACK
		tx.terminateLocked()
	default:
		tx.terminateLocked() // timers H, I, J, or L after the ACK
	}
	tx.mu.Unlock()
	if noAck != nil {
		noAck()
	}
}

// retransmitted: the request came again. The last provisional or non-2xx
// final answers it; an INVITE not yet answered gets a 100 Trying (so that
// a slow answer stops its retransmissions).
func (tx *ServerTx) retransmitted() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	switch tx.state {
	case proceeding:
		if tx.last == nil && tx.invite && tx.req != nil {
			_ = tx.respondLocked(sip.NewResponseFromRequest(tx.req, 100, "Trying", nil))
			return
		}
	case completed:
	default:
		return // accepted: the 2xx is resent on its own timer (RFC 6026)
	}
	if tx.last != nil && !tx.to.reliable() {
		_ = tx.l.resend(tx.to, tx.last)
	}
}

// ack takes the ACK of a non-2xx final response; false when the ACK is the
// dialog's (a 2xx's ACK that reused the INVITE's branch).
func (tx *ServerTx) ack() bool {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	switch tx.state {
	case completed:
		if !tx.invite {
			return true
		}
		tx.state = confirmed
		tx.last = nil
		if tx.to.reliable() {
			tx.terminateLocked()
		} else {
			tx.armLocked(T4) // timer I
		}
		return true
	case accepted:
		return false
	}
	// Proceeding: nothing to acknowledge. Confirmed: a retransmitted ACK
	// (timer I), or one for a 2xx the dialog has seen acknowledged.
	return true
}

// Acked stops the 2xx's retransmissions: the dialog saw its ACK (or a
// request that implies it). The key stays until timer L to absorb the
// INVITE's late retransmissions.
func (tx *ServerTx) Acked() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.state != accepted {
		return
	}
	tx.state = confirmed
	tx.last, tx.onNoAck = nil, nil
	tx.armLocked(max(tx.deadline.Sub(tx.l.now()), 0))
}

// OnNoAck sets what runs when a 2xx went unacknowledged for 64·T1.
func (tx *ServerTx) OnNoAck(f func()) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.onNoAck = f
}

// OnCancel sets what runs when a CANCEL ends the pending INVITE (after the
// layer answered it 487); at once when one did already.
func (tx *ServerTx) OnCancel(f func()) {
	tx.mu.Lock()
	if tx.cancelled {
		tx.mu.Unlock()
		f()
		return
	}
	tx.onCancel = f
	tx.mu.Unlock()
}

// SetTag names the To tag of this INVITE's responses before any is sent,
// so that a 487 the layer sends for a CANCEL, and the CANCEL's 200, carry
// it too.
func (tx *ServerTx) SetTag(tag string) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.tag == "" {
		tx.tag = tag
	}
}

func (tx *ServerTx) toTag() string {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	return tx.tag
}

// cancel ends a pending INVITE with 487 (RFC 3261 9.2).
func (tx *ServerTx) cancel() {
	tx.mu.Lock()
	if tx.state != proceeding || !tx.invite || tx.req == nil {
		tx.mu.Unlock()
		return
	}
	res := sip.NewResponseFromRequest(tx.req, 487, "Request Terminated", nil)
	if tx.tag != "" {
		res.To().Params.Add("tag", tx.tag)
	}
	f := tx.onCancel // the final response clears it
	_ = tx.respondLocked(res)
	tx.cancelled = true
	tx.mu.Unlock()
	if f != nil {
		f()
	}
}
