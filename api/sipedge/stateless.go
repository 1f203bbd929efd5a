package sipedge

import (
	"encoding/hex"
	"hash/fnv"

	"github.com/emiago/sipgo/sip"
)

// statelessPrefix marks the To tags of responses sent statelessly.
const statelessPrefix = "sl-"

// statelessTag is the To tag of a response sent without a transaction: the
// same for a request and its retransmissions, as RFC 3261 8.2.6.2 wants of
// every response to one request, and the same for the ACK of that response
// (which repeats the request's Call-ID, From tag and branch), so the ACK
// can be recognised without any state. It is no secret: it only names.
func statelessTag(req *sip.Request) string {
	h := fnv.New64a()
	if c := req.CallID(); c != nil {
		h.Write([]byte(c.Value()))
	}
	h.Write([]byte{0})
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		h.Write([]byte(tag))
	}
	h.Write([]byte{0})
	if v := req.Via(); v != nil {
		branch, _ := v.Params.Get("branch")
		h.Write([]byte(branch))
	}
	var sum [8]byte
	return statelessPrefix + hex.EncodeToString(h.Sum(sum[:0]))
}

// ackOfStateless reports whether ack acknowledges a response we sent
// statelessly (a challenge or a refusal): it is absorbed, as a stateless
// proxy absorbs them, not counted as stray.
func ackOfStateless(ack *sip.Request) bool {
	to := ack.To()
	if to == nil {
		return false
	}
	tag, _ := to.Params.Get("tag")
	return len(tag) > len(statelessPrefix) && tag == statelessTag(ack)
}
