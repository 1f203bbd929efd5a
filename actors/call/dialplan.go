package call

import (
	"regexp"
	"strings"

	"github.com/switchboard/switchboard/cluster/directory"
)

// The dial plan: what a dialed string names. It is the call's to decide,
// whichever edge the digits came from.

// e164 is an international number as carriers write it (ITU-T E.164).
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Directory is what the dial plan reads of users and trunks.
type Directory interface {
	UserByNumber(number string) (directory.User, bool)
	Resolve(userPart string) (directory.User, bool)
	OutboundTrunk() (directory.Trunk, bool)
}

// DialPlan routes over the directory: an E.164 number owned in the system
// rings its owner, another E.164 number goes out through the outbound
// trunk, anything else is an extension or a user id.
type DialPlan struct{ Dir Directory }

// Lookup implements Router.
func (p DialPlan) Lookup(dialed string, fromTrunk bool) (*Party, bool, bool, *Contact) {
	isE164 := e164.MatchString(dialed)
	var u directory.User
	var ok bool
	if isE164 {
		u, ok = p.Dir.UserByNumber(dialed)
	} else {
		u, ok = p.Dir.Resolve(dialed)
	}
	if ok {
		return PartyOf(u), u.SRTP == "required", isE164, nil
	}
	var trunk *Contact
	if t, ok := p.Dir.OutboundTrunk(); ok && isE164 {
		trunk = &Contact{URI: "sip:" + dialed + "@" + t.Address, Destination: t.Address, Transport: "udp"}
	}
	return nil, false, isE164, trunk
}

// PartyOf is a user as a party of calls: their extension, name and first
// number.
func PartyOf(u directory.User) *Party {
	p := &Party{UserID: u.ID, Number: u.Extension, Display: u.Name}
	if len(u.Numbers) > 0 {
		p.External = u.Numbers[0]
	}
	return p
}

// Feature codes, dialed as the Request-URI's user part: *8<ext> picks up
// the held or ringing call on ext's line, *7<ext> joins its active call,
// *1/*2/*3<ext> listen to, whisper to or barge into it.
const (
	FeaturePickup  = "pickup"
	FeatureJoin    = "join"
	FeatureMonitor = "monitor"
)

// Feature is a dialed feature code: the CallControl action, the monitoring
// mode for a monitor, and the line it names.
type Feature struct {
	Action, Mode, Line string
}

var featureCodes = []struct{ prefix, action, mode string }{
	{"*8", FeaturePickup, ""},
	{"*7", FeatureJoin, ""},
	{"*1", FeatureMonitor, ModeListen},
	{"*2", FeatureMonitor, ModeWhisper},
	{"*3", FeatureMonitor, ModeBarge},
}

// FeatureCode reads a dialed feature code; ok is false for anything else.
func FeatureCode(dialed string) (f Feature, ok bool) {
	for _, fc := range featureCodes {
		if t, ok := strings.CutPrefix(dialed, fc.prefix); ok && t != "" {
			return Feature{Action: fc.action, Mode: fc.mode, Line: t}, true
		}
	}
	return Feature{}, false
}
