package rtpengine

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Tags Relay uses for the two call legs; Delete(ctx, callID, "") also works.
const (
	RelayFromTag = "a"
	RelayToTag   = "b"
)

// relayFlags keep the rewritten SDP plain: rtpengine's own address in o= and
// the session c= line, no ICE candidates to wait on.
var relayFlags = map[string]any{
	"replace": []string{"origin", "session-connection"},
	"ICE":     "remove",
}

// Relay sets up one call through rtpengine between endpoint A (the caller,
// media at aAddr) and endpoint B (the callee, media at bAddr):
//
//   - aSide is rtpengine's port facing A: A sends its RTP there and it comes
//     out at bAddr (from bSide). It is taken from the answer SDP, which is
//     what A would receive.
//   - bSide is rtpengine's port facing B: B sends its RTP there and it comes
//     out at aAddr (from aSide). It is taken from the offer SDP, which is
//     what B would receive.
//
// Endpoints should send from aAddr/bAddr themselves: rtpengine relays
// symmetrically and, by default, latches onto the source it hears from.
func Relay(ctx context.Context, client *Client, callID string, aAddr, bAddr netip.AddrPort) (aSide, bSide netip.AddrPort, err error) {
	offer, err := client.Offer(ctx, callID, RelayFromTag, pcmuSDP(aAddr), relayFlags)
	if err != nil {
		return aSide, bSide, fmt.Errorf("relay %s: %w", callID, err)
	}
	if bSide, err = sdpAudioAddr(offer); err != nil {
		return aSide, bSide, fmt.Errorf("relay %s: offer: %w", callID, err)
	}
	answer, err := client.Answer(ctx, callID, RelayFromTag, RelayToTag, pcmuSDP(bAddr), relayFlags)
	if err != nil {
		return aSide, bSide, fmt.Errorf("relay %s: %w", callID, err)
	}
	if aSide, err = sdpAudioAddr(answer); err != nil {
		return aSide, bSide, fmt.Errorf("relay %s: answer: %w", callID, err)
	}
	return aSide, bSide, nil
}

// pcmuSDP is a minimal audio SDP offering PCMU, PCMA and DTMF at addr.
func pcmuSDP(addr netip.AddrPort) string {
	ip := addr.Addr().Unmap()
	fam := "IP4"
	if ip.Is6() {
		fam = "IP6"
	}
	lines := []string{
		"v=0",
		fmt.Sprintf("o=- %d 1 IN %s %s", addr.Port(), fam, ip),
		"s=-",
		fmt.Sprintf("c=IN %s %s", fam, ip),
		"t=0 0",
		fmt.Sprintf("m=audio %d RTP/AVP 0 8 101", addr.Port()),
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-16",
		"a=ptime:20",
		"a=sendrecv",
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// sdpAudioAddr returns the address of the first audio stream: its m= port
// and the media-level c= address, or the session-level one if absent.
func sdpAudioAddr(sdp string) (netip.AddrPort, error) {
	var session, media netip.Addr
	port, inAudio, seenAudio, seenMedia := -1, false, false, false
	for line := range strings.Lines(sdp) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case strings.HasPrefix(line, "m="):
			seenMedia = true
			if seenAudio {
				inAudio = false
				continue
			}
			f := strings.Fields(line[2:])
			if len(f) < 2 || f[0] != "audio" {
				inAudio = false
				continue
			}
			p, err := strconv.Atoi(f[1])
			if err != nil || p <= 0 || p > 65535 {
				return netip.AddrPort{}, fmt.Errorf("bad audio port in %q", line)
			}
			port, inAudio, seenAudio = p, true, true
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:]) // IN IP4 127.0.0.1
			if len(f) < 3 {
				return netip.AddrPort{}, fmt.Errorf("bad connection line %q", line)
			}
			ip, err := netip.ParseAddr(strings.SplitN(f[2], "/", 2)[0])
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("bad connection line %q: %w", line, err)
			}
			if inAudio {
				media = ip
			} else if !seenMedia {
				session = ip
			}
		}
	}
	if port < 0 {
		return netip.AddrPort{}, fmt.Errorf("no usable audio stream in SDP")
	}
	ip := media
	if !ip.IsValid() {
		ip = session
	}
	if !ip.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("no connection address for audio stream")
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}
