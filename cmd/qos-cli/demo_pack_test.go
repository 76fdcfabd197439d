package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/agave/standin"
)

// TestDemoPackMode: `qos-cli demo --mode pack` runs the stand-in and pack
// mode for the three policies and reports their figures; an unknown mode
// is refused.
func TestDemoPackMode(t *testing.T) {
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		app := &cli.App{Name: "qos-cli", Commands: []*cli.Command{demoCommand()}, Writer: &out, ErrWriter: &errb,
			ExitErrHandler: func(*cli.Context, error) {}}
		err := app.RunContext(context.Background(), append([]string{"qos-cli", "demo"}, args...))
		return out.String(), err
	}
	if _, err := run("--mode", "both"); err == nil {
		t.Error("--mode both accepted")
	}
	report := filepath.Join(t.TempDir(), "pack.html")
	// Each policy runs for one leader period of the stand-in's clock from
	// the moment its session is up, so its run holds a whole leader
	// window's worth of leader slots however long logging on took.
	clock := standin.DefaultClockConfig()
	period := time.Duration(clock.LeaderEvery) * clock.SlotDuration
	out, err := run("--mode", "pack", "--duration", period.String(), "--json", "--report", report)
	if err != nil {
		t.Fatal(err)
	}
	var rs []packDemoResult
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rs) != 3 || rs[0].Policy != "model" || rs[1].Policy != "fee-only" || rs[2].Policy != "fifo" {
		t.Fatalf("results %+v", rs)
	}
	for _, r := range rs {
		if r.Included == 0 || r.ValueCaptured == 0 || r.Oracle == 0 || r.VotesFed == 0 || r.Leaks != 0 {
			t.Errorf("%s: %+v", r.Policy, r)
		}
		if r.Unfunded+r.Stale+r.Replays > r.FailedExecutions {
			t.Errorf("%s: unfunded, stale and replays exceed the failed executions: %+v", r.Policy, r)
		}
	}
	checkPackReport(t, report, rs)
}

// checkPackReport checks the HTML report at path is well-formed and holds
// the table of rs and its charts.
func checkPackReport(t *testing.T, path string, rs []packDemoResult) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report not written: %v", err)
	}
	doc := string(b)
	d := xml.NewDecoder(strings.NewReader(strings.TrimPrefix(doc, "<!DOCTYPE html>\n")))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("report is not well-formed: %v", err)
		}
	}
	var want []string
	for _, h := range packDemoHeader {
		want = append(want, "<th>"+h+"</th>")
	}
	for i := range rs {
		var row strings.Builder
		for _, c := range packDemoRow(&rs[i]) {
			row.WriteString("<td>" + html.EscapeString(c) + "</td>")
		}
		want = append(want, row.String())
	}
	want = append(want, "Value captured vs the oracle", "Where execution went", "<svg")
	for _, w := range want {
		if !strings.Contains(doc, w) {
			t.Errorf("report lacks %q", w)
		}
	}
	if strings.Contains(doc, "<script") || strings.Contains(strings.ReplaceAll(doc, `xmlns="http://www.w3.org/2000/svg"`, ""), "http") {
		t.Error("report is not self-contained")
	}
}
