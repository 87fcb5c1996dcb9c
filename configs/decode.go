package configs

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// zeroDurationAllowed are the duration keys where a written 0 means
// something (README.md); anywhere else 0 would silently mean the default,
// so writing it is an error.
var zeroDurationAllowed = map[string]bool{
	"failover.filler_after": true, // 0 = never play the filler
}

var (
	durationType    = reflect.TypeFor[Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	lineRE          = regexp.MustCompile(`line (\d+): `)
	indexRE         = regexp.MustCompile(`\[\d+\]`)
)

// DecodeSection decodes the YAML node n into v (a pointer to a struct with
// yaml tags) strictly: a key v does not have is an error naming its path
// under path ("regions[0].simulator"; "" for the top level) and line, and a
// value of the wrong type or an invalid duration names its key too. Used by
// Parse for the whole file, and by the binary for the sections configs
// leaves to the package that owns them (Region.Simulator).
func DecodeSection(n *yaml.Node, path string, v any) error {
	if n == nil {
		return nil
	}
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer {
		return fmt.Errorf("configs: DecodeSection needs a pointer, got %T", v)
	}
	w := keyWalker{lines: map[int]string{}}
	w.walk(n, path, t.Elem())
	if len(w.errs) > 0 {
		return errors.Join(w.errs...)
	}
	if err := n.Decode(v); err != nil {
		return w.nameKeys(err)
	}
	return nil
}

// keyWalker checks a node tree against a Go type before decoding: unknown
// keys and written zero durations, and which key each line holds so
// decoding errors ("line 7: …") can name it.
type keyWalker struct {
	errs  []error
	lines map[int]string // line → key path of the first scalar on it
}

func (w *keyWalker) walk(n *yaml.Node, path string, t reflect.Type) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && path != "" {
		if _, ok := w.lines[n.Line]; !ok {
			w.lines[n.Line] = path
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		if d, err := time.ParseDuration(n.Value); err == nil && d == 0 && !zeroDurationAllowed[indexRE.ReplaceAllString(path, "")] {
			w.errs = append(w.errs, fmt.Errorf("%s: 0 is not a usable duration (line %d); leave the key out for the default", path, n.Line))
		}
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // decodes itself (StringList, Simulator)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // Decode reports the type error
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.IsExported() && name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				in := path
				if in == "" {
					in = "top level"
				}
				w.errs = append(w.errs, fmt.Errorf("line %d: unknown key %q in %s", k.Line, k.Value, in))
				continue
			}
			w.walk(val, joinKey(path, k.Value), ft)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, el := range n.Content {
			w.walk(el, fmt.Sprintf("%s[%d]", path, i), t.Elem())
		}
	}
}

// nameKeys rewrites "line N: …" in a decoding error as "KEY (line N): …".
func (w *keyWalker) nameKeys(err error) error {
	var parts []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		parts = te.Errors
	} else {
		parts = []string{trimYAMLPrefix(err.Error())}
	}
	for i, p := range parts {
		parts[i] = lineRE.ReplaceAllStringFunc(p, func(m string) string {
			line, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
			if key, ok := w.lines[line]; ok {
				return fmt.Sprintf("%s (line %d): ", key, line)
			}
			return m
		})
	}
	return errors.New(strings.Join(parts, "; "))
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func trimYAMLPrefix(s string) string { return strings.TrimPrefix(s, "yaml: ") }
