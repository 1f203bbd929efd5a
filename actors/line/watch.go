package line

// MayWatch answers whether user may watch a line's state (a busy lamp over
// SIP, line events over REST): every user of the system may, as a
// receptionist's lamp field shows the whole office. Trunks and strangers
// may not. SIP and REST ask this one rule.
func MayWatch(user, lineOwner string) bool {
	return user != "" && lineOwner != ""
}
