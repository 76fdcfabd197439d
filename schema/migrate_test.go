package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/solqos/qos/schema"
	"github.com/solqos/qos/schema/schematest"
)

func TestMigrationsEmbedded(t *testing.T) {
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || schema.Latest() != len(ms) {
		t.Fatalf("%d migrations, latest %d", len(ms), schema.Latest())
	}
	for i, m := range ms {
		if m.Version != i+1 || strings.TrimSpace(m.SQL) == "" {
			t.Fatalf("migration %d: %+v", i, m.Name)
		}
	}
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	db := schematest.New(t, "migrate")
	c := db.Connect(t)
	ctx := context.Background()
	res, err := schema.Migrate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Schema != db.Schema || res.From != 0 || res.To != schema.Latest() || len(res.Applied) != schema.Latest() {
		t.Fatalf("first migrate: %+v", res)
	}
	res, err = schema.Migrate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != schema.Latest() || res.To != schema.Latest() || len(res.Applied) != 0 {
		t.Fatalf("second migrate not a no-op: %+v", res)
	}
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM "+schema.VersionTable).Scan(&n); err != nil || n != schema.Latest() {
		t.Fatalf("%d version rows (%v)", n, err)
	}
	if err := schema.CheckVersion(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	db := schematest.New(t, "migconc")
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		c := db.Connect(t)
		go func() {
			_, err := schema.Migrate(ctx, c)
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
	db := schematest.New(t, "newer")
	c := db.Connect(t)
	ctx := context.Background()
	if _, err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	future := schema.Latest() + 1
	if _, err := c.Exec(ctx, "INSERT INTO "+schema.VersionTable+" (version, name) VALUES ($1, 'from_the_future.sql')", future); err != nil {
		t.Fatal(err)
	}
	_, err := schema.Migrate(ctx, c)
	if !errors.Is(err, schema.ErrSchemaTooNew) {
		t.Fatalf("Migrate on a newer schema: %v", err)
	}
	for _, want := range []string{db.Schema, "version", "upgrade qos"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	t.Logf("message: %v", err)
	if err := schema.CheckVersion(ctx, c); !errors.Is(err, schema.ErrSchemaTooNew) {
		t.Fatalf("CheckVersion: %v", err)
	}
}

// TestMigrateFromVersion1: a database a version-1 binary created and
// filled is brought to the latest version with its rows intact, and they
// read as completed transactions (kind 0).
func TestMigrateFromVersion1(t *testing.T) {
	db := schematest.New(t, "v1")
	c := db.Connect(t)
	ctx := context.Background()
	ms, err := schema.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	// What a version-1 binary's Migrate left behind.
	for _, q := range []string{
		`CREATE TABLE ` + schema.VersionTable + ` (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
		ms[0].SQL,
		`INSERT INTO ` + schema.VersionTable + ` (version, name) VALUES (1, '` + ms[0].Name + `')`,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if err := schema.EnsurePartitions(ctx, c, day); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		_, err := c.Exec(ctx, `INSERT INTO completed_tx (observed_at, seq, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash)
			VALUES ($1, $2, 1, 0, '10.0.0.1', decode(repeat('ab', 32), 'hex'), 1, 1, 1, 0, false, 0, 0, 0)`, day, i)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.CheckVersion(ctx, c); !errors.Is(err, schema.ErrSchemaTooOld) {
		t.Fatalf("CheckVersion at version 1: %v", err)
	}
	res, err := schema.Migrate(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.To != schema.Latest() || len(res.Applied) != schema.Latest()-1 {
		t.Fatalf("Migrate from version 1: %+v", res)
	}
	if err := schema.CheckVersion(ctx, c); err != nil {
		t.Fatal(err)
	}
	var n, completed int
	if err := c.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE kind = 0) FROM completed_tx").Scan(&n, &completed); err != nil || n != 3 || completed != 3 {
		t.Fatalf("after migrating: %d rows, %d of kind 0 (%v); want 3, 3", n, completed, err)
	}
	// New partitions get the column too.
	if err := schema.EnsurePartitions(ctx, c, day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO completed_tx (observed_at, seq, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash, kind)
		VALUES ($1, 9, 1, 255, '10.0.0.1', decode(repeat('00', 32), 'hex'), 0, 0, 0, 0, false, 0, 0, 0, 1)`, day.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if res, err := schema.Migrate(ctx, c); err != nil || len(res.Applied) != 0 {
		t.Fatalf("second Migrate: %+v, %v", res, err)
	}
}

func TestCheckVersionTooOld(t *testing.T) {
	db := schematest.New(t, "old")
	c := db.Connect(t)
	err := schema.CheckVersion(context.Background(), c)
	if !errors.Is(err, schema.ErrSchemaTooOld) || !strings.Contains(err.Error(), "qos-cli migrate") {
		t.Fatalf("CheckVersion on an empty schema: %v", err)
	}
}

func TestMigrateNoSchema(t *testing.T) {
	db := schematest.New(t, "noschema")
	cfg := db.Config(t)
	cfg.RuntimeParams["search_path"] = db.Schema + "_missing"
	c := schematest.Connect(t, cfg)
	_, err := schema.Migrate(context.Background(), c)
	if !errors.Is(err, schema.ErrNoSchema) {
		t.Fatalf("Migrate without a schema: %v", err)
	}
}

func TestPartitionsAndPrune(t *testing.T) {
	db := schematest.New(t, "prune")
	c := db.Connect(t)
	ctx := context.Background()
	if _, err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var days []time.Time
	for i := range 5 {
		days = append(days, d0.Add(time.Duration(i)*24*time.Hour+3*time.Hour))
	}
	if err := schema.EnsurePartitions(ctx, c, days...); err != nil {
		t.Fatal(err)
	}
	if err := schema.EnsurePartitions(ctx, c, days...); err != nil { // idempotent
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
	daily, other, err := schema.Partitions(ctx, c)
	if err != nil || len(daily) != 10 || len(other) != 0 {
		t.Fatalf("partitions: %d daily, %v other, %v", len(daily), other, err)
	}
	if got := schema.PartitionName(schema.Table, days[1]); got != "completed_tx_p20240302" {
		t.Fatalf("PartitionName = %s", got)
	}
	// Cut in the middle of day 2 (0-based): days 0 and 1 go, day 2 stays.
	dropped, err := schema.Prune(ctx, c, d0.Add(2*24*time.Hour+12*time.Hour))
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
	dropped, err = schema.Prune(ctx, c, d0)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("second prune dropped %v (%v)", dropped, err)
	}
}
