package metastore

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// ErrBadURL: the database URL (or PG* environment) does not parse.
var ErrBadURL = errors.New("bad database connection settings")

// ParseConnConfig reads connection settings from url, a postgres:// URL or
// a keyword/value string; "" means the standard PG* environment variables
// (PGHOST, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, …), which also fill
// whatever url leaves out. application_name defaults to app.
//
// The error never repeats url, which may hold a password.
func ParseConnConfig(url, app string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: the URL or PG* variables do not parse (text withheld: it may hold a password)", ErrBadURL)
	}
	if app != "" && cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = app
	}
	return cfg, nil
}

// Describe names the server and database of cfg for logs: host:port/db,
// never the user or password.
func Describe(cfg *pgx.ConnConfig) string {
	if cfg == nil {
		return "(no database)"
	}
	return cfg.Host + ":" + strconv.Itoa(int(cfg.Port)) + "/" + cfg.Database
}
