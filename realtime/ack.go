package realtime

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxClientIDLen is the real service's limit on a client-chosen item id
// and on a function_call / function_call_output call_id: longer ones are
// refused with string_above_max_length (§9; the spec's schema does not say
// so). It applies to every conversation.item.create, replays included.
const MaxClientIDLen = 32

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newRandomID is prefix plus n random alphanumerics.
func newRandomID(prefix string, n int) string {
	b := make([]byte, n)
	size := big.NewInt(int64(len(idAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, size)
		if err != nil {
			panic("realtime: crypto/rand failed: " + err.Error()) // never happens (Go 1.24+ rand.Read does not fail)
		}
		b[i] = idAlphabet[v.Int64()]
	}
	return prefix + string(b)
}

// NewItemID returns a fresh client item id ("item_" + 20 alphanumerics,
// 25 characters): within MaxClientIDLen.
func NewItemID() string { return newRandomID("item_", 20) }

// NewCallID returns a fresh function call id ("call_" + 20 alphanumerics).
func NewCallID() string { return newRandomID("call_", 20) }

// FitID returns id unchanged when it has at most MaxClientIDLen bytes, and
// otherwise a deterministic stand-in of exactly MaxClientIDLen: the id's
// prefix up to its first '_' (when that is at most 8 bytes, e.g. "item_",
// "call_") followed by hex of the SHA-256 of the whole id. The same long id
// always gives the same stand-in, so a function_call and its
// function_call_output still share their call_id after fitting, and the
// stand-in of one id never collides with another's in practice.
func FitID(id string) string {
	if len(id) <= MaxClientIDLen {
		return id
	}
	prefix := ""
	if i := strings.IndexByte(id, '_'); i >= 0 && i < 8 {
		prefix = id[:i+1]
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + fmt.Sprintf("%x", sum)[:MaxClientIDLen-len(prefix)]
}

// ItemCreateEventID is the event_id Session.CreateItem sends with an item
// that has an id: derived from the id, so that an `error` answering the
// create (its error.event_id) names the item without any state in the
// session. Items without an id get an ordinary sequential event id.
func ItemCreateEventID(itemID string) string {
	return "evt_item_" + FitID(itemID)
}

// ItemAck is the server's answer to one conversation.item.create.
type ItemAck struct {
	Item Item // as sent
	// Accepted: conversation.item.added (GA) / .created (preview) arrived
	// with the item's id. Otherwise Error is the rejection.
	Accepted bool
	Error    *ErrorDetail
}

// ItemAcks tracks the items sent with conversation.item.create until the
// server confirms or refuses each one (§9 "Item acknowledgement"): an item
// is confirmed by conversation.item.added / .created carrying its id (the
// decoder gives both the GA name) and refused by an `error` whose event_id
// is its create's (ItemCreateEventID). A replay waits until Pending is
// empty before response.create.
//
// It holds no session and starts no goroutine: the goroutine that reads the
// session's events owns it and feeds it every event (Observe). The zero
// value is ready to use.
type ItemAcks struct {
	order   []string        // item ids, in Expect order
	pending map[string]Item // by item id
	byEvent map[string]string
}

// Expect registers an item about to be sent with Session.CreateItem. The
// item needs an id (NewItemID; a replay keeps its record ids), at most
// MaxClientIDLen long once fitted, and must not already be pending.
func (a *ItemAcks) Expect(it Item) error {
	if it.ID == "" {
		return errors.New("realtime: acknowledged item needs an id")
	}
	if a.pending == nil {
		a.pending, a.byEvent = map[string]Item{}, map[string]string{}
	}
	if _, dup := a.pending[it.ID]; dup {
		return fmt.Errorf("realtime: item %q is already awaiting acknowledgement", it.ID)
	}
	a.pending[it.ID] = it
	a.byEvent[ItemCreateEventID(it.ID)] = it.ID
	a.order = append(a.order, it.ID)
	return nil
}

// Observe matches one server event against the pending items. It returns
// the answer when ev settles one; every other event gives false.
func (a *ItemAcks) Observe(ev ServerEvent) (ItemAck, bool) {
	if len(a.pending) == 0 {
		return ItemAck{}, false
	}
	switch ev.Type {
	case EvItemAdded:
		if ev.Item == nil {
			return ItemAck{}, false
		}
		if it, ok := a.settle(ev.Item.ID); ok {
			return ItemAck{Item: it, Accepted: true}, true
		}
	case EvError:
		if ev.Error == nil || ev.Error.EventID == "" {
			return ItemAck{}, false
		}
		if id, ok := a.byEvent[ev.Error.EventID]; ok {
			it, _ := a.settle(id)
			d := *ev.Error
			return ItemAck{Item: it, Error: &d}, true
		}
	}
	return ItemAck{}, false
}

func (a *ItemAcks) settle(id string) (Item, bool) {
	it, ok := a.pending[id]
	if !ok {
		return Item{}, false
	}
	delete(a.pending, id)
	delete(a.byEvent, ItemCreateEventID(id))
	for i, x := range a.order {
		if x == id {
			a.order = append(a.order[:i], a.order[i+1:]...)
			break
		}
	}
	return it, true
}

// Len is how many items await an answer.
func (a *ItemAcks) Len() int { return len(a.pending) }

// Pending returns the items still awaiting an answer, in the order sent.
func (a *ItemAcks) Pending() []Item {
	out := make([]Item, 0, len(a.order))
	for _, id := range a.order {
		out = append(out, a.pending[id])
	}
	return out
}

// RepairItem returns a version of a refused item that the server should
// accept, and false when there is none (leave the item out):
//   - an id or call_id over MaxClientIDLen (string_above_max_length) is
//     fitted (FitID, deterministic, so a call and its output still match);
//   - a user message with input_audio is re-sent as input_text from the
//     parts' transcripts, when every audio part has one (the new session
//     may not take the audio: another input format, an oversized event).
//
// Any other refusal (an output whose call the session does not have, a
// duplicate id) has no repair here.
func RepairItem(it Item, d ErrorDetail) (Item, bool) {
	tooLong := d.Code == "string_above_max_length"
	switch {
	case tooLong && strings.HasSuffix(d.Param, "call_id"):
		if fitted := FitID(it.CallID); fitted != it.CallID {
			it.CallID = fitted
			return it, true
		}
		return it, false
	case tooLong && strings.HasSuffix(d.Param, ".id"):
		if fitted := FitID(it.ID); fitted != it.ID {
			it.ID = fitted
			return it, true
		}
		return it, false
	}
	if it.Type != itemMessage || it.Role != "user" {
		return it, false
	}
	hasAudio := false
	parts := make([]ContentPart, 0, len(it.Content))
	for _, p := range it.Content {
		if p.Type != contentInputAudio {
			parts = append(parts, p)
			continue
		}
		hasAudio = true
		if strings.TrimSpace(p.Transcript) == "" {
			return it, false
		}
		parts = append(parts, ContentPart{Type: contentInputText, Text: p.Transcript})
	}
	if !hasAudio {
		return it, false
	}
	it.Content = parts
	return it, true
}

// IsTextAnswer reports whether ev shows the model answering in text in an
// audio session: a text content part (part type text in both dialects,
// output_text once decoded) or a text delta. After a replayed history the
// real service does this with no audio at all (§9); an audio bridge must
// count such an answer as failed and ask again (with caller audio last).
func IsTextAnswer(ev ServerEvent) bool {
	switch ev.Type {
	case EvOutputTextDelta, EvOutputTextDone:
		return true
	case EvContentPartAdded, EvContentPartDone:
		return ev.Part != nil && ev.Part.Type == contentOutputText
	}
	return false
}
