// Package schematest gives each test its own empty schema in the test
// Postgres, so tests of several packages can run side by side and leave
// nothing behind.
package schematest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is used when QOS_TEST_DATABASE_URL is unset (scripts/test sets
// it and starts the server).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DB is a fresh schema for one test.
type DB struct {
	Schema string
	// URL connects with search_path set to Schema.
	URL string
	// BaseURL connects without it (to the same database).
	BaseURL string
}

// Config parses URL. Each call returns a new config.
func (d *DB) Config(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	cfg, err := pgx.ParseConfig(d.URL)
	if err != nil {
		t.Fatalf("parse %s: %v", d.URL, err)
	}
	return cfg
}

// Connect opens a connection in the schema, closed at cleanup.
func (d *DB) Connect(t testing.TB) *pgx.Conn {
	t.Helper()
	return Connect(t, d.Config(t))
}

// Connect opens a connection with cfg, closed at cleanup; failing to
// connect within 10 s fails the test.
func Connect(t testing.TB, cfg *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// New creates a schema named qos_test_<prefix>_<random> and drops it at
// cleanup. When the server is unreachable the test is skipped, except with
// CI=true, where it fails.
func New(t testing.TB, prefix string) *DB {
	t.Helper()
	base := os.Getenv("QOS_TEST_DATABASE_URL")
	if base == "" {
		base = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("test Postgres unreachable at %s (CI=true, not skipping): %v", redact(base), err)
		}
		t.Skipf("test Postgres unreachable at %s (run ./scripts/test): %v", redact(base), err)
	}
	defer admin.Close(context.Background())
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "qos_test_" + prefix + "_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return &DB{Schema: schema, URL: withSearchPath(t, base, schema), BaseURL: base}
}

// withSearchPath adds search_path to a URL or a keyword/value DSN.
func withSearchPath(t testing.TB, base, schema string) string {
	t.Helper()
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " search_path=" + schema
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
