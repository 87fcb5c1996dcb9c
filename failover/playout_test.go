package failover

import (
	"testing"

	"github.com/sipbridge/sipbridge/realtime"
	"github.com/stretchr/testify/require"
)

func TestBargeIn(t *testing.T) {
	tests := []struct {
		name          string
		interrupt     bool // session interrupt_response
		playedMs      int
		wantTruncate  []call
		wantFlush     bool
		wantCancel    bool
		wantHeardMs   int
		secondItemMs  int // a second item queued after the first (0 = none)
		secondPlayed  int
		truncateOnSec bool
	}{
		{name: "truncate at played ms", interrupt: true, playedMs: 300, wantFlush: true,
			wantTruncate: []call{{op: "truncate", itemID: "a1", audioEndMs: 300}}, wantHeardMs: 300},
		{name: "nothing played: no truncate", interrupt: true, playedMs: 0, wantFlush: true, wantHeardMs: 0},
		{name: "interrupt_response false also cancels", interrupt: false, playedMs: 500, wantFlush: true, wantCancel: true,
			wantTruncate: []call{{op: "truncate", itemID: "a1", audioEndMs: 500}}, wantHeardMs: 500},
		{name: "all played: not a barge-in", interrupt: true, playedMs: 1000, wantHeardMs: 1000},
		{name: "truncate follows the item being played", interrupt: true, playedMs: 1000, wantFlush: true,
			secondItemMs: 800, secondPlayed: 200, wantHeardMs: 1000,
			wantTruncate: []call{{op: "truncate", itemID: "a2", audioEndMs: 200}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Session: testSessionConfig()}
			cfg.Session.TurnDetection.InterruptResponse = tc.interrupt
			h, s1 := startActive(t, cfg, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.push(s1, created("r1"))
			h.speak(s1, "r1", "a1", "one two three four five six", 1000)
			h.player.setPlayed("a1", tc.playedMs)
			if tc.secondItemMs > 0 {
				h.speak(s1, "r1", "a2", "and more words here", tc.secondItemMs)
				h.player.setPlayed("a2", tc.secondPlayed)
			}
			flushes := h.player.flushCount()
			h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u2", AudioStartMs: 100})
			require.Equal(t, tc.wantTruncate, s1.ops("truncate"))
			require.Equal(t, tc.wantFlush, h.player.flushCount() > flushes)
			if tc.wantCancel {
				require.Equal(t, []call{{op: "cancel", respID: "r1"}}, s1.ops("cancel"))
			} else {
				require.Empty(t, s1.ops("cancel"))
			}
			h.actor(func(c *Conversation) {
				e, ok := c.rec.Entry("a1")
				require.True(t, ok)
				require.Equal(t, tc.wantHeardMs, e.HeardMs)
			})
			if tc.wantFlush {
				// The tail of the interrupted answer must not play.
				before := h.player.bytesFor("a1")
				h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 800)})
				require.Equal(t, before, h.player.bytesFor("a1"))
			}
		})
	}
}

func TestBargeInAfterPlayoutCaughtUp(t *testing.T) {
	h, s1 := startActive(t, Config{}, testRegions())
	h.userTurn(s1, "u1", 1, 5)
	h.push(s1, created("r1"))
	h.speak(s1, "r1", "a1", "one two three", 200)
	h.player.setPlayed("a1", 200) // the player caught up with the model
	h.waitActor(func(c *Conversation) bool { return !c.isPlaying() }, "caught up")
	h.push(s1, realtime.ServerEvent{Type: realtime.EvOutputAudioDelta, ResponseID: "r1", ItemID: "a1", Audio: make([]byte, 300*bpm)})
	h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u2", AudioStartMs: 100})
	require.Equal(t, []call{{op: "truncate", itemID: "a1", audioEndMs: 200}}, s1.ops("truncate"))
}

// TestPlayoutPosition: (audio produced, played position, playout report)
// → whether the answer still plays, how much is left, and what a barge-in
// truncates (nothing when nothing was heard or all of it was: the server
// rejects those, §2.4).
func TestPlayoutPosition(t *testing.T) {
	for _, tc := range []struct {
		name         string
		producedMs   int
		playedMs     int
		reported     bool
		wantPlaying  bool
		wantLeftMs   int
		wantTruncate []call
	}{
		{"nothing played yet", 1000, 0, false, true, 1000, nil},
		{"half played", 1000, 500, false, true, 500, []call{{op: "truncate", itemID: "a1", audioEndMs: 500}}},
		{"within a frame of the end", 1000, 985, false, false, 0, nil},
		{"reported done", 1000, 1000, true, false, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s1 := startActive(t, Config{}, testRegions())
			h.userTurn(s1, "u1", 1, 5)
			h.push(s1, created("r1"))
			h.speak(s1, "r1", "a1", "a long answer", tc.producedMs)
			h.player.setPlayed("a1", tc.playedMs)
			if tc.reported {
				h.conv.PlayoutDone("a1", tc.playedMs)
			}
			h.actor(func(c *Conversation) {
				require.Equal(t, tc.wantPlaying, c.isPlaying())
				require.Equal(t, tc.wantLeftMs, c.unplayedMs())
			})
			flushes := h.player.flushCount()
			h.push(s1, realtime.ServerEvent{Type: realtime.EvInputSpeechStarted, ItemID: "u2", AudioStartMs: 100})
			require.Equal(t, tc.wantTruncate, s1.ops("truncate"))
			if tc.wantPlaying {
				require.Equal(t, flushes+1, h.player.flushCount(), "a barge-in flushes what plays")
			}
		})
	}
}
