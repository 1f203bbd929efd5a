package rest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// fieldPath names, as the client wrote it (business_hours.mon[0],
// numbers[2]), the value of body that ends at byte offset end: where
// encoding/json reports a value of the wrong type. Its own
// UnmarshalTypeError.Field leaves out array indexes and map keys, so a
// wrong element of "numbers" would read as "numbers: must be a string".
// It returns "" when no value ends there.
func fieldPath(body []byte, end int64) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // a number out of float64's range is still a token
	var path []pathStep
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		top := len(path) - 1
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			path = path[:top]
			continue
		}
		if top >= 0 && path[top].wantKey {
			path[top].key, path[top].wantKey = tok.(string), false
			continue
		}
		// tok starts a value: a literal, an object or an array.
		if top >= 0 {
			if path[top].array {
				path[top].index++
			} else {
				path[top].wantKey = true
			}
		}
		if dec.InputOffset() >= end {
			return render(path)
		}
		if d, ok := tok.(json.Delim); ok {
			path = append(path, pathStep{array: d == '[', index: -1, wantKey: d == '{'})
		}
	}
}

// pathStep is one open object or array on the way to a value.
type pathStep struct {
	array   bool
	key     string // the member being read, in an object
	index   int    // the element being read, in an array
	wantKey bool   // the next token is a member's name
}

func render(path []pathStep) string {
	var b strings.Builder
	for _, s := range path {
		switch {
		case s.array:
			b.WriteString("[" + strconv.Itoa(s.index) + "]")
		case b.Len() > 0:
			b.WriteString("." + s.key)
		default:
			b.WriteString(s.key)
		}
	}
	return b.String()
}
