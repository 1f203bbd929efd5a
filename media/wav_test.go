package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// wavBytes is a header for n samples followed by the samples.
func wavBytes(t testing.TB, samples []int16) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteWAVHeader(&b, len(samples)); err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(s)))
	}
	return b.Bytes()
}

// patch returns a copy of b with a little-endian value written at off.
func patch(b []byte, off int, v any) []byte {
	b = slices.Clone(b)
	switch v := v.(type) {
	case uint16:
		binary.LittleEndian.PutUint16(b[off:], v)
	case uint32:
		binary.LittleEndian.PutUint32(b[off:], v)
	case string:
		copy(b[off:], v)
	}
	return b
}

func TestReadWAV(t *testing.T) {
	samples := []int16{0, 1, -1, 32767, -32768, 1234}
	good := wavBytes(t, samples)
	// A LIST chunk (odd size, padded) between fmt and data is skipped.
	list := slices.Concat(good[:36], []byte("LIST\x03\x00\x00\x00abc\x00"), good[36:])
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"written", good, true},
		{"with LIST", list, true},
		{"trailing chunk", slices.Concat(good, []byte("junk\x00\x00\x00\x00")), true},
		{"empty", nil, false},
		{"not RIFF", patch(good, 0, "RIFX"), false},
		{"not WAVE", patch(good, 8, "AVI "), false},
		{"not PCM", patch(good, 20, uint16(3)), false},
		{"stereo", patch(good, 22, uint16(2)), false},
		{"16 kHz", patch(good, 24, uint32(16000)), false},
		{"8-bit", patch(good, 34, uint16(8)), false},
		{"fmt too short", patch(good, 16, uint32(14)), false},
		{"data longer than the file", patch(good, 40, uint32(2*len(samples)+2)), false},
		{"data size odd", patch(good, 40, uint32(3)), false},
		{"data size huge", patch(good, 40, uint32(0xfffffffe)), false},
		{"no data chunk", good[:36], false},
		{"data before fmt", slices.Concat(good[:12], good[36:]), false},
		{"cut in a chunk header", good[:40], false},
	} {
		got, rate, err := ReadWAV(bytes.NewReader(c.in))
		if c.ok {
			if err != nil || rate != 8000 || !slices.Equal(got, samples) {
				t.Fatalf("%s: %v at %d, %v", c.name, got, rate, err)
			}
			continue
		}
		if !errors.Is(err, ErrBadWAV) || got != nil {
			t.Fatalf("%s: %v, %v; want ErrBadWAV", c.name, got, err)
		}
	}
	if err := WriteWAVHeader(new(bytes.Buffer), -1); err == nil {
		t.Fatal("a header for -1 samples")
	}
}

// ReadWAV never panics, never returns more samples than the input holds,
// and reads back what WriteWAVHeader and the samples make.
func FuzzReadWAV(f *testing.F) {
	f.Add(wavBytes(f, []int16{1, -2, 3}))
	f.Add(wavBytes(f, nil))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEdata\xff\xff\xff\x7f"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, rate, err := ReadWAV(bytes.NewReader(in))
		if err != nil {
			return
		}
		if rate != 8000 || 2*len(s)+wavHeaderLen > len(in) {
			t.Fatalf("%d samples at %d from %d bytes", len(s), rate, len(in))
		}
		again, _, err := ReadWAV(bytes.NewReader(wavBytes(t, s)))
		if err != nil || !slices.Equal(again, s) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
