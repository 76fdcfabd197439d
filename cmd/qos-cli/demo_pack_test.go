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
	"slices"
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
	// The story's spam cannot pay and outbids the honest senders: fee
	// per cost alone sends it to execution, the model learns to hold it
	// back. Compared as shares of what each executed: how many
	// transactions a policy executes at all follows the CPU it got.
	if rs[1].FailedExecutions == 0 || rs[0].FailedShare >= rs[1].FailedShare {
		t.Errorf("failed executions: model %d (%.0f%% of executed), fee-only %d (%.0f%%)",
			rs[0].FailedExecutions, 100*rs[0].FailedShare, rs[1].FailedExecutions, 100*rs[1].FailedShare)
	}
	checkPackReport(t, report, rs)

	// --check: every policy runs the CHECK stage.
	out, err = run("--mode", "pack", "--duration", "1500ms", "--json", "--check", "--report", report)
	if err != nil {
		t.Fatal(err)
	}
	rs = nil
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, r := range rs {
		if r.Checked == 0 || r.Included == 0 || r.Leaks != 0 {
			t.Errorf("--check, %s: %+v", r.Policy, r)
		}
	}
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

// TestOracleGreedy: the oracle takes, leader slot by leader slot, the
// best fee per cost unit among the transactions fed before the slot ends,
// within the block and per-account limits; not-leader slots and slots
// after the run take nothing.
func TestOracleGreedy(t *testing.T) {
	clock := standin.DefaultClockConfig() // slots of 400 ms; leader 4 of every 8, from slot 1000 (a multiple of 8)
	ms := time.Millisecond
	tx := func(fee, cost uint64, at time.Duration, acct ...uint64) oracleTx {
		o := oracleTx{fee: fee, cost: cost, fedAt: at}
		for _, a := range acct {
			o.writable[o.nw] = a
			o.nw++
		}
		return o
	}
	tests := []struct {
		name    string
		txs     []oracleTx
		elapsed time.Duration
		block   uint64
		want    uint64
	}{
		{"best density first within the block", []oracleTx{tx(100, 10, 0), tx(50, 10, 0), tx(300, 10, 0)}, 300 * ms, 20, 400},
		{"a skipped one may fit later in the slot", []oracleTx{tx(310, 15, 0), tx(200, 10, 0), tx(40, 5, 0)}, 300 * ms, 20, 350},
		{"fed after the slot: the next leader slot", []oracleTx{tx(100, 10, 0), tx(1000, 10, 500*ms)}, 300 * ms, 20, 100},
		{"fed after the slot, run long enough", []oracleTx{tx(100, 10, 0), tx(1000, 10, 500*ms)}, 900 * ms, 20, 1100},
		{"one slot is filled, the next takes the rest", []oracleTx{tx(100, 10, 0), tx(90, 10, 0), tx(80, 10, 0)}, 500 * ms, 20, 270},
		{"not leader: nothing until slot 1008", []oracleTx{tx(100, 10, 1700*ms)}, 3200 * ms, 20, 0},
		{"leader again at slot 1008", []oracleTx{tx(100, 10, 1700*ms)}, 3300 * ms, 20, 100},
		{"per-account limit: one writer of the hot account per slot", []oracleTx{tx(100, 10, 0, 7), tx(90, 10, 0, 7, 8), tx(10, 10, 0, 8)}, 300 * ms, 100, 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := oracleGreedy(slices.Clone(tt.txs), clock, tt.elapsed, tt.block, 15); got != tt.want {
				t.Fatalf("oracle %d, want %d", got, tt.want)
			}
		})
	}
}
