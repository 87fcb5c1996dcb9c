package failover

import (
	"bytes"
	"testing"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

func TestCallerAudioDuringFirstConnect(t *testing.T) {
	h := newHarness(t, Config{}, testRegions())
	gate := make(chan struct{})
	h.dialer.then("A", dialStep{gate: gate})
	h.start()
	early := concat(framesOf(4, 3)...)
	h.write(framesOf(4, 3)...)
	close(gate)
	s1 := h.session(1)
	h.waitActive(s1)
	require.Equal(t, early, s1.appended(), "audio before the session was up is delivered, not dropped")
}

func TestHoldStopsAudioAndCancels(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "let me check", 1000)
	h.player.setPlayed("a1", 200)
	h.conv.SetHold(true)
	h.waitActor(func(c *Conversation) bool { return c.caller.held }, "held")
	require.Equal(t, []call{{op: "cancel", respID: "r1"}}, s1.ops("cancel"))
	require.Equal(t, []call{{op: "truncate", itemID: "a1", audioEndMs: 200}}, s1.ops("truncate"))
	require.Len(t, s1.ops("clear"), 1)
	before := len(s1.appended())
	h.write(framesOf(7, 5)...)
	require.Equal(t, before, len(s1.appended()), "no caller audio to the model on hold")
	h.conv.SetHold(false)
	h.waitActor(func(c *Conversation) bool { return !c.caller.held }, "resumed")
	h.write(framesOf(8, 2)...)
	require.Equal(t, before+2*frame, len(s1.appended()))
}

// TestCommittedTurnAudio: the audio a committed turn keeps for a replay is
// the stretch the server's VAD put it at (speech_started / speech_stopped,
// or the timeout event's own offsets), cut out of what was sent.
func TestCommittedTurnAudio(t *testing.T) {
	ev := func(typ string, item string, startMs, endMs int) realtime.ServerEvent {
		return realtime.ServerEvent{Type: typ, ItemID: item, AudioStartMs: startMs, AudioEndMs: endMs}
	}
	for _, tc := range []struct {
		name     string
		events   []realtime.ServerEvent
		wantFrom int // ms into the 400 ms sent
		wantTo   int
	}{
		{"started and stopped", []realtime.ServerEvent{
			ev(realtime.EvInputSpeechStarted, "u1", 100, 0), ev(realtime.EvInputSpeechStopped, "u1", 0, 300),
			ev(realtime.EvInputCommitted, "u1", 0, 0)}, 100, 300},
		{"committed without VAD offsets: all uncommitted audio", []realtime.ServerEvent{
			ev(realtime.EvInputCommitted, "u1", 0, 0)}, 0, 400},
		{"timeout_triggered carries its own offsets", []realtime.ServerEvent{
			ev(realtime.EvInputTimeoutTriggered, "u1", 60, 220)}, 60, 220},
		{"offsets past what was sent are clamped", []realtime.ServerEvent{
			ev(realtime.EvInputSpeechStarted, "u1", 200, 0), ev(realtime.EvInputSpeechStopped, "u1", 0, 9000),
			ev(realtime.EvInputCommitted, "u1", 0, 0)}, 200, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{}, testRegions())
			var sent []byte
			for i := range 20 { // 400 ms, each 20 ms frame its own byte
				f := frameOf(byte(i + 1))
				sent = append(sent, f...)
				h.write(f)
			}
			h.push(s1, tc.events...)
			e, ok := h.conv.rec.Entry("u1")
			require.True(t, ok)
			require.Equal(t, sent[tc.wantFrom*bpm:tc.wantTo*bpm], e.Audio)
			require.Equal(t, sent[tc.wantTo*bpm:], h.conv.caller.turnBuf, "what follows the turn stays uncommitted")
		})
	}
}

// TestSwapBufferBounded: while no session takes caller audio it is kept,
// up to maxSwapMs (the newest); on hold nothing is kept.
func TestSwapBufferBounded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ms     int
		held   bool
		wantMs int
	}{
		{"short", 400, false, 400},
		{"capped to the newest", maxSwapMs + 2000, false, maxSwapMs},
		{"on hold", 400, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := reach(t, stConnecting)
			if tc.held {
				h.conv.SetHold(true)
			}
			last := byte(0)
			for i := range tc.ms / 20 {
				last = byte(i%250 + 1)
				h.stepFx(h.frameInput(last))
			}
			buf := h.conv.caller.swapBuf
			require.Len(t, buf, tc.wantMs*bpm)
			if tc.wantMs > 0 {
				require.Equal(t, last, buf[len(buf)-1], "the newest audio is kept")
			}
		})
	}
}

// TestCallerAudioStepDoesNotAllocate: a caller frame through the
// transition table to the active session allocates nothing once warm
// (the per-frame path, style rule).
func TestCallerAudioStepDoesNotAllocate(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	s1.mu.Lock()
	s1.discardAudio = true
	s1.mu.Unlock()
	// One frame buffer over and over: the frame pool is not what is
	// measured (under -race it drops some of what is put back).
	f := frameOf(3)
	for range 500 { // past the uncommitted-audio trim, so the buffer is at its size
		h.conv.step(input{kind: inCallerAudio, frame: &f})
	}
	allocs := testing.AllocsPerRun(200, func() {
		fx := h.conv.step(input{kind: inCallerAudio, frame: &f})
		if len(fx) != 0 {
			t.Fatal("caller audio has no effects")
		}
	})
	require.Zero(t, allocs)
}

// TestTurnBufferSizedForWhatItKeeps: after a long turn is committed the
// uncommitted-turn buffer goes back to a buffer sized for the tail it keeps
// (keepTailMs and the trimming slack), not the longest turn's.
func TestTurnBufferSizedForWhatItKeeps(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u1", AudioStartMs: 0})
	for i := range 500 { // 10 s of speech: all of it kept
		h.write(frameOf(byte(i%250 + 1)))
	}
	require.Len(t, h.conv.caller.turnBuf, 10000*bpm)
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStopped, ItemID: "u1", AudioEndMs: 10000},
		realtime.ServerEvent{Type: realtime.EvInputCommitted, ItemID: "u1"})
	e, ok := h.conv.rec.Entry("u1")
	require.True(t, ok)
	require.Len(t, e.Audio, 10000*bpm)
	for i := range 200 { // 4 s of no speech
		h.write(frameOf(byte(i + 1)))
	}
	room := (keepTailMs + trimSlackMs + 20) * bpm
	require.LessOrEqual(t, len(h.conv.caller.turnBuf), (keepTailMs+trimSlackMs)*bpm)
	require.GreaterOrEqual(t, len(h.conv.caller.turnBuf), keepTailMs*bpm)
	require.LessOrEqual(t, cap(h.conv.caller.turnBuf), 2*room, "not the 10 s turn's buffer")
}

// TestTurnBufferRoomForUplinkChunks: with the media stream's 100 ms uplink
// chunks (rtp.uplink_chunk) the buffer between turns keeps room for a whole
// chunk beyond its slack: the appends before each trim never outgrow it.
func TestTurnBufferRoomForUplinkChunks(t *testing.T) {
	h, _ := startActive(t, Config{}, testRegions())
	chunk := bytes.Repeat([]byte{7}, 5*frame) // 100 ms
	h.write(chunk)
	buf := h.conv.caller.turnBuf
	for range 100 { // 10 s of no speech
		h.write(chunk)
	}
	require.Equal(t, cap(buf), cap(h.conv.caller.turnBuf), "the first buffer is kept: never grown by an append")
	require.Equal(t, (keepTailMs+trimSlackMs)*bpm+len(chunk), cap(h.conv.caller.turnBuf))
}
