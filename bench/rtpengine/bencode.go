// Package rtpengine drives a local rtpengine daemon for the load harness:
// a bencode codec and ng control client, a launcher that runs it in pure
// userspace mode with CPU/RSS readings, and a helper that relays one call.
package rtpengine

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
)

// Decoded bencode values are string (byte strings may hold any bytes),
// int64, []any and map[string]any. Encode accepts those plus []byte, int,
// []string and map[string]string for convenience when building requests.

// maxDepth bounds list/dict nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// ErrSyntax is wrapped by every decode error.
var ErrSyntax = errors.New("bencode: syntax error")

// Encode returns the bencoding of v. Dictionary keys are written sorted, as
// the format requires.
func Encode(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := encode(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func encode(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case string:
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.WriteString(x)
	case []byte:
		b.WriteString(strconv.Itoa(len(x)))
		b.WriteByte(':')
		b.Write(x)
	case int:
		fmt.Fprintf(b, "i%de", x)
	case int64:
		fmt.Fprintf(b, "i%de", x)
	case []any:
		b.WriteByte('l')
		for _, e := range x {
			if err := encode(b, e); err != nil {
				return err
			}
		}
		b.WriteByte('e')
	case []string:
		b.WriteByte('l')
		for _, e := range x {
			encode(b, e) //nolint:errcheck // strings cannot fail
		}
		b.WriteByte('e')
	case map[string]any:
		b.WriteByte('d')
		for _, k := range slices.Sorted(maps.Keys(x)) {
			encode(b, k) //nolint:errcheck
			if err := encode(b, x[k]); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
		}
		b.WriteByte('e')
	case map[string]string:
		b.WriteByte('d')
		for _, k := range slices.Sorted(maps.Keys(x)) {
			encode(b, k) //nolint:errcheck
			encode(b, x[k])
		}
		b.WriteByte('e')
	default:
		return fmt.Errorf("bencode: cannot encode %T", v)
	}
	return nil
}

// Decode parses exactly one bencoded value that must span all of data.
// Dictionary keys are accepted in any order because rtpengine writes them in
// insertion order; a repeated key keeps its last value.
func Decode(data []byte) (any, error) {
	d := decoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(data) {
		return nil, d.errorf("%d trailing bytes", len(data)-d.pos)
	}
	return v, nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, d.pos, fmt.Sprintf(format, args...))
}

func (d *decoder) value(depth int) (any, error) {
	if d.pos >= len(d.data) {
		return nil, d.errorf("unexpected end of input")
	}
	switch c := d.data[d.pos]; {
	case c == 'i':
		d.pos++
		return d.int('e')
	case c >= '0' && c <= '9':
		return d.string()
	case c == 'l':
		if depth >= maxDepth {
			return nil, d.errorf("nesting deeper than %d", maxDepth)
		}
		d.pos++
		list := []any{}
		for {
			if d.pos >= len(d.data) {
				return nil, d.errorf("unterminated list")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return list, nil
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	case c == 'd':
		if depth >= maxDepth {
			return nil, d.errorf("nesting deeper than %d", maxDepth)
		}
		d.pos++
		dict := map[string]any{}
		for {
			if d.pos >= len(d.data) {
				return nil, d.errorf("unterminated dictionary")
			}
			if d.data[d.pos] == 'e' {
				d.pos++
				return dict, nil
			}
			if c := d.data[d.pos]; c < '0' || c > '9' {
				return nil, d.errorf("dictionary key is not a string")
			}
			k, err := d.string()
			if err != nil {
				return nil, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			dict[k] = v
		}
	default:
		return nil, d.errorf("unexpected byte %q", c)
	}
}

// int reads a canonical integer (no leading zeros, no "-0") up to term.
func (d *decoder) int(term byte) (int64, error) {
	i := bytes.IndexByte(d.data[d.pos:], term)
	if i < 0 {
		return 0, d.errorf("unterminated integer")
	}
	s := string(d.data[d.pos : d.pos+i])
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if digits == "" || (len(digits) > 1 && digits[0] == '0') || s == "-0" {
		return 0, d.errorf("malformed integer %q", s)
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, d.errorf("malformed integer %q", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, d.errorf("integer %q out of range", s)
	}
	d.pos += i + 1
	return n, nil
}

func (d *decoder) string() (string, error) {
	n, err := d.int(':')
	if err != nil {
		return "", err
	}
	if n < 0 || n > int64(len(d.data)-d.pos) {
		return "", d.errorf("string length %d exceeds input", n)
	}
	s := string(d.data[d.pos : d.pos+int(n)])
	d.pos += int(n)
	return s, nil
}
