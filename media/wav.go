package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// WAV files as voicemail stores them and greetings are uploaded: RIFF,
// PCM, one channel, 16-bit little-endian samples at 8000 Hz.
const (
	wavRate       = 8000
	wavHeaderLen  = 44
	maxWAVSamples = 3600 * wavRate // an hour: more is not a voicemail or a greeting
)

// ErrBadWAV: ReadWAV was given something other than a whole 8 kHz, mono,
// 16-bit PCM WAV file.
var ErrBadWAV = errors.New("media: not an 8 kHz mono 16-bit PCM WAV")

// WriteWAVHeader writes the 44-byte header of a WAV file holding samples
// 16-bit mono samples at 8000 Hz.
func WriteWAVHeader(w io.Writer, samples int) error {
	if samples < 0 || samples > maxWAVSamples {
		return fmt.Errorf("media: WAV header for %d samples: out of range", samples)
	}
	data := uint32(2 * samples)
	var h [wavHeaderLen]byte
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)        // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:], 1)         // PCM
	binary.LittleEndian.PutUint16(h[22:], 1)         // channels
	binary.LittleEndian.PutUint32(h[24:], wavRate)   // sample rate
	binary.LittleEndian.PutUint32(h[28:], wavRate*2) // byte rate
	binary.LittleEndian.PutUint16(h[32:], 2)         // block align
	binary.LittleEndian.PutUint16(h[34:], 16)        // bits per sample
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	if _, err := w.Write(h[:]); err != nil {
		return fmt.Errorf("media: writing WAV header: %w", err)
	}
	return nil
}

// ReadWAV reads a WAV file's samples. It accepts only PCM, one channel,
// 16 bits, 8000 Hz (rate is therefore 8000), skips chunks it does not know
// (LIST, fact), and fails with ErrBadWAV when the data chunk claims more
// bytes than follow it. Memory grows with the bytes actually read, never
// with what a header claims.
func ReadWAV(r io.Reader) (samples []int16, rate int, err error) {
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return nil, 0, fmt.Errorf("%w: RIFF header: %v", ErrBadWAV, err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("%w: not RIFF/WAVE", ErrBadWAV)
	}
	fmtSeen := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return nil, 0, fmt.Errorf("%w: no data chunk: %v", ErrBadWAV, err)
		}
		id, size := string(ch[0:4]), int64(binary.LittleEndian.Uint32(ch[4:]))
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return nil, 0, fmt.Errorf("%w: fmt chunk of %d bytes", ErrBadWAV, size)
			}
			f := make([]byte, size+size&1)
			if _, err := io.ReadFull(r, f); err != nil {
				return nil, 0, fmt.Errorf("%w: fmt chunk: %v", ErrBadWAV, err)
			}
			format, channels := binary.LittleEndian.Uint16(f[0:]), binary.LittleEndian.Uint16(f[2:])
			hz, bits := binary.LittleEndian.Uint32(f[4:]), binary.LittleEndian.Uint16(f[14:])
			if format != 1 || channels != 1 || hz != wavRate || bits != 16 {
				return nil, 0, fmt.Errorf("%w: format %d, %d channels, %d Hz, %d bits", ErrBadWAV, format, channels, hz, bits)
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, 0, fmt.Errorf("%w: data before fmt", ErrBadWAV)
			}
			if size%2 != 0 || size > 2*maxWAVSamples {
				return nil, 0, fmt.Errorf("%w: data chunk of %d bytes", ErrBadWAV, size)
			}
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(io.LimitReader(r, size)); err != nil {
				return nil, 0, fmt.Errorf("media: reading WAV data: %w", err)
			}
			if int64(buf.Len()) != size {
				return nil, 0, fmt.Errorf("%w: data chunk claims %d bytes, %d follow", ErrBadWAV, size, buf.Len())
			}
			b := buf.Bytes()
			samples = make([]int16, len(b)/2)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return samples, wavRate, nil
		default:
			// Chunks are word-aligned: an odd size has a pad byte.
			if _, err := io.CopyN(io.Discard, r, size+size&1); err != nil {
				return nil, 0, fmt.Errorf("%w: %q chunk: %v", ErrBadWAV, id, err)
			}
		}
	}
}
