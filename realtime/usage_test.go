package realtime

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeUsage(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Usage
		err  bool
	}{
		{name: "null", in: `null`},
		{name: "empty", in: ``},
		{name: "GA completed (§3.7 example)",
			in: `{"total_tokens":253,"input_tokens":132,"output_tokens":121,
			"input_token_details":{"text_tokens":119,"audio_tokens":13,"image_tokens":0,"cached_tokens":64,
			"cached_tokens_details":{"text_tokens":64,"audio_tokens":0,"image_tokens":0}},
			"output_token_details":{"text_tokens":30,"audio_tokens":91}}`,
			want: Usage{Kind: UsageTokens, TotalTokens: 253, InputTokens: 132, OutputTokens: 121,
				InputText: 119, InputAudio: 13, InputCached: 64, CachedText: 64, OutputText: 30, OutputAudio: 91}},
		{name: "preview: cached without split, no totals",
			in: `{"input_token_details":{"cached_tokens":10,"text_tokens":40,"audio_tokens":20},
			"output_token_details":{"text_tokens":5,"audio_tokens":50}}`,
			want: Usage{Kind: UsageTokens, TotalTokens: 115, InputTokens: 60, OutputTokens: 55,
				InputText: 40, InputAudio: 20, InputCached: 10, CachedText: 10, OutputText: 5, OutputAudio: 50}},
		{name: "plural details spelling",
			in:   `{"input_tokens":3,"output_tokens":4,"input_tokens_details":{"audio_tokens":3},"output_tokens_details":{"audio_tokens":4}}`,
			want: Usage{Kind: UsageTokens, TotalTokens: 7, InputTokens: 3, OutputTokens: 4, InputAudio: 3, OutputAudio: 4}},
		{name: "failed response, zero usage",
			in:   `{"total_tokens":0,"input_tokens":0,"output_tokens":0,"input_token_details":{},"output_token_details":{}}`,
			want: Usage{Kind: UsageTokens}},
		{name: "transcription tokens",
			in:   `{"type":"tokens","total_tokens":22,"input_tokens":13,"input_token_details":{"text_tokens":0,"audio_tokens":13},"output_tokens":9}`,
			want: Usage{Kind: UsageTokens, TotalTokens: 22, InputTokens: 13, OutputTokens: 9, InputAudio: 13}},
		{name: "duration", in: `{"type":"duration","seconds":2.5}`,
			want: Usage{Kind: UsageDuration, Seconds: 2.5}},
		{name: "odd field types ignored",
			in:   `{"input_tokens":"12","output_tokens":-4,"total_tokens":1e300,"input_token_details":[1],"output_token_details":{"audio_tokens":true,"text_tokens":2.9}}`,
			want: Usage{Kind: UsageTokens, TotalTokens: 2, OutputTokens: 2, OutputText: 2}},
		{name: "not an object", in: `[1,2]`, err: true},
		{name: "truncated", in: `{"input_tokens":1`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeUsage([]byte(tt.in))
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPricesCost(t *testing.T) {
	p := Prices{InputText: 4, InputAudio: 32, CachedText: 0.4, CachedAudio: 0.4, OutputText: 16, OutputAudio: 64, PerMinute: 0.6}
	u := Usage{Kind: UsageTokens, InputText: 1_000_000, CachedText: 500_000, InputAudio: 1_000_000,
		OutputText: 1_000_000, OutputAudio: 2_000_000}
	// 0.5M text at 4 + 0.5M cached at 0.4 + 1M audio at 32 + 1M text out at 16 + 2M audio out at 64
	require.InDelta(t, 2+0.2+32+16+128, p.Cost(u), 1e-9)
	require.InDelta(t, 0.3, p.Cost(Usage{Kind: UsageDuration, Seconds: 30}), 1e-12)
	require.Zero(t, Prices{}.Cost(u))
}

func TestWastedTokens(t *testing.T) {
	u := Usage{Kind: UsageTokens, TotalTokens: 300, InputTokens: 100, OutputTokens: 200}
	tests := []struct {
		name   string
		status string
		played Played
		want   int64
	}{
		{"completed, heard in full", StatusCompleted, Played{AudioMs: 4000, PlayedMs: 4000}, 0},
		{"completed, text only (function call)", StatusCompleted, Played{}, 0},
		{"failed", StatusFailed, Played{}, 300},
		{"failed after some audio", StatusFailed, Played{AudioMs: 1000, PlayedMs: 1000}, 300},
		{"lost hedge", StatusCompleted, Played{AudioMs: 3000, LostRace: true}, 300},
		{"cancelled before any audio", StatusCancelled, Played{}, 300},
		{"barge-in after a quarter", StatusCancelled, Played{AudioMs: 4000, PlayedMs: 1000}, 150},
		{"completed but swapped away unheard", StatusCompleted, Played{AudioMs: 2000}, 300},
		{"incomplete (max tokens), all heard", StatusIncomplete, Played{AudioMs: 500, PlayedMs: 500}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, WastedTokens(u, tt.status, tt.played))
		})
	}
	require.Zero(t, WastedTokens(Usage{Kind: UsageDuration, Seconds: 3}, StatusFailed, Played{}))
}

func TestUsageAdd(t *testing.T) {
	var sum Usage
	sum.Add(Usage{Kind: UsageTokens, TotalTokens: 3, InputTokens: 1, OutputTokens: 2, OutputAudio: 2})
	sum.Add(Usage{Kind: UsageTokens, TotalTokens: 5, InputTokens: 5, InputCached: 4, CachedText: 4})
	require.Equal(t, Usage{Kind: UsageTokens, TotalTokens: 8, InputTokens: 6, OutputTokens: 2, OutputAudio: 2, InputCached: 4, CachedText: 4}, sum)
}

// FuzzDecodeUsage: usage arrives from the network; decoding never panics,
// and whatever it accepts is non-negative and self-consistent.
func FuzzDecodeUsage(f *testing.F) {
	for _, s := range []string{
		`null`, `{}`, `{"type":"duration","seconds":1}`,
		`{"total_tokens":253,"input_tokens":132,"output_tokens":121,"input_token_details":{"text_tokens":119,"audio_tokens":13,"cached_tokens":64,"cached_tokens_details":{"text_tokens":64}},"output_token_details":{"text_tokens":30,"audio_tokens":91}}`,
		`{"input_token_details":{"cached_tokens":"x"},"output_token_details":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodeUsage(data)
		if err != nil {
			require.True(t, u.IsZero())
			return
		}
		for _, v := range []int64{u.TotalTokens, u.InputTokens, u.OutputTokens, u.InputText, u.InputAudio,
			u.InputImage, u.InputCached, u.CachedText, u.CachedAudio, u.CachedImage, u.OutputText, u.OutputAudio} {
			require.GreaterOrEqual(t, v, int64(0))
		}
		require.False(t, math.IsNaN(u.Seconds) || u.Seconds < 0)
		p := Prices{InputText: 1, OutputAudio: 1, CachedText: 1, PerMinute: 1}
		c := p.Cost(u)
		require.False(t, math.IsNaN(c) || c < 0)
		require.GreaterOrEqual(t, WastedTokens(u, StatusCancelled, Played{AudioMs: 10, PlayedMs: 3}), int64(0))
	})
}
