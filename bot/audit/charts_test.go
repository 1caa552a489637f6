package audit

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var chartKinds = []string{"refused deploys", "emergency deploys", "non-compliant merges", "direct pushes"}

// chartWeeks returns n consecutive Mondays 00:00 UTC starting at from.
func chartWeeks(from string, n int) []time.Time {
	t, err := time.Parse(time.DateOnly, from)
	if err != nil {
		panic(err)
	}
	ws := make([]time.Time, n)
	for i := range ws {
		ws[i] = t.AddDate(0, 0, 7*i)
	}
	return ws
}

// chartData is a deterministic, busy-looking period: every kind nonzero most weeks, a few
// weeks without deploys (NaN share), so the size and layout checks see a worst case.
func chartData(n int) (deploys []int, share []float64, counts [][]int) {
	deploys = make([]int, n)
	share = make([]float64, n)
	counts = make([][]int, len(chartKinds))
	for k := range counts {
		counts[k] = make([]int, n)
	}
	for i := range n {
		deploys[i] = (i*7 + 3) % 23
		share[i] = math.NaN()
		if deploys[i] > 0 {
			share[i] = float64(60 + (i*13)%41)
		}
		for k := range counts {
			counts[k][i] = (i*(k+3) + k) % (k + 4)
		}
	}
	return deploys, share, counts
}

// svgDoc is what checkChartSVG learnt from decoding a chart.
type svgDoc struct {
	texts string   // every <text> content, newline separated
	ids   []string // every id attribute
}

// checkChartSVG decodes svg completely and checks it is an inline-embeddable, accessible,
// self-contained <svg> element.
func checkChartSVG(t *testing.T, svg string) svgDoc {
	t.Helper()
	if !strings.HasPrefix(svg, "<svg") {
		t.Fatalf("does not start with <svg: %.80q", svg)
	}
	for _, bad := range []string{"<?xml", "<!DOCTYPE", "<!--", "@font-face", "url(", "<script", "<image", "xlink:"} {
		if strings.Contains(svg, bad) {
			t.Errorf("contains %q", bad)
		}
	}

	var doc svgDoc
	var texts []string
	d := xml.NewDecoder(strings.NewReader(svg))
	depth, inText, sawTitle := 0, false, false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			for _, a := range tok.Attr {
				if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
					continue
				}
				if a.Name.Local == "id" {
					doc.ids = append(doc.ids, a.Value)
				}
				if v := strings.ToLower(a.Value); strings.Contains(v, "http:") || strings.Contains(v, "https:") || strings.Contains(v, "//") {
					t.Errorf("<%s %s=%q> references something external", tok.Name.Local, a.Name.Local, a.Value)
				}
			}
			if depth == 1 {
				checkChartRoot(t, tok)
			}
			if depth == 2 && !sawTitle {
				if tok.Name.Local != "title" {
					t.Errorf("first child is <%s>, want <title>", tok.Name.Local)
				}
				sawTitle = true
			}
			inText = tok.Name.Local == "text"
		case xml.EndElement:
			depth--
			inText = false
		case xml.CharData:
			if inText {
				texts = append(texts, string(tok))
			}
		}
	}
	if depth != 0 {
		t.Errorf("unbalanced elements, depth %d at end", depth)
	}
	doc.texts = strings.Join(texts, "\n")
	return doc
}

// checkChartRoot checks the attributes that make the chart scale and be announced.
func checkChartRoot(t *testing.T, root xml.StartElement) {
	t.Helper()
	if root.Name.Local != "svg" || root.Name.Space != "http://www.w3.org/2000/svg" {
		t.Errorf("root is %v, want svg in the SVG namespace", root.Name)
	}
	attrs := map[string]string{}
	for _, a := range root.Attr {
		attrs[a.Name.Local] = a.Value
	}
	if !strings.HasPrefix(attrs["viewBox"], "0 0 ") {
		t.Errorf("viewBox = %q", attrs["viewBox"])
	}
	if attrs["width"] != "100%" {
		t.Errorf("width = %q, want 100%%", attrs["width"])
	}
	if _, ok := attrs["height"]; ok {
		t.Errorf("has a fixed height %q", attrs["height"])
	}
	if !strings.Contains(attrs["style"], "max-width:") {
		t.Errorf("style = %q, want a max-width", attrs["style"])
	}
	if attrs["role"] != "img" || attrs["aria-label"] == "" {
		t.Errorf("role = %q, aria-label = %q", attrs["role"], attrs["aria-label"])
	}
	if !strings.Contains(attrs["font-family"], "sans-serif") {
		t.Errorf("font-family = %q, want a generic fallback", attrs["font-family"])
	}
}

// wantTexts checks every s appears in some <text> of doc.
func wantTexts(t *testing.T, doc svgDoc, ss ...string) {
	t.Helper()
	for _, s := range ss {
		if !strings.Contains(doc.texts, s) {
			t.Errorf("no <text> contains %q; texts:\n%s", s, doc.texts)
		}
	}
}

func TestChartsEmbeddable(t *testing.T) {
	allZero := make([]int, 13)
	allNaN := make([]float64, 13)
	for i := range allNaN {
		allNaN[i] = math.NaN()
	}
	zeroCounts := [][]int{allZero, allZero, allZero, allZero}
	d13, s13, c13 := chartData(13)
	d1, s1, c1 := chartData(1)
	d260, s260, c260 := chartData(260)

	cases := []struct {
		name    string
		weeks   []time.Time
		deploys []int
		share   []float64
		counts  [][]int
	}{
		{"13 weeks", chartWeeks("2024-03-04", 13), d13, s13, c13},
		{"1 week", chartWeeks("2024-03-04", 1), d1, s1, c1},
		{"1 week no deploys", chartWeeks("2024-03-04", 1), []int{0}, []float64{math.NaN()}, [][]int{{0}, {0}, {0}, {0}}},
		{"all zero", chartWeeks("2024-12-02", 13), allZero, allNaN, zeroCounts},
		{"across new year", chartWeeks("2024-12-02", 13), d13, s13, c13},
		{"260 weeks", chartWeeks("2020-01-06", 260), d260, s260, c260},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := deploysChart(tc.weeks, tc.deploys, tc.share)
			if err != nil {
				t.Fatal(err)
			}
			doc := checkChartSVG(t, d)
			wantTexts(t, doc, "Deploys per week", "deploys per week", "compliant share (%)", "week starting",
				"deploys", "compliant share of changes deployed", "100", "0")

			e, err := exceptionsChart(tc.weeks, chartKinds, tc.counts)
			if err != nil {
				t.Fatal(err)
			}
			doc = checkChartSVG(t, e)
			wantTexts(t, doc, append([]string{"Exceptions per week", "exceptions per week", "week starting"}, chartKinds...)...)

			t.Logf("deploys %d bytes, exceptions %d bytes", len(d), len(e))
			if len(d) > 300<<10 || len(e) > 300<<10 {
				t.Errorf("too big: deploys %d bytes, exceptions %d bytes", len(d), len(e))
			}
		})
	}
}

func TestChartsDateLabels(t *testing.T) {
	d, s, c := chartData(13)
	weeks := chartWeeks("2024-03-04", 13)
	svg, err := deploysChart(weeks, d, s)
	if err != nil {
		t.Fatal(err)
	}
	// 13 weeks: every week labelled, the year on the axis title.
	wantTexts(t, checkChartSVG(t, svg), "Mar 4", "Mar 11", "May 27", "week starting (2024)")

	svg, err = exceptionsChart(chartWeeks("2024-12-02", 13), chartKinds, c)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, checkChartSVG(t, svg), "Dec 2", "Jan 6", "week starting (2024–2025)")

	// Five years: labels at month starts, with the year, few enough not to touch.
	ax := newWeekAxis(chartWeeks("2020-01-06", 260))
	if len(ax.major) < 4 || len(ax.major) > 14 {
		t.Errorf("260 weeks: %d labels", len(ax.major))
	}
	for _, tk := range ax.major {
		if _, err := time.Parse("Jan 2006", tk.Label); err != nil {
			t.Errorf("260 weeks: label %q is not a month and year", tk.Label)
		}
	}
}

// TestChartWeekAxisNoOverlap checks, for every period length, that neighbouring x labels
// are at least a gap apart in the narrowest data area the layout can give them.
func TestChartWeekAxisNoOverlap(t *testing.T) {
	sty := chartTickStyle()
	for n := 1; n <= 270; n++ {
		for _, from := range []string{"2024-01-01", "2024-12-30"} {
			ax := newWeekAxis(chartWeeks(from, n))
			if len(ax.major) == 0 {
				t.Fatalf("%d weeks from %s: no labelled tick", n, from)
			}
			perWeek := (chartWidth - 2*chartMargin - 110) / float64(n)
			for j := 1; j < len(ax.major); j++ {
				a, b := ax.major[j-1], ax.major[j]
				room := (b.Value - a.Value) * perWeek
				need := float64((sty.Width(a.Label)+sty.Width(b.Label))/2 + sty.Width("M"))
				if room < need {
					t.Errorf("%d weeks from %s: %q and %q are %.1f apart, need %.1f", n, from, a.Label, b.Label, room, need)
				}
			}
		}
	}
}

func TestChartCountAxis(t *testing.T) {
	for _, peak := range []int{0, 1, 3, 4, 7, 9, 10, 47, 99, 100, 1234, 1_000_000} {
		p := newWeekPanel(newWeekAxis(chartWeeks("2024-03-04", 4)), "y", true)
		setCountAxis(&p.Y, peak)
		ts := p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max)
		if p.Y.Min != 0 || p.Y.Max <= float64(peak) || p.Y.Max < 4 {
			t.Errorf("peak %d: axis %v–%v", peak, p.Y.Min, p.Y.Max)
		}
		if step := ts[1].Value - ts[0].Value; p.Y.Max >= max(float64(peak)*1.1, 4)+step {
			t.Errorf("peak %d: axis to %v leaves too much headroom", peak, p.Y.Max)
		}
		if len(ts) < 3 || len(ts) > 7 {
			t.Errorf("peak %d: %d ticks", peak, len(ts))
		}
		for _, tk := range ts {
			if tk.Value != math.Trunc(tk.Value) {
				t.Errorf("peak %d: tick %v is not an integer", peak, tk.Value)
			}
		}
		if ts[len(ts)-1].Value != p.Y.Max {
			t.Errorf("peak %d: top tick %v, axis max %v", peak, ts[len(ts)-1].Value, p.Y.Max)
		}
	}
}

func TestChartsDeterministic(t *testing.T) {
	weeks := chartWeeks("2023-01-02", 60)
	d, s, c := chartData(60)
	d1, err1 := deploysChart(weeks, d, s)
	d2, err2 := deploysChart(weeks, d, s)
	e1, err3 := exceptionsChart(weeks, chartKinds, c)
	e2, err4 := exceptionsChart(weeks, chartKinds, c)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	if d1 != d2 || e1 != e2 {
		t.Error("same input, different output")
	}
}

func TestChartsIDsUnique(t *testing.T) {
	weeks := chartWeeks("2024-03-04", 13)
	d, s, c := chartData(13)
	dsvg, err := deploysChart(weeks, d, s)
	if err != nil {
		t.Fatal(err)
	}
	esvg, err := exceptionsChart(weeks, chartKinds, c)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, svg := range []string{dsvg, esvg} {
		for _, id := range checkChartSVG(t, svg).ids {
			if seen[id] {
				t.Errorf("id %q used twice on the page", id)
			}
			seen[id] = true
		}
	}
}

func TestChartsBadInput(t *testing.T) {
	weeks := chartWeeks("2024-03-04", 3)
	gap := []time.Time{weeks[0], weeks[2]}
	nan := math.NaN()
	deployCases := []struct {
		name    string
		weeks   []time.Time
		deploys []int
		share   []float64
	}{
		{"no weeks", nil, nil, nil},
		{"short deploys", weeks, []int{1, 2}, []float64{1, 2, 3}},
		{"long share", weeks, []int{1, 2, 3}, []float64{1, 2, 3, 4}},
		{"gap in weeks", gap, []int{1, 2}, []float64{1, 2}},
		{"negative deploys", weeks, []int{1, -2, 3}, []float64{1, 2, 3}},
		{"share over 100", weeks, []int{1, 2, 3}, []float64{1, 200, nan}},
		{"share infinite", weeks, []int{1, 2, 3}, []float64{math.Inf(1), 2, 3}},
	}
	for _, tc := range deployCases {
		if _, err := deploysChart(tc.weeks, tc.deploys, tc.share); err == nil {
			t.Errorf("deploysChart, %s: no error", tc.name)
		}
	}

	ok := []int{1, 2, 3}
	exceptionCases := []struct {
		name   string
		weeks  []time.Time
		kinds  []string
		counts [][]int
	}{
		{"no weeks", nil, chartKinds[:1], [][]int{{}}},
		{"no kinds", weeks, nil, nil},
		{"more counts than kinds", weeks, chartKinds[:1], [][]int{ok, ok}},
		{"fewer counts than kinds", weeks, chartKinds, [][]int{ok}},
		{"short counts", weeks, chartKinds[:2], [][]int{ok, {1}}},
		{"negative count", weeks, chartKinds[:1], [][]int{{0, -1, 0}}},
		{"too many kinds", weeks, []string{"a", "b", "c", "d", "e"}, [][]int{ok, ok, ok, ok, ok}},
	}
	for _, tc := range exceptionCases {
		if _, err := exceptionsChart(tc.weeks, tc.kinds, tc.counts); err == nil {
			t.Errorf("exceptionsChart, %s: no error", tc.name)
		}
	}
}

// TestChartFiles writes a realistic quarter's charts, and a page holding both, to
// $SOCKEMBOT_CHART_OUT for a person to look at, e.g.
//
//	SOCKEMBOT_CHART_OUT=/tmp go test ./bot/audit/ -run ChartFiles
//	chromium --headless --screenshot=/tmp/c.png --window-size=1000,700 file:///tmp/chart-deploys.svg
func TestChartFiles(t *testing.T) {
	dir := os.Getenv("SOCKEMBOT_CHART_OUT")
	if dir == "" {
		t.Skip("SOCKEMBOT_CHART_OUT not set")
	}
	weeks := chartWeeks("2024-03-04", 13)
	deploys := []int{14, 18, 11, 0, 9, 22, 17, 15, 3, 19, 21, 16, 12}
	share := []float64{92.9, 88.9, 100, math.NaN(), 77.8, 95.5, 94.1, 86.7, 66.7, 100, 90.5, 93.8, 100}
	counts := [][]int{
		{1, 0, 2, 0, 0, 1, 0, 0, 3, 0, 0, 1, 0}, // refused deploys
		{0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0}, // emergency deploys
		{2, 1, 0, 0, 3, 1, 0, 2, 1, 0, 1, 0, 0}, // non-compliant merges
		{0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1}, // direct pushes
	}
	d, err := deploysChart(weeks, deploys, share)
	if err != nil {
		t.Fatal(err)
	}
	e, err := exceptionsChart(weeks, chartKinds, counts)
	if err != nil {
		t.Fatal(err)
	}
	d260, s260, c260 := chartData(260)
	long := chartWeeks("2020-01-06", 260)
	dl, err := deploysChart(long, d260, s260)
	if err != nil {
		t.Fatal(err)
	}
	el, err := exceptionsChart(long, chartKinds, c260)
	if err != nil {
		t.Fatal(err)
	}
	page := "<!DOCTYPE html><meta charset=utf-8><title>charts</title><body style=\"max-width:900px\">" +
		d + e + dl + el + "</body>"
	files := map[string]string{
		"chart-deploys.svg":        d,
		"chart-exceptions.svg":     e,
		"chart-deploys-260.svg":    dl,
		"chart-exceptions-260.svg": el,
		"chart-page.html":          page,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("13 weeks: deploys %d bytes, exceptions %d bytes; 260 weeks: %d, %d", len(d), len(e), len(dl), len(el))
}
