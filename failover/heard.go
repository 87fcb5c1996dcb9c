package failover

import (
	"time"
	"unicode/utf8"
)

// Keep playing what was received. When a session fails mid-answer (a
// failed response after some audio, a dropped or closed socket, a stall),
// the audio it already delivered is good audio: it keeps playing while the
// swap runs, and the continuation asked of the new session starts where
// that audio ends (the player queues it behind). What the replay claims the
// caller heard is therefore everything received, but measured against the
// transcript conservatively: the transcript runs ahead of the audio, so
// the words claimed are bounded by a slow speaking rate over the audio's
// length, never the whole transcript received so far. Words the caller
// heard but the record leaves out are at worst said again; words claimed
// but never heard would be skipped, which is worse.

// heardCharsPerSec is the speaking rate assumed when cutting a transcript
// to the audio received: below real speech (about 14–16 characters a
// second), so the cut errs on the side of claiming less.
const heardCharsPerSec = 12

// keepHeard keeps the failed answer's audio playing and records, for
// each of its items, what the caller will have heard once all of it has
// played, cut conservatively; playout stops tracking it (it belongs to the
// old session). It returns when that audio will have finished playing
// (zero when it already has).
func (c *Conversation) keepHeard(now time.Time, items []string) time.Time {
	unplayed := 0
	if c.isPlaying() {
		unplayed = c.unplayedMs()
	}
	for _, id := range items {
		if produced := c.rec.ProducedMs(id); produced > 0 {
			c.rec.Truncate(id, c.conservativeHeardMs(id, produced))
		}
	}
	c.resetPlayout()
	if unplayed <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(unplayed) * time.Millisecond)
}

// conservativeHeardMs is the heard position to record for an item whose
// producedMs of audio will all be played: the share of its transcript a
// slow speaker says in that time, as a position in the audio (the record
// cuts the text proportionally, back to a word boundary).
func (c *Conversation) conservativeHeardMs(itemID string, producedMs int) int {
	e, ok := c.rec.Entry(itemID)
	if !ok || producedMs <= 0 {
		return producedMs
	}
	runes := utf8.RuneCountInString(e.Text)
	if runes == 0 {
		return producedMs
	}
	said := producedMs * heardCharsPerSec / 1000
	if said >= runes {
		return producedMs
	}
	return producedMs * said / runes
}
