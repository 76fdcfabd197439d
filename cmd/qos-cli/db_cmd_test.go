package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/schema"
	"github.com/solqos/qos/schema/schematest"
)

// runDBCLI runs qos-cli (main.go lists the database commands).
func runDBCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runCLI(t, args...)
}

func TestMigrateCommand(t *testing.T) {
	db := schematest.New(t, "climig")
	code, out, errOut := runDBCLI(t, "migrate", "--db-url", db.URL)
	if code != 0 || !strings.Contains(out, "applied 0001_") || !strings.Contains(out, "version 0 → ") {
		t.Fatalf("first migrate: %d %q %q", code, out, errOut)
	}
	code, out, _ = runDBCLI(t, "migrate", "--db-url", db.URL)
	if code != 0 || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second migrate: %d %q", code, out)
	}
	c := db.Connect(t)
	if _, err := c.Exec(context.Background(), "INSERT INTO "+schema.VersionTable+" (version, name) VALUES (999, 'future.sql')"); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runDBCLI(t, "migrate", "--db-url", db.URL)
	if code != 1 || !strings.Contains(errOut, "version 999") || !strings.Contains(errOut, "upgrade qos") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("migrate of a newer schema: %d %q", code, errOut)
	}
	code, out, _ = runDBCLI(t, "db", "status", "--db-url", db.URL)
	if code != 0 || !strings.Contains(out, "version 999") {
		t.Fatalf("status: %d %q", code, out)
	}
}

func TestMigrateCommandFromPGEnvironment(t *testing.T) {
	db := schematest.New(t, "clienv")
	cfg := db.Config(t)
	t.Setenv("PGHOST", cfg.Host)
	t.Setenv("PGPORT", "5432")
	t.Setenv("PGUSER", cfg.User)
	t.Setenv("PGDATABASE", cfg.Database)
	t.Setenv("PGOPTIONS", "-c search_path="+db.Schema)
	if cfg.Port != 5432 {
		t.Skip("test database not on port 5432")
	}
	code, out, errOut := runDBCLI(t, "migrate")
	if code != 0 || !strings.Contains(out, db.Schema) {
		t.Fatalf("migrate from PG*: %d %q %q", code, out, errOut)
	}
}

func TestDBPruneCommand(t *testing.T) {
	db := schematest.New(t, "cliprune")
	c := db.Connect(t)
	ctx := context.Background()
	if _, err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	days := []time.Time{now.Add(-10 * 24 * time.Hour), now.Add(-5 * 24 * time.Hour), now}
	if err := schema.EnsurePartitions(ctx, c, days...); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runDBCLI(t, "db", "prune", "--db-url", db.URL, "--older-than", "7d", "--dry-run")
	if code != 0 || strings.Count(out, "would drop") != 2 {
		t.Fatalf("dry run: %d %q", code, out)
	}
	code, out, _ = runDBCLI(t, "db", "prune", "--db-url", db.URL, "--older-than", "72h")
	if code != 0 || strings.Count(out, "dropped completed_tx") != 4 {
		t.Fatalf("prune: %d %q", code, out)
	}
	daily, _, err := schema.Partitions(ctx, c)
	if err != nil || len(daily) != 2 {
		t.Fatalf("left %v (%v)", daily, err)
	}
	code, _, errOut := runDBCLI(t, "db", "prune", "--db-url", db.URL, "--older-than", "soon")
	if code != 1 || !strings.Contains(errOut, "--older-than") {
		t.Fatalf("bad age: %d %q", code, errOut)
	}
}

// replayRow is row i of a small synthetic run with learnable sources.
func replayRow(base int64, i uint64) metastore.Row {
	h := i*0x9e3779b97f4a7c15 ^ i>>5
	src := h % 60
	r := metastore.Row{ObservedAt: base + int64(i)*1000, Seq: i, Seed: 1, Hash: h}
	r.IP = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: byte(src)}
	r.Signer[0] = byte(src % 40)
	r.Fee = 5000 + (src%6)*uint64(h>>40%5000)
	r.CUs = 10_000 + h>>20%100_000
	if src%4 != 0 {
		r.ExecNanos = 20_000 + h>>30%50_000
		r.Scheduled = true
	}
	return r
}

func writeReplayRows(t *testing.T, db *schematest.DB, base int64, n uint64) {
	t.Helper()
	c := db.Connect(t)
	if _, err := schema.Migrate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	h := metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 2048, Batches: 32})
	s, err := metastore.NewSink(metastore.SinkConfig{Conn: db.Config(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := replayRow(base, i)
		for !h.Offer(&r) {
			time.Sleep(time.Millisecond)
		}
	}
	if err := s.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
}

func TestReplayCommand(t *testing.T) {
	db := schematest.New(t, "clireplay")
	base := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	const n = 12_000
	writeReplayRows(t, db, base, n)
	out := filepath.Join(t.TempDir(), "model.bin")
	code, stdout, stderr := runDBCLI(t, "replay", "--db-url", db.URL, "--out", out, "--model-window", "50", "--max-ips", "50")
	if code != 0 {
		t.Fatalf("replay: %q", stderr)
	}
	if !strings.Contains(stdout, "replayed 12000 rows") || !strings.Contains(stderr, "replay: 12000/12000 rows (100.0%)") {
		t.Fatalf("output %q, progress %q", stdout, stderr)
	}
	got, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	p := model.DefaultParams()
	p.Window, p.MaxIPs = 50, 50
	want := model.New(p)
	for i := range uint64(n) {
		r := replayRow(base, i)
		want.Observe(r.Observation())
	}
	if diff := model.Diff(want, got, 1e-12); diff != nil {
		t.Fatalf("model file differs from direct Observe:\n%v", diff)
	}

	// A time range: the first half.
	code, stdout, _ = runDBCLI(t, "replay", "--db-url", db.URL, "--out", out,
		"--from", "2024-09-01", "--to", time.Unix(0, base+n/2*1000).UTC().Format(time.RFC3339Nano))
	if code != 0 || !strings.Contains(stdout, "replayed 6000 rows") {
		t.Fatalf("range replay: %d %q", code, stdout)
	}

	code, _, stderr = runDBCLI(t, "replay", "--db-url", db.URL)
	if code != 1 || !strings.Contains(stderr, "--out is required") {
		t.Fatalf("without --out: %d %q", code, stderr)
	}
	code, _, stderr = runDBCLI(t, "replay", "--db-url", db.URL, "--out", out, "--min-observations", "-1")
	if code != 1 || !strings.Contains(stderr, "min observations") {
		t.Fatalf("bad model flag: %d %q", code, stderr)
	}
}

func TestReplayEvaluateAndSweep(t *testing.T) {
	db := schematest.New(t, "clieval")
	base := time.Now().Add(-time.Hour).UnixNano() / 1000 * 1000
	writeReplayRows(t, db, base, 10_000)
	code, stdout, stderr := runDBCLI(t, "replay", "--db-url", db.URL, "--evaluate")
	if code != 0 {
		t.Fatalf("evaluate: %q", stderr)
	}
	for _, want := range []string{"trained on 7000 rows, tested on 3000", "model×fee/CU", "oracle", "25%"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("evaluate output lacks %q:\n%s", want, stdout)
		}
	}
	t.Logf("\n%s", stdout)

	code, stdout, stderr = runDBCLI(t, "replay", "--db-url", db.URL, "--sweep", "--json",
		"--sweep-window", "20,200", "--sweep-min-observations", "2,5", "--sweep-prior-weight", "4", "--from", "2h")
	if code != 0 {
		t.Fatalf("sweep: %q", stderr)
	}
	var rep replayReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout)
	}
	// The flags' set, then the grid minus the flags' own combination.
	if rep.Rows != 10_000 || len(rep.Results) != 4 || rep.Best == nil || len(rep.Results[0].Shares) != 4 {
		t.Fatalf("report: rows %d, %d results, best %v", rep.Rows, len(rep.Results), rep.Best)
	}
	code, stdout, _ = runDBCLI(t, "replay", "--db-url", db.URL, "--sweep", "--sweep-window", "20,200", "--sweep-min-observations", "5")
	if code != 0 || !strings.Contains(stdout, "best: --model-window") {
		t.Fatalf("sweep table: %d\n%s", code, stdout)
	}
	t.Logf("\n%s", stdout)
}

func TestParseAgeAndTime(t *testing.T) {
	now := time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)
	f := func(in string, want time.Time, ok bool) {
		t.Helper()
		got, err := parseTime(in, now)
		if (err == nil) != ok || (ok && !got.Equal(want)) {
			t.Fatalf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	f("", time.Time{}, true)
	f("2025-01-02", time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC), true)
	f("2025-01-02T03:04:05Z", time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), true)
	f("2025-01-02T03:04:05+01:00", time.Date(2025, 1, 2, 2, 4, 5, 0, time.UTC), true)
	f("2025-01-02 03:04", time.Date(2025, 1, 2, 3, 4, 0, 0, time.UTC), true)
	f("36h", now.Add(-36*time.Hour), true)
	f("7d", now.Add(-7*24*time.Hour), true)
	f("yesterday", time.Time{}, false)
	f("-3h", time.Time{}, false)
	if d, err := parseAge("1.5d"); err != nil || d != 36*time.Hour {
		t.Fatalf("parseAge(1.5d) = %v %v", d, err)
	}
}

func TestReplayUnreachableDatabase(t *testing.T) {
	code, _, stderr := runDBCLI(t, "replay", "--db-url", "postgres://alice:s3cret@127.0.0.1:1/x?connect_timeout=2", "--out", filepath.Join(t.TempDir(), "m"))
	if code != 1 || strings.Contains(stderr, "s3cret") || strings.Contains(stderr, "alice") || !strings.Contains(stderr, "127.0.0.1:1/x") {
		t.Fatalf("unreachable: %d %q", code, stderr)
	}
}
