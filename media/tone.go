package media

import (
	"math"
	"time"
)

// The hold tone: 425 Hz, one second on, one second off, in 20 ms frames,
// encoded once for both G.711 laws and shared by every held leg.
const (
	toneFrames   = 100 // two seconds
	toneFrameDur = 20 * time.Millisecond
	toneStep     = 160 // timestamp step of a 20 ms frame at 8 kHz
)

var toneULaw, toneALaw = makeTone()

func makeTone() (u, a [toneFrames][160]byte) {
	for f := 0; f < toneFrames; f++ {
		for i := 0; i < 160; i++ {
			var s int16
			if f < toneFrames/2 {
				n := float64(f*160 + i)
				s = int16(6000 * math.Sin(2*math.Pi*425*n/8000))
			}
			u[f][i], a[f][i] = ulaw(s), alaw(s)
		}
	}
	return
}

// ulaw encodes a 16-bit sample with G.711 mu-law.
func ulaw(s int16) byte {
	const bias, clip = 0x84, 32635
	x := int(s)
	sign := 0
	if x < 0 {
		x, sign = -x, 0x80
	}
	if x > clip {
		x = clip
	}
	x += bias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0f
	return ^byte(sign | exp<<4 | mant)
}

// alaw encodes a 16-bit sample with G.711 A-law.
func alaw(s int16) byte {
	x := int(s) >> 3
	sign := 0x80
	if x < 0 {
		x, sign = -x-1, 0
	}
	if x > 0xfff {
		x = 0xfff
	}
	var v int
	if x < 32 {
		v = x >> 1
	} else {
		exp := 1
		for t := x >> 5; t > 1; t >>= 1 {
			exp++
		}
		v = exp<<4 | (x>>exp)&0x0f
	}
	return byte(v|sign) ^ 0x55
}
