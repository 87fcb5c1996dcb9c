package phone

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// tone returns ms of a sine at hz and dbov peak level (silence below -120).
func tone(hz float64, ms int, dbov float64) []int16 {
	s := make([]int16, ms*8)
	if dbov <= -120 {
		return s
	}
	amp := dbToAmp(dbov)
	for i := range s {
		s[i] = int16(amp * math.Sin(2*math.Pi*hz*float64(i)/sampleRate))
	}
	return s
}

func TestToneSpans(t *testing.T) {
	var s []int16
	s = append(s, tone(440, 500, -120)...) // 0-500 silence
	s = append(s, tone(440, 600, -20)...)  // 500-1100 the tone
	s = append(s, tone(440, 100, -120)...) // a dip shorter than 200 ms is merged
	s = append(s, tone(440, 300, -20)...)  // 1200-1500
	s = append(s, tone(660, 400, -20)...)  // 1500-1900 another tone
	s = append(s, tone(440, 400, -60)...)  // too quiet to hear
	require.Equal(t, []Span{{500, 1500}}, ToneSpans(s, 440))
	require.Equal(t, []Span{{1500, 1900}}, ToneSpans(s, 660))
	require.Empty(t, ToneSpans(s, 1000))
}

func TestLevelDBov(t *testing.T) {
	require.InDelta(t, -23, LevelDBov(tone(440, 100, -20)), 0.1, "a sine's RMS is 3 dB under its peak")
	require.Equal(t, -120.0, LevelDBov(nil))
	require.Equal(t, -120.0, LevelDBov(make([]int16, 160)))
}

func TestBuildOffer(t *testing.T) {
	o := buildOffer("192.0.2.1", 40000, []string{"PCMA", "pcmu"}, 101)
	require.True(t, strings.HasSuffix(o, "\r\n"))
	for _, want := range []string{
		"c=IN IP4 192.0.2.1\r\n",
		"m=audio 40000 RTP/AVP 8 0 101\r\n",
		"a=rtpmap:8 PCMA/8000\r\n",
		"a=rtpmap:101 telephone-event/8000\r\n",
		"a=sendrecv\r\n",
	} {
		require.Contains(t, o, want)
	}
	require.NotContains(t, buildOffer("192.0.2.1", 40000, []string{"PCMU"}, -1), "telephone-event")
}
