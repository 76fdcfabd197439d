package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/sim"
)

func runDemoCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{
		Name:           "qos-cli",
		Commands:       []*cli.Command{demoCommand()},
		Writer:         &out,
		ErrWriter:      &errb,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.RunContext(context.Background(), append([]string{"qos-cli", "demo"}, args...))
	return out.String(), errb.String(), err
}

// TestDemoScenarios: the library is listed, unknown names and bad policy
// lists are refused, and two scenarios run end to end (reduced to 1.5 s,
// the model policy and fee-only): low load prints the table, and under
// signer rotation with bad signatures claiming top fees the model
// captures more than fee-only, which those claims fool.
func TestDemoScenarios(t *testing.T) {
	out, _, err := runDemoCLI(t, "--list-scenarios")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sim.ScenarioNames() {
		if !strings.Contains(out, name) {
			t.Errorf("--list-scenarios lacks %s:\n%s", name, out)
		}
	}
	if _, _, err := runDemoCLI(t, "--scenario", "nope"); err == nil || !strings.Contains(err.Error(), "sybil-100k") {
		t.Errorf("unknown scenario: %v", err)
	}
	if _, _, err := runDemoCLI(t, "--policies", "model,best"); err == nil || !strings.Contains(err.Error(), "--policies") {
		t.Errorf("bad policy list: %v", err)
	}
	if _, _, err := runDemoCLI(t, "--scenario", "demo", "--config", "x.json"); err == nil {
		t.Error("--scenario with --config accepted")
	}
	if testing.Short() {
		return
	}
	demo := func(name string, extra ...string) string {
		args := append([]string{"--scenario", name, "--duration", "1500ms", "--warmup", "700ms",
			"--policies", "model,fee-only", "--report", filepath.Join(t.TempDir(), "r.html"), "--shm-dir", t.TempDir()}, extra...)
		out, _, err := runDemoCLI(t, args...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return out
	}
	out = demo("low-load")
	if !strings.Contains(out, "honest never verified") || !strings.Contains(out, "fee-only") {
		t.Fatalf("low-load: no table:\n%s", out)
	}
	t.Logf("low-load:\n%s", out)
	out = demo("rotation-bad", "--json")
	var runs []sim.NamedResult
	if err := json.Unmarshal([]byte(out[strings.Index(out, "["):strings.LastIndex(out, "]")+1]), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("rotation-bad: %v\n%s", err, out)
	}
	m, f := runs[0].Result, runs[1].Result
	t.Logf("rotation-bad: model %.1f%% of the oracle, fee-only %.1f%%", 100*m.OracleShare(), 100*f.OracleShare())
	if m.Value <= f.Value {
		t.Errorf("rotation-bad: model captured %d, fee-only %d", m.Value, f.Value)
	}
}
