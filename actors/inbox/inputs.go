package inbox

import "time"

// The inputs of Inbox.Step. By is the user who asks; Admin is true for the
// admin token, which may everything.

// Deposit keeps a recorded message. One shorter than MinDuration is not kept;
// an ID already in the inbox changes nothing.
type Deposit struct{ Message Message }

// List asks for the messages (effect Listed).
type List struct {
	By    string
	Admin bool
}

// Fetch asks for a message's audio (effect Audio): streaming needs access,
// Download (an attachment) needs download.
type Fetch struct {
	By       string
	Admin    bool
	ID       string
	Download bool
}

// MarkPlayed sets (Played) or clears a message's played state for everyone
// with access. PlayedBy becomes By (empty for the admin token, which is no
// user); marking a message as it already is changes nothing.
type MarkPlayed struct {
	By     string
	Admin  bool
	ID     string
	Played bool
}

// Delete removes a message for everyone, the owner included.
type Delete struct {
	By    string
	Admin bool
	ID    string
}

// Share copies a message into user To's inbox.
type Share struct {
	By    string
	Admin bool
	ID    string
	To    string
}

// Grant sets User's levels (replacing any before): the admin, or the owner
// of a user inbox for their own inbox.
type Grant struct {
	By     string
	Admin  bool
	User   string
	Levels []Level
}

// Revoke takes every level from User; the same callers as Grant.
type Revoke struct {
	By    string
	Admin bool
	User  string
}

// Settings are the owner's voicemail settings as they are now (the adapter
// sends them when they change): for a user inbox, whether the owner may
// download and delete; for every inbox, the retention (zero: keep).
type Settings struct {
	VoicemailDownload bool
	VoicemailDelete   bool
	Retention         time.Duration
}

// Tick is the wake-up the adapter schedules (WakeAt). Messages past the
// retention are also deleted at any other input.
type Tick struct{}
