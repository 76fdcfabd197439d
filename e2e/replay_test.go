package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/solqos/qos/model"
	"github.com/solqos/qos/schema/schematest"
	"github.com/solqos/qos/sim"
)

// honestConfig is the default story without attackers: every packet is a
// valid transaction, so everything the model learns comes from completed
// transactions, which is what the rows record.
func honestConfig(t *testing.T) string {
	t.Helper()
	cfg := sim.DefaultConfig()
	var agents []sim.AgentConfig
	for _, a := range cfg.Agents {
		if !a.Attacker {
			agents = append(agents, a)
		}
	}
	cfg.Agents = agents
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "honest.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReplayRebuildsDaemonModel: the model a daemon saves equals the model
// qos-cli replay rebuilds from the rows that daemon wrote to Postgres, and
// every completed transaction became exactly one row — on honest traffic,
// where the model learns from completed transactions only.
func TestReplayRebuildsDaemonModel(t *testing.T) {
	replayMatchesDaemon(t, false, "--config", honestConfig(t))
}

// TestReplayRebuildsDaemonModelUnderAttack: the same with the default
// story (spammer and sybil attackers), where failed sigverify and
// unparsable packets penalise IPs: the penalty rows make the replay exact.
func TestReplayRebuildsDaemonModelUnderAttack(t *testing.T) {
	replayMatchesDaemon(t, true)
}

// replayMatchesDaemon runs a daemon writing rows to a fresh schema under
// the simulator (with simArgs), replays the rows and compares the models.
// penalties says whether the traffic must have made the daemon penalise.
func replayMatchesDaemon(t *testing.T, penalties bool, simArgs ...string) {
	t.Helper()
	db := schematest.New(t, "e2e").URL
	dir := t.TempDir()
	daemonModel, replayModel := filepath.Join(dir, "daemon.bin"), filepath.Join(dir, "replay.bin")
	p := prefix(t)
	run(t, cliBin, "init", "--prefix", p)
	d := startDaemon(t, "--xxhash-seed", "777", "--prefix", p, "--target-pps", sigverifyPPS,
		"--idle-sleep", "50us", "--model-file", daemonModel, "--db-url", db,
		"--spool-dir", filepath.Join(dir, "spool"), "--db-flush-interval", "200ms", "--log-level", "info")
	res := simulate(t, p, simArgs...)
	d.stop()
	if res.Included == 0 || res.Verified == 0 {
		t.Fatalf("the run completed nothing: %+v", res)
	}

	out := run(t, cliBin, "replay", "--db-url", db, "--out", replayModel)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var completed, scheduled, sigFailed, unparsable int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE kind = 0), count(*) FILTER (WHERE kind = 0 AND scheduled),
		count(*) FILTER (WHERE kind = 1), count(*) FILTER (WHERE kind = 2) FROM completed_tx`).Scan(&completed, &scheduled, &sigFailed, &unparsable); err != nil {
		t.Fatal(err)
	}
	logs := d.logs.String()
	joined, feedback, dropped := logCounter(t, logs, "joined"), logCounter(t, logs, "feedback_rows"), logCounter(t, logs, "rows_dropped")
	penalised := logCounter(t, logs, "parse_penalties") + logCounter(t, logs, "sigverify_failed") - logCounter(t, logs, "sigverify_bad_addr")
	t.Logf("rows: %d completed (scheduled %d), %d sigverify failures, %d unparsable; daemon joined %d, penalised %d, feedback rows %d, dropped %d; simulator verified %d, included %d",
		completed, scheduled, sigFailed, unparsable, joined, penalised, feedback, dropped, res.Verified, res.Included)
	t.Logf("replay: %s", strings.TrimSpace(out))
	if completed == 0 || completed != joined {
		t.Fatalf("completed rows written %d, transactions completed (joined) %d", completed, joined)
	}
	if sigFailed+unparsable != feedback || feedback != penalised || dropped != 0 {
		t.Fatalf("feedback rows written %d+%d, offered %d, penalties %d, rows dropped %d", sigFailed, unparsable, feedback, penalised, dropped)
	}
	if penalties && (sigFailed == 0 || unparsable == 0) {
		t.Fatalf("the attack made %d sigverify failures and %d unparsable packets; want both", sigFailed, unparsable)
	}

	st := sameModel(t, "the daemon's", daemonModel, replayModel)
	if penalties && st.Penalties == 0 {
		t.Fatalf("the daemon's model was never penalised: %+v", st)
	}
	t.Logf("daemon and replay agree: %d IPs, %d signers, %d observations, %d penalties", st.IPs, st.Signers, st.Observations, st.Penalties)
}

// logCounter reads a counter from the daemon's "loop stopped" totals line.
func logCounter(t *testing.T, logs, name string) int64 {
	t.Helper()
	var total int64
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `msg="loop stopped"`) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, name+"="); ok {
				var n int64
				if _, err := fmt.Sscan(v, &n); err == nil {
					total += n
				}
			}
		}
	}
	return total
}

// sameModel loads the model file a daemon saved (whose: "the daemon's")
// and the one replay rebuilt, fails unless they are equal to 1e-12 and
// the daemon's learned something, and returns its stats.
func sameModel(t *testing.T, whose, daemonModel, replayModel string) model.Stats {
	t.Helper()
	a, err := model.Load(daemonModel)
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.Load(replayModel)
	if err != nil {
		t.Fatal(err)
	}
	if diff := model.Diff(a, b, 1e-12); len(diff) > 0 {
		t.Fatalf("replayed model differs from %s (%d differences), first: %v", whose, len(diff), diff[:min(5, len(diff))])
	}
	st := a.Stats()
	if st.Observations == 0 || st.IPs == 0 {
		t.Fatalf("%s model learned nothing: %+v", whose, st)
	}
	return st
}
