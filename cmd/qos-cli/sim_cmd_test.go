package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/sim"
)

// runSimulateCLI runs `qos-cli simulate args...` on an app holding only the
// simulate command, and returns its error, stdout and stderr.
func runSimulateCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{
		Name:           "qos-cli",
		Commands:       []*cli.Command{simulateCommand()},
		Writer:         &out,
		ErrWriter:      &errb,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.RunContext(context.Background(), append([]string{"qos-cli", "simulate"}, args...))
	return out.String(), errb.String(), err
}

// TestSimulatePrintConfig: the printed configuration reads back as the
// built-in story.
func TestSimulatePrintConfig(t *testing.T) {
	out, _, err := runSimulateCLI(t, "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sim.json")
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := sim.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want := sim.DefaultConfig()
	want.SeedWait = got.SeedWait // the flag's default
	if !reflect.DeepEqual(got, want) {
		t.Errorf("printed config reads back differently:\n%+v\n%+v", got, want)
	}
	out, _, err = runSimulateCLI(t, "--print-config", "--duration", "9s", "--seed", "4", "--sigverify-pps", "77")
	if err != nil || !strings.Contains(out, `"duration": "9s"`) || !strings.Contains(out, `"seed": 4`) || !strings.Contains(out, `"sigverify_pps": 77`) {
		t.Errorf("flags not applied (%v):\n%s", err, out)
	}
}

// TestSimulateRun runs a short simulation with nobody on the other side
// (a fixed hash seed, so nothing waits) and checks the outputs.
func TestSimulateRun(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "r.html")
	base := []string{"--shm-dir", dir, "--prefix", "clitest-", "--duration", "300ms", "--warmup", "100ms", "--xxhash-seed", "5"}
	out, errs, err := runSimulateCLI(t, append(base, "--json", "--name", "nobody", "--report", report)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	var nr sim.NamedResult
	if err := json.Unmarshal([]byte(out), &nr); err != nil {
		t.Fatalf("stdout is not the JSON result: %v\n%s", err, out)
	}
	if nr.Name != "nobody" || nr.Result.InPackets == 0 || nr.Result.OutPackets != 0 || nr.Result.HashSeed != 5 || len(nr.Result.Agents) != 5 {
		t.Errorf("result %+v", nr)
	}
	if !strings.Contains(errs, "policy") || !strings.Contains(errs, "report written") {
		t.Errorf("stderr lacks the table or the report note:\n%s", errs)
	}
	if b, err := os.ReadFile(report); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Errorf("report: %v", err)
	}
	out, _, err = runSimulateCLI(t, base...)
	if err != nil || !strings.Contains(out, "policy") || !strings.Contains(out, "qos") {
		t.Errorf("table run (%v):\n%s", err, out)
	}
}

func TestSimulateErrors(t *testing.T) {
	dir := t.TempDir()
	f := func(want string, args ...string) {
		t.Helper()
		_, _, err := runSimulateCLI(t, append([]string{"--shm-dir", dir}, args...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want %q", args, err, want)
		}
	}
	f("missing.json", "--config", filepath.Join(dir, "missing.json"))
	f("warmup", "--warmup", "10s")
	f("seed", "--duration", "100ms", "--warmup", "10ms", "--seed-wait", "20ms")
}
