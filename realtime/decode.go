package realtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// previewEventNames maps beta / Azure preview server event names to their GA
// spelling (protocol doc §0 table, §3.4, §3.6). conversation.item.created is
// also still listed in the GA SDK union (§3.4), and none of these names mean
// anything else in GA, so the renames are applied whatever the dialect.
var previewEventNames = map[string]string{
	"response.audio.delta":            EvOutputAudioDelta,
	"response.audio.done":             EvOutputAudioDone,
	"response.audio_transcript.delta": EvOutputAudioTranscriptDelta,
	"response.audio_transcript.done":  EvOutputAudioTranscriptDone,
	"response.text.delta":             EvOutputTextDelta,
	"response.text.done":              EvOutputTextDone,
	"conversation.item.created":       EvItemAdded,
}

// DecodeServerEvent parses one server event and normalises it to the GA
// vocabulary, so code above this package handles one dialect:
//   - Type is the GA event name, WireType what was on the wire;
//   - beta content types text/audio in items become output_text/output_audio
//     for assistant items and input_text/input_audio otherwise; content_part
//     parts (typed audio/text even in GA, §3.6) become output_*;
//   - the base64 audio of response.output_audio.delta is decoded into Audio
//     and Delta is left empty.
//
// Every field is optional and may be null (§3.2, §3.4, §3.7). A field whose
// JSON type is unexpected is left zero instead of failing the whole event, so
// one odd field cannot make a response.done disappear. It fails only for
// input that is not a JSON object, has no "type", or carries undecodable
// audio. The result is the same for both dialects: d names the session's
// dialect and is accepted so callers need not care which names they get.
func DecodeServerEvent(data []byte, d Dialect) (ServerEvent, error) {
	var ev ServerEvent
	if err := decodeServerEventInto(&ev, data, d); err != nil {
		return ServerEvent{}, err
	}
	return ev, nil
}

// decodeServerEventInto decodes into *ev, which the caller owns: the reader
// decodes straight into the event it queues, so queueing a pointer costs no
// allocation beyond the one json.Unmarshal already needed. On error *ev is
// left partly filled and must be discarded.
func decodeServerEventInto(ev *ServerEvent, data []byte, _ Dialect) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("realtime: decode server event: not a JSON object")
	}
	if decodeDelta(ev, data) {
		return nil // the common, plain audio or text delta (decode_delta.go)
	}
	return decodeWithJSON(ev, data)
}

// decodeWithJSON is the general decoder, for every event.
func decodeWithJSON(ev *ServerEvent, data []byte) error {
	if err := json.Unmarshal(data, ev); err != nil && !isFieldError(err) {
		return fmt.Errorf("realtime: decode server event: %w", err)
	}
	if ev.Type == "" {
		return errors.New("realtime: decode server event: missing type")
	}
	ev.WireType = ev.Type
	if ga, ok := previewEventNames[ev.Type]; ok {
		ev.Type = ga
	}

	if ev.Type == EvOutputAudioDelta && ev.Delta != "" {
		audio, err := base64.StdEncoding.DecodeString(ev.Delta)
		if err != nil {
			return fmt.Errorf("realtime: decode %s: audio: %w", ev.WireType, err)
		}
		ev.Audio, ev.Delta = audio, ""
	}

	if ev.Item != nil {
		normaliseItem(ev.Item)
	}
	if ev.Response != nil {
		ev.Response.Usage, _ = DecodeUsage(ev.Response.RawUsage)
		for i := range ev.Response.Output {
			normaliseItem(&ev.Response.Output[i])
		}
	}
	if ev.Part != nil && (ev.Type == EvContentPartAdded || ev.Type == EvContentPartDone) {
		// content_part events only ever describe model output (§3.6).
		ev.Part.Type = gaContentType(ev.Part.Type, true)
	}
	return nil
}

// isFieldError reports whether err only says that some field had an
// unexpected JSON type or bad base64; encoding/json has then still decoded
// everything else.
func isFieldError(err error) bool {
	var te *json.UnmarshalTypeError
	var be base64.CorruptInputError
	return errors.As(err, &te) || errors.As(err, &be)
}

func normaliseItem(it *Item) {
	assistant := it.Role == "assistant"
	for i := range it.Content {
		it.Content[i].Type = gaContentType(it.Content[i].Type, assistant)
	}
}

// gaContentType maps beta content type names to GA (§0 "Assistant content
// type"); GA names pass through.
func gaContentType(t string, assistant bool) string {
	switch t {
	case previewText:
		if assistant {
			return contentOutputText
		}
		return contentInputText
	case previewAudio:
		if assistant {
			return contentOutputAudio
		}
		return contentInputAudio
	}
	return t
}
