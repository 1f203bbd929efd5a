package call

import (
	"testing"
	"time"
)

// A user whose policy requires SRTP may not use plain RTP (INTERFACE: 488):
// their INVITE's offer in plain RTP is refused with 488 and a Warning and
// rings nobody; their click-to-call device's plain answer ends the call
// before anybody else rings. Without the policy, plain RTP is fine.
func TestSRTPPolicy(t *testing.T) {
	srtpStart := func(required, offered bool) Start {
		s := startToBob
		s.CallerSRTP, s.OfferSRTP = required, offered
		return s
	}
	dialFromSRTP := dialBob
	dialFromSRTP.FromSRTP = true
	aliceRings := step{in: dialFromSRTP, want: ringAliceEffects, state: aliceRinging}
	refused := Respond{Leg: la, Code: 488, Reason: "Not Acceptable Here", Warning: "SRTP is required for this user"}

	cases := []struct {
		name  string
		steps []step
	}{
		{"SRTP required, plain offer: 488 saying why, rings nobody, a failed call in the caller's history", []step{
			{in: srtpStart(true, false),
				want:  effs([]Effect{refused}, ended("failed", aliceOnlyOut("failed"))...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"SRTP required, SRTP offer: rings as any call", []step{
			{in: srtpStart(true, true), want: ringBobEffects, state: ringingBob},
		}},
		{"no policy, plain offer: rings as any call", []step{
			{in: srtpStart(false, false), want: ringBobEffects, state: ringingBob},
		}},
		{"no policy, SRTP offer: rings as any call", []step{
			{in: srtpStart(false, true), want: ringBobEffects, state: ringingBob},
		}},
		{"an offer the media refused is refused for that first, without the SRTP warning", []step{
			{in: func() Start { s := srtpStart(true, false); s.OfferCode = 488; return s }(),
				want:  effs([]Effect{Respond{Leg: la, Code: 488, Reason: "Not Acceptable Here"}}, ended("failed", aliceOnlyOut("failed"))...),
				state: "ended(failed) ended=+0s | a:ended"},
		}},
		{"click-to-call, SRTP required, a device answers in plain RTP: it is hung up, the other stops, bob never rings", []step{
			aliceRings,
			{at: 3 * time.Second, in: Answered{Leg: lb2, SRTP: false},
				want:  effs([]Effect{EndLeg{Leg: lb1}, EndLeg{Leg: lb2}}, ended("failed", aliceOnlyOut("failed"))...),
				state: "ended(failed) ended=+3s | b1:ended b2:ended"},
			{at: 4 * time.Second, in: Answered{Leg: lb1}, state: "ended(failed) ended=+3s | b1:ended b2:ended"},
		}},
		{"click-to-call, SRTP required, a device answers in SRTP: bob rings", []step{
			aliceRings,
			{at: 3 * time.Second, in: Answered{Leg: lb2, SRTP: true}, want: aliceAnswered[2].want, state: bobRingsForAlice},
		}},
		{"click-to-call, no policy, a device answers in plain RTP: bob rings", []step{
			{in: dialBob, want: ringAliceEffects, state: aliceRinging},
			{at: 3 * time.Second, in: Answered{Leg: lb2}, want: aliceAnswered[2].want, state: bobRingsForAlice},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runStory(t, tc.steps) })
	}
}

// srtpSDP is the fact the policy is given: whether the SDP's audio stream
// uses an SRTP profile.
func TestSRTPSDP(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	const key = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
	cases := []struct {
		name string
		sdp  string
		want bool
	}{
		{"plain RTP", head + "m=audio 4000 RTP/AVP 0\r\n", false},
		{"SRTP", head + "m=audio 4000 RTP/SAVP 0\r\n" + key, true},
		{"SRTP with feedback", head + "m=audio 4000 RTP/SAVPF 0\r\n" + key, true},
		{"the audio stream counts, not video", head + "m=video 5000 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n" + key + "m=audio 4000 RTP/AVP 0\r\n", false},
		{"a rejected SRTP stream does not count", head + "m=audio 0 RTP/SAVP 0\r\nm=audio 4000 RTP/AVP 0\r\n", false},
		{"no audio", head + "m=video 5000 RTP/SAVP 96\r\na=rtpmap:96 H264/90000\r\n", false},
		{"not SDP", "hello", false},
		{"empty", "", false},
	}
	for _, tc := range cases {
		if got := srtpSDP([]byte(tc.sdp)); got != tc.want {
			t.Errorf("%s: srtpSDP = %v, want %v", tc.name, got, tc.want)
		}
	}
}
