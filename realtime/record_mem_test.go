package realtime

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkHeapPerRecord reports the live Go heap of one call's
// conversation record after ten turns (the caller speaks 2 s, the model
// answers 4 s, both transcribed), in G.711 (audio_format auto on a G.711
// call) and PCM16 24 kHz (pcm24, or a G.722 call): what a call keeps for a
// replay (issue 10: memory sized for the work).
//
//	go test -run '^$' -bench HeapPerRecord -benchtime 1x ./realtime/
func BenchmarkHeapPerRecord(b *testing.B) {
	for _, f := range []AudioFormat{FormatPCMU, FormatPCM24} {
		b.Run(string(f), func(b *testing.B) {
			const records, turns = 50, 10
			caller := make([]byte, 2000*f.BytesPerMs())
			answer := make([]byte, 4000*f.BytesPerMs())
			var perRecord float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				live := make([]*Record, records)
				for i := range live {
					r := NewRecord(RecordConfig{InputFormat: f, OutputFormat: f})
					for t := range turns {
						u, a := fmt.Sprintf("item_u%02d", t), fmt.Sprintf("item_a%02d", t)
						r.Apply(ServerEvent{Type: EvInputCommitted, ItemID: u})
						r.SetUserAudio(u, caller)
						r.Apply(ServerEvent{Type: EvOutputAudioDelta, ItemID: a, Audio: answer})
						r.Apply(ServerEvent{Type: EvOutputAudioTranscriptDone, ItemID: a, Transcript: "Sure, I can help you with that, one moment please."})
						r.Apply(ServerEvent{Type: EvInputTranscriptionCompleted, ItemID: u, Transcript: "I would like to check my order."})
					}
					live[i] = r
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perRecord = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / records
				runtime.KeepAlive(live)
			}
			b.ReportMetric(perRecord, "heap-B/call")
		})
	}
}
