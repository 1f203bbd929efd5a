package rtpengine

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"empty string", "", "0:"},
		{"string", "spam", "4:spam"},
		{"bytes", []byte{0, 0xff}, "2:\x00\xff"},
		{"zero", 0, "i0e"},
		{"negative", int64(-42), "i-42e"},
		{"empty list", []any{}, "le"},
		{"string list", []string{"origin", "session-connection"}, "l6:origin18:session-connectione"},
		{"mixed list", []any{"a", 1, []any{}}, "l1:ai1elee"},
		{"empty dict", map[string]any{}, "de"},
		{"sorted keys", map[string]any{"command": "ping", "call-id": "x", "b": 2},
			"d1:bi2e7:call-id1:x7:command4:pinge"},
		{"string dict", map[string]string{"z": "1", "a": "2"}, "d1:a1:21:z1:1e"},
		{"nested", map[string]any{"replace": []string{"origin"}}, "d7:replacel6:originee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("Encode = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeUnsupported(t *testing.T) {
	for _, v := range []any{nil, 1.5, true, map[string]any{"k": struct{}{}}, []any{uint8(1)}} {
		if _, err := Encode(v); err == nil {
			t.Errorf("Encode(%#v) succeeded, want error", v)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{"0:", ""},
		{"4:spam", "spam"},
		{"3:a b", "a b"},
		{"i0e", int64(0)},
		{"i-7e", int64(-7)},
		{"i9223372036854775807e", int64(9223372036854775807)},
		{"le", []any{}},
		{"l4:spami3ee", []any{"spam", int64(3)}},
		{"de", map[string]any{}},
		// rtpengine writes keys in insertion order, not sorted.
		{"d6:result2:ok3:sdp3:v=0e", map[string]any{"result": "ok", "sdp": "v=0"}},
		{"d6:result5:error12:error-reason15:Unknown call-ide",
			map[string]any{"result": "error", "error-reason": "Unknown call-id"}},
		{"d1:ad1:bl1:ceee", map[string]any{"a": map[string]any{"b": []any{"c"}}}},
		{"d1:ai1e1:ai2ee", map[string]any{"a": int64(2)}}, // last duplicate wins
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{
		"", "x", "i", "ie", "i-e", "i-0e", "i01e", "i1", "i1.5e", "i--1e",
		"i9223372036854775808e", "5:abc", "-1:a", "01:a", "1a", ":",
		"l", "li1e", "d", "d1:a", "di1ei2ee", "d1:ae", "4:spamx", "i1ei2e",
		strings.Repeat("l", maxDepth+1) + strings.Repeat("e", maxDepth+1),
	} {
		if v, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) = %#v, want error", in, v)
		} else if !errors.Is(err, ErrSyntax) {
			t.Errorf("Decode(%q) error %v does not wrap ErrSyntax", in, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	v := map[string]any{
		"command": "offer",
		"sdp":     "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
		"replace": []any{"origin", "session-connection"},
		"n":       int64(-1),
		"nested":  map[string]any{"l": []any{int64(1), "x", map[string]any{}}},
	}
	enc, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("round trip = %#v, want %#v", got, v)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"d7:command4:pinge",
		"d6:result4:ponge",
		"d6:result5:error12:error-reason15:Unknown call-ide",
		"l4:spami-3ed1:ale0:e",
		"i0e", "ie", "d1:ad1:bl1:ceee", "5:ab",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err != nil {
			return
		}
		enc, err := Encode(v)
		if err != nil {
			t.Fatalf("Encode(Decode(%q)): %v", data, err)
		}
		v2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%q) of re-encoded %q: %v", enc, data, err)
		}
		if !reflect.DeepEqual(v, v2) {
			t.Fatalf("round trip of %q: %#v != %#v", data, v, v2)
		}
		// Encoding is canonical: a second pass changes nothing.
		if enc2, _ := Encode(v2); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding not stable: %q != %q", enc, enc2)
		}
	})
}
