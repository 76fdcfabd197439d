package schema

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// VersionTable records the migrations applied to a schema.
const VersionTable = "qos_schema_migrations"

// Sentinel errors; errors.Is works on what Migrate and CheckVersion return.
var (
	// ErrSchemaTooNew: the database was migrated by a newer binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrSchemaTooOld: the database lacks migrations this binary needs.
	ErrSchemaTooOld = errors.New("database schema is older than this binary")
	// ErrNoSchema: search_path names no existing schema to create tables in.
	ErrNoSchema = errors.New("no schema to create tables in")
)

// Conn is what the helpers need of a connection; *pgx.Conn and pgx.Tx both
// satisfy it.
type Conn interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Migration is one embedded schema change.
type Migration struct {
	Version int    // from the file name's leading number
	Name    string // the file name
	SQL     string
}

// Migrations returns the embedded migrations in version order. Their
// versions are 1, 2, 3, … without gaps (checked by a test).
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		if path.Ext(name) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number and '_'", name)
		}
		b, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions must run 1, 2, 3, … without gaps)", m.Name, m.Version, i+1)
		}
	}
	return ms, nil
}

// Latest returns the schema version this binary writes and reads.
func Latest() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Result tells what Migrate did.
type Result struct {
	Schema  string // the schema migrated
	From    int    // version found
	To      int    // version left
	Applied []Migration
}

// lockSQL serialises schema changes per schema for the transaction's life.
const lockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('qos.schema:' || current_schema(), 0))`

// Migrate brings the connection's current schema to Latest in one
// transaction holding an advisory lock, so concurrent starts are safe and
// applying twice is a no-op. A schema at a newer version than this binary
// knows is refused with ErrSchemaTooNew and left untouched.
func Migrate(ctx context.Context, c Conn) (Result, error) {
	ms, err := Migrations()
	if err != nil {
		return Result{}, err
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].Version
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	res, err := currentSchema(ctx, tx)
	if err != nil {
		return res, err
	}
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		return res, fmt.Errorf("migrate %s: lock: %w", res.Schema, err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+VersionTable+` (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return res, fmt.Errorf("migrate %s: create %s: %w", res.Schema, VersionTable, err)
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+VersionTable).Scan(&res.From); err != nil {
		return res, fmt.Errorf("migrate %s: read version: %w", res.Schema, err)
	}
	res.To = res.From
	if res.From > latest {
		return res, tooNew(res.Schema, res.From, latest)
	}
	for _, m := range ms[res.From:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return res, fmt.Errorf("migrate %s: apply %s: %w", res.Schema, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+VersionTable+` (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return res, fmt.Errorf("migrate %s: record %s: %w", res.Schema, m.Name, err)
		}
		res.Applied = append(res.Applied, m)
		res.To = m.Version
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("migrate %s: commit: %w", res.Schema, err)
	}
	return res, nil
}

// Version returns the schema version of the connection's current schema (0
// when it was never migrated).
func Version(ctx context.Context, c Conn) (schema string, version int, err error) {
	res, err := currentSchema(ctx, c)
	if err != nil {
		return "", 0, err
	}
	var exists bool
	err = c.QueryRow(ctx, `SELECT to_regclass(quote_ident(current_schema()) || '.`+VersionTable+`') IS NOT NULL`).Scan(&exists)
	if err != nil {
		return res.Schema, 0, fmt.Errorf("schema %s: look for %s: %w", res.Schema, VersionTable, err)
	}
	if !exists {
		return res.Schema, 0, nil
	}
	if err := c.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+VersionTable).Scan(&version); err != nil {
		return res.Schema, 0, fmt.Errorf("schema %s: read version: %w", res.Schema, err)
	}
	return res.Schema, version, nil
}

// CheckVersion returns nil when the schema is exactly at Latest, else a
// clear error wrapping ErrSchemaTooNew or ErrSchemaTooOld.
func CheckVersion(ctx context.Context, c Conn) error {
	schema, v, err := Version(ctx, c)
	if err != nil {
		return err
	}
	latest := Latest()
	switch {
	case v > latest:
		return tooNew(schema, v, latest)
	case v < latest:
		return fmt.Errorf("%w: schema %q is at version %d, this binary needs %d: run `qos-cli migrate`", ErrSchemaTooOld, schema, v, latest)
	}
	return nil
}

func tooNew(schema string, have, latest int) error {
	return fmt.Errorf("%w: schema %q is at version %d but this binary knows versions up to %d; refusing to touch it (upgrade qos)", ErrSchemaTooNew, schema, have, latest)
}

func currentSchema(ctx context.Context, c Conn) (Result, error) {
	var schema *string
	if err := c.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return Result{}, fmt.Errorf("read current schema: %w", err)
	}
	if schema == nil {
		var sp string
		_ = c.QueryRow(ctx, `SHOW search_path`).Scan(&sp)
		return Result{}, fmt.Errorf("%w: search_path %q names no existing schema (create it, or fix search_path)", ErrNoSchema, sp)
	}
	return Result{Schema: *schema}, nil
}
