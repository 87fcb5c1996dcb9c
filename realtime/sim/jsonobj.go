package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// jobj is one JSON object of a client event, read strictly: every key must
// be known (unknown keys → unknown_parameter, as the GA service answers
// "Unknown parameter: 'session.input_audio_format'." — §2.1), and every value
// must have the documented JSON type (→ invalid_type). path is the param
// prefix used in error messages ("session.audio.input").
type jobj struct {
	path string
	m    map[string]json.RawMessage
}

func parseObj(path string, raw json.RawMessage) (*jobj, *apiError) {
	if kind := jsonKind(raw); kind != "an object" {
		name := path
		if name == "" {
			return nil, invalidReq(codeInvalidEvent, "", "Invalid event: expected a JSON object, but got %s instead.", kind)
		}
		return nil, errInvalidType(name, "an object", kind)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalidReq(codeInvalidEvent, path, "Invalid event: could not parse JSON: %v", err)
	}
	return &jobj{path: path, m: m}, nil
}

// p is the full param name of key.
func (o *jobj) p(key string) string {
	if o.path == "" {
		return key
	}
	return o.path + "." + key
}

// present reports whether key is there and not null.
func (o *jobj) present(key string) bool {
	raw, ok := o.m[key]
	return ok && jsonKind(raw) != "null"
}

// isNull reports whether key is there with an explicit null.
func (o *jobj) isNull(key string) bool {
	raw, ok := o.m[key]
	return ok && jsonKind(raw) == "null"
}

// allow rejects the first key (in sorted order, so errors are deterministic)
// that is not in allowed.
func (o *jobj) allow(allowed ...string) *apiError {
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return errUnknownParam(o.p(k))
		}
	}
	return nil
}

// A null value for an optional, non-nullable field is treated as absent.
func (o *jobj) str(key string) (string, bool, *apiError) {
	if !o.present(key) {
		return "", false, nil
	}
	raw := o.m[key]
	if k := jsonKind(raw); k != "a string" {
		return "", false, errInvalidType(o.p(key), "a string", k)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, errInvalidType(o.p(key), "a string", "an invalid string")
	}
	return s, true, nil
}

func (o *jobj) number(key string) (float64, bool, *apiError) {
	if !o.present(key) {
		return 0, false, nil
	}
	raw := o.m[key]
	k := jsonKind(raw)
	if k != "an integer" && k != "a decimal" {
		return 0, false, errInvalidType(o.p(key), "a decimal", k)
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, errInvalidType(o.p(key), "a decimal", "an out-of-range number")
	}
	return f, true, nil
}

func (o *jobj) integer(key string) (int, bool, *apiError) {
	if !o.present(key) {
		return 0, false, nil
	}
	raw := o.m[key]
	k := jsonKind(raw)
	if k != "an integer" {
		return 0, false, errInvalidType(o.p(key), "an integer", k)
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 32)
	if err != nil {
		return 0, false, errInvalidType(o.p(key), "an integer", "an out-of-range integer")
	}
	return int(n), true, nil
}

func (o *jobj) boolean(key string) (bool, bool, *apiError) {
	if !o.present(key) {
		return false, false, nil
	}
	raw := o.m[key]
	if k := jsonKind(raw); k != "a boolean" {
		return false, false, errInvalidType(o.p(key), "a boolean", k)
	}
	return bytes.Equal(bytes.TrimSpace(raw), []byte("true")), true, nil
}

// numberInto stores key's number in *dst when present; a value outside
// [lo, hi] is out of range and leaves *dst alone.
func (o *jobj) numberInto(key string, lo, hi float64, dst *float64) *apiError {
	v, ok, err := o.number(key)
	if err != nil || !ok {
		return err
	}
	if v < lo || v > hi {
		return errOutOfRange(o.p(key), v, lo, hi)
	}
	*dst = v
	return nil
}

// integerInto stores key's integer in *dst when present; a value outside
// [lo, hi] is out of range and leaves *dst alone.
func (o *jobj) integerInto(key string, lo, hi int, dst *int) *apiError {
	v, ok, err := o.integer(key)
	if err != nil || !ok {
		return err
	}
	if v < lo || v > hi {
		return errOutOfRange(o.p(key), float64(v), float64(lo), float64(hi))
	}
	*dst = v
	return nil
}

// booleanInto stores key's boolean in *dst when present.
func (o *jobj) booleanInto(key string, dst *bool) *apiError {
	v, ok, err := o.boolean(key)
	if err != nil || !ok {
		return err
	}
	*dst = v
	return nil
}

func (o *jobj) object(key string) (*jobj, bool, *apiError) {
	if !o.present(key) {
		return nil, false, nil
	}
	sub, err := parseObj(o.p(key), o.m[key])
	if err != nil {
		return nil, false, err
	}
	return sub, true, nil
}

func (o *jobj) array(key string) ([]json.RawMessage, bool, *apiError) {
	if !o.present(key) {
		return nil, false, nil
	}
	raw := o.m[key]
	if k := jsonKind(raw); k != "an array" {
		return nil, false, errInvalidType(o.p(key), "an array", k)
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, false, errInvalidType(o.p(key), "an array", "an invalid array")
	}
	return arr, true, nil
}

// stringArray reads an array of strings.
func (o *jobj) stringArray(key string) ([]string, bool, *apiError) {
	arr, ok, err := o.array(key)
	if err != nil || !ok {
		return nil, ok, err
	}
	out := make([]string, 0, len(arr))
	for i, raw := range arr {
		if k := jsonKind(raw); k != "a string" {
			return nil, false, errInvalidType(fmt.Sprintf("%s[%d]", o.p(key), i), "a string", k)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, errInvalidType(fmt.Sprintf("%s[%d]", o.p(key), i), "a string", "an invalid string")
		}
		out = append(out, s)
	}
	return out, true, nil
}

// jsonKind names the JSON type of raw the way the API's invalid_type
// messages do ("a string", "an integer", …).
func jsonKind(raw json.RawMessage) string {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(b, ".eE") {
		return "a decimal"
	}
	return "an integer"
}
