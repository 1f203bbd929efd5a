package inbox

import "time"

// The effects of Inbox.Step, in the order the adapter carries them out:
// Persist first (nothing is announced or removed before the state is
// stored), then the others as made, WakeAt last.

// Persist: the state changed; the adapter stores the inbox whole.
type Persist struct{}

// Event types.
const (
	EventReceived = "voicemail.received"
	EventPlayed   = "voicemail.played" // made for played and unplayed alike: Message.Played says which
	EventDeleted  = "voicemail.deleted"
)

// Event is an event to Users (Viewers() when it was made); Message is the
// message as it stood then.
type Event struct {
	Type    string
	Users   []string
	Message Message
}

// RemoveAudio: the message ID is gone (deleted, expired, or too short to
// keep), so its audio file goes too.
type RemoveAudio struct{ ID string }

// ShareTo asks the adapter to deposit a copy of Message into To's inbox.
// Message is the original as it stands; the copy gets its own ID, owner To
// and the unplayed state there.
type ShareTo struct {
	To      string
	Message Message
}

// MWI is the message-waiting count for Users (Viewers()): New unplayed
// messages, Old played ones. Made whenever the counts change.
type MWI struct {
	New, Old int
	Users    []string
}

// Listed answers List: the messages, newest first.
type Listed struct{ Messages []Message }

// Audio answers Fetch: the message whose audio the caller may stream (or
// download, when Fetch asked for that).
type Audio struct{ Message Message }

// WakeAt asks for a Tick at At, when the oldest message outlives the
// retention (zero: nothing to expire).
type WakeAt struct{ At time.Time }

// Effect is one of the types above.
type Effect = any
