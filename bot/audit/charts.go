package audit

// Charts for the auditor's HTML report. They are drawn with gonum/plot into vgsvg and
// post-processed into a bare <svg> element, so the report stays a single self-contained
// file: no scripts, no external fonts, nothing fetched when an auditor opens it offline.
//
// Series are told apart by gray shade, black outlines and line-with-glyph versus bar, never
// by hue, because audit reports get printed in black and white and read by colour-blind people.

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"image/color"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart geometry in SVG user units (vgsvg draws in points and the viewBox reuses the numbers).
// The charts are laid out for a column about 800 px wide and scale with the page through the
// viewBox; chartMaxWidth stops text from growing past ~1.3× its design size on wide screens.
const (
	chartWidth       = 800
	deploysHeight    = 500
	exceptionsHeight = 400
	chartMaxWidth    = 1040 // px
	chartMargin      = 8

	// chartDataWidth is a conservative estimate of a panel's data area (the canvas less the
	// margins, the y axis title, its tick labels and padding), used to size x labels and
	// markers before gonum lays the plot out.
	chartDataWidth = chartWidth - 2*chartMargin - 110
)

// Shades used for charts. Bar shades are far enough apart to survive a cheap laser printer,
// and bars wide enough for it get a black outline so the lightest stays distinct from paper.
var (
	chartBlack    = color.Gray{Y: 0x00}
	chartWhite    = color.Gray{Y: 0xff}
	chartGridGray = color.Gray{Y: 0xd8}

	// chartBarShades are handed out in order to stacked layers, bottom layer first. More
	// kinds than shades would force two layers to look alike (a white one would vanish where
	// long periods drop the outlines), so exceptionsChart refuses them.
	chartBarShades = []color.Color{
		color.Gray{Y: 0x00}, // black
		color.Gray{Y: 0x5a}, // dark gray
		color.Gray{Y: 0x9c}, // mid gray
		color.Gray{Y: 0xd4}, // light gray
	}
)

// chartFont is Liberation Sans: its metrics match Arial and Helvetica, so the generic
// font-family list written into the SVG lays text out the same as gonum measured it,
// without embedding hundreds of kilobytes of base64 font data per chart.
var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// svgFontFamily replaces the single family name vgsvg writes on every <text>, so browsers
// without Liberation fonts fall back to a metric-compatible face instead of their serif default.
const svgFontFamily = `'Liberation Sans', Arial, Helvetica, sans-serif`

// deploysChart draws deploys per week (bars, left axis "deploys") and the compliant share of the
// changes deployed that week (a line with markers, 0–100 %). share[i] is NaN for a week with no
// change deployed (no point drawn there). It returns an <svg> element ready to embed in HTML.
//
// share[i] is a percentage in [0, 100], not a fraction. weeks must be consecutive Mondays (any
// location; labels use each time's own location). gonum/plot has no second y axis, so the two
// measures are stacked panels sharing the x axis: two y axes on one panel invite readers to
// compare bar heights with line heights that mean different things.
func deploysChart(weeks []time.Time, deploys []int, share []float64) (string, error) {
	if err := checkDeploysInput(weeks, deploys, share); err != nil {
		return "", fmt.Errorf("deploys chart: %w", err)
	}
	wx := newWeekAxis(weeks)

	bars := chartBarStyle{fill: chartBarShades[2]}
	top := newWeekPanel(wx, "deploys per week", false)
	setCountAxis(&top.Y, maxCount(deploys))
	top.Add(chartGrid(), weekBars{layers: [][]float64{countsAsFloats(deploys)}, styles: []chartBarStyle{bars}})

	line, dots := shareStyles(wx)
	bottom := newWeekPanel(wx, "compliant share (%)", true)
	setShareAxis(&bottom.Y)
	bottom.Add(chartGrid())
	bottom.Add(shareSeries(share, line, dots)...)

	legend := []chartLegendEntry{
		{name: "deploys", thumbs: []plot.Thumbnailer{bars}},
		{name: "compliant share of changes deployed", thumbs: []plot.Thumbnailer{line, shareLegendDot(dots)}},
	}
	label := "Deploys per week (bars) and compliant share of the changes deployed (line, percent), " + wx.span
	svg, err := renderChartSVG(chartWidth, deploysHeight, label, func(c draw.Canvas) {
		c = drawChartHeader(c, "Deploys per week and compliant share", legend)
		tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: 20}
		cs := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, c)
		top.Draw(cs[0][0])
		bottom.Draw(cs[1][0])
	})
	if err != nil {
		return "", fmt.Errorf("deploys chart: %w", err)
	}
	return svg, nil
}

// exceptionsChart draws exceptions per week by kind: kinds[k] names a kind ("refused deploys",
// "emergency deploys", "non-compliant merges", "direct pushes"), counts[k][i] is its count in weeks[i].
//
// Kinds are stacked bars, kinds[0] at the bottom, each in its own outlined gray. Stacks read
// better than lines here: exception counts are mostly zero, and four lines lying on the zero
// line (or 1040 glyphs over five years) would hide each other, while a stack shows the weekly
// total and its make-up at once. At most len(chartBarShades) kinds can be told apart in gray.
func exceptionsChart(weeks []time.Time, kinds []string, counts [][]int) (string, error) {
	if err := checkExceptionsInput(weeks, kinds, counts); err != nil {
		return "", fmt.Errorf("exceptions chart: %w", err)
	}
	wx := newWeekAxis(weeks)

	totals := make([]int, len(weeks))
	bars := weekBars{}
	var legend []chartLegendEntry
	for k, name := range kinds {
		for i, n := range counts[k] {
			totals[i] += n
		}
		style := chartBarStyle{fill: chartBarShades[k]}
		bars.layers = append(bars.layers, countsAsFloats(counts[k]))
		bars.styles = append(bars.styles, style)
		legend = append(legend, chartLegendEntry{name: name, thumbs: []plot.Thumbnailer{style}})
	}

	p := newWeekPanel(wx, "exceptions per week", true)
	setCountAxis(&p.Y, maxCount(totals))
	p.Add(chartGrid(), bars)

	label := "Exceptions per week, stacked by kind (" + strings.Join(kinds, ", ") + "), " + wx.span
	svg, err := renderChartSVG(chartWidth, exceptionsHeight, label, func(c draw.Canvas) {
		p.Draw(drawChartHeader(c, "Exceptions per week", legend))
	})
	if err != nil {
		return "", fmt.Errorf("exceptions chart: %w", err)
	}
	return svg, nil
}

// checkDeploysInput rejects inputs that would otherwise panic inside gonum or draw a chart
// that silently lies (a share of 0.93 meant as 93 %, a negative count).
func checkDeploysInput(weeks []time.Time, deploys []int, share []float64) error {
	if err := checkChartWeeks(weeks); err != nil {
		return err
	}
	if len(deploys) != len(weeks) || len(share) != len(weeks) {
		return fmt.Errorf("%d weeks but %d deploy counts and %d shares", len(weeks), len(deploys), len(share))
	}
	if err := checkChartCounts(deploys); err != nil {
		return fmt.Errorf("deploys: %w", err)
	}
	for i, s := range share {
		if !math.IsNaN(s) && (s < 0 || s > 100) {
			return fmt.Errorf("share[%d] = %v is outside 0–100 (a percentage, or NaN for no change deployed)", i, s)
		}
	}
	return nil
}

// checkExceptionsInput is checkDeploysInput for exceptionsChart.
func checkExceptionsInput(weeks []time.Time, kinds []string, counts [][]int) error {
	if err := checkChartWeeks(weeks); err != nil {
		return err
	}
	if len(kinds) == 0 {
		return errors.New("no kinds")
	}
	if len(kinds) > len(chartBarShades) {
		return fmt.Errorf("%d kinds, but only %d can be told apart in gray", len(kinds), len(chartBarShades))
	}
	if len(counts) != len(kinds) {
		return fmt.Errorf("%d kinds but %d count series", len(kinds), len(counts))
	}
	for k, c := range counts {
		if len(c) != len(weeks) {
			return fmt.Errorf("%d weeks but %d counts for %q", len(weeks), len(c), kinds[k])
		}
		if err := checkChartCounts(c); err != nil {
			return fmt.Errorf("%s: %w", kinds[k], err)
		}
	}
	return nil
}

// checkChartWeeks insists on consecutive weeks because the x axis is the week index: a gap would
// put later weeks under the wrong date labels.
func checkChartWeeks(weeks []time.Time) error {
	if len(weeks) == 0 {
		return errors.New("no weeks")
	}
	for i := 1; i < len(weeks); i++ {
		if !weeks[i].Equal(weeks[i-1].AddDate(0, 0, 7)) {
			return fmt.Errorf("weeks[%d] = %s is not 7 days after weeks[%d] = %s",
				i, weeks[i].Format(time.DateOnly), i-1, weeks[i-1].Format(time.DateOnly))
		}
	}
	return nil
}

// checkChartCounts rejects negative counts, which a bar starting at 0 cannot show.
func checkChartCounts(counts []int) error {
	for i, n := range counts {
		if n < 0 {
			return fmt.Errorf("count[%d] = %d is negative", i, n)
		}
	}
	return nil
}

// weekAxis is the x axis shared by all panels of a chart. Week i is plotted at x = i, so
// bars are centred on their week and both panels of deploysChart line up exactly.
type weekAxis struct {
	n     int
	major []plot.Tick // labelled
	minor []plot.Tick // unlabelled, marking the weeks (or months) between labels
	label string      // axis title; carries the year when the tick labels do not
	span  string      // "13 weeks starting Mar 4, 2024 through May 27, 2024", for screen readers
}

// newWeekAxis picks the densest tick labelling whose labels cannot overlap: every week, every
// 2nd or 4th week ("Mar 4"), else the first week of every 1, 2, 3, 6, 12… months ("Mar 2024").
// Widths are measured with the real font against a conservative estimate of the data width,
// so the check holds whatever the y axis labels turn out to need.
func newWeekAxis(weeks []time.Time) weekAxis {
	n := len(weeks)
	sty := chartTickStyle()
	perWeek := vg.Length(chartDataWidth) / vg.Length(n)
	gap := sty.Width("M")
	fits := func(idx []int, layout string) bool {
		for j := 1; j < len(idx); j++ {
			a := sty.Width(weeks[idx[j-1]].Format(layout))
			b := sty.Width(weeks[idx[j]].Format(layout))
			if vg.Length(idx[j]-idx[j-1])*perWeek < (a+b)/2+gap {
				return false
			}
		}
		return true
	}

	first, last := weeks[0], weeks[n-1]
	ax := weekAxis{n: n, span: fmt.Sprintf("%d weeks starting %s through %s",
		n, first.Format("Jan 2, 2006"), last.Format("Jan 2, 2006"))}
	if n == 1 {
		ax.span = "the week starting " + first.Format("Jan 2, 2006")
	}

	for _, step := range []int{1, 2, 4} {
		var idx, rest []int
		for i := range n {
			if i%step == 0 {
				idx = append(idx, i)
			} else {
				rest = append(rest, i)
			}
		}
		if fits(idx, "Jan 2") {
			ax.major, ax.minor = weekTicks(weeks, idx, "Jan 2"), weekTicks(nil, rest, "")
			ax.label = "week starting (" + strconv.Itoa(first.Year()) + ")"
			if first.Year() != last.Year() {
				ax.label = fmt.Sprintf("week starting (%d–%d)", first.Year(), last.Year())
			}
			return ax
		}
	}

	// Label the first week starting in a month (its Monday falls on day 1–7) every k months.
	ax.label = "week starting"
	for _, k := range []int{1, 2, 3, 6, 12, 24, 60, 120} {
		var idx, rest []int
		for i, w := range weeks {
			if w.Day() > 7 {
				continue
			}
			if (w.Year()*12+int(w.Month())-1)%k == 0 {
				idx = append(idx, i)
			} else {
				rest = append(rest, i)
			}
		}
		if fits(idx, "Jan 2006") || k == 120 {
			ax.major, ax.minor = weekTicks(weeks, idx, "Jan 2006"), weekTicks(nil, rest, "")
			break
		}
	}
	return ax
}

// weekTicks turns week indexes into plot ticks, labelled with layout when weeks is non-nil.
func weekTicks(weeks []time.Time, idx []int, layout string) []plot.Tick {
	ts := make([]plot.Tick, len(idx))
	for j, i := range idx {
		ts[j].Value = float64(i)
		if weeks != nil {
			ts[j].Label = weeks[i].Format(layout)
		}
	}
	return ts
}

// marker returns the axis ticks; an upper panel gets them unlabelled, since repeating the
// dates right above the lower panel's only adds clutter.
func (w weekAxis) marker(labelled bool) plot.Ticker {
	ts := append([]plot.Tick(nil), w.minor...)
	for _, t := range w.major {
		if !labelled {
			t.Label = ""
		}
		ts = append(ts, t)
	}
	return plot.ConstantTicks(ts)
}

// newWeekPanel returns a plot over the weeks of wx, styled for the report: sans-serif text sized
// for reading on screen and on paper, no background of its own (renderChartSVG paints the canvas
// once) and no padding between axes and data so bars stand on the x axis.
func newWeekPanel(wx weekAxis, yLabel string, xLabels bool) *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil
	p.X.Min, p.X.Max = -0.5, float64(wx.n)-0.5
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Tick.Marker = wx.marker(xLabels)
	if xLabels {
		p.X.Label.Text = wx.label
		p.X.Label.Padding = 4
	}
	p.Y.Label.Text = yLabel
	p.Y.Label.Padding = 4
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(chartFont, 12)
		a.Tick.Label.Font = chartTickStyle().Font
		a.Tick.Length = 5
	}
	return p
}

// setCountAxis makes a an integer count axis from 0 with at most six steps of 1, 2 or 5×10ⁿ,
// leaving at least 10 % headroom above peak so the tallest bar never touches the frame, and
// showing 0–4 rather than a meaningless 0–1 scale when every count is 0.
func setCountAxis(a *plot.Axis, peak int) {
	need := max(int(math.Ceil(float64(peak)*1.1)), peak+1, 4)
	step := niceStep(need)
	top := (need + step - 1) / step * step
	a.Min, a.Max = 0, float64(top)
	var ts plot.ConstantTicks
	for v := 0; v <= top; v += step {
		ts = append(ts, plot.Tick{Value: float64(v), Label: strconv.Itoa(v)})
	}
	a.Tick.Marker = ts
}

// niceStep returns the smallest step of 1, 2 or 5×10ⁿ that reaches need in at most six steps.
func niceStep(need int) int {
	for mag := 1; ; mag *= 10 {
		for _, f := range []int{1, 2, 5} {
			if need <= 6*f*mag {
				return f * mag
			}
		}
	}
}

// setShareAxis fixes the share axis to 0–100 % whatever the data, so a bad quarter looks bad
// instead of being zoomed into a dramatic-looking 96–100 range.
func setShareAxis(a *plot.Axis) {
	a.Min, a.Max = 0, 100
	var ts plot.ConstantTicks
	for v := 0; v <= 100; v += 25 {
		ts = append(ts, plot.Tick{Value: float64(v), Label: strconv.Itoa(v)})
	}
	a.Tick.Marker = ts
}

// chartGrid returns faint lines at the y ticks only: the x ticks already mark weeks and
// vertical lines would cut through the bars.
func chartGrid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color = nil
	g.Horizontal = draw.LineStyle{Color: chartGridGray, Width: vg.Points(0.5)}
	return g
}

// shareStyles returns the share line and marker styles. Markers shrink on long periods so
// 260 of them do not merge into a thick smear, but stay visible for an isolated week.
func shareStyles(wx weekAxis) (*plotter.Line, *plotter.Scatter) {
	line := &plotter.Line{LineStyle: draw.LineStyle{Color: chartBlack, Width: vg.Points(1.5)}}
	perWeek := vg.Length(chartDataWidth) / vg.Length(wx.n)
	r := min(max(perWeek*0.3, 1.5), 3.5)
	dots := &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: chartBlack, Radius: r, Shape: draw.CircleGlyph{}}}
	return line, dots
}

// shareLegendDot is the legend's marker: full size, whatever the chart's markers shrank to.
func shareLegendDot(s *plotter.Scatter) *plotter.Scatter {
	d := *s
	d.Radius = 3.5
	return &d
}

// shareSeries splits share at NaN weeks into separate lines (plotter.Line rejects NaN, and a
// week without deploys must show as a gap, not as a line bridging it) and puts a marker on
// every known week, so a week between two gaps still shows up.
func shareSeries(share []float64, line *plotter.Line, dots *plotter.Scatter) []plot.Plotter {
	var out []plot.Plotter
	var run, all plotter.XYs
	flush := func() {
		if len(run) > 1 {
			l := *line
			l.XYs = run
			out = append(out, &l)
		}
		run = nil
	}
	for i, s := range share {
		if math.IsNaN(s) {
			flush()
			continue
		}
		pt := plotter.XY{X: float64(i), Y: s}
		run = append(run, pt)
		all = append(all, pt)
	}
	flush()
	d := *dots
	d.XYs = all
	return append(out, &d)
}

// weekBars draws one (stacked) bar per week; layers[k][i] is layer k's height in week i.
// plotter.BarChart takes its bar width in points, which is unknown until layout; this one
// sizes bars from the data canvas. Each layer is one SVG path holding all of its rectangles,
// which keeps five years of four kinds at tens of kilobytes instead of thousands of elements.
type weekBars struct {
	layers [][]float64
	styles []chartBarStyle
}

// Plot implements plot.Plotter.
func (b weekBars) Plot(c draw.Canvas, p *plot.Plot) {
	if len(b.layers) == 0 {
		return
	}
	trX, trY := p.Transforms(&c)
	spacing := trX(1) - trX(0)
	half := min(0.4*spacing, 20) // a lone week gets a bar, not a slab
	outline := min(0.6, half/4)
	if spacing < 6 {
		// Over years, outlined bars a couple of points wide smear into gray noise; touching
		// unoutlined columns read as bands whose shades stay apart. The slight overlap hides
		// anti-aliasing seams between neighbours.
		half, outline = spacing/2+0.1, 0
	}
	base := make([]float64, len(b.layers[0]))
	for k, layer := range b.layers {
		var path vg.Path
		for i, v := range layer {
			if v <= 0 {
				continue
			}
			x, y0, y1 := trX(float64(i)), trY(base[i]), trY(base[i]+v)
			path.Move(vg.Point{X: x - half, Y: y0})
			path.Line(vg.Point{X: x + half, Y: y0})
			path.Line(vg.Point{X: x + half, Y: y1})
			path.Line(vg.Point{X: x - half, Y: y1})
			path.Close()
			base[i] += v
		}
		if len(path) > 0 {
			b.styles[k].draw(&c, path, outline)
		}
	}
}

// chartBarStyle is a gray fill with a black outline; the outline is what separates adjacent
// layers in a stack, and the light gray from the paper, when printed.
type chartBarStyle struct{ fill color.Color }

// draw fills path and, unless outline is 0, outlines it.
func (s chartBarStyle) draw(c *draw.Canvas, path vg.Path, outline vg.Length) {
	c.SetColor(s.fill)
	c.Fill(path)
	if outline > 0 {
		c.SetLineStyle(draw.LineStyle{Color: chartBlack, Width: outline})
		c.Stroke(path)
	}
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (s chartBarStyle) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	r.Min.X += 3
	r.Max.X -= 3
	s.draw(c, r.Path(), 0.6)
}

// chartLegendEntry is one legend item: a name and the thumbnails drawn on top of each other.
type chartLegendEntry struct {
	name   string
	thumbs []plot.Thumbnailer
}

// drawChartHeader draws the chart title and a horizontal legend across the top of c and returns
// the canvas below them. gonum's plot.Legend draws inside the data area, where it can cover
// bars; above the axes it never can. Entries wrap onto further rows if they do not fit.
func drawChartHeader(c draw.Canvas, title string, entries []chartLegendEntry) draw.Canvas {
	ts := chartTextStyle(14, true)
	ts.XAlign, ts.YAlign = draw.XCenter, draw.YTop
	c.FillText(ts, vg.Point{X: c.Center().X, Y: c.Max.Y}, title)
	y := c.Max.Y - ts.Height(title) - 8

	const thumbW, thumbH, textGap, entryGap = 24, 11, 5, 22
	ls := chartTextStyle(12, false)
	ls.YAlign = draw.YCenter
	rowH := ls.Height("Mg") + 4
	width := func(e chartLegendEntry) vg.Length { return thumbW + textGap + ls.Width(e.name) }

	var rows [][]chartLegendEntry
	var rowW vg.Length
	for _, e := range entries {
		if n := len(rows); n > 0 && rowW+entryGap+width(e) <= c.Size().X {
			rows[n-1] = append(rows[n-1], e)
			rowW += entryGap + width(e)
			continue
		}
		rows = append(rows, []chartLegendEntry{e})
		rowW = width(e)
	}

	for _, row := range rows {
		var w vg.Length
		for j, e := range row {
			if j > 0 {
				w += entryGap
			}
			w += width(e)
		}
		x, cy := c.Center().X-w/2, y-rowH/2
		for _, e := range row {
			icon := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
				Min: vg.Point{X: x, Y: cy - thumbH/2},
				Max: vg.Point{X: x + thumbW, Y: cy + thumbH/2},
			}}
			for _, t := range e.thumbs {
				t.Thumbnail(&icon)
			}
			c.FillText(ls, vg.Point{X: x + thumbW + textGap, Y: cy}, e.name)
			x += width(e) + entryGap
		}
		y -= rowH
	}
	c.Max.Y = y - 10
	return c
}

// chartTextStyle returns black chart text in chartFont, for the title and legend that gonum
// does not style for us.
func chartTextStyle(size vg.Length, bold bool) text.Style {
	f := chartFont
	if bold {
		f.Weight = xfont.WeightBold
	}
	return text.Style{Color: chartBlack, Font: font.From(f, size), Handler: plot.DefaultTextHandler}
}

// chartTickStyle is the tick label style, shared by newWeekPanel and newWeekAxis so that
// labels are measured in the font they are drawn in.
func chartTickStyle() text.Style {
	s := chartTextStyle(11, false)
	s.XAlign, s.YAlign = draw.XCenter, draw.YTop
	return s
}

// renderChartSVG paints a white w×h canvas, lets drawFn draw inside its margins and returns the
// result as an embeddable <svg> element labelled for screen readers. gonum reports some
// misuse by panicking; a chart is not worth taking the whole report down, so a panic comes
// back as an error.
func renderChartSVG(w, h vg.Length, label string, drawFn func(draw.Canvas)) (svg string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("render: %v", r)
		}
	}()
	vc := vgsvg.New(w, h) // fonts are not embedded: see chartFont
	c := draw.New(vc)
	c.SetColor(chartWhite)
	c.Fill(c.Rectangle.Path())
	drawFn(draw.Crop(c, chartMargin, -chartMargin, chartMargin, -chartMargin))

	var buf bytes.Buffer
	if _, err := vc.WriteTo(&buf); err != nil {
		return "", fmt.Errorf("write svg: %w", err)
	}
	return embeddableSVG(buf.String(), w, h, label)
}

// svgFontFamilyDecl matches the per-<text> font-family that vgsvg writes ("Liberation Sans");
// it is replaced by one generic list on the root element.
var svgFontFamilyDecl = regexp.MustCompile(`font-family:[^;"]*;?`)

// embeddableSVG turns a standalone vgsvg document into an element for inline HTML: the XML
// prolog, comment and fixed pt width/height go; a viewBox with width 100 % lets it shrink
// with the page; role, aria-label and <title> name it for screen readers. vgsvg emits no id
// attributes (no clip paths or defs), so several charts on one page cannot collide; the
// xlink namespace is dropped because nothing here uses xlink.
func embeddableSVG(doc string, w, h vg.Length, label string) (string, error) {
	start := strings.Index(doc, "<svg")
	if start < 0 {
		return "", errors.New("vgsvg output has no <svg> element")
	}
	end := strings.IndexByte(doc[start:], '>')
	if end < 0 {
		return "", errors.New("vgsvg output has an unterminated <svg> tag")
	}
	body := svgFontFamilyDecl.ReplaceAllString(doc[start+end+1:], "")

	esc := html.EscapeString(label)
	var b strings.Builder
	b.Grow(len(body) + 512)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="100%%"`+
		` style="max-width:%dpx;height:auto" font-family="%s" role="img" aria-label="%s">`,
		w.Points(), h.Points(), chartMaxWidth, svgFontFamily, esc)
	fmt.Fprintf(&b, "\n<title>%s</title>", esc)
	b.WriteString(body)
	return b.String(), nil
}

// countsAsFloats converts counts for the bar plotter.
func countsAsFloats(ns []int) []float64 {
	fs := make([]float64, len(ns))
	for i, n := range ns {
		fs[i] = float64(n)
	}
	return fs
}

// maxCount returns the largest of ns, 0 for none.
func maxCount(ns []int) int {
	m := 0
	for _, n := range ns {
		m = max(m, n)
	}
	return m
}
