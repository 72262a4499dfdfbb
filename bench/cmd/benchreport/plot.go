package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// panel is one bar chart of the plot: one bar per configuration, with a
// whisker from the lowest to the highest run.
type panel struct {
	title  string
	values []float64 // medians
	lo, hi []float64 // range over the rounds; nil for none
	format func(float64) string
}

var (
	plotBackground = color.RGBA{0xff, 0xff, 0xff, 0xff}
	plotInk        = color.RGBA{0x22, 0x22, 0x22, 0xff}
	plotGrid       = color.RGBA{0xe2, 0xe2, 0xe2, 0xff}
	plotMuted      = color.RGBA{0x66, 0x66, 0x66, 0xff}
	// One colour per configuration: grey for the floor, blue for
	// shipshape, orange for the Go peer, greens for the Node ones.
	plotBars = map[string]color.RGBA{
		cfgBare:        {0x9e, 0x9e, 0x9e, 0xff},
		cfgShipshape:   {0x1f, 0x6f, 0xb4, 0xff},
		cfgChi:         {0xe0, 0x7b, 0x24, 0xff},
		cfgFloor:       {0xcc, 0xcc, 0xcc, 0xff},
		cfgNode:        {0x7c, 0xb3, 0x42, 0xff},
		cfgNodeCluster: {0x33, 0x69, 0x1e, 0xff},
	}
	plotOtherBar = color.RGBA{0x55, 0x55, 0x55, 0xff} // a label plotBars does not know
)

// plotRow is a row of panels over the same configurations (labels), under
// its own title.
type plotRow struct {
	title  string
	labels []string
	panels []panel
}

// fonts holds the faces the plot uses.
type fonts struct{ title, label, small font.Face }

func loadFonts() (fonts, error) {
	reg, err := opentype.Parse(goregular.TTF)
	if err != nil {
		return fonts{}, err
	}
	bold, err := opentype.Parse(gobold.TTF)
	if err != nil {
		return fonts{}, err
	}
	face := func(f *opentype.Font, size float64) (font.Face, error) {
		return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	}
	var fs fonts
	if fs.title, err = face(bold, 17); err != nil {
		return fonts{}, err
	}
	if fs.label, err = face(reg, 15); err != nil {
		return fonts{}, err
	}
	if fs.small, err = face(reg, 13); err != nil {
		return fonts{}, err
	}
	return fs, nil
}

// writePlot draws the rows of panels one under the other, under heading
// and above caption, as a PNG. Panels are wide enough for their bars; the
// widest row sets the width.
func writePlot(w io.Writer, heading, caption string, rows []plotRow) error {
	fs, err := loadFonts()
	if err != nil {
		return err
	}
	const panelH, top, rowTitle, bottom = 420, 44, 34, 40
	width := 0
	for _, row := range rows {
		width = max(width, panelWidth(len(row.labels))*len(row.panels))
	}
	img := image.NewRGBA(image.Rect(0, 0, width, top+len(rows)*(rowTitle+panelH)+bottom))
	draw.Draw(img, img.Bounds(), image.NewUniform(plotBackground), image.Point{}, draw.Src)
	text(img, fs.title, plotInk, heading, width/2, 26, alignCenter)
	y := top
	for _, row := range rows {
		text(img, fs.title, plotInk, row.title, width/2, y+22, alignCenter)
		y += rowTitle
		pw := panelWidth(len(row.labels))
		x0 := (width - pw*len(row.panels)) / 2
		for i, p := range row.panels {
			r := image.Rect(x0+i*pw, y, x0+(i+1)*pw, y+panelH)
			if err := drawPanel(img, r, fs, row.labels, p); err != nil {
				return err
			}
		}
		y += panelH
	}
	text(img, fs.small, plotMuted, caption, width/2, img.Bounds().Dy()-14, alignCenter)
	return png.Encode(w, img)
}

// panelWidth leaves about 100 pixels per bar, 440 at least.
func panelWidth(bars int) int { return max(440, 92+100*bars) }

// drawPanel draws one bar chart in r: the title, a y axis with gridlines at
// round values, the bars with their values above and the configuration
// names below (on two lines or more when they do not fit).
func drawPanel(img *image.RGBA, r image.Rectangle, fs fonts, labels []string, p panel) error {
	if len(p.values) != len(labels) {
		return fmt.Errorf("benchreport: plot %q has %d values for %d labels", p.title, len(p.values), len(labels))
	}
	text(img, fs.label, plotInk, p.title, r.Min.X+r.Dx()/2, r.Min.Y+14, alignCenter)
	// The plotting area, leaving room for tick labels (left), the title
	// (top) and the bar names (bottom, two lines).
	area := image.Rect(r.Min.X+72, r.Min.Y+44, r.Max.X-20, r.Max.Y-56)
	top := 0.0
	for i, v := range p.values {
		top = math.Max(top, v)
		if p.hi != nil {
			top = math.Max(top, p.hi[i])
		}
	}
	step := niceStep(top / 4)
	if step <= 0 {
		step = 1
	}
	ymax := math.Ceil(top*1.12/step) * step
	y := func(v float64) int { return area.Max.Y - int(math.Round(v/ymax*float64(area.Dy()))) }
	for k := 0; float64(k)*step <= ymax*(1+1e-9); k++ {
		t := float64(k) * step
		fill(img, image.Rect(area.Min.X, y(t), area.Max.X, y(t)+1), plotGrid)
		text(img, fs.small, plotMuted, formatTick(t), area.Min.X-8, y(t)+5, alignRight)
	}
	fill(img, image.Rect(area.Min.X, area.Min.Y, area.Min.X+1, area.Max.Y+1), plotInk)
	fill(img, image.Rect(area.Min.X, area.Max.Y, area.Max.X, area.Max.Y+1), plotInk)
	slot := area.Dx() / len(p.values)
	barW := slot * 3 / 5
	for i, v := range p.values {
		x0 := area.Min.X + i*slot + (slot-barW)/2
		c, ok := plotBars[labels[i]]
		if !ok {
			c = plotOtherBar
		}
		fill(img, image.Rect(x0, y(v), x0+barW, area.Max.Y), c)
		mid := x0 + barW/2
		labelY := y(v) - 6
		if p.lo != nil && p.hi != nil {
			fill(img, image.Rect(mid-1, y(p.hi[i]), mid+1, y(p.lo[i])+1), plotInk)
			fill(img, image.Rect(mid-8, y(p.hi[i]), mid+9, y(p.hi[i])+2), plotInk)
			fill(img, image.Rect(mid-8, y(p.lo[i])-1, mid+9, y(p.lo[i])+1), plotInk)
			labelY = min(labelY, y(p.hi[i])-6)
		}
		text(img, fs.label, plotInk, p.format(v), mid, labelY, alignCenter)
		for k, line := range wrapLabel(fs.label, labels[i], slot-4) {
			text(img, fs.label, plotInk, line, mid, area.Max.Y+22+k*18, alignCenter)
		}
	}
	return nil
}

// wrapLabel splits s at spaces into lines no wider than width (a word
// wider than width gets a line of its own).
func wrapLabel(face font.Face, s string, width int) []string {
	var lines []string
	for _, word := range strings.Fields(s) {
		if n := len(lines); n > 0 && font.MeasureString(face, lines[n-1]+" "+word).Round() <= width {
			lines[n-1] += " " + word
			continue
		}
		lines = append(lines, word)
	}
	return lines
}

// niceStep rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

type align int

const (
	alignLeft align = iota
	alignCenter
	alignRight
)

// text draws s with its baseline at y, aligned on x.
func text(img *image.RGBA, face font.Face, c color.Color, s string, x, y int, a align) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face}
	w := d.MeasureString(s).Round()
	switch a {
	case alignCenter:
		x -= w / 2
	case alignRight:
		x -= w
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

// formatThousands prints v as an integer with thousands separators
// (34,512).
func formatThousands(v float64) string {
	return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
}

// formatTick prints an axis value: in thousands (50k, 2.5k) from 1,000,
// else the shortest decimal form.
func formatTick(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(math.Round(v/1000*1e3)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*1e6)/1e6, 'f', -1, 64)
}

// formatShort prints v with one decimal below 100 (two below 1) and none
// above.
func formatShort(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}
