package realtime

import (
	"encoding/base64"
)

// Audio deltas are most of what a session receives while the model speaks,
// and the largest events; each comes with a transcript delta. encoding/json
// decodes the base64 text into a string (a copy the size of the event),
// walks the struct by reflection, and then DecodeString allocates the audio.
// decodeDelta reads the one shape the service sends for audio, transcript
// and text deltas, a flat object of seven known keys with plain string and
// integer values, straight from the read buffer, with the audio (or the
// text) as its only large allocation. Anything else (an unknown or
// differently cased key, an escape or a non-ASCII byte in a string, a null,
// a fraction, an error in the base64) makes it decline, and the event goes
// through encoding/json as before: the fast path never decides differently
// from the slow one (FuzzDeltaFastPath checks that). A transcript with an
// escaped quote or a non-ASCII letter takes the slow path.

// deltaKeys are the keys an audio delta carries (§3.6).
const (
	keyType         = "type"
	keyEventID      = "event_id"
	keyResponseID   = "response_id"
	keyItemID       = "item_id"
	keyOutputIndex  = "output_index"
	keyContentIndex = "content_index"
	keyDelta        = "delta"
)

// plainDeltas maps the wire name of each delta the fast path decodes, in
// its GA and its preview spelling (previewEventNames), to that name as a
// string the event can keep without a copy, and its GA type.
var plainDeltas = func() map[string][2]string {
	m := map[string][2]string{}
	for _, ga := range []string{EvOutputAudioDelta, EvOutputAudioTranscriptDelta, EvOutputTextDelta} {
		m[ga] = [2]string{ga, ga}
	}
	for wire, ga := range previewEventNames {
		if _, ok := m[ga]; ok {
			m[wire] = [2]string{wire, ga}
		}
	}
	return m
}()

// maxFastInt bounds the integers the fast path parses (no overflow; real
// indexes are single digits).
const maxFastIntDigits = 9

// decodeDelta decodes data into *ev if it is an audio, transcript or text
// delta of the plain shape described above, and reports whether it did.
// When it returns false *ev is untouched.
func decodeDelta(ev *ServerEvent, data []byte) bool {
	var (
		typ, eventID, responseID, itemID []byte
		delta                            []byte
		outputIndex, contentIndex        int
		hasDelta                         bool
	)
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return false // no type: the slow path reports it
	}
	for {
		key, next, ok := plainString(data, i)
		if !ok {
			return false
		}
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		i = skipSpace(data, i+1)
		switch string(key) { // no allocation: the compiler compares in place
		case keyType, keyEventID, keyResponseID, keyItemID, keyDelta:
			v, next, ok := plainString(data, i)
			if !ok {
				return false
			}
			switch string(key) {
			case keyType:
				typ = v
			case keyEventID:
				eventID = v
			case keyResponseID:
				responseID = v
			case keyItemID:
				itemID = v
			case keyDelta:
				delta, hasDelta = v, true
			}
			i = next
		case keyOutputIndex, keyContentIndex:
			n, next, ok := plainInt(data, i)
			if !ok {
				return false
			}
			if string(key) == keyOutputIndex {
				outputIndex = n
			} else {
				contentIndex = n
			}
			i = next
		default:
			return false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return false
		}
		if data[i] == '}' {
			i++
			break
		}
		if data[i] != ',' {
			return false
		}
		i = skipSpace(data, i+1)
	}
	if skipSpace(data, i) != len(data) {
		return false // trailing bytes: encoding/json rejects the event
	}
	names, ok := plainDeltas[string(typ)] // no allocation: the compiler looks up in place
	if !ok {
		return false
	}
	wireType, gaType := names[0], names[1]
	var audio []byte
	if gaType == EvOutputAudioDelta && hasDelta && len(delta) > 0 {
		audio = make([]byte, base64.StdEncoding.DecodedLen(len(delta)))
		n, err := base64.StdEncoding.Decode(audio, delta)
		if err != nil {
			return false // the slow path reports the bad audio
		}
		audio = audio[:n]
	}
	*ev = ServerEvent{
		Type:         gaType,
		WireType:     wireType,
		EventID:      string(eventID),
		ResponseID:   string(responseID),
		ItemID:       string(itemID),
		OutputIndex:  outputIndex,
		ContentIndex: contentIndex,
		Audio:        audio,
	}
	if gaType != EvOutputAudioDelta {
		ev.Delta = string(delta) // transcript or text
	}
	return true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString reads a JSON string at data[i] that has no escapes and only
// printable ASCII, returning its contents (a view into data) and the index
// after the closing quote. Anything else is not plain.
func plainString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		c := data[j]
		switch {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainInt reads a JSON integer of at most maxFastIntDigits digits, with no
// fraction or exponent, at data[i].
func plainInt(data []byte, i int) (n int, next int, ok bool) {
	neg := false
	if i < len(data) && data[i] == '-' {
		neg = true
		i++
	}
	start := i
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		n = n*10 + int(data[i]-'0')
		i++
	}
	digits := i - start
	switch {
	case digits == 0 || digits > maxFastIntDigits:
		return 0, 0, false
	case digits > 1 && data[start] == '0':
		return 0, 0, false // a leading zero is not JSON
	case i < len(data) && (data[i] == '.' || data[i] == 'e' || data[i] == 'E'):
		return 0, 0, false
	}
	if neg {
		n = -n
	}
	return n, i, true
}
