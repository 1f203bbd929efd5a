package directory

import (
	"regexp"
	"time"
)

var (
	idRe   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	extRe  = regexp.MustCompile(`^[0-9]{2,10}$`)
	e164Re = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	hhmmRe = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$`)
)

func validID(s string) bool   { return idRe.MatchString(s) }
func validExt(s string) bool  { return extRe.MatchString(s) }
func validE164(s string) bool { return e164Re.MatchString(s) }

var days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

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

// UserPatch is the body of PATCH /v1/users/{id}; absent fields stay.
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

// SelfService is true when the patch touches only what a user may change
// about themselves (INTERFACE.md: timezone, business hours, display name).
func (p UserPatch) SelfService() bool {
	return p.Extension == nil && p.Numbers == nil && p.SIPPassword == nil && p.PowerPack == nil &&
		p.VoicemailEnabled == nil && p.SRTP == nil
}

func (in UserInput) validate() (User, error) {
	u := User{ID: in.ID, Name: in.Name, Extension: in.Extension, Numbers: in.Numbers, Timezone: in.Timezone,
		BusinessHours: in.BusinessHours, PowerPack: in.PowerPack, VoicemailEnabled: in.VoicemailEnabled, SRTP: in.SRTP}
	switch {
	case in.ID == "":
		return u, &FieldError{"id", "is required"}
	case !validID(in.ID):
		return u, &FieldError{"id", "must be a slug: lower-case letters, digits, '.', '_' or '-', at most 63"}
	case in.Name == "":
		return u, &FieldError{"name", "is required"}
	case in.Extension == "":
		return u, &FieldError{"extension", "is required"}
	case in.SIPPassword == "":
		return u, &FieldError{"sip_password", "is required"}
	case len(in.SIPPassword) < 8:
		return u, &FieldError{"sip_password", "must be at least 8 characters"}
	}
	if err := checkCommon(&u); err != nil {
		return u, err
	}
	return u, nil
}

func checkCommon(u *User) error {
	if len(u.Name) > 200 {
		return &FieldError{"name", "must be at most 200 characters"}
	}
	if !validExt(u.Extension) {
		return &FieldError{"extension", "must be 2 to 10 digits"}
	}
	seen := map[string]bool{}
	for i, n := range u.Numbers {
		if !validE164(n) {
			return &FieldError{"numbers[" + itoa(i) + "]", "must be an E.164 number such as +14155550101"}
		}
		if seen[n] {
			return &FieldError{"numbers[" + itoa(i) + "]", "is listed twice"}
		}
		seen[n] = true
	}
	if u.Numbers == nil {
		u.Numbers = []string{}
	}
	if u.Timezone == "" {
		u.Timezone = "UTC"
	}
	if _, err := time.LoadLocation(u.Timezone); err != nil {
		return &FieldError{"timezone", "must be an IANA time zone such as Europe/Paris"}
	}
	if u.SRTP != "" && u.SRTP != "required" {
		return &FieldError{"srtp", `must be "" or "required"`}
	}
	if u.BusinessHours == nil {
		u.BusinessHours = Hours{}
	}
	known := map[string]bool{}
	for _, d := range days {
		known[d] = true
	}
	for d, ranges := range u.BusinessHours {
		if !known[d] {
			return &FieldError{"business_hours." + d, "is not a day (mon..sun)"}
		}
		for i, r := range ranges {
			if !hhmmRe.MatchString(r[0]) || !hhmmRe.MatchString(r[1]) || r[0] >= r[1] {
				return &FieldError{"business_hours." + d + "[" + itoa(i) + "]", `must be ["HH:MM","HH:MM"] with start before end`}
			}
		}
	}
	return nil
}

func (p UserPatch) apply(u User) (User, error) {
	if p.Name != nil {
		if *p.Name == "" {
			return u, &FieldError{"name", "must not be empty"}
		}
		u.Name = *p.Name
	}
	if p.Extension != nil && *p.Extension != u.Extension {
		if p.SIPPassword == nil {
			return u, &FieldError{"sip_password", "is required when the extension changes (the digest hash depends on it)"}
		}
		u.Extension = *p.Extension
	}
	if p.SIPPassword != nil && len(*p.SIPPassword) < 8 {
		return u, &FieldError{"sip_password", "must be at least 8 characters"}
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
	return u, checkCommon(&u)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
