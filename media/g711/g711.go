package g711

import (
	"encoding/binary"
	"sync"

	zg711 "github.com/zaf/g711"
)

// Silence codes: the byte each law uses for a zero sample. μ-law 0xFF
// decodes to 0; A-law 0xD5 decodes to +8, the smallest positive step (A-law
// has no exact zero).
const (
	SilenceUlaw byte = 0xFF
	SilenceAlaw byte = 0xD5
)

// Law is a G.711 companding law.
type Law uint8

const (
	// Ulaw is μ-law (North America, Japan), RTP payload type 0 (PCMU).
	Ulaw Law = iota + 1
	// Alaw is A-law (rest of the world), RTP payload type 8 (PCMA).
	Alaw
)

// String names the law as SDP does.
func (l Law) String() string {
	switch l {
	case Ulaw:
		return "PCMU"
	case Alaw:
		return "PCMA"
	default:
		return "unknown"
	}
}

// Valid reports whether l is Ulaw or Alaw.
func (l Law) Valid() bool { return l == Ulaw || l == Alaw }

// Silence is the law's silence byte (SilenceUlaw or SilenceAlaw). An
// invalid law gets the μ-law code.
func (l Law) Silence() byte {
	if l == Alaw {
		return SilenceAlaw
	}
	return SilenceUlaw
}

// encodeTables hold zaf/g711's encoding of every 16-bit sample, indexed
// by the sample's bits: one lookup per sample instead of the library's
// segment search, which was 5 % of the bridge's CPU at 500 calls (both
// directions of every G.711 call encode). 64 KiB per law, built once from
// the library itself, so the codes are the library's
// (TestEncodeTablesMatchTheLibrary checks all 65536).
var encodeTables = sync.OnceValue(func() *[2][1 << 16]byte {
	t := new([2][1 << 16]byte)
	for i := range 1 << 16 {
		s := int16(uint16(i))
		t[0][i] = zg711.EncodeUlawFrame(s)
		t[1][i] = zg711.EncodeAlawFrame(s)
	}
	return t
})

// Encode encodes src into dst with this law (μ-law for an invalid law) and
// returns min(len(dst), len(src)).
func (l Law) Encode(dst []byte, src []int16) int {
	tables := encodeTables()
	table := &tables[0]
	if l == Alaw {
		table = &tables[1]
	}
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, v := range src {
		dst[i] = table[uint16(v)]
	}
	return n
}

// Decode decodes src into dst with this law (μ-law for an invalid law) and
// returns min(len(dst), len(src)).
func (l Law) Decode(dst []int16, src []byte) int {
	if l == Alaw {
		return convert(dst, src, zg711.DecodeAlawFrame)
	}
	return convert(dst, src, zg711.DecodeUlawFrame)
}

// EncodeUlaw μ-law encodes src into dst; it returns min(len(dst), len(src)).
func EncodeUlaw(dst []byte, src []int16) int { return Ulaw.Encode(dst, src) }

// DecodeUlaw decodes μ-law src into dst; it returns min(len(dst), len(src)).
func DecodeUlaw(dst []int16, src []byte) int { return Ulaw.Decode(dst, src) }

// EncodeAlaw A-law encodes src into dst; it returns min(len(dst), len(src)).
func EncodeAlaw(dst []byte, src []int16) int { return Alaw.Encode(dst, src) }

// DecodeAlaw decodes A-law src into dst; it returns min(len(dst), len(src)).
func DecodeAlaw(dst []int16, src []byte) int { return Alaw.Decode(dst, src) }

// UlawToAlaw converts μ-law src to A-law dst with the direct G.711 table;
// it returns min(len(dst), len(src)). dst and src may be the same slice.
func UlawToAlaw(dst, src []byte) int { return convert(dst, src, zg711.Ulaw2AlawFrame) }

// AlawToUlaw converts A-law src to μ-law dst with the direct G.711 table;
// it returns min(len(dst), len(src)). dst and src may be the same slice.
func AlawToUlaw(dst, src []byte) int { return convert(dst, src, zg711.Alaw2UlawFrame) }

// convert maps src through f into dst, element by element, and returns
// min(len(dst), len(src)). dst and src may be the same slice.
func convert[S, D any](dst []D, src []S, f func(S) D) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, v := range src {
		dst[i] = f(v)
	}
	return n
}

// Transcode converts src from one law to another into dst (a plain copy when
// the laws are equal); it returns min(len(dst), len(src)).
func Transcode(dst, src []byte, from, to Law) int {
	switch {
	case from == Ulaw && to == Alaw:
		return UlawToAlaw(dst, src)
	case from == Alaw && to == Ulaw:
		return AlawToUlaw(dst, src)
	default:
		return copy(dst, src)
	}
}

// PCM16LEToInt16 reads little-endian 16-bit samples from src into dst and
// returns the number of samples, min(len(dst), len(src)/2). A trailing odd
// byte is ignored; the caller carries it.
func PCM16LEToInt16(dst []int16, src []byte) int {
	n := min(len(dst), len(src)/2)
	dst = dst[:n]
	for i := range dst {
		dst[i] = int16(binary.LittleEndian.Uint16(src[2*i:]))
	}
	return n
}

// Int16ToPCM16LE writes src as little-endian 16-bit samples into dst and
// returns the number of bytes written, 2·min(len(dst)/2, len(src)).
func Int16ToPCM16LE(dst []byte, src []int16) int {
	n := min(len(dst)/2, len(src))
	for i, s := range src[:n] {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(s))
	}
	return 2 * n
}
