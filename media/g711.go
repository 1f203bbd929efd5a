package media

// G.711 decoding and 16-bit mixing for the mixer. Encoding (ulaw, alaw) is
// in tone.go. Everything here works on fixed 20 ms frames and allocates
// nothing.

const frameSamples = 160 // one 20 ms frame at 8 kHz

// ulawLin and alawLin decode a G.711 byte to a linear 16-bit sample (ITU-T
// G.711 reference values: mu-law in 14 bits, A-law in 13, scaled to 16).
var ulawLin, alawLin = makeG711Tables()

func makeG711Tables() (u, a [256]int16) {
	for i := range 256 {
		b := byte(i)
		// mu-law: complemented, sign, 3-bit exponent, 4-bit mantissa, bias 0x84.
		x := ^b
		t := (int(x&0x0f)<<3 + 0x84) << ((x & 0x70) >> 4)
		if x&0x80 != 0 {
			u[i] = int16(0x84 - t)
		} else {
			u[i] = int16(t - 0x84)
		}
		// A-law: even bits inverted, sign set for positive, segment and mantissa.
		y := b ^ 0x55
		v := int(y&0x0f) << 4
		switch seg := (y & 0x70) >> 4; seg {
		case 0:
			v += 8
		case 1:
			v += 0x108
		default:
			v = (v + 0x108) << (seg - 1)
		}
		if y&0x80 != 0 {
			a[i] = int16(v)
		} else {
			a[i] = int16(-v)
		}
	}
	return
}

// ulawToALaw and alawToULaw convert a G.711 byte to the other law, for a
// packet forwarded to a leg that agreed the other one.
var ulawToALaw, alawToULaw = func() (u2a, a2u [256]byte) {
	for i := range 256 {
		u2a[i], a2u[i] = alaw(ulawLin[i]), ulaw(alawLin[i])
	}
	return
}()

// EncodeULaw and DecodeULaw are G.711 mu-law for one sample, as the relay's
// mixer and tones code it, for callers that build or read PCMU audio.
func EncodeULaw(s int16) byte { return ulaw(s) }
func DecodeULaw(b byte) int16 { return ulawLin[b] }

// EncodeALaw and DecodeALaw are the same for A-law (PCMA).
func EncodeALaw(s int16) byte { return alaw(s) }
func DecodeALaw(b byte) int16 { return alawLin[b] }

// decodeG711 writes the len(payload) linear samples of one law's payload
// into dst, which must be at least as long.
func decodeG711(dst []int16, payload []byte, table *[256]int16) {
	dst = dst[:len(payload)]
	for i, b := range payload {
		dst[i] = table[b]
	}
}

// encodeULaw and encodeALaw encode a frame of linear samples.
func encodeULaw(dst []byte, src *[frameSamples]int16) {
	dst = dst[:frameSamples]
	for i, s := range src {
		dst[i] = ulaw(s)
	}
}

func encodeALaw(dst []byte, src *[frameSamples]int16) {
	dst = dst[:frameSamples]
	for i, s := range src {
		dst[i] = alaw(s)
	}
}

// mixAdd adds a frame into a 32-bit accumulator: no clipping until the end,
// so the order of the sources does not matter.
func mixAdd(acc *[frameSamples]int32, src *[frameSamples]int16) {
	for i, s := range src {
		acc[i] += int32(s)
	}
}

// saturate writes the accumulator back as 16-bit samples, clipping what is
// out of range instead of letting it wrap around.
func saturate(dst *[frameSamples]int16, acc *[frameSamples]int32) {
	for i, v := range acc {
		dst[i] = int16(min(max(v, -32768), 32767))
	}
}
