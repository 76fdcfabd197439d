package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/agave/standin"
)

func runAgaveSimCLI(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	app := &cli.App{
		Name:           "qos-cli",
		Commands:       []*cli.Command{agaveSimCommand()},
		Writer:         &out,
		ErrWriter:      &errb,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.RunContext(ctx, append([]string{"qos-cli", "agave-sim"}, args...))
	return out.String(), errb.String(), err
}

func TestAgaveSimFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "give --ledger DIR"},
		{[]string{"--ledger", dir, "--socket", filepath.Join(dir, "s")}, "not both"},
		{[]string{"--ledger", filepath.Join(dir, "missing")}, "ledger directory"},
		{[]string{"--ledger", dir, "--agave-abi", "auto"}, "serves one profile"},
		{[]string{"--ledger", dir, "--agave-abi", "3.1"}, "unknown Agave ABI profile"},
		{[]string{"--ledger", dir, "--rate-scale", "0"}, "--rate-scale"},
		{[]string{"--ledger", dir, "--leader-window", "8", "--leader-every", "4"}, "leader period"},
	}
	for _, tc := range tests {
		_, _, err := runAgaveSimCLI(context.Background(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

// TestAgaveSimServesALogon: the command listens in the ledger, a client
// logs on and receives its files, and the JSON report counts the session.
// A client that never drains progress_tracker fails the session once the
// queue is full, as Agave ends such a session; with room for the whole
// run it does not.
func TestAgaveSimServesALogon(t *testing.T) {
	t.Run("clean", func(t *testing.T) { agaveSimLogon(t, 8192, "") })
	t.Run("progress not drained", func(t *testing.T) { agaveSimLogon(t, 16, "progress_tracker: queue full") })
}

func agaveSimLogon(t *testing.T, progressCap uint64, wantErr string) {
	ledger := t.TempDir()
	type result struct {
		out, errs string
		err       error
	}
	done := make(chan result, 1)
	go func() {
		o, e, err := runAgaveSimCLI(context.Background(), "--ledger", ledger, "--agave-abi", "4.1",
			"--duration", "1500ms", "--rate-scale", "0.05", "--slot-duration", "100ms", "--json")
		done <- result{o, e, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l := handshake.Logon{WorkerCount: 1, AllocatorSize: 16 << 20, AllocatorHandles: 1, TpuToPackCapacity: 1024,
		ProgressCapacity: progressCap, PackToWorkerCapacity: 16, WorkerToPackCapacity: 16}
	var fds *handshake.Fds
	var err error
	for {
		fds, err = handshake.Dial(ctx, standin.SocketPath(ledger), bindings.Profile41, l)
		if !errors.Is(err, handshake.ErrSocketMissing) || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("logon: %v", err)
	}
	if len(fds.Workers) != 1 || fds.Allocator == nil || fds.TpuToPack == nil || fds.Progress == nil {
		t.Fatalf("files: %+v", fds)
	}
	_ = fds.Close()
	r := <-done
	if wantErr != "" {
		if r.err == nil || !strings.Contains(r.err.Error(), wantErr) {
			t.Fatalf("agave-sim: error %v, want %q", r.err, wantErr)
		}
		return
	}
	if r.err != nil {
		t.Fatalf("agave-sim: %v\n%s", r.err, r.errs)
	}
	var rep struct {
		Stats    standin.Stats           `json:"stats"`
		Sessions []standin.SessionReport `json:"sessions"`
		Verdict  string                  `json:"verdict"`
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("JSON report %q: %v", r.out, err)
	}
	if rep.Stats.Sessions != 1 || len(rep.Sessions) != 1 || rep.Sessions[0].Profile != "4.1" || rep.Verdict != "" {
		t.Fatalf("report: %+v", rep)
	}
	if rep.Stats.Fed == 0 || rep.Sessions[0].Undelivered == 0 {
		t.Fatalf("nothing fed to a client that never reads: %+v", rep.Stats)
	}
}

// TestAgaveSimIntraBatchLocksFlag: the bank relaxes intra-batch account
// locks unless told otherwise, by flag or environment.
func TestAgaveSimIntraBatchLocksFlag(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args   []string
		env    string
		strict bool
	}{
		{nil, "", false},
		{[]string{"--relax-intrabatch-account-locks=false"}, "", true},
		{[]string{"--relax-intrabatch-account-locks"}, "", false},
		{nil, "false", true},
	} {
		t.Setenv("QOS_AGAVE_SIM_RELAX_INTRABATCH_ACCOUNT_LOCKS", tc.env) // restored at the end
		if tc.env == "" {
			if err := os.Unsetenv("QOS_AGAVE_SIM_RELAX_INTRABATCH_ACCOUNT_LOCKS"); err != nil {
				t.Fatal(err)
			}
		}
		cmd := agaveSimCommand()
		var got standin.Config
		cmd.Action = func(c *cli.Context) error {
			var err error
			got, err = agaveSimConfig(c)
			return err
		}
		app := &cli.App{Name: "qos-cli", Commands: []*cli.Command{cmd}, ExitErrHandler: func(*cli.Context, error) {}}
		if err := app.Run(append([]string{"qos-cli", "agave-sim", "--ledger", dir}, tc.args...)); err != nil {
			t.Fatalf("%v env %q: %v", tc.args, tc.env, err)
		}
		if got.Bank.StrictBatchLocks != tc.strict {
			t.Errorf("%v env %q: strict batch locks %v, want %v", tc.args, tc.env, got.Bank.StrictBatchLocks, tc.strict)
		}
	}
}
