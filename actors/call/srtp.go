package call

import "time"

// srtpWarning is what a refused caller's phone is told (SIP Warning).
const srtpWarning = "SRTP is required for this user"

// plainRefused is the SRTP policy (INTERFACE: plain RTP is refused with
// 488 when the user's policy requires SRTP): required is the party's
// policy, srtp whether the SDP it sent (offer or answer) is SRTP.
func plainRefused(required, srtp bool) bool { return required && !srtp }

// refusePlain refuses a caller's plain-RTP offer: 488 with the reason in a
// Warning, and nobody rings.
func (c *Call) refusePlain(now time.Time) []Effect {
	cl := c.caller()
	cl.State = LegEnded
	return c.finish([]Effect{Respond{Leg: cl.ID, Code: 488, Reason: "Not Acceptable Here", Warning: srtpWarning}}, "failed", now)
}
