package directory

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard/switchboard/actors/hours"
)

const (
	// maxNumbers keeps an update's transaction (old numbers deleted, new ones
	// written and checked) under etcd's default limit of 128 operations.
	maxNumbers = 50
	// maxName is in characters: a desk phone shows about 20, and the name
	// is also written into other phones' INVITEs ("<caller> for <name>").
	maxName        = 64
	minPassword    = 8
	maxPassword    = 128
	maxCIDRs       = 64
	srtpRequired   = "required"
	defaultTZ      = "UTC"
	slugMessage    = "must be a slug: a lower-case letter or digit, then up to 62 of a-z, 0-9, '.', '_', '-'"
	e164Message    = "must be an E.164 number such as +14155550101"
	addressMessage = "must be host:port, such as carrier.example.net:5060 or 203.0.113.7:5060"
	nameMessage    = "must be one line of text: no control characters (line breaks, tabs, NUL) and no direction overrides"
)

var (
	idRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	extRe  = regexp.MustCompile(`^[0-9]{2,10}$`)
	e164Re = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)
)

func validID(s string) bool   { return idRe.MatchString(s) }
func validExt(s string) bool  { return extRe.MatchString(s) }
func validE164(s string) bool { return e164Re.MatchString(s) }

// Hours is business hours per weekday, read in the owner's time zone:
// {"mon": [["08:00","17:00"]], ..., "sun": []}.
type Hours = hours.Week

// UserInput is the body of POST /v1/users.
type UserInput struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Extension        string   `json:"extension"`
	Numbers          []string `json:"numbers"`
	SIPPassword      string   `json:"sip_password"`
	Timezone         string   `json:"timezone"`
	BusinessHours    Hours    `json:"business_hours"`
	PowerPack        bool     `json:"power_pack"`
	VoicemailEnabled bool     `json:"voicemail_enabled"`
	SRTP             string   `json:"srtp"`
}

// UserPatch is the body of PATCH /v1/users/{id}; absent (or null) fields stay.
type UserPatch struct {
	Name             *string   `json:"name"`
	Extension        *string   `json:"extension"`
	Numbers          *[]string `json:"numbers"`
	SIPPassword      *string   `json:"sip_password"`
	Timezone         *string   `json:"timezone"`
	BusinessHours    *Hours    `json:"business_hours"`
	PowerPack        *bool     `json:"power_pack"`
	VoicemailEnabled *bool     `json:"voicemail_enabled"`
	SRTP             *string   `json:"srtp"`
}

// SelfService is true when the patch touches only what users may change
// about themselves (INTERFACE.md: timezone, business hours, display name).
func (p UserPatch) SelfService() bool {
	return p.Extension == nil && p.Numbers == nil && p.SIPPassword == nil && p.PowerPack == nil &&
		p.VoicemailEnabled == nil && p.SRTP == nil
}

// Validate checks the input without storing anything; the first problem is
// returned as a *FieldError. CreateUser calls it too.
func (in UserInput) Validate() error {
	_, err := in.user()
	return err
}

func (in UserInput) user() (User, error) {
	switch {
	case in.ID == "":
		return User{}, &FieldError{"id", "is required"}
	case !validID(in.ID):
		return User{}, &FieldError{"id", slugMessage}
	case in.Name == "":
		return User{}, &FieldError{"name", "is required"}
	case in.Extension == "":
		return User{}, &FieldError{"extension", "is required"}
	case in.SIPPassword == "":
		return User{}, &FieldError{"sip_password", "is required"}
	}
	if err := checkPassword(in.SIPPassword); err != nil {
		return User{}, err
	}
	u := User{ID: in.ID, Name: in.Name, Extension: in.Extension, Numbers: in.Numbers, Timezone: in.Timezone,
		BusinessHours: in.BusinessHours, PowerPack: in.PowerPack, VoicemailEnabled: in.VoicemailEnabled, SRTP: in.SRTP}
	return u, normalize(&u)
}

func checkPassword(p string) error {
	if len(p) < minPassword || len(p) > maxPassword {
		return &FieldError{"sip_password", fmt.Sprintf("must be %d to %d characters", minPassword, maxPassword)}
	}
	return nil
}

// normalize validates the fields every user must satisfy and fills defaults.
func normalize(u *User) error {
	if err := checkName(u.Name); err != nil {
		return err
	}
	if !validExt(u.Extension) {
		return &FieldError{"extension", "must be 2 to 10 digits"}
	}
	var err error
	if u.Numbers, err = checkNumbers(u.Numbers, maxNumbers); err != nil {
		return err
	}
	if u.Timezone == "" {
		u.Timezone = defaultTZ
	}
	if err := hours.CheckTimeZone("timezone", u.Timezone); err != nil {
		return fromHours(err)
	}
	if u.SRTP != "" && u.SRTP != srtpRequired {
		return &FieldError{"srtp", `must be "" or "required"`}
	}
	if u.BusinessHours, err = hours.CheckWeek("business_hours", u.BusinessHours); err != nil {
		return fromHours(err)
	}
	return nil
}

// checkNumbers validates the E.164 numbers sent as "numbers" (at most
// most, each once) and returns them, never nil.
func checkNumbers(ns []string, most int) ([]string, error) {
	if len(ns) > most {
		return nil, &FieldError{"numbers", fmt.Sprintf("must list at most %d numbers", most)}
	}
	seen := make(map[string]bool, len(ns))
	for i, n := range ns {
		field := "numbers[" + strconv.Itoa(i) + "]"
		if !validE164(n) {
			return nil, &FieldError{field, e164Message}
		}
		if seen[n] {
			return nil, &FieldError{field, "is listed twice"}
		}
		seen[n] = true
	}
	if ns == nil {
		ns = []string{}
	}
	return ns, nil
}

// fromHours turns the hours package's field errors into the directory's,
// which the API answers with a 400 naming the field.
func fromHours(err error) error {
	var fe *hours.FieldError
	if errors.As(err, &fe) {
		return &FieldError{fe.Field, fe.Message}
	}
	return err
}

// checkName keeps a name to what may be shown on a phone: it reaches the
// From display name of INVITEs to other users, where a line break would
// start a header of the caller's choosing. Quotes and backslashes are
// allowed: the SIP edge escapes them.
func checkName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return &FieldError{"name", "must not be empty"}
	case !utf8.ValidString(name):
		return &FieldError{"name", "must be UTF-8 text"}
	case utf8.RuneCountInString(name) > maxName:
		return &FieldError{"name", fmt.Sprintf("must be at most %d characters", maxName)}
	}
	for _, r := range name {
		// Bidi controls would make a phone show the rest of the name reversed.
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
			return &FieldError{"name", nameMessage}
		}
	}
	return nil
}

// apply returns u changed by the patch, validated.
func (p UserPatch) apply(u User) (User, error) {
	if p.Name != nil {
		u.Name = *p.Name
	}
	if p.Extension != nil && *p.Extension != u.Extension {
		// The digest HA1 hashes the username, and the extension is one.
		if p.SIPPassword == nil {
			return u, &FieldError{"sip_password", "is required when the extension changes"}
		}
		u.Extension = *p.Extension
	}
	if p.SIPPassword != nil {
		if err := checkPassword(*p.SIPPassword); err != nil {
			return u, err
		}
	}
	if p.Numbers != nil {
		u.Numbers = *p.Numbers
	}
	if p.Timezone != nil {
		u.Timezone = *p.Timezone
	}
	if p.BusinessHours != nil {
		u.BusinessHours = *p.BusinessHours
	}
	if p.PowerPack != nil {
		u.PowerPack = *p.PowerPack
	}
	if p.VoicemailEnabled != nil {
		u.VoicemailEnabled = *p.VoicemailEnabled
	}
	if p.SRTP != nil {
		u.SRTP = *p.SRTP
	}
	return u, normalize(&u)
}

// validate checks a trunk and parses its CIDRs (a bare address is a /32 or
// /128).
func (t *Trunk) validate() error {
	if !validID(t.ID) {
		return &FieldError{"id", slugMessage}
	}
	if t.Address == "" {
		if t.Outbound {
			return &FieldError{"address", "is required for an outbound trunk"}
		}
	} else if !validHostPort(t.Address) {
		return &FieldError{"address", addressMessage}
	}
	if len(t.InboundCIDRs) > maxCIDRs {
		return &FieldError{"inbound_cidrs", fmt.Sprintf("must list at most %d entries", maxCIDRs)}
	}
	t.prefixes = make([]netip.Prefix, 0, len(t.InboundCIDRs))
	for i, c := range t.InboundCIDRs {
		p, ok := parseCIDR(c)
		if !ok {
			return &FieldError{"inbound_cidrs[" + strconv.Itoa(i) + "]", "must be a CIDR such as 203.0.113.0/24 or an address"}
		}
		t.prefixes = append(t.prefixes, p)
	}
	if t.InboundCIDRs == nil {
		t.InboundCIDRs = []string{}
	}
	return nil
}

func parseCIDR(c string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(c); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(c); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Zone() == ""
	}
	return len(host) <= 253 && hostRe.MatchString(host)
}

// IsE164 says whether s is a number in E.164 form (+ and up to 15 digits).
func IsE164(s string) bool { return e164Re.MatchString(s) }
