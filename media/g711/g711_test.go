package g711

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
	zg711 "github.com/zaf/g711"
)

func TestKnownCodes(t *testing.T) {
	tests := []struct {
		name string
		law  Law
		code byte
		want int16
	}{
		{"ulaw silence", Ulaw, SilenceUlaw, 0},
		{"ulaw most negative", Ulaw, 0x00, -32124},
		{"ulaw most positive", Ulaw, 0x80, 32124},
		{"alaw silence", Alaw, SilenceAlaw, 8},
		{"alaw most positive", Alaw, 0xAA, 32256},
		{"alaw most negative", Alaw, 0x2A, -32256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out [1]int16
			require.Equal(t, 1, tc.law.Decode(out[:], []byte{tc.code}))
			require.Equal(t, tc.want, out[0])
		})
	}
	require.Equal(t, SilenceUlaw, Ulaw.Silence())
	require.Equal(t, SilenceAlaw, Alaw.Silence())
}

func TestRoundTripAllCodes(t *testing.T) {
	for _, law := range []Law{Ulaw, Alaw} {
		t.Run(law.String(), func(t *testing.T) {
			codes := make([]byte, 256)
			for i := range codes {
				codes[i] = byte(i)
			}
			pcm := make([]int16, 256)
			require.Equal(t, 256, law.Decode(pcm, codes))
			back := make([]byte, 256)
			require.Equal(t, 256, law.Encode(back, pcm))
			// ITU-T G.711: decode then encode is the identity, except μ-law's
			// two zero codes (0x7F = -0 and 0xFF = +0) which both encode to 0xFF.
			for i := range codes {
				if law == Ulaw && codes[i] == 0x7F {
					require.Equal(t, byte(0xFF), back[i])
					continue
				}
				require.Equal(t, codes[i], back[i], "code %#x", codes[i])
			}
		})
	}
}

func TestMatchesReferenceSliceFunctions(t *testing.T) {
	pcm := make([]int16, 0, 65536)
	for v := -32768; v <= 32767; v++ {
		pcm = append(pcm, int16(v))
	}
	raw := make([]byte, 2*len(pcm))
	require.Equal(t, len(raw), Int16ToPCM16LE(raw, pcm))

	tests := []struct {
		name   string
		enc    func([]byte, []int16) int
		refEnc func([]byte) []byte
	}{
		{"ulaw", EncodeUlaw, zg711.EncodeUlaw},
		{"alaw", EncodeAlaw, zg711.EncodeAlaw},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make([]byte, len(pcm))
			require.Equal(t, len(pcm), tc.enc(got, pcm))
			require.Equal(t, tc.refEnc(raw), got)
		})
	}

	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	a := make([]byte, 256)
	require.Equal(t, 256, UlawToAlaw(a, codes))
	require.Equal(t, zg711.Ulaw2Alaw(codes), a)
	require.Equal(t, 256, Transcode(a, codes, Ulaw, Alaw))
	require.Equal(t, zg711.Ulaw2Alaw(codes), a)
	u := make([]byte, 256)
	require.Equal(t, 256, AlawToUlaw(u, codes))
	require.Equal(t, zg711.Alaw2Ulaw(codes), u)
	require.Equal(t, 256, Transcode(u, codes, Alaw, Ulaw))
	require.Equal(t, zg711.Alaw2Ulaw(codes), u)
	require.Equal(t, 256, Transcode(u, codes, Alaw, Alaw))
	require.Equal(t, codes, u)
}

func TestLengths(t *testing.T) {
	src := []int16{1, 2, 3, 4}
	tests := []struct {
		name string
		run  func() int
		want int
	}{
		{"encode short dst", func() int { return EncodeUlaw(make([]byte, 2), src) }, 2},
		{"encode short src", func() int { return EncodeAlaw(make([]byte, 8), src) }, 4},
		{"decode short dst", func() int { return DecodeUlaw(make([]int16, 1), []byte{1, 2}) }, 1},
		{"decode empty", func() int { return DecodeAlaw(nil, []byte{1, 2}) }, 0},
		{"pcm odd byte ignored", func() int { return PCM16LEToInt16(make([]int16, 4), []byte{1, 0, 2}) }, 1},
		{"pcm short dst", func() int { return PCM16LEToInt16(make([]int16, 1), []byte{1, 0, 2, 0}) }, 1},
		{"int16 to bytes odd dst", func() int { return Int16ToPCM16LE(make([]byte, 5), src) }, 4},
		{"transcode short dst", func() int { return Transcode(make([]byte, 1), []byte{1, 2}, Ulaw, Alaw) }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, tc.run())
		})
	}
}

func TestPCM16LE(t *testing.T) {
	src := []int16{0, 1, -1, 32767, -32768, 0x1234}
	b := make([]byte, 12)
	require.Equal(t, 12, Int16ToPCM16LE(b, src))
	require.Equal(t, []byte{0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x80, 0x34, 0x12}, b)
	back := make([]int16, 6)
	require.Equal(t, 6, PCM16LEToInt16(back, b))
	require.Equal(t, src, back)
}

func TestNoAllocs(t *testing.T) {
	pcm := make([]int16, 160)
	enc := make([]byte, 160)
	raw := make([]byte, 320)
	allocs := testing.AllocsPerRun(100, func() {
		Ulaw.Encode(enc, pcm)
		Alaw.Decode(pcm, enc)
		Transcode(enc, enc, Ulaw, Alaw)
		Int16ToPCM16LE(raw, pcm)
		PCM16LEToInt16(pcm, raw)
	})
	require.Zero(t, allocs)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0xFF, 0x00, 0x80, 0xD5})
	f.Add([]byte{})
	f.Add([]byte{0x7F, 0x2A, 0xAA})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tc := range []struct {
			law Law
			ref func([]byte) []byte
		}{{Ulaw, zg711.DecodeUlaw}, {Alaw, zg711.DecodeAlaw}} {
			out := make([]int16, len(b))
			require.Equal(t, len(b), tc.law.Decode(out, b))
			ref := tc.ref(b)
			for i := range out {
				require.Equal(t, int16(binary.LittleEndian.Uint16(ref[2*i:])), out[i])
			}
		}
		pcm := make([]int16, len(b)/2)
		require.Equal(t, len(b)/2, PCM16LEToInt16(pcm, b))
		back := make([]byte, len(b)/2*2)
		require.Equal(t, len(back), Int16ToPCM16LE(back, pcm))
		require.Equal(t, b[:len(back)], back)
	})
}

func BenchmarkEncodeUlawFrame(b *testing.B) {
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(i * 200)
	}
	dst := make([]byte, 160)
	b.ReportAllocs()
	for b.Loop() {
		EncodeUlaw(dst, pcm)
	}
}

func BenchmarkDecodeAlawFrame(b *testing.B) {
	src := make([]byte, 160)
	for i := range src {
		src[i] = byte(i)
	}
	dst := make([]int16, 160)
	b.ReportAllocs()
	for b.Loop() {
		DecodeAlaw(dst, src)
	}
}

// TestEncodeTablesMatchTheLibrary: the lookup tables give zaf/g711's code
// for every 16-bit sample, both laws.
func TestEncodeTablesMatchTheLibrary(t *testing.T) {
	src := make([]int16, 1<<16)
	for i := range src {
		src[i] = int16(uint16(i))
	}
	for _, l := range []Law{Ulaw, Alaw} {
		dst := make([]byte, len(src))
		require.Equal(t, len(src), l.Encode(dst, src))
		for i, s := range src {
			want := zg711.EncodeUlawFrame(s)
			if l == Alaw {
				want = zg711.EncodeAlawFrame(s)
			}
			if dst[i] != want {
				t.Fatalf("%s: sample %d encodes to %#x, the library says %#x", l, s, dst[i], want)
			}
		}
	}
}
