package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipbridge/sipbridge/realtime"
)

// Defaults of the writer's knobs (records.* in the config).
const (
	DefaultQueueLen  = 1024               // records waiting for the writer; beyond it they are dropped
	DefaultMaxBytes  = 256 << 20          // rotate before the file would exceed this
	DefaultLogEvery  = 10 * time.Second   // at most one drop/error warning per kind per interval
	maxLineBytes     = 16 << 20           // a record larger than this is a bug upstream: dropped
	quarantineSuffix = ".torn-"           // + UTC time: a torn tail moved aside on open
	rotatedLayout    = "20060102T150405Z" // suffix of a rotated file
)

// SyncPolicy says when the writer fsyncs the file.
type SyncPolicy string

// Durability. Every line is appended by one write(2) on an O_APPEND
// descriptor; once that returns, a crash of the process (SIGKILL, panic,
// OOM kill) cannot lose or tear the line: the kernel holds it. A kill that
// lands inside the write can cut it at a page boundary (Linux stops a
// multi-page write for a fatal signal), so before appending, the writer
// puts the whole line in DIR/.NAME.pending (see writePending; hidden so a
// glob over the records files does not pick it up). On the next
// Open a torn last line that is a prefix of the pending line is completed
// from it; any other torn tail is moved to
// PATH.torn-TIME. So a record the writer had started to append is never
// lost or torn by a process crash; one still in the queue is lost (the
// queue holds a few records for microseconds at normal load).
//
// fsync only matters for a crash of the machine (power, kernel):
const (
	// SyncBatch (default) fsyncs after each batch of lines the writer
	// drains from its queue: at most one fsync per burst of call ends.
	SyncBatch SyncPolicy = "batch"
	// SyncNone leaves flushing to the kernel (lines of the last seconds may
	// be lost if the machine, not the process, crashes).
	SyncNone SyncPolicy = "none"
)

// Config configures a Writer. Zero values take the defaults above.
type Config struct {
	Path        string     // records.path: the file lines are appended to
	Transcripts bool       // records.transcripts: keep Record.Transcript; false strips it
	MaxBytes    int64      // rotate before exceeding; 0: DefaultMaxBytes; <0: never by size
	Daily       bool       // also rotate when the UTC day changes
	QueueLen    int        // 0: DefaultQueueLen
	Sync        SyncPolicy // "": SyncBatch
	// Redact, when set, rewrites caller and callee identities (From, To,
	// transfer targets, and numbers in transcript text) before encoding.
	// See MaskDigits.
	Redact func(string) string
	// now is the clock, pendingPath overrides the pending file (tests).
	now         func() time.Time
	pendingPath string
}

// Validate checks the configuration once, naming the bad key.
func (c Config) Validate() error {
	switch {
	case c.Path == "":
		return errors.New("records.path: empty")
	case c.QueueLen < 0:
		return fmt.Errorf("records.queue_len: %d is negative", c.QueueLen)
	case c.Sync != "" && c.Sync != SyncBatch && c.Sync != SyncNone:
		return fmt.Errorf("records.sync: %q is not batch or none", c.Sync)
	}
	return nil
}

// Writer appends records to the file. Submit may be called from any
// goroutine; one goroutine (Run) owns the file.
type Writer struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	queue chan *Record

	mu     sync.RWMutex // Submit holds it shared; Run takes it to close
	closed bool

	dropLog  limiter
	errorLog limiter

	// Owned by Run's goroutine.
	pending *os.File // DIR/.NAME.pending
	f       *os.File
	size    int64
	day     string // UTC yyyy-mm-dd of the first line in f
	buf     bytes.Buffer
	enc     *json.Encoder
}

// Open prepares the records file: creates it if missing, and repairs a
// torn last line a previous crash may have left (a partial line that is
// valid JSON gets its newline; anything else is moved to
// PATH.torn-TIME and cut off). Start the writer with Run.
func Open(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Sync == "" {
		cfg.Sync = SyncBatch
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.pendingPath == "" {
		cfg.pendingPath = pendingPathFor(cfg.Path)
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Writer{cfg: cfg, log: log.With("records", cfg.Path), queue: make(chan *Record, cfg.QueueLen),
		dropLog: limiter{every: DefaultLogEvery}, errorLog: limiter{every: DefaultLogEvery}}
	w.m = newMetrics(reg, func() float64 { return float64(len(w.queue)) })
	action, err := repairTail(cfg.Path, cfg.pendingPath, cfg.now())
	if err != nil {
		return nil, fmt.Errorf("records.path: %w", err)
	}
	if action != "" {
		w.m.repaired.WithLabelValues(action).Inc()
		w.log.Warn("records: repaired a torn last line left by a crash", "action", action)
	}
	if w.pending, err = os.OpenFile(cfg.pendingPath, os.O_RDWR|os.O_CREATE, 0o640); err != nil {
		return nil, fmt.Errorf("records.path: %w", err)
	}
	if err := w.openFile(); err != nil {
		w.pending.Close()
		return nil, fmt.Errorf("records.path: %w", err)
	}
	w.enc = json.NewEncoder(&w.buf)
	w.enc.SetEscapeHTML(false)
	return w, nil
}

// Submit hands a finished call's record to the writer and never blocks:
// when the queue is full (the disk is slower than calls end) or the writer
// has stopped, the record is dropped, counted and logged (rate-limited).
// The writer owns rec afterwards. It reports whether rec was queued.
func (w *Writer) Submit(rec *Record) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(rec, "closed")
		return false
	}
	select {
	case w.queue <- rec:
		return true
	default:
		w.drop(rec, "queue_full")
		return false
	}
}

func (w *Writer) drop(rec *Record, reason string) {
	w.m.dropped.WithLabelValues(reason).Inc()
	if ok, suppressed := w.dropLog.allow(); ok {
		w.log.Warn("records: call record dropped", "call_id", rec.CallID, "reason", reason, "suppressed", suppressed)
	}
}

// Run writes queued records until ctx ends, then writes what is still
// queued, stops accepting (later Submits drop with reason "closed") and
// closes the file. Cancel ctx only after the calls have ended, so their
// records are in the queue.
func (w *Writer) Run(ctx context.Context) error {
	defer w.closeFile()
	defer w.pending.Close()
	for {
		select {
		case rec := <-w.queue:
			w.write(rec)
			w.drain()
		case <-ctx.Done():
			w.mu.Lock()
			w.closed = true
			w.mu.Unlock()
			w.drain()
			return nil
		}
	}
}

// drain writes everything queued now, then fsyncs once (SyncBatch).
func (w *Writer) drain() {
	for {
		select {
		case rec := <-w.queue:
			w.write(rec)
		default:
			if w.cfg.Sync == SyncBatch && w.f != nil {
				if err := w.f.Sync(); err != nil {
					w.ioError("sync", err)
				}
			}
			return
		}
	}
}

// write encodes rec into one line and appends it with one write(2).
func (w *Writer) write(rec *Record) {
	w.prepare(rec)
	w.buf.Reset()
	if err := w.enc.Encode(rec); err != nil || w.buf.Len() > maxLineBytes {
		w.m.dropped.WithLabelValues("encode_error").Inc()
		w.log.Error("records: call record not encodable", "call_id", rec.CallID, "err", err, "bytes", w.buf.Len())
		return
	}
	line := w.buf.Bytes() // Encode ends it with '\n'
	now := w.cfg.now().UTC()
	if w.f != nil && w.size > 0 && (w.cfg.MaxBytes > 0 && w.size+int64(len(line)) > w.cfg.MaxBytes ||
		w.cfg.Daily && w.day != "" && now.Format(time.DateOnly) != w.day) {
		w.rotate(now)
	}
	if w.f == nil { // a previous open or rotation failed: try again
		if err := w.openFile(); err != nil {
			w.ioError("open", err)
			w.m.dropped.WithLabelValues("write_error").Inc()
			return
		}
	}
	w.writePending(line)
	n, err := w.f.Write(line)
	if err != nil {
		// A short write (ENOSPC) left part of a line: cut it off, so the
		// file stays whole lines and the next line starts clean.
		if n > 0 {
			if terr := w.f.Truncate(w.size); terr != nil {
				w.ioError("truncate", terr)
			}
		}
		w.ioError("write", err)
		w.m.dropped.WithLabelValues("write_error").Inc()
		return
	}
	if w.size == 0 {
		w.day = now.Format(time.DateOnly)
	}
	w.size += int64(n)
	w.m.written.Inc()
}

// pendingPathFor names the pending copy of the records file path.
func pendingPathFor(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".pending")
}

// writePending keeps a whole copy of the line being appended (see
// "Durability") in DIR/.NAME.pending: overwrite from offset 0, then cut to the
// line's length. Only the bytes up to the first newline count, so a kill
// between the two steps leaves a usable file (and the append has not
// started then anyway). A failure only weakens the crash repair: counted,
// logged.
func (w *Writer) writePending(line []byte) {
	if w.pending == nil {
		return
	}
	if _, err := w.pending.WriteAt(line, 0); err != nil {
		w.ioError("pending", err)
		return
	}
	if err := w.pending.Truncate(int64(len(line))); err != nil {
		w.ioError("pending", err)
	}
}

// prepare applies the schema version, the transcript switch and redaction.
func (w *Writer) prepare(rec *Record) {
	rec.Schema = SchemaVersion
	if !w.cfg.Transcripts {
		rec.Transcript = nil
	}
	if r := w.cfg.Redact; r != nil {
		rec.From, rec.To = r(rec.From), r(rec.To)
		for i := range rec.Transfers {
			rec.Transfers[i].Target = r(rec.Transfers[i].Target)
		}
		for i := range rec.Transcript {
			rec.Transcript[i].Text = r(rec.Transcript[i].Text)
		}
	}
}

func (w *Writer) ioError(op string, err error) {
	w.m.errors.WithLabelValues(op).Inc()
	if ok, suppressed := w.errorLog.allow(); ok {
		w.log.Error("records: file error (records are dropped, calls go on)", "op", op, "err", err, "suppressed", suppressed)
	}
}

func (w *Writer) openFile() error {
	f, err := os.OpenFile(w.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size, w.day = f, st.Size(), ""
	if w.size > 0 {
		w.day = st.ModTime().UTC().Format(time.DateOnly)
	}
	return nil
}

// rotate renames the full file aside (PATH.TIME[.N]) and opens a new one.
func (w *Writer) rotate(now time.Time) {
	if err := w.f.Sync(); err != nil {
		w.ioError("sync", err)
	}
	w.closeFile()
	base := w.cfg.Path + "." + now.Format(rotatedLayout)
	target := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			break
		}
		target = fmt.Sprintf("%s.%d", base, i)
	}
	if err := os.Rename(w.cfg.Path, target); err != nil {
		w.ioError("rotate", err)
	} else {
		w.m.rotations.Inc()
	}
	if err := w.openFile(); err != nil {
		w.ioError("open", err)
	}
}

func (w *Writer) closeFile() {
	if w.f == nil {
		return
	}
	if err := w.f.Close(); err != nil {
		w.ioError("close", err)
	}
	w.f = nil
}

// repairTail makes path end with a whole line. It returns "" when nothing
// was needed, "completed" when the torn last line was finished from
// the pending file, "newline" when the partial last line was valid JSON and got
// its newline, "quarantined" when it was moved to PATH.torn-TIME and cut.
func repairTail(path, pendingPath string, now time.Time) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return "", err
	}
	size := st.Size()
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil {
		return "", err
	}
	if last[0] == '\n' {
		return "", nil
	}
	// Find the start of the torn line, reading backwards in blocks.
	start := int64(0)
	block := make([]byte, 64<<10)
	for end := size; end > 0; {
		from := max(end-int64(len(block)), 0)
		b := block[:end-from]
		if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			start = from + int64(i) + 1
			break
		}
		end = from
	}
	tail := make([]byte, size-start)
	if _, err := f.ReadAt(tail, start); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	pending, _ := os.ReadFile(pendingPath)
	if i := bytes.IndexByte(pending, '\n'); i >= 0 {
		pending = pending[:i+1]
	} else {
		pending = nil
	}
	if len(pending) > len(tail) && bytes.HasPrefix(pending, tail) {
		if _, err := f.WriteAt(pending[len(tail):], size); err != nil {
			return "", err
		}
		return "completed", f.Sync()
	}
	if json.Valid(tail) && bytes.HasPrefix(bytes.TrimSpace(tail), []byte("{")) {
		if _, err := f.WriteAt([]byte("\n"), size); err != nil {
			return "", err
		}
		return "newline", f.Sync()
	}
	qpath := path + quarantineSuffix + now.UTC().Format(rotatedLayout)
	if err := os.WriteFile(qpath, tail, 0o640); err != nil {
		return "", fmt.Errorf("quarantine torn line: %w", err)
	}
	if err := f.Truncate(start); err != nil {
		return "", err
	}
	return "quarantined", f.Sync()
}

// MaskDigits returns a Redact hook that replaces every digit but the last
// keep of each run of digits with 'x' ("sip:+4915112345678@h" →
// "sip:+xxxxxxxxxx5678@h" for keep 4). Runs shorter than keep+3 digits
// (ports, short extensions) are left alone.
func MaskDigits(keep int) func(string) string {
	return func(s string) string {
		var b strings.Builder
		rs := []rune(s)
		for i := 0; i < len(rs); {
			j := i
			for j < len(rs) && unicode.IsDigit(rs[j]) {
				j++
			}
			if j == i {
				b.WriteRune(rs[i])
				i++
				continue
			}
			run := j - i
			for k := i; k < j; k++ {
				if run >= keep+3 && k < j-keep {
					b.WriteByte('x')
				} else {
					b.WriteRune(rs[k])
				}
			}
			i = j
		}
		return b.String()
	}
}

// limiter lets one log line through per interval and counts the rest.
type limiter struct {
	every      time.Duration
	next       atomic.Int64 // unix nanos before which lines are suppressed
	suppressed atomic.Int64
}

func (l *limiter) allow() (bool, int64) {
	now := time.Now().UnixNano()
	next := l.next.Load()
	if now < next || !l.next.CompareAndSwap(next, now+int64(l.every)) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

type metrics struct {
	written   prometheus.Counter
	dropped   *prometheus.CounterVec
	errors    *prometheus.CounterVec
	rotations prometheus.Counter
	repaired  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, queueLen func() float64) *metrics {
	const ns, sub = "sipbridge", "records"
	m := &metrics{
		written: realtime.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "written_total", Help: "Call records appended to the records file."})),
		dropped: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "dropped_total",
			Help: "Call records not written, by reason (queue_full, closed, write_error, encode_error)."}, []string{"reason"})),
		errors: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "file_errors_total",
			Help: "Records file errors (a full disk shows as op=write), by operation."}, []string{"op"})),
		rotations: realtime.RegisterCollector(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rotations_total", Help: "Records file rotations (size or day)."})),
		repaired: realtime.RegisterCollector(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "repaired_total",
			Help: "Torn last lines found on open, by action (completed, newline, quarantined)."}, []string{"action"})),
	}
	realtime.RegisterCollector(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "queue_length", Help: "Call records waiting for the writer."}, queueLen))
	return m
}
