package failover

import (
	"github.com/sipbridge/sipbridge/realtime"
)

// callerAudioLast renders the caller's last turn of a replay as its audio
// when the record still holds it, instead of its transcript. A history
// whose last user turn is client text is what makes the model answer in
// text only (§9); caller audio as the last user turn makes it speak.
// Earlier turns stay text: cheaper, and they do not decide the modality.
func (c *Conversation) callerAudioLast(items []realtime.Item) {
	for i := len(items) - 1; i >= 0; i-- {
		it := &items[i]
		if it.Type != "message" || it.Role != "user" {
			continue
		}
		if len(it.Content) != 1 || it.Content[0].Type != "input_text" {
			return
		}
		e, ok := c.rec.Entry(it.ID)
		if !ok || len(e.Audio) == 0 {
			return
		}
		it.Content = []realtime.ContentPart{{Type: "input_audio", Audio: e.Audio}}
		return
	}
}
