package hours

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	nineToFive := Week{"mon": {{"09:00", "17:00"}}, "tue": {{"09:00", "17:00"}}, "wed": {{"09:00", "17:00"}},
		"thu": {{"09:00", "17:00"}}, "fri": {{"09:00", "17:00"}}}
	lateShift := Week{"mon": {{"18:00", "24:00"}}, "tue": {{"00:00", "06:00"}}}
	// Monday 2026-03-02 15:30 UTC is 10:30 in New York and Tuesday 00:30
	// in Tokyo.
	monday := time.Date(2026, 3, 2, 15, 30, 0, 0, time.UTC)
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		name string
		s    Schedule
		at   time.Time
		want bool
	}{
		{"new york in hours", Schedule{TimeZone: "America/New_York", Business: nineToFive}, monday, true},
		{"tokyo at the same instant is past midnight", Schedule{TimeZone: "Asia/Tokyo", Business: nineToFive}, monday, false},
		{"utc at the same instant", Schedule{TimeZone: "UTC", Business: nineToFive}, monday, true},
		{"an empty zone reads as utc", Schedule{Business: nineToFive}, utc("2026-03-02 08:59:59"), false},
		{"nil business is always open", Schedule{TimeZone: "Asia/Tokyo"}, utc("2026-03-08 03:00:00"), true},
		{"nil business still closes on a holiday", Schedule{Holidays: []Holiday{{Date: "2026-03-02"}}}, monday, false},
		{"a holiday closes a business day", Schedule{TimeZone: "America/New_York", Business: nineToFive,
			Holidays: []Holiday{{Date: "2026-03-02", Name: "Closed"}}}, monday, false},
		// 01:00 UTC on the 3rd is still the 2nd in New York.
		{"a holiday is read in the owner's zone", Schedule{TimeZone: "America/New_York", Business: nineToFive,
			Holidays: []Holiday{{Date: "2026-03-03"}}}, utc("2026-03-03 01:00:00"), false},
		{"a holiday on another day", Schedule{TimeZone: "America/New_York", Business: nineToFive,
			Holidays: []Holiday{{Date: "2026-03-03"}}}, monday, true},
		{"a weekend day without hours", Schedule{Business: nineToFive}, utc("2026-03-07 12:00:00"), false},
		{"the start is included", Schedule{Business: nineToFive}, utc("2026-03-02 09:00:00"), true},
		{"the end is excluded", Schedule{Business: nineToFive}, utc("2026-03-02 17:00:00"), false},
		{"24:00 covers the last minute", Schedule{Business: lateShift}, utc("2026-03-02 23:59:59"), true},
		{"midnight belongs to the next day", Schedule{Business: lateShift}, utc("2026-03-03 00:00:00"), true},
		{"the next day's range ends", Schedule{Business: lateShift}, utc("2026-03-03 06:00:00"), false},
		{"sunday to monday", Schedule{Business: Week{"sun": {{"00:00", "24:00"}}}}, utc("2026-03-02 00:00:00"), false},
		{"sunday itself", Schedule{Business: Week{"sun": {{"00:00", "24:00"}}}}, utc("2026-03-01 23:59:00"), true},
		{"a week with no ranges is never open", Schedule{Business: Week{}}, monday, false},
	} {
		if got := tc.s.Open(tc.at); got != tc.want {
			t.Errorf("%s: Open(%s) = %v, want %v", tc.name, tc.at, got, tc.want)
		}
	}
}

func TestCheckWeek(t *testing.T) {
	nine := make([][]string, MaxDayRanges+1)
	for i := range nine {
		nine[i] = []string{fmt.Sprintf("%02d:00", i), fmt.Sprintf("%02d:30", i)}
	}
	for _, tc := range []struct {
		name  string
		w     Week
		field string // "" when valid
	}{
		{"nil", nil, ""},
		{"a full day", Week{"mon": {{"00:00", "24:00"}}}, ""},
		{"two ranges", Week{"fri": {{"08:00", "12:00"}, {"13:00", "17:00"}}}, ""},
		{"not a day", Week{"funday": {}}, "hours.funday"},
		{"a capitalised day", Week{"Mon": {}}, "hours.Mon"},
		{"too many ranges", Week{"tue": nine}, "hours.tue"},
		{"an hour without minutes", Week{"mon": {{"9", "17:00"}}}, "hours.mon[0]"},
		{"an end before the start", Week{"wed": {{"08:00", "09:00"}, {"18:00", "09:00"}}}, "hours.wed[1]"},
		{"an empty range", Week{"thu": {{"09:00", "09:00"}}}, "hours.thu[0]"},
		{"one time", Week{"sat": {{"09:00"}}}, "hours.sat[0]"},
		{"24:30", Week{"sun": {{"23:00", "24:30"}}}, "hours.sun[0]"},
		{"25:00", Week{"sun": {{"23:00", "25:00"}}}, "hours.sun[0]"},
	} {
		got, err := CheckWeek("hours", tc.w)
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field == "" && len(got) != len(Days):
			t.Errorf("%s: %v has not every day", tc.name, got)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: %v, want a FieldError on %s", tc.name, err, tc.field)
		}
	}
	got, _ := CheckWeek("h", Week{"mon": {{"08:00", "17:00"}}})
	if !reflect.DeepEqual(got["mon"], [][]string{{"08:00", "17:00"}}) || got["sun"] == nil || len(got["sun"]) != 0 {
		t.Fatalf("filled week %v", got)
	}
}

func TestWeekEmpty(t *testing.T) {
	for _, tc := range []struct {
		w    Week
		want bool
	}{
		{nil, true},
		{Week{}, true},
		{Week{"mon": {}, "tue": nil}, true},
		{Week{"mon": {}, "tue": {{"08:00", "09:00"}}}, false},
	} {
		if got := tc.w.Empty(); got != tc.want {
			t.Errorf("%v.Empty() = %v", tc.w, got)
		}
	}
}

func TestCheckTimeZone(t *testing.T) {
	for tz, ok := range map[string]bool{
		"":                 true,
		"UTC":              true,
		"Europe/Paris":     true,
		"America/New_York": true,
		"Local":            false,
		"Moon/Base":        false,
		"../../etc/passwd": false,
	} {
		err := CheckTimeZone("timezone", tz)
		var fe *FieldError
		if ok != (err == nil) || (!ok && (!errors.As(err, &fe) || fe.Field != "timezone")) {
			t.Errorf("%q: %v", tz, err)
		}
	}
}

func TestCheckHolidays(t *testing.T) {
	many := make([]Holiday, MaxHolidays+1)
	for i := range many {
		many[i] = Holiday{Date: time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)}
	}
	for _, tc := range []struct {
		name  string
		hs    []Holiday
		field string
	}{
		{"none", nil, ""},
		{"the most", many[:MaxHolidays], ""},
		{"a named day", []Holiday{{Date: "2026-12-25", Name: "Christmas"}}, ""},
		{"a leap day", []Holiday{{Date: "2028-02-29"}}, ""},
		{"too many", many, "holidays"},
		{"no date", []Holiday{{Name: "x"}}, "holidays[0].date"},
		{"not a date", []Holiday{{Date: "2026-12-25"}, {Date: "25/12/2026"}}, "holidays[1].date"},
		{"no such day", []Holiday{{Date: "2027-02-29"}}, "holidays[0].date"},
		{"unpadded", []Holiday{{Date: "2026-1-5"}}, "holidays[0].date"},
		{"a day twice", []Holiday{{Date: "2026-01-01"}, {Date: "2026-01-01"}}, "holidays[1].date"},
		{"a long name", []Holiday{{Date: "2026-01-01", Name: strings.Repeat("é", MaxHolidayName+1)}}, "holidays[0].name"},
		{"a name with a line break", []Holiday{{Date: "2026-01-01", Name: "New\nYear"}}, "holidays[0].name"},
		{"a name that is not text", []Holiday{{Date: "2026-01-01", Name: "\xff"}}, "holidays[0].name"},
	} {
		err := CheckHolidays("holidays", tc.hs)
		var fe *FieldError
		if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
			t.Errorf("%s: %v, want a FieldError on %q", tc.name, err, tc.field)
		}
	}
}
