package baresip

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The phones speak and record 8 kHz mono 16-bit PCM: what G.711 carries.
const rate = 8000

// writeTone writes a WAV file of a sine at freq Hz lasting secs seconds.
func writeTone(path string, freq float64, secs int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("tone file: %w", err)
	}
	defer f.Close()
	n := rate * secs
	w := bufio.NewWriter(f)
	le := binary.LittleEndian
	hdr := make([]byte, 0, 44)
	hdr = append(hdr, "RIFF"...)
	hdr = le.AppendUint32(hdr, uint32(36+2*n))
	hdr = append(hdr, "WAVEfmt "...)
	hdr = le.AppendUint32(hdr, 16)
	hdr = le.AppendUint16(hdr, 1) // PCM
	hdr = le.AppendUint16(hdr, 1) // mono
	hdr = le.AppendUint32(hdr, rate)
	hdr = le.AppendUint32(hdr, 2*rate) // bytes per second
	hdr = le.AppendUint16(hdr, 2)      // bytes per frame
	hdr = le.AppendUint16(hdr, 16)     // bits per sample
	hdr = append(hdr, "data"...)
	hdr = le.AppendUint32(hdr, uint32(2*n))
	w.Write(hdr)
	var s [2]byte
	for i := range n {
		le.PutUint16(s[:], uint16(int16(8000*math.Sin(2*math.Pi*freq*float64(i)/rate))))
		w.Write(s[:])
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("tone file: %w", err)
	}
	return f.Close()
}

// readWAV reads the samples of an 8 kHz mono 16-bit PCM WAV file that may
// still be being written: it takes whatever follows the data chunk's header,
// not the size the header claims.
func readWAV(path string) ([]int16, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("recording: %w", err)
	}
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("recording %s: not a WAV file", path)
	}
	le := binary.LittleEndian
	fmtOK := false
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(le.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, fmt.Errorf("recording %s: short fmt chunk", path)
			}
			format, ch, sr, bits := le.Uint16(body), le.Uint16(body[2:]), le.Uint32(body[4:]), le.Uint16(body[14:])
			if format != 1 || ch != 1 || sr != rate || bits != 16 {
				return nil, fmt.Errorf("recording %s: format %d, %d channels, %d Hz, %d bits; want 16-bit PCM mono at %d Hz", path, format, ch, sr, bits, rate)
			}
			fmtOK = true
		case "data":
			if !fmtOK {
				return nil, fmt.Errorf("recording %s: data before fmt", path)
			}
			x := make([]int16, len(body)/2)
			for i := range x {
				x[i] = int16(le.Uint16(body[2*i:]))
			}
			return x, nil
		}
		p += 8 + size + size%2
	}
	return nil, errors.New("recording " + path + ": no data chunk")
}

// toneShare is the share (0 to 1) of x's energy at freq Hz: the Goertzel
// power at freq against the block's whole energy. A pure tone at freq gives
// about 1, another tone or noise about 0.
func toneShare(x []int16, freq float64) float64 {
	c := 2 * math.Cos(2*math.Pi*freq/rate)
	var s1, s2, energy float64
	for _, v := range x {
		f := float64(v)
		s1, s2 = f+c*s1-s2, s1
		energy += f * f
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return 2 * power / (float64(len(x)) * energy)
}

// block is what 100 ms of a recording hold, classified by hear.
const block = rate / 10

// silent is the RMS below which a block counts as silence (G.711's silence
// decodes to a few units at most).
const silent = 100

// hear labels each whole 100 ms block of x with the one of tones that
// carries most of its energy, "silence", or "other".
func hear(x []int16, tones map[string]float64) []string {
	var out []string
	for p := 0; p+block <= len(x); p += block {
		b := x[p : p+block]
		var energy float64
		for _, v := range b {
			energy += float64(v) * float64(v)
		}
		label := "other"
		if math.Sqrt(energy/block) < silent {
			label = "silence"
		} else {
			for name, f := range tones {
				if toneShare(b, f) > 0.6 {
					label = name
				}
			}
		}
		out = append(out, label)
	}
	return out
}

// The analysis the interop test relies on, checked on known signals.
func TestHear(t *testing.T) {
	tones := map[string]float64{"alice": 600, "bob": 1000, "hold": 425}
	sine := func(freq, amp float64, n int) []int16 {
		x := make([]int16, n)
		for i := range x {
			x[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/rate))
		}
		return x
	}
	mix := func(a, b []int16) []int16 {
		x := make([]int16, len(a))
		for i := range x {
			x[i] = a[i]/2 + b[i]/2
		}
		return x
	}
	for _, tc := range []struct {
		name string
		x    []int16
		want string
	}{
		{"alice's tone", sine(600, 8000, block), "alice"},
		{"bob's tone, quiet", sine(1000, 500, block), "bob"},
		{"the hold tone", sine(425, 6000, block), "hold"},
		{"a tone nobody plays", sine(2000, 8000, block), "other"},
		{"two tones at once", mix(sine(600, 8000, block), sine(1000, 8000, block)), "other"},
		{"silence", make([]int16, block), "silence"},
		{"near silence", sine(600, 50, block), "silence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := hear(append(tc.x, 1, 2, 3), tones) // a partial block is left out
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("heard %v, want [%s]", got, tc.want)
			}
		})
	}
}

func TestWAVRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := writeTone(path, 600, 1); err != nil {
		t.Fatal(err)
	}
	x, err := readWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != rate {
		t.Fatalf("read %d samples, want %d", len(x), rate)
	}
	if got := hear(x, map[string]float64{"tone": 600}); len(got) != 10 || got[0] != "tone" || got[9] != "tone" {
		t.Fatalf("heard %v", got)
	}
	// A file still being written: the data chunk runs past the size its
	// header was written with.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, 0, 1, 0, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	if x, err = readWAV(path); err != nil || len(x) != rate+2 || x[rate+1] != 512 {
		t.Fatalf("growing file: %d samples, %v", len(x), err)
	}
	for _, bad := range []string{"", "RIFF0000WAVE", "RIFF0000WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00\x40\x1f\x00\x00\x00\x7d\x00\x00\x04\x00\x10\x00data"} {
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readWAV(path); err == nil {
			t.Fatalf("%q: want an error", bad)
		}
	}
}
