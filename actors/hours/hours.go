// Package hours is business, closed and holiday hours, read in the time
// zone of whoever owns them (a user, a queue, a shared line group). It is
// the one place that decides whether something is open at an instant.
package hours

import (
	"fmt"
	"time"
)

// Days are the keys of a Week, in week order.
var Days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// Week is business hours per weekday as "HH:MM" pairs, end exclusive:
// {"mon": [["08:00","17:00"]], ..., "sun": []}. "24:00" ends a day.
type Week map[string][][]string

// Holiday is a whole day closed, in the owner's time zone.
type Holiday struct {
	Date string `json:"date"` // YYYY-MM-DD
	Name string `json:"name"`
}

// Schedule is when something is open: Business hours (nil: always open)
// less the Holidays, read in TimeZone (an IANA name; "" is UTC).
type Schedule struct {
	TimeZone string
	Business Week
	Holidays []Holiday
}

// Open reports whether the schedule is open at t. A time zone that does
// not load reads as UTC (the settings check rejects it before it is
// stored).
func (s Schedule) Open(t time.Time) bool {
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	date := lt.Format(time.DateOnly)
	for _, h := range s.Holidays {
		if h.Date == date {
			return false
		}
	}
	if s.Business == nil {
		return true
	}
	day := Days[(int(lt.Weekday())+6)%7]
	now := fmt.Sprintf("%02d:%02d", lt.Hour(), lt.Minute())
	for _, r := range s.Business[day] {
		// Zero-padded HH:MM compares correctly as text.
		if len(r) == 2 && r[0] <= now && now < r[1] {
			return true
		}
	}
	return false
}
