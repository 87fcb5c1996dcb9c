package main

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/sipbridge/sipbridge/sip/records"
)

const reportUsage = `usage: sipbridge report [-format text|csv|json] [-by region|trunk] [-png FILE] RECORDS...

Reads call record files (records.path; "-" is stdin) and prints, per hour
(UTC) and region: sessions, responses, failed responses by error type,
failure %, swaps away, hedges, pause heard p50/p95, turns lost, tokens,
estimated cost and tokens wasted; then the ids of the worst hour's failures
to send to the provider, and the same table per trunk.

-format json prints a list of rows, one per hour and region, each with at
least hour, region, sessions, responses, failed. -by trunk gives the rows
per hour and trunk instead (csv, json). -png FILE draws failure rate and
pause per hour per region.
`

// reportRow is one hour of one region (or trunk). The JSON names are a
// contract with operators' tooling: hour, region, sessions, responses and
// failed must not change.
type reportRow struct {
	Hour          string         `json:"hour"` // RFC 3339, UTC, start of the hour
	Region        string         `json:"region,omitempty"`
	Trunk         string         `json:"trunk,omitempty"`
	Calls         int            `json:"calls,omitempty"`    // trunk rows: INVITEs
	Rejected      int            `json:"rejected,omitempty"` // trunk rows: INVITEs not answered
	Sessions      int            `json:"sessions"`
	SessionErrors int            `json:"session_errors"` // sessions closed on an error
	Responses     int            `json:"responses"`
	Failed        int            `json:"failed"` // responses with status failed
	FailedByType  map[string]int `json:"failed_by_type,omitempty"`
	FailurePct    float64        `json:"failure_pct"` // failed / responses × 100
	SwapsAway     int            `json:"swaps_away"`
	Hedges        int            `json:"hedges"`
	PauseP50Ms    int64          `json:"pause_p50_ms"` // pause the caller heard at swaps away
	PauseP95Ms    int64          `json:"pause_p95_ms"`
	TurnsLost     int            `json:"turns_lost"`
	Tokens        int64          `json:"tokens"`
	Cost          float64        `json:"cost"`
	WastedTokens  int64          `json:"wasted_tokens"`
	Failures      []failureRef   `json:"failures,omitempty"`

	hour   time.Time
	pauses []int64
}

// failureRef is what a support request to the provider needs.
type failureRef struct {
	Region     string    `json:"region"`
	At         time.Time `json:"at"`
	CallID     string    `json:"call_id"`
	SessionID  string    `json:"session_id,omitempty"`
	ResponseID string    `json:"response_id,omitempty"`
	ErrorType  string    `json:"error_type,omitempty"`
	ErrorCode  string    `json:"error_code,omitempty"`
	Message    string    `json:"message,omitempty"`
}

type rowKey struct {
	hour time.Time
	key  string
}

// reportTable accumulates rows keyed by hour and region (or trunk).
type reportTable struct {
	byTrunk bool
	rows    map[rowKey]*reportRow
}

func newReportTable(byTrunk bool) *reportTable {
	return &reportTable{byTrunk: byTrunk, rows: make(map[rowKey]*reportRow)}
}

func (t *reportTable) row(at time.Time, key string) *reportRow {
	if key == "" {
		key = "-"
	}
	h := at.UTC().Truncate(time.Hour)
	k := rowKey{h, key}
	r := t.rows[k]
	if r == nil {
		r = &reportRow{Hour: h.Format(time.RFC3339), hour: h}
		if t.byTrunk {
			r.Trunk = key
		} else {
			r.Region = key
		}
		t.rows[k] = r
	}
	return r
}

// add accounts one call record. Each event counts in the hour it happened:
// sessions when opened, responses when done, swaps and hedges when
// started; swaps, pauses and lost turns go to the region swapped away from,
// hedges to the primary's region.
func (t *reportTable) add(rec *records.Record) {
	key := func(region string) string {
		if t.byTrunk {
			return rec.Trunk
		}
		return region
	}
	if t.byTrunk {
		r := t.row(rec.Invite, rec.Trunk)
		r.Calls++
		if !rec.Answered {
			r.Rejected++
		}
	}
	for _, s := range rec.Sessions {
		r := t.row(s.Opened, key(s.Region))
		r.Sessions++
		if s.Error != "" {
			r.SessionErrors++
			r.Failures = append(r.Failures, failureRef{Region: s.Region, At: s.Closed, CallID: rec.CallID,
				SessionID: s.SessionID, ErrorType: "session", Message: s.Error})
		}
	}
	for _, resp := range rec.Responses {
		at := resp.Done
		if at.IsZero() {
			at = resp.Created
		}
		r := t.row(at, key(resp.Region))
		r.Responses++
		r.Tokens += resp.Usage.TotalTokens
		r.Cost += resp.Cost
		r.WastedTokens += resp.WastedTokens
		if resp.Failed() {
			r.Failed++
			typ := cmp.Or(resp.ErrorType, "unknown")
			if r.FailedByType == nil {
				r.FailedByType = make(map[string]int)
			}
			r.FailedByType[typ]++
			r.Failures = append(r.Failures, failureRef{Region: resp.Region, At: at, CallID: rec.CallID,
				SessionID: resp.SessionID, ResponseID: resp.ResponseID, ErrorType: typ,
				ErrorCode: resp.ErrorCode, Message: resp.ErrorMessage})
		}
	}
	for _, s := range rec.Swaps {
		r := t.row(s.At, key(s.From))
		r.SwapsAway++
		r.pauses = append(r.pauses, s.PauseMs)
		if s.TurnLost {
			r.TurnsLost++
		}
	}
	for _, h := range rec.Hedges {
		t.row(h.At, key(h.Primary)).Hedges++
	}
}

// finish computes the derived columns and returns the rows by hour, then
// name.
func (t *reportTable) finish() []*reportRow {
	out := make([]*reportRow, 0, len(t.rows))
	for _, r := range t.rows {
		if r.Responses > 0 {
			r.FailurePct = math.Round(float64(r.Failed)/float64(r.Responses)*1000) / 10
		}
		slices.Sort(r.pauses)
		r.PauseP50Ms, r.PauseP95Ms = percentile(r.pauses, 50), percentile(r.pauses, 95)
		r.Cost = math.Round(r.Cost*1e6) / 1e6
		slices.SortFunc(r.Failures, func(a, b failureRef) int { return a.At.Compare(b.At) })
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *reportRow) int {
		return cmp.Or(a.hour.Compare(b.hour), cmp.Compare(a.Region+a.Trunk, b.Region+b.Trunk))
	})
	return out
}

// percentile is the nearest-rank percentile of sorted values (0 if none).
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// worstRow is the row with the most failures (responses and sessions),
// then the highest failure rate, then the earliest; nil when none failed.
func worstRow(rows []*reportRow) *reportRow {
	var worst *reportRow
	for _, r := range rows {
		n := r.Failed + r.SessionErrors
		if n == 0 {
			continue
		}
		if worst == nil || n > worst.Failed+worst.SessionErrors ||
			n == worst.Failed+worst.SessionErrors && r.FailurePct > worst.FailurePct {
			worst = r
		}
	}
	return worst
}

func report(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sipbridge report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reportUsage); fs.PrintDefaults() }
	format := fs.String("format", "text", "output format: text, csv or json")
	by := fs.String("by", "region", "rows per hour and region or per hour and trunk (csv, json)")
	pngPath := fs.String("png", "", "also draw failure rate and pause per hour per region into this PNG file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *format != "text" && *format != "csv" && *format != "json" {
		fmt.Fprintf(stderr, "sipbridge report: -format %q: want text, csv or json\n", *format)
		return 2
	}
	if *by != "region" && *by != "trunk" {
		fmt.Fprintf(stderr, "sipbridge report: -by %q: want region or trunk\n", *by)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, "sipbridge report: no records file given\n\n"+reportUsage)
		return 2
	}
	regions, trunks := newReportTable(false), newReportTable(true)
	// A call has one record; the same one read twice (a file named twice,
	// overlapping globs) is counted once.
	type callKey struct {
		id     string
		invite time.Time
	}
	seen := make(map[callKey]bool)
	dups := 0
	for _, path := range fs.Args() {
		if err := readRecordsFile(path, stderr, func(rec *records.Record) {
			k := callKey{rec.CallID, rec.Invite.UTC()}
			if seen[k] {
				dups++
				return
			}
			seen[k] = true
			regions.add(rec)
			trunks.add(rec)
		}); err != nil {
			fmt.Fprintf(stderr, "sipbridge report: %v\n", err)
			return 1
		}
	}
	if dups > 0 {
		fmt.Fprintf(stderr, "sipbridge report: %d duplicate records (same call_id and invite time) counted once\n", dups)
	}
	regionRows, trunkRows := regions.finish(), trunks.finish()
	rows := regionRows
	if *by == "trunk" {
		rows = trunkRows
	}
	var err error
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rows)
	case "csv":
		err = writeReportCSV(stdout, rows, *by == "trunk")
	default:
		err = writeReportText(stdout, regionRows, trunkRows)
	}
	if err == nil && *pngPath != "" {
		err = drawReportPNG(*pngPath, regionRows)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sipbridge report: %v\n", err)
		return 1
	}
	return 0
}

// readRecordsFile feeds every record of path to fn; lines it cannot read
// are counted and the first few named on stderr.
func readRecordsFile(path string, stderr io.Writer, fn func(*records.Record)) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	bad := 0
	err := records.Read(r, func(rec *records.Record) error { fn(rec); return nil }, func(e *records.LineError) {
		if bad++; bad <= 5 {
			fmt.Fprintf(stderr, "sipbridge report: %s: skipped %v\n", path, e)
		}
	})
	if bad > 5 {
		fmt.Fprintf(stderr, "sipbridge report: %s: skipped %d unreadable lines in all\n", path, bad)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func failedByType(m map[string]int) string {
	types := make([]string, 0, len(m))
	for t := range m {
		types = append(types, t)
	}
	sort.Strings(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = t + "=" + strconv.Itoa(m[t])
	}
	return strings.Join(parts, ";")
}

var reportCSVHeader = []string{"hour", "region", "sessions", "session_errors", "responses", "failed", "failed_by_type",
	"failure_pct", "swaps_away", "hedges", "pause_p50_ms", "pause_p95_ms", "turns_lost", "tokens", "cost", "wasted_tokens"}

func writeReportCSV(w io.Writer, rows []*reportRow, byTrunk bool) error {
	cw := csv.NewWriter(w)
	header := slices.Clone(reportCSVHeader)
	if byTrunk {
		header = slices.Insert(header, 1, "trunk", "calls", "rejected")
		header = slices.Delete(header, 4, 5) // region
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	i := strconv.Itoa
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, r := range rows {
		rec := []string{r.Hour}
		if byTrunk {
			rec = append(rec, r.Trunk, i(r.Calls), i(r.Rejected))
		} else {
			rec = append(rec, r.Region)
		}
		rec = append(rec, i(r.Sessions), i(r.SessionErrors), i(r.Responses), i(r.Failed), failedByType(r.FailedByType),
			strconv.FormatFloat(r.FailurePct, 'f', 1, 64), i(r.SwapsAway), i(r.Hedges), i64(r.PauseP50Ms),
			i64(r.PauseP95Ms), i(r.TurnsLost), i64(r.Tokens), strconv.FormatFloat(r.Cost, 'f', -1, 64), i64(r.WastedTokens))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeReportText(w io.Writer, regionRows, trunkRows []*reportRow) error {
	table := func(title, keyName string, rows []*reportRow, key func(*reportRow) string) {
		fmt.Fprintf(w, "%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "hour (UTC)\t%s\tsessions\tresponses\tfailed\tfail %%\tswaps away\thedges\tpause p50\tp95 ms\tturns lost\ttokens\tcost\twasted\tfailed by type\t\n", keyName)
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%.4f\t%d\t%s\t\n",
				r.hour.Format("2006-01-02 15h"), key(r), r.Sessions, r.Responses, r.Failed, r.FailurePct, r.SwapsAway,
				r.Hedges, r.PauseP50Ms, r.PauseP95Ms, r.TurnsLost, r.Tokens, r.Cost, r.WastedTokens, failedByType(r.FailedByType))
		}
		tw.Flush()
	}
	table("Per hour and region", "region", regionRows, func(r *reportRow) string { return r.Region })
	fmt.Fprintln(w)
	if worst := worstRow(regionRows); worst == nil {
		fmt.Fprintln(w, "No failures.")
	} else {
		fmt.Fprintf(w, "Worst hour: %s, region %s: %d of %d responses failed, %d sessions closed on an error.\n",
			worst.Hour, worst.Region, worst.Failed, worst.Responses, worst.SessionErrors)
		fmt.Fprintln(w, "For a support request (time, session id, response id, error):")
		for _, f := range worst.Failures {
			fmt.Fprintf(w, "  %s  session_id=%s  response_id=%s  error=%s", f.At.UTC().Format(time.RFC3339),
				cmp.Or(f.SessionID, "-"), cmp.Or(f.ResponseID, "-"), f.ErrorType)
			if f.ErrorCode != "" {
				fmt.Fprintf(w, "  code=%s", f.ErrorCode)
			}
			if f.Message != "" {
				fmt.Fprintf(w, "  message=%q", f.Message)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	table("Per hour and trunk", "trunk", trunkRows, func(r *reportRow) string { return r.Trunk })
	return nil
}

// drawReportPNG draws two panels sharing the hour axis: failure rate (%)
// and the pause heard at swaps (p95 solid, p50 dashed), one colour per
// region. An hour without responses (or without swaps) has no point.
func drawReportPNG(path string, rows []*reportRow) error {
	var regions []string
	for _, r := range rows {
		if !slices.Contains(regions, r.Region) {
			regions = append(regions, r.Region)
		}
	}
	sort.Strings(regions)
	rate, pause := plot.New(), plot.New()
	rate.Title.Text = "Failed responses per hour and region"
	rate.Y.Label.Text = "failure rate (%)"
	pause.Title.Text = "Pause the caller heard at swaps away, per hour and region"
	pause.Y.Label.Text = "pause (ms)"
	dashed := []vg.Length{vg.Points(6), vg.Points(4)}
	for _, p := range []*plot.Plot{rate, pause} {
		p.X.Label.Text = "hour (UTC)"
		p.X.Tick.Marker = hourTicks{}
		p.Y.Tick.Marker = plot.TickerFunc(roundTicks)
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		p.Legend.Left = true
		p.Legend.Padding = vg.Points(2)
	}
	var maxRate, maxPause float64
	for _, r := range rows {
		maxRate, maxPause = max(maxRate, r.FailurePct), max(maxPause, float64(r.PauseP95Ms))
	}
	for i, region := range regions {
		var rateXY, p50XY, p95XY plotter.XYs
		for _, r := range rows {
			if r.Region != region {
				continue
			}
			x := float64(r.hour.Unix())
			if r.Responses > 0 {
				rateXY = append(rateXY, plotter.XY{X: x, Y: r.FailurePct})
			}
			if r.SwapsAway > 0 {
				p50XY = append(p50XY, plotter.XY{X: x, Y: float64(r.PauseP50Ms)})
				p95XY = append(p95XY, plotter.XY{X: x, Y: float64(r.PauseP95Ms)})
			}
		}
		c := plotutil.Color(i)
		if err := addSeries(rate, region, rateXY, c, nil, true); err != nil {
			return err
		}
		if err := addSeries(pause, region, p95XY, c, nil, true); err != nil {
			return err
		}
		if err := addSeries(pause, "", p50XY, c, dashed, false); err != nil {
			return err
		}
	}
	// Say which line is which percentile once, in black.
	for _, k := range []struct {
		name   string
		dashes []vg.Length
	}{{"p95 (solid)", nil}, {"p50 (dashed)", dashed}} {
		l := &plotter.Line{LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(2), Dashes: k.dashes}}
		pause.Legend.Add(k.name, l)
	}
	// Leave room above the data for the legend (about 7 % per entry).
	rate.Y.Min, pause.Y.Min = 0, 0
	rate.Y.Max = max(maxRate, 1) * (1.1 + 0.07*float64(len(regions)))
	pause.Y.Max = max(maxPause, 100) * (1.1 + 0.07*float64(len(regions)+2))
	img := vgimg.NewWith(vgimg.UseWH(12*vg.Inch, 9*vg.Inch), vgimg.UseDPI(100))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(10), PadBottom: vg.Points(10), PadLeft: vg.Points(10),
		PadRight: vg.Points(20), PadY: vg.Points(25)}
	canvases := plot.Align([][]*plot.Plot{{rate}, {pause}}, tiles, dc)
	rate.Draw(canvases[0][0])
	pause.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func addSeries(p *plot.Plot, name string, xys plotter.XYs, c color.Color, dashes []vg.Length, legend bool) error {
	if len(xys) == 0 {
		return nil
	}
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color, line.Width, line.Dashes = c, vg.Points(2), dashes
	points.Color, points.Shape = c, draw.CircleGlyph{}
	p.Add(line, points)
	if legend {
		p.Legend.Add(name, line, points)
	}
	return nil
}

// roundTicks puts 4 to 10 labelled ticks on 1, 2 or 5 × 10ⁿ steps.
func roundTicks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', -1, 64)}}
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= raw {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}

// hourTicks labels whole hours: a labelled tick every 1, 2, 3, 6, 12 or 24
// hours (at most about 12 labels) and a small tick on every hour between.
type hourTicks struct{}

func (hourTicks) Ticks(lo, hi float64) []plot.Tick {
	const hour = 3600
	span := (hi - lo) / hour
	step := 24
	for _, s := range []int{1, 2, 3, 6, 12} {
		if span/float64(s) <= 12 {
			step = s
			break
		}
	}
	var ticks []plot.Tick
	for t := math.Ceil(lo/hour) * hour; t <= hi; t += hour {
		tick := plot.Tick{Value: t}
		if at := time.Unix(int64(t), 0).UTC(); at.Hour()%step == 0 {
			tick.Label = at.Format("Jan 2\n15:04")
		}
		ticks = append(ticks, tick)
	}
	if len(ticks) == 0 { // less than an hour shown
		ticks = append(ticks, plot.Tick{Value: lo, Label: time.Unix(int64(lo), 0).UTC().Format("Jan 2\n15:04")})
	}
	return ticks
}
