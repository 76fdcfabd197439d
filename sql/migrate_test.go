package sql_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	qsql "github.com/solqos/qos/sql"
	"github.com/solqos/qos/sql/sqltest"
)

func TestMigrationsEmbedded(t *testing.T) {
	ms, err := qsql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || qsql.Latest() != len(ms) {
		t.Fatalf("%d migrations, latest %d", len(ms), qsql.Latest())
	}
	for i, m := range ms {
		if m.Version != i+1 || strings.TrimSpace(m.SQL) == "" {
			t.Fatalf("migration %d: %+v", i, m.Name)
		}
	}
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	db := sqltest.New(t, "migrate")
	c := db.Connect(t)
	ctx := context.Background()
	res, err := qsql.Migrate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Schema != db.Schema || res.From != 0 || res.To != qsql.Latest() || len(res.Applied) != qsql.Latest() {
		t.Fatalf("first migrate: %+v", res)
	}
	res, err = qsql.Migrate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != qsql.Latest() || res.To != qsql.Latest() || len(res.Applied) != 0 {
		t.Fatalf("second migrate not a no-op: %+v", res)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+qsql.VersionTable).Scan(&n); err != nil || n != qsql.Latest() {
		t.Fatalf("%d version rows (%v)", n, err)
	}
	if err := qsql.CheckVersion(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	db := sqltest.New(t, "migconc")
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		c := db.Connect(t)
		go func() {
			_, err := qsql.Migrate(ctx, c)
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	db := sqltest.New(t, "newer")
	c := db.Connect(t)
	ctx := context.Background()
	if _, err := qsql.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	future := qsql.Latest() + 1
	if _, err := c.Exec(ctx, "INSERT INTO "+qsql.VersionTable+" (version, name) VALUES ($1, 'from_the_future.sql')", future); err != nil {
		t.Fatal(err)
	}
	_, err := qsql.Migrate(ctx, c)
	if !errors.Is(err, qsql.ErrSchemaTooNew) {
		t.Fatalf("Migrate on a newer schema: %v", err)
	}
	for _, want := range []string{db.Schema, "version", "upgrade qos"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	t.Logf("message: %v", err)
	if err := qsql.CheckVersion(ctx, c); !errors.Is(err, qsql.ErrSchemaTooNew) {
		t.Fatalf("CheckVersion: %v", err)
	}
}

// TestMigrateFromVersion1: a database a version-1 binary created and
// filled is brought to the latest version with its rows intact, and they
// read as completed transactions (kind 0).
func TestMigrateFromVersion1(t *testing.T) {
	db := sqltest.New(t, "v1")
	c := db.Connect(t)
	ctx := context.Background()
	ms, err := qsql.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// What a version-1 binary's Migrate left behind.
	for _, q := range []string{
		`CREATE TABLE ` + qsql.VersionTable + ` (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
		ms[0].SQL,
		`INSERT INTO ` + qsql.VersionTable + ` (version, name) VALUES (1, '` + ms[0].Name + `')`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if err := qsql.EnsurePartitions(ctx, c, day); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := c.Exec(ctx, `INSERT INTO completed_tx (observed_at, seq, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash)
			VALUES ($1, $2, 1, 0, '10.0.0.1', decode(repeat('ab', 32), 'hex'), 1, 1, 1, 0, false, 0, 0, 0)`, day, i)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := qsql.CheckVersion(ctx, c); !errors.Is(err, qsql.ErrSchemaTooOld) {
		t.Fatalf("CheckVersion at version 1: %v", err)
	}
	res, err := qsql.Migrate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.To != qsql.Latest() || len(res.Applied) != qsql.Latest()-1 {
		t.Fatalf("Migrate from version 1: %+v", res)
	}
	if err := qsql.CheckVersion(ctx, c); err != nil {
		t.Fatal(err)
	}
	var n, completed int
	if err := c.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE kind = 0) FROM completed_tx").Scan(&n, &completed); err != nil || n != 3 || completed != 3 {
		t.Fatalf("after migrating: %d rows, %d of kind 0 (%v); want 3, 3", n, completed, err)
	}
	// New partitions get the column too.
	if err := qsql.EnsurePartitions(ctx, c, day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO completed_tx (observed_at, seq, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash, kind)
		VALUES ($1, 9, 1, 255, '10.0.0.1', decode(repeat('00', 32), 'hex'), 0, 0, 0, 0, false, 0, 0, 0, 1)`, day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if res, err := qsql.Migrate(ctx, c); err != nil || len(res.Applied) != 0 {
		t.Fatalf("second Migrate: %+v, %v", res, err)
	}
}

func TestCheckVersionTooOld(t *testing.T) {
	db := sqltest.New(t, "old")
	c := db.Connect(t)
	err := qsql.CheckVersion(context.Background(), c)
	if !errors.Is(err, qsql.ErrSchemaTooOld) || !strings.Contains(err.Error(), "qos-cli migrate") {
		t.Fatalf("CheckVersion on an empty schema: %v", err)
	}
}

func TestMigrateNoSchema(t *testing.T) {
	db := sqltest.New(t, "noschema")
	cfg := db.Config(t)
	cfg.RuntimeParams["search_path"] = db.Schema + "_missing"
	c := sqltest.Connect(t, cfg)
	_, err := qsql.Migrate(context.Background(), c)
	if !errors.Is(err, qsql.ErrNoSchema) {
		t.Fatalf("Migrate without a schema: %v", err)
	}
}

func TestPartitionsAndPrune(t *testing.T) {
	db := sqltest.New(t, "prune")
	c := db.Connect(t)
	ctx := context.Background()
	if _, err := qsql.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var days []time.Time
	for i := range 5 {
		days = append(days, d0.Add(time.Duration(i)*24*time.Hour+3*time.Hour))
	}
	if err := qsql.EnsurePartitions(ctx, c, days...); err != nil {
		t.Fatal(err)
	}
	if err := qsql.EnsurePartitions(ctx, c, days...); err != nil { // idempotent
		t.Fatal(err)
	}
	// One row per day.
	for i, d := range days {
		_, err := c.Exec(ctx, `INSERT INTO completed_tx (observed_at, seq, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash)
			VALUES ($1, $2, 1, 0, '10.0.0.1', decode(repeat('ab', 32), 'hex'), 1, 1, 1, 0, false, 0, 0, 0)`, d, i)
		if err != nil {
			t.Fatal(err)
		}
	}
	daily, other, err := qsql.Partitions(ctx, c)
	if err != nil || len(daily) != 10 || len(other) != 0 {
		t.Fatalf("partitions: %d daily, %v other, %v", len(daily), other, err)
	}
	if got := qsql.PartitionName(qsql.Table, days[1]); got != "completed_tx_p20240302" {
		t.Fatalf("PartitionName = %s", got)
	}
	// Cut in the middle of day 2 (0-based): days 0 and 1 go, day 2 stays.
	dropped, err := qsql.Prune(ctx, c, d0.Add(2*24*time.Hour+12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"completed_tx_batches_p20240301", "completed_tx_batches_p20240302", "completed_tx_p20240301", "completed_tx_p20240302"}
	if strings.Join(dropped, ",") != strings.Join(want, ",") {
		t.Fatalf("dropped %v, want %v", dropped, want)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM completed_tx").Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d rows left (%v), want 3", n, err)
	}
	dropped, err = qsql.Prune(ctx, c, d0)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("second prune dropped %v (%v)", dropped, err)
	}
}
