package sim

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// syntheticRuns returns three runs over the default agents with made-up
// numbers, one with a name that needs escaping.
func syntheticRuns() []NamedResult {
	c := DefaultConfig()
	mk := func(name string, scale float64) NamedResult {
		r := Result{Seed: 1, DurationS: 5, WarmupS: 3, BucketS: 0.5, SlotS: 0.4, SlotCUBudget: 48_000_000, SigverifyPPS: 5000,
			InPackets: 485_000, OutPackets: 25_000, InPPS: 97_000, OutPPS: 5000,
			Value: uint64(1e9 * scale), Oracle: 1e9, ValueAfterWarmup: uint64(4e8 * scale), OracleAfterWarmup: 4e8,
			AttackerShareAfterWarmup: 1 - scale, LatencyP50Us: 80, LatencyP99Us: 2500,
			HonestP50Us: 80, HonestP99Us: 2500, WorstHonest: "honest-low", WorstHonestShare: scale / 2}
		for i, a := range c.Agents {
			ar := AgentResult{Name: a.Name, Attacker: a.Attacker, InPackets: uint64(a.PPS * 5), OutPackets: uint64(1000 * (i + 1)),
				ValueIn: uint64(1e8 * float64(i+1)), ValueOut: uint64(5e7 * float64(i+1) * scale)}
			for b := 0; b < 10; b++ {
				ar.InSeries = append(ar.InSeries, uint64(a.PPS/2))
				ar.OutSeries = append(ar.OutSeries, uint64(100*b))
			}
			r.Agents = append(r.Agents, ar)
		}
		for b := 0; b < 10; b++ {
			r.InPPSSeries = append(r.InPPSSeries, 97_000)
			r.OutPPSSeries = append(r.OutPPSSeries, 5000)
			r.AttackerShareSeries = append(r.AttackerShareSeries, (1-scale)*float64(10-b)/10)
		}
		return NamedResult{Name: name, Result: r}
	}
	return []NamedResult{mk("model", 0.97), mk("fee-only <&\"'>", 0.2), mk("fifo", 0.1)}
}

// TestHTMLReport checks the report is well-formed XML, self-contained,
// escapes names, and has its five charts and two tables.
func TestHTMLReport(t *testing.T) {
	var sb strings.Builder
	if err := WriteHTMLReport(&sb, syntheticRuns()); err != nil {
		t.Fatal(err)
	}
	doc := sb.String()
	d := xml.NewDecoder(strings.NewReader(doc))
	d.Strict = true
	count := map[string]int{}
	var texts strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, doc)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			count[tk.Name.Local]++
			for _, a := range tk.Attr {
				if a.Name.Local == "src" || a.Name.Local == "href" {
					t.Errorf("external reference %s=%q", a.Name.Local, a.Value)
				}
			}
		case xml.CharData:
			texts.Write(tk)
		}
	}
	if count["svg"] != 5 || count["table"] != 2 || count["polyline"] < 4 || count["rect"] < 10 || count["script"] != 0 || count["link"] != 0 {
		t.Errorf("elements: %v", count)
	}
	if !strings.Contains(texts.String(), `fee-only <&"'>`) {
		t.Error("escaped run name does not read back")
	}
	if strings.Contains(strings.ReplaceAll(doc, `xmlns="http://www.w3.org/2000/svg"`, ""), "http") {
		t.Error("report refers to an outside address")
	}
	if err := WriteHTMLReport(io.Discard, nil); err == nil {
		t.Error("no runs: no error")
	}
}

// TestHTMLReportEmpty: a run that measured nothing still gives a
// well-formed page (no NaN or infinite coordinates).
func TestHTMLReportEmpty(t *testing.T) {
	var sb strings.Builder
	if err := WriteHTMLReport(&sb, []NamedResult{{Name: "empty"}}); err != nil {
		t.Fatal(err)
	}
	if s := sb.String(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
		t.Errorf("NaN or Inf in the report")
	}
	d := xml.NewDecoder(strings.NewReader(sb.String()))
	for {
		if _, err := d.Token(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("not well-formed: %v", err)
			}
			break
		}
	}
}

func TestWriteTable(t *testing.T) {
	var sb strings.Builder
	if err := WriteTable(&sb, syntheticRuns()); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{"policy", "% oracle", "model", "97.0%", "fifo", "10.0%", "80µs", "2.5ms", "5000/s", "honest-low (48.5%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if lines := strings.Count(out, "\n"); lines != 5 {
		t.Errorf("%d lines:\n%s", lines, out)
	}
	if strings.Contains(out, "behind its traffic schedule") {
		t.Errorf("lag warning without lag:\n%s", out)
	}
	// A simulator that could not keep up says so, once per such run.
	runs := syntheticRuns()
	runs[1].Result.ProducerLagUs = 2.5e6
	sb.Reset()
	if err := WriteTable(&sb, runs); err != nil {
		t.Fatal(err)
	}
	if out := sb.String(); strings.Count(out, "behind its traffic schedule") != 1 || !strings.Contains(out, "up to 2.50s behind") {
		t.Errorf("no single lag warning for a run 2.5 s behind:\n%s", out)
	}
}

// TestHonestQuantile: honest latency quantiles count the transactions
// that never reached sigverify as infinitely late.
func TestHonestQuantile(t *testing.T) {
	var h histogram
	for i := 0; i < 90; i++ {
		h.add(1000) // 1 µs
	}
	f := func(q float64, total uint64, want float64) {
		t.Helper()
		if got := honestQuantileUs(&h, q, total); got != want && (want < 0 || math.Abs(got-want) > 0.05*want) {
			t.Errorf("q %v of %d: %v, want %v", q, total, got, want)
		}
	}
	f(0.5, 90, 1)
	f(0.5, 100, 1)
	f(0.9, 100, 1)
	f(0.91, 100, -1)
	f(0.99, 100, -1)
	f(0.5, 0, -1)
	if fmtLate(-1) != "never" || fmtLate(80) != "80µs" {
		t.Errorf("fmtLate: %q %q", fmtLate(-1), fmtLate(80))
	}
}

// TestTablePage: a table page escapes its cells, draws its charts without
// NaN even for all-zero values, is well-formed, and refuses no rows.
func TestTablePage(t *testing.T) {
	tests := []struct {
		name    string
		page    TablePage
		want    []string
		wantErr bool
	}{
		{name: "no rows", page: TablePage{Title: "t"}, wantErr: true},
		{name: "table and charts", page: TablePage{Title: "pack <demo>", Note: "a & b", Header: []string{"policy", "value"},
			Rows: [][]string{{"model", "12"}, {"fifo", "<3"}},
			Charts: []BarChart{{Title: "value", Groups: []string{"model", "fifo"}, Series: []BarSeries{{Name: "captured", Values: []float64{12, 3}}}},
				{Title: "zeros", Groups: []string{"model", "fifo"}, Series: []BarSeries{{Name: "z", Values: []float64{0, 0}}}}}},
			want: []string{"<title>pack &lt;demo&gt;</title>", "a &amp; b", "<th>value</th>", "<td>&lt;3</td>", "<svg", "captured"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sb strings.Builder
			err := WriteTablePage(&sb, &tc.page)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			s := sb.String()
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
				t.Error("NaN or Inf in the page")
			}
			d := xml.NewDecoder(strings.NewReader(s))
			for {
				if _, err := d.Token(); err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("not well-formed: %v", err)
					}
					break
				}
			}
		})
	}
}
