package main

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefaultQuestionIsTheBundledPrompt(t *testing.T) {
	b, err := os.ReadFile("../../prompts/question.wav")
	require.NoError(t, err)
	require.True(t, bytes.Equal(b, defaultQuestion), "cmd/sipbridge/question.wav must be a copy of prompts/question.wav (cp prompts/question.wav cmd/sipbridge/)")
	q, err := questionAudio("")
	require.NoError(t, err)
	require.Greater(t, len(q), 8000, "over a second of speech")
}

func TestCallUsage(t *testing.T) {
	dir := t.TempDir()
	notWAV := filepath.Join(dir, "x.wav")
	require.NoError(t, os.WriteFile(notWAV, []byte("nope"), 0o600))
	cases := []struct {
		name   string
		args   []string
		errOut string
	}{
		{"no target", []string{"call"}, "usage: sipbridge call"},
		{"two targets", []string{"call", "sip:a@127.0.0.1", "sip:b@127.0.0.1"}, "usage: sipbridge call"},
		{"bad flag", []string{"call", "-nope", "sip:a@127.0.0.1"}, "flag provided but not defined"},
		{"bad wav", []string{"call", "-wav", notWAV, "sip:a@127.0.0.1"}, "not a RIFF/WAVE file"},
		{"missing wav", []string{"call", "-wav", filepath.Join(dir, "none.wav"), "sip:a@127.0.0.1"}, "no such file"},
		{"bad transport", []string{"call", "-transport", "sctp", "sip:a@127.0.0.1"}, "want udp or tcp"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.Equal(t, callUsage, run(tc.args, &out, &errOut))
			require.Contains(t, errOut.String(), tc.errOut)
		})
	}
}

// tone appends d ms of a 440 Hz tone at dbov (or silence for dbov <= -120).
func tone(s []int16, dMs int, dbov float64) []int16 {
	amp := 32767 * math.Pow(10, dbov/20) * math.Sqrt2 // RMS dbov
	for i := range dMs * 8 {
		v := 0.0
		if dbov > -120 {
			v = amp * math.Sin(2*math.Pi*440*float64(i)/8000)
		}
		s = append(s, int16(v))
	}
	return s
}

func TestAnswerDetection(t *testing.T) {
	var s []int16
	s = tone(s, 1000, -120) // 0-1000 silence
	s = tone(s, 500, -20)   // 1000-1500 speech
	s = tone(s, 500, -60)   // 1500-2000 comfort noise level: not speech
	s = tone(s, 300, -30)   // 2000-2300 speech
	s = tone(s, 200, -120)
	require.Equal(t, 1000, firstVoicedMs(s, 0))
	require.Equal(t, 2000, firstVoicedMs(s, 1500))
	require.Equal(t, -1, firstVoicedMs(s, 2300))
	require.Equal(t, 800, voicedMs(s, 0, len(s)/8))
	require.Equal(t, 500, voicedMs(s, 0, 2000))
	require.Equal(t, 2300, lastVoicedMs(s))
	require.Equal(t, -1, lastVoicedMs(tone(nil, 500, -120)))
}

func TestWriteWAVReadsBack(t *testing.T) {
	s := tone(nil, 250, -20)
	p := filepath.Join(t.TempDir(), "heard.wav")
	require.NoError(t, writeWAV8k(p, s))
	pr, err := loadPrompt(p)
	require.NoError(t, err)
	require.Equal(t, 8000, pr.rate)
	require.Equal(t, s, pr.samples)
}

func TestCallMetricsDelta(t *testing.T) {
	body := `# TYPE sipbridge_realtime_responses_total counter
sipbridge_realtime_responses_total{region="east",status="completed"} 5
sipbridge_realtime_responses_total{region="west",status="completed"} 1
# TYPE sipbridge_failover_swaps_total counter
sipbridge_failover_swaps_total{from="east",to="west",trigger="stall"} 2
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/metrics", r.URL.Path)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	before, err := scrapeCallMetrics(context.Background(), addr)
	require.NoError(t, err)
	body = strings.NewReplacer(`"completed"} 5`, `"completed"} 8`, `trigger="stall"} 2`, `trigger="stall"} 3`).Replace(body)
	after, err := scrapeCallMetrics(context.Background(), addr)
	require.NoError(t, err)
	d := after.since(before)
	require.Equal(t, "east (3 responses)", d.regionsText())
	require.Equal(t, "1: 1× east→west (stall)", d.swapsText())
	require.Equal(t, "none answered", before.since(before).regionsText())
	require.Equal(t, "0", before.since(before).swapsText())

	off, err := scrapeCallMetrics(context.Background(), "off")
	require.NoError(t, err)
	require.Empty(t, off.responses)
}
