package schema

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Table is the metastore's row table (completed transactions, and since
// migration 2 the penalties too, told apart by kind); BatchTable the sink's
// batch markers. Both are range-partitioned by UTC day of observed_at.
const (
	Table      = "completed_tx"
	BatchTable = "completed_tx_batches"
)

// partitioned lists the tables whose daily partitions the helpers manage.
var partitioned = [...]string{Table, BatchTable}

const dayLayout = "20060102"

// Day truncates t to the start of its UTC day.
func Day(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}

// PartitionName returns the name of table's partition for the UTC day of t,
// e.g. completed_tx_p20250102.
func PartitionName(table string, t time.Time) string {
	return table + "_p" + Day(t).Format(dayLayout)
}

// EnsurePartitions creates, if missing, the partitions of every partitioned
// table for the UTC days of each of days. It runs in one transaction under
// the schema lock, so concurrent callers do not collide.
func EnsurePartitions(ctx context.Context, c Conn, days ...time.Time) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return fmt.Errorf("create partitions: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		return fmt.Errorf("create partitions: lock: %w", err)
	}
	for _, t := range days {
		from := Day(t)
		to := from.Add(24 * time.Hour)
		for _, table := range partitioned {
			name := PartitionName(table, from)
			q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
				name, table, from.Format(time.RFC3339), to.Format(time.RFC3339))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create partition %s: %w", name, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("create partitions: commit: %w", err)
	}
	return nil
}

// Partition is one daily partition found in the current schema.
type Partition struct {
	Table string    // parent table
	Name  string    // partition table
	Day   time.Time // UTC start of the day it holds
}

// Partitions lists the daily partitions of the managed tables in the
// current schema, oldest first. Partitions whose names do not follow the
// <table>_pYYYYMMDD pattern are returned in other.
func Partitions(ctx context.Context, c Conn) (daily []Partition, other []string, err error) {
	rows, err := c.Query(ctx, `
		SELECT p.relname, c.relname
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_namespace n ON n.oid = p.relnamespace
		WHERE n.nspname = current_schema() AND p.relname = ANY($1)
		ORDER BY c.relname`, partitioned[:])
	if err != nil {
		return nil, nil, fmt.Errorf("list partitions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var parent, name string
		if err := rows.Scan(&parent, &name); err != nil {
			return nil, nil, fmt.Errorf("list partitions: %w", err)
		}
		suffix, ok := strings.CutPrefix(name, parent+"_p")
		day, perr := time.Parse(dayLayout, suffix)
		if !ok || perr != nil {
			other = append(other, name)
			continue
		}
		daily = append(daily, Partition{Table: parent, Name: name, Day: day})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("list partitions: %w", err)
	}
	return daily, other, nil
}

// Prune drops, in one transaction, every daily partition whose whole day
// lies before cut (its end ≤ cut), and returns the names dropped. Rows of
// the day that contains cut are kept.
func Prune(ctx context.Context, c Conn, cut time.Time) ([]string, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		return nil, fmt.Errorf("prune: lock: %w", err)
	}
	daily, _, err := Partitions(ctx, tx)
	if err != nil {
		return nil, err
	}
	var dropped []string
	for _, p := range daily {
		if p.Day.Add(24 * time.Hour).After(cut) {
			continue
		}
		if _, err := tx.Exec(ctx, `DROP TABLE `+p.Name); err != nil {
			return nil, fmt.Errorf("prune: drop %s: %w", p.Name, err)
		}
		dropped = append(dropped, p.Name)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("prune: commit: %w", err)
	}
	return dropped, nil
}
