package main

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotSamples draws the bridge's goroutines, RSS, CPU and the active calls
// over time, one panel each, to a PNG: flat lines are what a soak must
// show.
func plotSamples(path string, samples []sample) error {
	if len(samples) == 0 {
		return fmt.Errorf("plot: no samples")
	}
	panels := []struct {
		title, unit string
		y           func(sample) float64
	}{
		{"bridge goroutines", "goroutines", func(s sample) float64 { return s.goroutines }},
		{"bridge RSS", "MiB", func(s sample) float64 { return float64(s.rssKB) / 1024 }},
		{"bridge CPU", "% of one core", func(s sample) float64 { return s.cpuPct }},
		{"active calls (caller side)", "calls", func(s sample) float64 { return float64(s.calls) }},
	}
	var rows [][]*plot.Plot
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "minutes since the bridge started"
		p.Y.Label.Text = pn.unit
		p.Add(plotter.NewGrid())
		var xys plotter.XYs
		top := 0.0
		for _, s := range samples {
			y := pn.y(s)
			if math.IsNaN(y) {
				continue // a failed scrape: leave a gap in the line's data
			}
			xys = append(xys, plotter.XY{X: s.at.Minutes(), Y: y})
			top = max(top, y)
		}
		if len(xys) == 0 {
			xys = plotter.XYs{{X: 0, Y: 0}}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		l.Color, l.Width = color.Black, vg.Points(1.5)
		p.Add(l)
		p.Y.Min, p.Y.Max = 0, max(top*1.15, 1)
		rows = append(rows, []*plot.Plot{p})
	}
	img := vgimg.NewWith(vgimg.UseWH(10*vg.Inch, 12*vg.Inch), vgimg.UseDPI(100))
	tiles := draw.Tiles{Rows: len(rows), Cols: 1, PadTop: vg.Points(10), PadBottom: vg.Points(10),
		PadLeft: vg.Points(10), PadRight: vg.Points(20), PadY: vg.Points(20)}
	canvases := plot.Align(rows, tiles, draw.New(img))
	for i, r := range rows {
		r[0].Draw(canvases[i][0])
	}
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
