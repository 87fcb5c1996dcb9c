package records

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// LineError is a line of a records file that is not a record this version
// can read. Read reports it to its callback and goes on.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Read decodes every line of r and calls fn with each record. A line that
// is not valid JSON, lacks a call_id, or has a schema newer than
// SchemaVersion is passed to bad (when non-nil) and skipped; an error from
// fn or from reading stops Read.
func Read(r io.Reader, fn func(*Record) error, bad func(*LineError)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var rec Record
			switch derr := json.Unmarshal(line, &rec); {
			case derr != nil:
				report(bad, n, derr)
			case rec.Schema > SchemaVersion:
				report(bad, n, fmt.Errorf("schema %d is newer than %d", rec.Schema, SchemaVersion))
			case rec.CallID == "":
				report(bad, n, errors.New("no call_id"))
			default:
				if ferr := fn(&rec); ferr != nil {
					return ferr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func report(bad func(*LineError), n int, err error) {
	if bad != nil {
		bad(&LineError{Line: n, Err: err})
	}
}
