package sim

import (
	"bytes"
	"encoding/json"
	"slices"
	"unicode/utf8"

	"github.com/sipbridge/sipbridge/realtime"
)

// Client event types per dialect ([SPEC] RealtimeClientEvent unions).
var (
	gaClientEvents = []string{
		"session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
		"conversation.item.create", "conversation.item.retrieve", "conversation.item.truncate", "conversation.item.delete",
		"response.create", "response.cancel", "output_audio_buffer.clear",
	}
	previewClientEvents = []string{
		"session.update", "input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear",
		"conversation.item.create", "conversation.item.retrieve", "conversation.item.truncate", "conversation.item.delete",
		"response.create", "response.cancel", "transcription_session.update", "output_audio_buffer.clear",
	}
)

// clientEvent is one strictly parsed client event. Only the fields of its
// Type are set.
type clientEvent struct {
	Type    string
	EventID string

	Session    *sessionConfig // session.update: cur patched with the update
	SessionRaw json.RawMessage
	Audio      []byte // append: decoded bytes
	Item       *item  // item.create
	PrevItemID *string
	ItemID     string
	ContentIdx int
	AudioEndMs int
	Response   *responseSpec
	ResponseID string
}

// inputEntry is one element of response.input: a reference to an existing
// item (checked against the conversation when the response starts) or an
// inline item.
type inputEntry struct {
	Ref  string
	Item *item
}

// responseSpec is a validated response.create `response` object.
type responseSpec struct {
	Instructions *string
	TextOnly     *bool
	OutputFormat realtime.AudioFormat // "" = session's
	Voice        string               // "" = session's
	OutOfBand    bool                 // conversation: "none"
	Metadata     map[string]string
	Input        []inputEntry // used when HasInput: the response's whole context
	HasInput     bool
	ToolChoice   json.RawMessage
}

// parseClientEvent validates one client message against the dialect's
// schema. cur is the session's effective config (session.update patches a
// copy of it; audio decoding uses its input format). It never panics and
// either returns an event or an error to send back; the second result is the
// client's event_id (possibly "") to echo in that error.
func parseClientEvent(d realtime.Dialect, cur sessionConfig, data []byte) (*clientEvent, string, *apiError) {
	if b64, ok := bareAppendAudio(data); ok {
		return parseBareAppend(b64)
	}
	if !json.Valid(data) {
		return nil, "", invalidReq(codeInvalidEvent, "", "Invalid event: the message is not valid JSON.")
	}
	o, err := parseObj("", data)
	if err != nil {
		return nil, "", err
	}
	ev := &clientEvent{}
	eventID, hasID, err := o.str("event_id")
	if err != nil {
		return nil, "", err
	}
	if hasID {
		if n := utf8.RuneCountInString(eventID); n > maxEventIDLen {
			return nil, "", invalidReq(codeStringTooLong, "event_id",
				"Invalid 'event_id': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", maxEventIDLen, n)
		}
		ev.EventID = eventID
	}
	if !o.present("type") {
		// Exact wording from the spec example (§3.2).
		return nil, eventID, invalidReq(codeInvalidEvent, "", typeFieldMissingMessage)
	}
	typ, _, err := o.str("type")
	if err != nil {
		return nil, eventID, err
	}
	ev.Type = typ
	known := gaClientEvents
	if d == realtime.DialectPreview {
		known = previewClientEvents
	}
	if !slices.Contains(known, typ) {
		return nil, eventID, errInvalidEnum("type", typ, known)
	}
	if err := parseEventBody(d, cur, o, ev); err != nil {
		return nil, eventID, err
	}
	return ev, eventID, nil
}

func parseEventBody(d realtime.Dialect, cur sessionConfig, o *jobj, ev *clientEvent) *apiError {
	switch ev.Type {
	case "session.update":
		if err := o.allow("type", "event_id", "session"); err != nil {
			return err
		}
		if !o.present("session") {
			return errMissingParam("session")
		}
		next, err := applySessionUpdate(d, cur, o.m["session"])
		if err != nil {
			return err
		}
		ev.Session = &next
		ev.SessionRaw = compact(o.m["session"])
	case "transcription_session.update":
		return invalidReq(codeInvalidValue, "type", "Invalid value: 'transcription_session.update'. This is a realtime session, not a transcription session.")
	case "input_audio_buffer.append":
		if err := o.allow("type", "event_id", "audio"); err != nil {
			return err
		}
		s, ok, err := o.str("audio")
		if err != nil {
			return err
		}
		if !ok {
			return errMissingParam("audio")
		}
		if ev.Audio, err = decodeB64Audio("audio", s); err != nil {
			return err
		}
	case "input_audio_buffer.commit", "input_audio_buffer.clear", "output_audio_buffer.clear":
		return o.allow("type", "event_id")
	case "conversation.item.create":
		if err := o.allow("type", "event_id", "previous_item_id", "item"); err != nil {
			return err
		}
		if p, ok, err := o.str("previous_item_id"); err != nil {
			return err
		} else if ok {
			ev.PrevItemID = &p
		}
		if !o.present("item") {
			return errMissingParam("item")
		}
		it, err := parseItem(d, "item", o.m["item"], cur.InputFormat)
		if err != nil {
			return err
		}
		ev.Item = it
	case "conversation.item.retrieve", "conversation.item.delete":
		if err := o.allow("type", "event_id", "item_id"); err != nil {
			return err
		}
		return requiredString(o, "item_id", &ev.ItemID)
	case "conversation.item.truncate":
		if err := o.allow("type", "event_id", "item_id", "content_index", "audio_end_ms"); err != nil {
			return err
		}
		if err := requiredString(o, "item_id", &ev.ItemID); err != nil {
			return err
		}
		if err := requiredNonNegInt(o, "content_index", &ev.ContentIdx); err != nil {
			return err
		}
		return requiredNonNegInt(o, "audio_end_ms", &ev.AudioEndMs)
	case "response.create":
		if err := o.allow("type", "event_id", "response"); err != nil {
			return err
		}
		spec := &responseSpec{}
		if r, ok, err := o.object("response"); err != nil {
			return err
		} else if ok {
			if err := parseResponseSpec(d, r, spec, cur.InputFormat); err != nil {
				return err
			}
		}
		ev.Response = spec
	case "response.cancel":
		if err := o.allow("type", "event_id", "response_id"); err != nil {
			return err
		}
		var err *apiError
		ev.ResponseID, _, err = o.str("response_id")
		return err
	}
	return nil
}

func requiredString(o *jobj, key string, dst *string) *apiError {
	s, ok, err := o.str(key)
	if err != nil {
		return err
	}
	if !ok {
		return errMissingParam(key)
	}
	*dst = s
	return nil
}

func requiredNonNegInt(o *jobj, key string, dst *int) *apiError {
	n, ok, err := o.integer(key)
	if err != nil {
		return err
	}
	if !ok {
		return errMissingParam(key)
	}
	if n < 0 {
		return errOutOfRange(key, float64(n), 0, 1<<31-1)
	}
	*dst = n
	return nil
}

// parseResponseSpec validates response.create's `response` (§2.6): GA and
// beta field sets differ exactly as the session's do.
func parseResponseSpec(d realtime.Dialect, r *jobj, spec *responseSpec, inFormat realtime.AudioFormat) *apiError {
	if d == realtime.DialectPreview {
		if err := r.allow("modalities", "instructions", "voice", "output_audio_format", "tools", "tool_choice",
			"temperature", "max_response_output_tokens", "conversation", "metadata", "input"); err != nil {
			return err
		}
	} else {
		if err := r.allow("instructions", "output_modalities", "audio", "tools", "tool_choice", "max_output_tokens",
			"conversation", "metadata", "input", "prompt"); err != nil {
			return err
		}
	}
	if s, ok, err := r.str("instructions"); err != nil {
		return err
	} else if ok {
		spec.Instructions = &s
	}
	// Reuse the session validators on a scratch config for the fields the
	// response shares with the session.
	scratch := sessionConfig{Model: "", Voice: "", TextOnly: false}
	var err *apiError
	if d == realtime.DialectPreview {
		if mods, ok, e := r.stringArray("modalities"); e != nil {
			return e
		} else if ok {
			sorted := slices.Clone(mods)
			slices.Sort(sorted)
			switch {
			case slices.Equal(sorted, []string{"audio", "text"}):
				f := false
				spec.TextOnly = &f
			case slices.Equal(sorted, []string{"text"}):
				t := true
				spec.TextOnly = &t
			default:
				return invalidReq(codeInvalidValue, "response.modalities",
					"Invalid modalities: %s. Supported combinations are: ['text'] and ['audio', 'text'].", pyList(mods))
			}
		}
		if err = applyVoice(&scratch, r, previewVoices, false); err != nil {
			return err
		}
		spec.Voice = scratch.Voice
		if s, ok, e := r.str("output_audio_format"); e != nil {
			return e
		} else if ok {
			switch s {
			case "pcm16":
				spec.OutputFormat = realtime.FormatPCM24
			case "g711_ulaw":
				spec.OutputFormat = realtime.FormatPCMU
			case "g711_alaw":
				spec.OutputFormat = realtime.FormatPCMA
			default:
				return errInvalidEnum("response.output_audio_format", s, []string{"pcm16", "g711_ulaw", "g711_alaw"})
			}
		}
		if t, ok, e := r.number("temperature"); e != nil {
			return e
		} else if ok && (t < 0.6 || t > 1.2) {
			return errOutOfRange("response.temperature", t, 0.6, 1.2)
		}
		if _, _, e := r.integerOrInf("max_response_output_tokens"); e != nil {
			return e
		}
	} else {
		if mods, ok, e := r.stringArray("output_modalities"); e != nil {
			return e
		} else if ok {
			switch {
			case slices.Equal(mods, []string{"audio"}):
				f := false
				spec.TextOnly = &f
			case slices.Equal(mods, []string{"text"}):
				t := true
				spec.TextOnly = &t
			default:
				return invalidReq(codeInvalidValue, "response.output_modalities",
					"Invalid modalities: %s. Supported combinations are: ['text'] and ['audio'].", pyList(mods))
			}
		}
		if a, ok, e := r.object("audio"); e != nil {
			return e
		} else if ok {
			if e := a.allow("output"); e != nil {
				return e
			}
			if out, ok, e := a.object("output"); e != nil {
				return e
			} else if ok {
				if e := out.allow("format", "voice"); e != nil {
					return e
				}
				if f, ok, e := out.object("format"); e != nil {
					return e
				} else if ok {
					af, e := parseGAFormat(f)
					if e != nil {
						return e
					}
					spec.OutputFormat = af
				}
				if e := applyVoice(&scratch, out, gaVoices, true); e != nil {
					return e
				}
				spec.Voice = scratch.Voice
			}
		}
		if _, _, e := r.integerOrInf("max_output_tokens"); e != nil {
			return e
		}
		if r.present("prompt") {
			if _, _, e := r.object("prompt"); e != nil {
				return e
			}
		}
	}
	if tools, ok, e := r.array("tools"); e != nil {
		return e
	} else if ok {
		for i, raw := range tools {
			t, e := parseObj("response.tools["+itoa(i)+"]", raw)
			if e != nil {
				return e
			}
			if e := validateTool(t); e != nil {
				return e
			}
		}
	}
	if r.present("tool_choice") {
		// Validate with the session rules under the response prefix.
		tmp := &jobj{path: "response", m: map[string]json.RawMessage{"tool_choice": r.m["tool_choice"]}}
		if e := applyCommon(&scratch, tmp); e != nil {
			return e
		}
		spec.ToolChoice = scratch.ToolChoice
	}
	if c, ok, e := r.str("conversation"); e != nil {
		return e
	} else if ok {
		if c != "auto" && c != "none" {
			return errInvalidEnum("response.conversation", c, []string{"auto", "none"})
		}
		spec.OutOfBand = c == "none"
	}
	if md, ok, e := r.object("metadata"); e != nil {
		return e
	} else if ok {
		if len(md.m) > 16 {
			return invalidReq(codeInvalidValue, "response.metadata",
				"Invalid 'response.metadata': too many properties. Expected an object with at most 16 properties, but got an object with %d properties instead.", len(md.m))
		}
		spec.Metadata = map[string]string{}
		for k := range md.m {
			v, _, e := md.str(k)
			if e != nil {
				return e
			}
			spec.Metadata[k] = v
		}
	}
	if in, ok, e := r.array("input"); e != nil {
		return e
	} else if ok {
		spec.HasInput = true
		for i, raw := range in {
			path := "response.input[" + itoa(i) + "]"
			eo, e := parseObj(path, raw)
			if e != nil {
				return e
			}
			if t, _, _ := eo.str("type"); t == "item_reference" {
				if e := eo.allow("type", "id"); e != nil {
					return e
				}
				var id string
				if e := requiredString(eo, "id", &id); e != nil {
					return e
				}
				spec.Input = append(spec.Input, inputEntry{Ref: id})
				continue
			}
			it, e := parseItem(d, path, raw, inFormat)
			if e != nil {
				return e
			}
			spec.Input = append(spec.Input, inputEntry{Item: it})
		}
	}
	return err
}

// The append event in the one shape a client sends fifty times a second
// per call (the bridge's realtime.AppendInputAudioEvent): no event_id, no
// whitespace, base64 audio.
var (
	bareAppendPrefix = []byte(`{"type":"input_audio_buffer.append","audio":"`)
	bareAppendSuffix = []byte(`"}`)
)

// bareAppendAudio returns the base64 audio of data if data is an append in
// exactly that shape, whose string holds nothing JSON would unescape; any
// other message takes the general path. Both paths give the same result for
// such a message; this one skips the generic JSON decoding, which was most
// of the simulator's CPU under a few hundred calls.
func bareAppendAudio(data []byte) ([]byte, bool) {
	b64, ok := bytes.CutPrefix(data, bareAppendPrefix)
	if !ok {
		return nil, false
	}
	if b64, ok = bytes.CutSuffix(b64, bareAppendSuffix); !ok {
		return nil, false
	}
	for _, c := range b64 {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, false
		}
	}
	return b64, true
}

// parseBareAppend is parseClientEvent's result for a bare append.
func parseBareAppend(b64 []byte) (*clientEvent, string, *apiError) {
	audio, err := decodeB64Audio("audio", string(b64))
	if err != nil {
		return nil, "", err
	}
	return &clientEvent{Type: "input_audio_buffer.append", Audio: audio}, "", nil
}
