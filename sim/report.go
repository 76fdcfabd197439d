package sim

import (
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// palette colours the runs, in order.
var palette = []string{"#1b7837", "#c51b7d", "#2166ac", "#e08214", "#542788", "#8c510a"}

func runColor(i int) string { return palette[i%len(palette)] }

// WriteHTMLReport writes a self-contained HTML page (inline CSS and SVG,
// no script, no external asset; well-formed XML) comparing runs: the
// table, value per agent offered versus captured, each agent's share of
// output, the attackers' share of output over time, and packet rates.
func WriteHTMLReport(w io.Writer, runs []NamedResult) error {
	if len(runs) == 0 {
		return errors.New("write HTML report: no runs")
	}
	var b strings.Builder
	first := &runs[0].Result
	writeHead(&b, "qos simulation report")
	b.WriteString("<h1>qos simulation report</h1>\n")
	fmt.Fprintf(&b, `<p class="note">Seed %d, %v of traffic (warm-up %v), %v slots of %d CUs, sigverify %s. Value is the sum of fees (lamports) of the transactions the mock scheduler included; the oracle is, per slot, the best choice of as many valid transactions as sigverify took.</p>
`, first.Seed, secs(first.DurationS), secs(first.WarmupS), secs(first.SlotS), first.SlotCUBudget, esc(sigverifyCap(first.SigverifyPPS)))

	writeRunTable(&b, runs)
	writeAgentTable(&b, runs)

	// Value per agent: offered (from the first run; the traffic is the
	// same in every run with the same seed) versus captured per run.
	groups := make([]string, len(first.Agents))
	offered := make([]float64, len(first.Agents))
	for i, a := range first.Agents {
		groups[i] = a.Name
		offered[i] = float64(a.ValueIn) / 1e9
	}
	bars := []barSeries{{name: "offered", color: "#999999", vals: offered}}
	for ri := range runs {
		vals := make([]float64, len(groups))
		for i := range vals {
			if i < len(runs[ri].Result.Agents) {
				vals[i] = float64(runs[ri].Result.Agents[i].ValueOut) / 1e9
			}
		}
		bars = append(bars, barSeries{name: runs[ri].Name + " captured", color: runColor(ri), vals: vals})
	}
	barChart(&b, "Value per agent, SOL: offered (unique valid transactions) vs captured (included)", groups, bars, func(v float64) string { return fmt.Sprintf("%.3g", v) })

	// Each agent's share of output, per run.
	shareBars := make([]barSeries, 0, len(runs)+1)
	inShare := make([]float64, len(groups))
	for i, a := range first.Agents {
		inShare[i] = 100 * share(a.InPackets, first.InPackets)
	}
	shareBars = append(shareBars, barSeries{name: "share of input", color: "#999999", vals: inShare})
	for ri := range runs {
		r := &runs[ri].Result
		vals := make([]float64, len(groups))
		for i := range vals {
			if i < len(r.Agents) {
				vals[i] = 100 * share(r.Agents[i].OutPackets, r.OutPackets)
			}
		}
		shareBars = append(shareBars, barSeries{name: runs[ri].Name + " share of output", color: runColor(ri), vals: vals})
	}
	barChart(&b, "Share of packets per agent, %: input vs output to sigverify", groups, shareBars, func(v float64) string { return fmt.Sprintf("%.0f", v) })

	// Attacker share of output over time.
	var lines []lineSeries
	for ri := range runs {
		r := &runs[ri].Result
		ys := make([]float64, len(r.AttackerShareSeries))
		for i, v := range r.AttackerShareSeries {
			ys[i] = 100 * v
		}
		lines = append(lines, lineSeries{name: runs[ri].Name, color: runColor(ri), step: r.BucketS, ys: ys})
	}
	lineChart(&b, "Attackers' share of output to sigverify over time, %", lines, 100, first.WarmupS, func(v float64) string { return fmt.Sprintf("%.0f", v) })

	// Packet rates over time: what reached sigverify (against its
	// capacity), then what the validator received.
	lines = lines[:0]
	yMax := float64(first.SigverifyPPS)
	if first.SigverifyPPS > 0 {
		n := len(first.OutPPSSeries)
		capLine := make([]float64, n)
		for i := range capLine {
			capLine[i] = float64(first.SigverifyPPS)
		}
		lines = append(lines, lineSeries{name: "sigverify capacity", color: "#999999", step: first.BucketS, ys: capLine, dash: true})
	}
	for ri := range runs {
		r := &runs[ri].Result
		lines = append(lines, lineSeries{name: runs[ri].Name, color: runColor(ri), step: r.BucketS, ys: r.OutPPSSeries})
		for _, v := range r.OutPPSSeries {
			yMax = max(yMax, v)
		}
	}
	lineChart(&b, "Packets per second sent to sigverify", lines, niceCeil(yMax*1.05), first.WarmupS, kilo)

	lines = lines[:0]
	yMax = 0
	for ri := range runs {
		r := &runs[ri].Result
		lines = append(lines, lineSeries{name: runs[ri].Name, color: runColor(ri), step: r.BucketS, ys: r.InPPSSeries, dash: ri > 0})
		for _, v := range r.InPPSSeries {
			yMax = max(yMax, v)
		}
	}
	lineChart(&b, "Packets per second received by the validator (input to qos; the same traffic in every run)", lines, niceCeil(yMax*1.05), first.WarmupS, kilo)

	b.WriteString("</body></html>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

// writeHead opens the page: doctype, title and the report's style sheet.
func writeHead(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>%s</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:right}
th:first-child,td:first-child{text-align:left}
svg{display:block;margin:1em 0;background:#fafafa;border:1px solid #ddd}
svg text{font-size:11px;fill:#333}
.note{color:#555;font-size:0.9em}
</style></head><body>
`, esc(title))
}

// TablePage is a report of runs measured elsewhere (the pack-mode demo):
// a note, one table and bar charts, in the simulation report's style.
type TablePage struct {
	Title  string
	Note   string
	Header []string
	Rows   [][]string
	Charts []BarChart
}

// BarChart is one grouped bar chart of a TablePage: a bar per series in
// each group.
type BarChart struct {
	Title  string
	Groups []string
	Series []BarSeries
	// Format labels the values (default %.3g).
	Format func(float64) string
}

// BarSeries is one coloured series of a BarChart (one value per group).
type BarSeries struct {
	Name   string
	Values []float64
}

// WriteTablePage writes p as a self-contained HTML page (inline CSS and
// SVG, no script, no external asset; well-formed XML).
func WriteTablePage(w io.Writer, p *TablePage) error {
	if len(p.Rows) == 0 {
		return errors.New("write HTML report: no rows")
	}
	var b strings.Builder
	writeHead(&b, p.Title)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(p.Title))
	if p.Note != "" {
		fmt.Fprintf(&b, "<p class=\"note\">%s</p>\n", esc(p.Note))
	}
	b.WriteString("<table><tr>")
	for _, h := range p.Header {
		fmt.Fprintf(&b, "<th>%s</th>", esc(h))
	}
	b.WriteString("</tr>\n")
	for _, r := range p.Rows {
		b.WriteString("<tr>")
		for _, c := range r {
			fmt.Fprintf(&b, "<td>%s</td>", esc(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	for _, c := range p.Charts {
		series := make([]barSeries, len(c.Series))
		for i, s := range c.Series {
			series[i] = barSeries{name: s.Name, color: runColor(i), vals: s.Values}
		}
		label := c.Format
		if label == nil {
			label = func(v float64) string { return fmt.Sprintf("%.3g", v) }
		}
		barChart(&b, c.Title, c.Groups, series, label)
	}
	b.WriteString("</body></html>\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}

// kilo labels packet rates: 2500 → "2.5k".
func kilo(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%gk", math.Round(v/100)/10)
	}
	return fmt.Sprintf("%.0f", v)
}

func esc(s string) string { return html.EscapeString(s) }

func writeRunTable(b *strings.Builder, runs []NamedResult) {
	b.WriteString("<h2>Runs</h2>\n<table><tr>")
	for _, h := range tableHeader {
		fmt.Fprintf(b, "<th>%s</th>", esc(h))
	}
	b.WriteString("</tr>\n")
	for _, nr := range runs {
		b.WriteString("<tr>")
		for _, c := range tableRow(&nr) {
			fmt.Fprintf(b, "<td>%s</td>", esc(c))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
}

func writeAgentTable(b *strings.Builder, runs []NamedResult) {
	first := &runs[0].Result
	b.WriteString("<h2>Agents</h2>\n<table><tr><th>agent</th><th>attacker</th><th>in packets</th><th>valid offered</th><th>value offered (SOL)</th>")
	for _, nr := range runs {
		n := esc(nr.Name)
		fmt.Fprintf(b, "<th>%s out</th><th>%s included</th><th>%s value (SOL)</th>", n, n, n)
	}
	b.WriteString("</tr>\n")
	for i, a := range first.Agents {
		att := "no"
		if a.Attacker {
			att = "yes"
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%d</td><td>%d</td><td>%.4f</td>", esc(a.Name), att, a.InPackets, a.Offered, float64(a.ValueIn)/1e9)
		for _, nr := range runs {
			var o AgentResult
			if i < len(nr.Result.Agents) {
				o = nr.Result.Agents[i]
			}
			fmt.Fprintf(b, "<td>%d</td><td>%d</td><td>%.4f</td>", o.OutPackets, o.Included, float64(o.ValueOut)/1e9)
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
}

// Chart geometry.
const (
	chartW = 900
	chartH = 320
	padL   = 70
	padR   = 20
	padT   = 40
	padB   = 60
)

type barSeries struct {
	name  string
	color string
	vals  []float64
}

type lineSeries struct {
	name  string
	color string
	step  float64 // seconds per point
	ys    []float64
	dash  bool
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func svgOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>%s</title>`+"\n", chartW, chartH, chartW, chartH, esc(title))
	fmt.Fprintf(b, `<text x="%d" y="18" style="font-size:13px;font-weight:bold">%s</text>`+"\n", padL, esc(title))
}

// yAxis draws five horizontal grid lines from 0 to yMax with labels.
func yAxis(b *strings.Builder, yMax float64, label func(float64) string) {
	plotH := float64(chartH - padT - padB)
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		y := float64(chartH-padB) - plotH*float64(i)/4
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`, padL, y, chartW-padR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y+4, esc(label(v)))
	}
}

func legend(b *strings.Builder, names, colors []string, y int) {
	x := padL
	for i, n := range names {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`, x, y, colors[i], x+14, y+9, esc(n))
		x += 24 + 7*len([]rune(n))
	}
	b.WriteString("\n")
}

func barChart(b *strings.Builder, title string, groups []string, series []barSeries, label func(float64) string) {
	svgOpen(b, title)
	yMax := 0.0
	for _, s := range series {
		for _, v := range s.vals {
			yMax = max(yMax, v)
		}
	}
	yMax = niceCeil(yMax)
	yAxis(b, yMax, label)
	plotW := float64(chartW - padL - padR)
	plotH := float64(chartH - padT - padB)
	gw := plotW / float64(max(len(groups), 1))
	bw := gw * 0.8 / float64(max(len(series), 1))
	for gi, g := range groups {
		x0 := float64(padL) + gw*float64(gi) + gw*0.1
		for si, s := range series {
			v := 0.0
			if gi < len(s.vals) {
				v = s.vals[gi]
			}
			h := plotH * clamp01(v/yMax)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`,
				x0+bw*float64(si), float64(chartH-padB)-h, bw*0.9, h, s.color, esc(g), esc(s.name), esc(label(v)))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x0+gw*0.4, chartH-padB+16, esc(g))
	}
	names := make([]string, len(series))
	colors := make([]string, len(series))
	for i, s := range series {
		names[i], colors[i] = s.name, s.color
	}
	legend(b, names, colors, chartH-padB+30)
	b.WriteString("</svg>\n")
}

func lineChart(b *strings.Builder, title string, series []lineSeries, yMax, markX float64, label func(float64) string) {
	svgOpen(b, title)
	yAxis(b, yMax, label)
	plotW := float64(chartW - padL - padR)
	plotH := float64(chartH - padT - padB)
	xMax := 0.0
	for _, s := range series {
		xMax = max(xMax, s.step*float64(len(s.ys)))
	}
	if xMax <= 0 {
		xMax = 1
	}
	xOf := func(sec float64) float64 { return float64(padL) + plotW*clamp01(sec/xMax) }
	for sec := 0.0; sec <= xMax+1e-9; sec += tickStep(xMax) {
		x := xOf(sec)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%gs</text>`+"\n",
			x, padT, x, chartH-padB, x, chartH-padB+16, sec)
	}
	if markX > 0 {
		x := xOf(markX)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888" stroke-dasharray="4 3"/><text x="%.1f" y="%d">warm-up</text>`+"\n",
			x, padT, x, chartH-padB, x+4, padT+12)
	}
	names := make([]string, len(series))
	colors := make([]string, len(series))
	for i, s := range series {
		names[i], colors[i] = s.name, s.color
		if len(s.ys) == 0 {
			continue
		}
		var pts strings.Builder
		for j, v := range s.ys {
			// Each point sits in the middle of its bucket.
			fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(s.step*(float64(j)+0.5)), float64(chartH-padB)-plotH*clamp01(v/yMax))
		}
		dash := ""
		if s.dash {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"><title>%s</title></polyline>`+"\n",
			s.color, dash, strings.TrimSpace(pts.String()), esc(s.name))
	}
	legend(b, names, colors, chartH-padB+30)
	b.WriteString("</svg>\n")
}

// tickStep returns a step of 1, 2 or 5 × 10ⁿ seconds giving at most ten
// ticks over xMax.
func tickStep(xMax float64) float64 {
	return niceCeil(xMax / 10)
}

func clamp01(v float64) float64 {
	if !(v > 0) {
		return 0
	}
	return min(v, 1)
}
