package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/solqos/qos/schema/schematest"
)

// TestPackReplayRebuildsDaemonModel runs the stand-in validator
// (qos-cli agave-sim) and `qos pack` with a database as two processes:
// every execution and CHECK result becomes a row of kind 3 with its slot,
// reason, cost units and fee-payer balance; after SIGTERM `qos-cli replay`
// over those rows must rebuild exactly the model qos saved. Profile 4.1
// runs without the CHECK stage, 4.4 with it.
func TestPackReplayRebuildsDaemonModel(t *testing.T) {
	for _, tc := range []struct {
		abi   string
		check bool
	}{{"4.1", false}, {"4.4", true}} {
		t.Run(tc.abi, func(t *testing.T) {
			db := schematest.New(t, "e2epack").URL
			dir := t.TempDir()
			sock := filepath.Join(dir, "scheduler_bindings.ipc")
			daemonModel, replayModel := filepath.Join(dir, "daemon.bin"), filepath.Join(dir, "replay.bin")
			sim := exec.Command(cliBin, "agave-sim", "--socket", sock, "--agave-abi", tc.abi,
				"--duration", "6s", "--json", "--huge-pages=false", "--slot-duration", "100ms",
				"--leader-every", "4", "--leader-window", "4", "--unfunded-share", "0.2")
			var simOut bytes.Buffer
			sim.Stdout, sim.Stderr = &simOut, &simOut
			if err := sim.Start(); err != nil {
				t.Fatal(err)
			}
			simDone := make(chan error, 1)
			go func() { simDone <- sim.Wait() }()
			t.Cleanup(func() {
				if sim.ProcessState == nil {
					_ = sim.Process.Kill()
					<-simDone
				}
			})
			args := []string{"pack", "--bindings-socket", sock, "--agave-abi", tc.abi, "--workers", "2",
				"--allocator-size", "268435456", "--model-file", daemonModel, "--db-url", db,
				"--spool-dir", filepath.Join(dir, "spool"), "--db-flush-interval", "200ms", "--log-format", "json"}
			if tc.check {
				args = append(args, "--check")
			}
			d := startDaemon(t, args...)
			time.Sleep(4 * time.Second)
			d.stop()
			select {
			case <-simDone:
			case <-time.After(20 * time.Second):
				t.Fatal("agave-sim did not stop")
			}

			out := run(t, cliBin, "replay", "--db-url", db, "--out", replayModel)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := pgx.Connect(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var rows, included, sender, slotted, other int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 3),
				count(*) FILTER (WHERE kind = 3 AND reason = 0 AND scheduled AND cost_units > 0),
				count(*) FILTER (WHERE kind = 3 AND reason IN (68, 70, 71)),
				count(*) FILTER (WHERE kind = 3 AND slot > 0),
				count(*) FILTER (WHERE kind <> 3 AND kind <> 2) FROM completed_tx`).Scan(&rows, &included, &sender, &slotted, &other); err != nil {
				t.Fatal(err)
			}
			logs := d.logs.String()
			offered, dropped := jsonCounter(t, logs, "rows"), jsonCounter(t, logs, "rows_dropped")
			t.Logf("rows: %d pack results (%d included, %d refused for the sender's fault, %d with a slot), %d other; qos offered %d, dropped %d",
				rows, included, sender, slotted, other, offered, dropped)
			t.Logf("replay: %s", strings.TrimSpace(out))
			if rows == 0 || included == 0 || sender == 0 || other != 0 {
				t.Fatalf("want included and sender-blamed pack rows only: %d rows, %d included, %d sender, %d of other kinds", rows, included, sender, other)
			}
			var unparsable int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM completed_tx WHERE kind = 2`).Scan(&unparsable); err != nil {
				t.Fatal(err)
			}
			if rows+unparsable != offered || dropped != 0 {
				t.Fatalf("rows written %d+%d, offered %d, dropped %d", rows, unparsable, offered, dropped)
			}

			st := sameModel(t, "qos pack's", daemonModel, replayModel)
			t.Logf("qos pack and replay agree: %d IPs, %d signers, %d observations", st.IPs, st.Signers, st.Observations)
			ev := run(t, cliBin, "replay", "--db-url", db, "--evaluate")
			if !strings.Contains(ev, "fee") {
				t.Fatalf("replay --evaluate on pack rows:\n%s", ev)
			}
			t.Logf("replay --evaluate: %s", strings.TrimSpace(ev))
		})
	}
}

// jsonCounter reads a number from qos pack's "qos pack stopped" JSON log line.
func jsonCounter(t *testing.T, logs, name string) int64 {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"qos pack stopped"`) {
			continue
		}
		key := `"` + name + `":`
		i := strings.Index(line, key)
		if i < 0 {
			break
		}
		var n int64
		for _, c := range line[i+len(key):] {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int64(c-'0')
		}
		return n
	}
	t.Fatalf("no %s in the final log line:\n%s", name, logs)
	return 0
}
