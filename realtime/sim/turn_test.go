package sim

import (
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestVADTurnLifecycle drives one caller turn through server VAD and checks
// the whole response lifecycle, in order (§3.3–3.6), with audio at VoiceHz.
func TestVADTurnLifecycle(t *testing.T) {
	s, url := startSim(t, fastConfig("east"))
	c, created := dialReady(t, url, gaPath)
	sess := vadSession(nil)
	sess["audio"].(map[string]any)["input"].(map[string]any)["transcription"] = map[string]any{"model": "whisper-1"}
	c.update(sess)

	// 200 ms silence, 1 s of −20 dBov speech, 700 ms silence; faster than
	// real time: VAD runs on audio time.
	c.speak(1000)
	evs := c.until("response.done")
	require.Equal(t, []string{
		"input_audio_buffer.speech_started",
		"input_audio_buffer.speech_stopped",
		"input_audio_buffer.committed",
		"conversation.item.added",
		"conversation.item.done",
		"conversation.item.input_audio_transcription.completed",
		"response.created",
		"rate_limits.updated",
		"response.output_item.added",
		"conversation.item.added",
		"response.content_part.added",
		// interleaved transcript + audio deltas, folded pairwise below
	}, types(evs)[:11])
	tail := types(evs)[11:]
	require.Equal(t, []string{"response.output_audio.done", "response.output_audio_transcript.done", "response.content_part.done",
		"response.output_item.done", "conversation.item.done", "response.done"}, tail[len(tail)-6:])
	for _, typ := range tail[:len(tail)-6] {
		require.Contains(t, []string{"response.output_audio.delta", "response.output_audio_transcript.delta"}, typ)
	}

	started, stopped := evs[0], evs[1]
	userItem := started["item_id"].(string)
	// Speech began at 200 ms; the 300 ms prefix padding reaches back to the
	// start of the buffer (§3.3: audio_start_ms includes prefix_padding_ms).
	require.Equal(t, 0.0, started["audio_start_ms"])
	// 200 + 1000 ms of speech + 500 ms silence_duration_ms.
	require.InDelta(t, 1700, stopped["audio_end_ms"], 20)
	require.Equal(t, userItem, stopped["item_id"])
	committed := evs[2]
	require.Nil(t, committed["previous_item_id"])
	require.Equal(t, userItem, committed["item_id"])
	item := evs[3]["item"].(map[string]any)
	require.Equal(t, "user", item["role"])
	require.Equal(t, "realtime.item", item["object"])
	require.Equal(t, []any{map[string]any{"type": "input_audio", "transcript": nil}}, item["content"])
	tr := evs[5]
	require.Equal(t, userItem, tr["item_id"])
	require.Equal(t, "caller spoke for 1.7 seconds", tr["transcript"])

	resp := evs[6]["response"].(map[string]any)
	respID := resp["id"].(string)
	require.Equal(t, "in_progress", resp["status"])
	require.Equal(t, "realtime.response", resp["object"])
	out := evs[8]["item"].(map[string]any)
	require.Equal(t, "in_progress", out["status"])
	require.Equal(t, []any{}, out["content"])
	require.Equal(t, userItem, evs[9]["previous_item_id"])
	require.Equal(t, map[string]any{"type": "audio", "transcript": ""}, evs[10]["part"])

	want := `This is east. You are turn 1; I heard "caller spoke for 1.7 seconds". I remember 1 items.`
	doneTr := ofType(evs, "response.output_audio_transcript.done")[0]
	require.Equal(t, want, doneTr["transcript"])
	var joined string
	for _, d := range ofType(evs, "response.output_audio_transcript.delta") {
		joined += d["delta"].(string)
		require.Equal(t, respID, d["response_id"])
	}
	require.Equal(t, want, joined)

	// Audio: μ-law, ≈60 ms per character capped at 4 s, a tone at VoiceHz.
	audio := audioOf(t, evs, "response.output_audio.delta")
	wantMs := min(utf8.RuneCountInString(want)*60, 4000)
	require.Equal(t, wantMs*8, len(audio))
	pcm := decodeTest("pcmu", audio)
	require.Greater(t, goertzelPower(pcm, 8000, 700), 100*goertzelPower(pcm, 8000, 440))
	lvl := levelDBov(pcm)
	require.InDelta(t, -16, lvl, 1.5)

	done := evs[len(evs)-1]["response"].(map[string]any)
	require.Equal(t, "completed", done["status"])
	require.Nil(t, done["status_details"])
	require.Len(t, done["output"], 1)
	usage := done["usage"].(map[string]any)
	require.Equal(t, float64(wantMs/50), usage["output_token_details"].(map[string]any)["audio_tokens"])
	c.probe()

	rec := sessionByID(t, s, sessID(created))
	require.Equal(t, []TurnRecord{{ItemID: userItem, Origin: OriginVAD, AudioStartMs: 0, AudioEndMs: rec.Turns[0].AudioEndMs,
		AudioMs: rec.Turns[0].AudioMs, Heard: "caller spoke for 1.7 seconds"}}, rec.Turns)
	require.Equal(t, []string{"user: caller spoke for 1.7 seconds", "assistant: " + want}, rec.Transcript())
	require.Equal(t, respID, rec.Responses[0].ID)
	require.Equal(t, "completed", rec.Responses[0].Status)
	require.Equal(t, TriggerVAD, rec.Responses[0].Trigger)
	require.Equal(t, 1900, rec.AppendedAudioMs)
}

func TestVADIgnoresLineNoise(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	c.update(vadSession(nil))
	c.appendAudio("pcmu", noise(8000, -50, 3000))
	c.probe() // no speech_started before the probe's answer
}

// TestVADThreshold checks the threshold maps to level: a −35 dBov talker
// triggers at 0.3 (−42 dBov) but not at the default 0.5 (−30 dBov).
func TestVADThreshold(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	for _, tc := range []struct {
		threshold float64
		triggers  bool
	}{{0.5, false}, {0.3, true}} {
		t.Run(fmt.Sprint(tc.threshold), func(t *testing.T) {
			c, _ := dialReady(t, url, gaPath)
			c.update(vadSession(map[string]any{"threshold": tc.threshold, "create_response": false}))
			c.appendAudio("pcmu", concat(tone(8000, 300, -35, 600), silence(8000, 600)))
			if tc.triggers {
				c.expect("input_audio_buffer.speech_started")
				c.expect("input_audio_buffer.speech_stopped")
				c.expect("input_audio_buffer.committed")
				c.expect("conversation.item.added")
				c.expect("conversation.item.done")
			}
			c.probe()
		})
	}
}

func TestPreviewVADTurn(t *testing.T) {
	_, url := startSim(t, fastConfig("west"))
	c, _ := dialReady(t, url, previewPath)
	c.update(map[string]any{"input_audio_format": "pcm16", "output_audio_format": "pcm16",
		"turn_detection": map[string]any{"type": "server_vad", "silence_duration_ms": 300}})
	c.appendAudio("pcm24", concat(silence(24000, 100), tone(24000, 250, -20, 800), silence(24000, 500)))
	evs := c.until("response.done")
	ty := types(evs)
	require.Equal(t, []string{"input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
		"conversation.item.created", "response.created", "rate_limits.updated", "response.output_item.added", "conversation.item.created",
		"response.content_part.added"}, ty[:9])
	require.Equal(t, []string{"response.audio.done", "response.audio_transcript.done", "response.content_part.done",
		"response.output_item.done", "response.done"}, ty[len(ty)-5:])
	audio := audioOf(t, evs, "response.audio.delta")
	require.Zero(t, len(audio)%48)
	pcm := decodeTest("pcm24", audio)
	require.Greater(t, goertzelPower(pcm, 24000, 700), 100*goertzelPower(pcm, 24000, 440))
	done := evs[len(evs)-1]["response"].(map[string]any)
	require.Equal(t, "pcm16", done["output_audio_format"])
	require.Equal(t, []any{"text", "audio"}, done["modalities"])
	out := done["output"].([]any)[0].(map[string]any)
	require.Equal(t, "audio", out["content"].([]any)[0].(map[string]any)["type"])
}

func TestTextOnlyResponse(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	s := noVADSession()
	s["output_modalities"] = []any{"text"}
	c.update(s)
	c.send(map[string]any{"type": "conversation.item.create", "item": map[string]any{"type": "message", "role": "user",
		"content": []any{map[string]any{"type": "input_text", "text": "hello"}}}})
	c.expect("conversation.item.added")
	c.expect("conversation.item.done")
	c.send(map[string]any{"type": "response.create"})
	evs := c.until("response.done")
	require.Empty(t, ofType(evs, "response.output_audio.delta"))
	want := `This is east. You are turn 1; I heard "hello". I remember 1 items.`
	require.Equal(t, want, ofType(evs, "response.output_text.done")[0]["text"])
	out := evs[len(evs)-1]["response"].(map[string]any)["output"].([]any)[0].(map[string]any)
	require.Equal(t, []any{map[string]any{"type": "output_text", "text": want}}, out["content"])
}

// TestBargeIn: caller speech during a response cancels it with
// turn_detected and stops its audio; the client then truncates (§6.4, §7).
func TestBargeIn(t *testing.T) {
	cfg := fastConfig("east")
	cfg.Speedup = 2 // slow enough to talk over
	s, url := startSim(t, cfg)
	c, created := dialReady(t, url, gaPath)
	c.update(vadSession(nil))
	c.speak(600)
	c.until("input_audio_buffer.committed")
	evs := c.until("response.output_audio.delta")
	respItem := ofType(evs, "response.output_item.added")[0]["item"].(map[string]any)["id"].(string)

	c.appendAudio("pcmu", tone(8000, 300, -20, 300))
	evs = c.until("response.done")
	require.Empty(t, ofType(evs[slices.IndexFunc(evs, func(e map[string]any) bool { return e["type"] == "response.output_audio.done" }):],
		"response.output_audio.delta"), "audio stops at the cancellation")
	var i int
	for i = range evs {
		if evs[i]["type"] == "input_audio_buffer.speech_started" {
			break
		}
	}
	require.Less(t, i, len(evs), "speech_started precedes the cancellation")
	require.Equal(t, []string{"input_audio_buffer.speech_started", "response.output_audio.done", "response.output_audio_transcript.done",
		"response.content_part.done", "response.output_item.done", "conversation.item.done", "response.done"}, types(evs[i:]))
	done := evs[len(evs)-1]["response"].(map[string]any)
	require.Equal(t, "cancelled", done["status"])
	require.Equal(t, map[string]any{"type": "cancelled", "reason": "turn_detected"}, done["status_details"])
	out := done["output"].([]any)[0].(map[string]any)
	require.Equal(t, "incomplete", out["status"])

	rec := sessionByID(t, s, sessID(created))
	it, ok := rec.Item(respItem)
	require.True(t, ok)
	require.Greater(t, it.AudioMs, 0)
	require.Less(t, it.AudioMs, 4000)

	// Truncate to what was "played"; beyond what was produced is an error.
	c.send(map[string]any{"type": "conversation.item.truncate", "event_id": "t1", "item_id": respItem, "content_index": 0, "audio_end_ms": it.AudioMs + 1})
	e := c.expectError("invalid_value")
	require.Equal(t, fmt.Sprintf("Audio content of %dms is already shorter than %dms", it.AudioMs, it.AudioMs+1), e["message"])
	require.Equal(t, "t1", e["event_id"])
	c.send(map[string]any{"type": "conversation.item.truncate", "item_id": respItem, "content_index": 0, "audio_end_ms": 50})
	tr := c.until("conversation.item.truncated")
	require.Equal(t, 50.0, tr[len(tr)-1]["audio_end_ms"])

	// The interrupted turn ends and VAD answers it.
	c.appendAudio("pcmu", silence(8000, 700))
	evs = c.until("response.done")
	require.Equal(t, "completed", evs[len(evs)-1]["response"].(map[string]any)["status"])
	rec = sessionByID(t, s, sessID(created))
	it, _ = rec.Item(respItem)
	require.True(t, it.Truncated)
	require.Equal(t, 50, it.TruncateMs)
	require.Equal(t, "assistant: ", rec.Transcript()[1], "truncation drops the transcript")
	require.Equal(t, []TruncationRecord{{ItemID: respItem, AudioEndMs: 50}}, rec.Truncations)
	require.Equal(t, "turn_detected", rec.Responses[0].Reason)
}

func TestIdleTimeout(t *testing.T) {
	_, url := startSim(t, fastConfig("east"))
	c, _ := dialReady(t, url, gaPath)
	c.update(vadSession(map[string]any{"idle_timeout_ms": 5000}))
	c.speak(500)
	evs := c.until("response.done")
	answerMs := len(audioOf(t, evs, "response.output_audio.delta")) / 8
	// The caller says nothing: 5 s idle after the answer's playback.
	c.appendAudio("pcmu", silence(8000, answerMs+5500))
	evs = c.until("response.done")
	ty := types(evs)
	require.Equal(t, []string{"input_audio_buffer.timeout_triggered", "input_audio_buffer.committed", "conversation.item.added",
		"conversation.item.done", "response.created"}, ty[:5])
	tt := evs[0]
	require.Equal(t, tt["item_id"], evs[1]["item_id"])
	require.InDelta(t, 5000, tt["audio_end_ms"].(float64)-tt["audio_start_ms"].(float64), 30)
	require.Equal(t, "completed", evs[len(evs)-1]["response"].(map[string]any)["status"])
}

func TestManualCommitAndClear(t *testing.T) {
	s, url := startSim(t, fastConfig("east"))
	c, created := dialReady(t, url, gaPath)
	c.update(noVADSession())
	c.appendAudio("pcmu", tone(8000, 300, -20, 60))
	c.send(map[string]any{"type": "input_audio_buffer.commit", "event_id": "c1"})
	e := c.expectError("input_audio_buffer_commit_empty")
	require.Equal(t, "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has 60.00ms of audio.", e["message"])
	require.Equal(t, "c1", e["event_id"])
	c.appendAudio("pcmu", tone(8000, 300, -20, 100))
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	ev := c.expect("input_audio_buffer.committed")
	c.expect("conversation.item.added")
	c.expect("conversation.item.done")
	c.probe() // commit creates no response (§2.2)
	c.appendAudio("pcmu", tone(8000, 300, -20, 500))
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	c.expect("input_audio_buffer.cleared")
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	c.expectError("input_audio_buffer_commit_empty")
	rec := sessionByID(t, s, sessID(created))
	require.Equal(t, []TurnRecord{{ItemID: ev["item_id"].(string), Origin: OriginCommit, AudioStartMs: 0, AudioEndMs: 160, AudioMs: 160,
		Heard: "caller spoke for 0.2 seconds"}}, rec.Turns)
	require.Equal(t, 660, rec.AppendedAudioMs)
}
