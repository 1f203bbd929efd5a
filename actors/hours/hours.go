// Package hours is business, closed and holiday hours, read in the time
// zone of whoever owns them (a user, a queue, a shared line group). It is
// the one place that decides whether something is open at an instant, and
// the one place that says whether such settings are well formed.
package hours

import (
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	// Validation and Open must not depend on the host having a zoneinfo
	// database (slim images often lack one).
	_ "time/tzdata"
)

// Days are the keys of a Week, in week order.
var Days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

const (
	// MaxDayRanges bounds the ranges of one day.
	MaxDayRanges = 8
	// MaxHolidays bounds an owner's holiday list.
	MaxHolidays = 100
	// MaxHolidayName is in characters.
	MaxHolidayName = 100
)

var hhmmRe = regexp.MustCompile(`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`)

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
	lt := t.In(location(s.TimeZone))
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

// locations caches loaded zones: Open runs for every call a queue takes,
// and time.LoadLocation reads the zone database each time.
var locations sync.Map // name -> *time.Location

func location(name string) *time.Location {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC // not cached: only settings that passed CheckTimeZone are worth keeping
	}
	locations.Store(name, l)
	return l
}

// FieldError is a setting that does not pass, naming the field as the
// client wrote it ("business_hours.mon[0]", "holidays[2].date").
type FieldError struct{ Field, Message string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// CheckWeek validates business hours sent as field and returns them with
// every day present (a day left out has no hours; nil has none at all).
func CheckWeek(field string, w Week) (Week, error) {
	for d := range w {
		if !isDay(d) {
			return nil, &FieldError{field + "." + d, "is not a day: use mon, tue, wed, thu, fri, sat or sun"}
		}
	}
	out := make(Week, len(Days))
	for _, d := range Days {
		ranges := w[d]
		if len(ranges) > MaxDayRanges {
			return nil, &FieldError{field + "." + d, fmt.Sprintf("must have at most %d ranges", MaxDayRanges)}
		}
		for i, r := range ranges {
			// Zero-padded HH:MM compares correctly as text.
			if len(r) != 2 || !hhmmRe.MatchString(r[0]) || !hhmmRe.MatchString(r[1]) || r[0] >= r[1] {
				return nil, &FieldError{field + "." + d + "[" + strconv.Itoa(i) + "]", `must be ["HH:MM","HH:MM"] with the start before the end`}
			}
		}
		if ranges == nil {
			ranges = [][]string{}
		}
		out[d] = ranges
	}
	return out, nil
}

func isDay(s string) bool {
	for _, d := range Days {
		if d == s {
			return true
		}
	}
	return false
}

// Empty says whether w has no range on any day.
func (w Week) Empty() bool {
	for _, rs := range w {
		if len(rs) > 0 {
			return false
		}
	}
	return true
}

// CheckTimeZone validates an IANA time zone name sent as field ("" reads
// as UTC).
func CheckTimeZone(field, tz string) error {
	// "Local" would mean whatever zone each node happens to run in.
	if _, err := time.LoadLocation(tz); err != nil || tz == "Local" {
		return &FieldError{field, "must be an IANA time zone such as Europe/Paris"}
	}
	return nil
}

// CheckHolidays validates a holiday list sent as field: at most
// MaxHolidays, each a real YYYY-MM-DD date listed once, with a one-line
// name of at most MaxHolidayName characters.
func CheckHolidays(field string, hs []Holiday) error {
	if len(hs) > MaxHolidays {
		return &FieldError{field, fmt.Sprintf("must list at most %d holidays", MaxHolidays)}
	}
	seen := make(map[string]bool, len(hs))
	for i, h := range hs {
		f := field + "[" + strconv.Itoa(i) + "]"
		if _, err := time.Parse(time.DateOnly, h.Date); err != nil {
			return &FieldError{f + ".date", "must be a date written YYYY-MM-DD"}
		}
		if seen[h.Date] {
			return &FieldError{f + ".date", "is listed twice"}
		}
		seen[h.Date] = true
		if err := checkHolidayName(h.Name); err != "" {
			return &FieldError{f + ".name", err}
		}
	}
	return nil
}

// checkHolidayName returns what is wrong with a holiday's name, or "".
func checkHolidayName(name string) string {
	switch {
	case !utf8.ValidString(name):
		return "must be UTF-8 text"
	case utf8.RuneCountInString(name) > MaxHolidayName:
		return fmt.Sprintf("must be at most %d characters", MaxHolidayName)
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
			return "must be one line of text: no control characters and no direction overrides"
		}
	}
	return ""
}
