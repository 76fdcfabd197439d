package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/schema"
)

// modelFlags are the model's constants, spelled as the daemon spells them
// (--model-window, --prior-weight, --unknown-prior, --min-observations,
// --max-ips, --max-prefixes, --max-signers, --min-score).
func modelFlags() []cli.Flag { return cliflags.ModelFlags() }

// modelParams reads and validates the flags of modelFlags.
func modelParams(c *cli.Context) (model.Params, error) { return cliflags.ModelParams(c) }

// dbURLFlag is the connection flag of every database command.
func dbURLFlag() cli.Flag {
	return cliflags.WithEnv([]cli.Flag{&cli.StringFlag{Name: "db-url", Category: cliflags.CatDatabase,
		Usage: "Postgres to use: a postgres:// URL or key=value string; when empty (or for what it leaves out) " +
			"the standard PG* variables (PGHOST, PGDATABASE, PGUSER, PGPASSWORD, …) apply. " +
			"Tables live in the first schema of search_path (add ?search_path=NAME to choose one)"}})[0]
}

// connectDB connects as --db-url says; the connection is closed by the
// returned function.
func connectDB(c *cli.Context) (*pgx.Conn, string, error) {
	cfg, err := metastore.ParseConnConfig(c.String("db-url"), "qos-cli")
	if err != nil {
		return nil, "", err
	}
	desc := metastore.Describe(cfg)
	ctx, cancel := context.WithTimeout(c.Context, 15*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		// pgx's ConnectError names the user; say where instead.
		var ce interface{ Unwrap() error }
		if errors.As(err, &ce) && ce.Unwrap() != nil {
			err = ce.Unwrap()
		}
		return nil, desc, fmt.Errorf("connect to %s: %w", desc, err)
	}
	return conn, desc, nil
}

func closeDB(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create or upgrade the metastore's tables in Postgres (idempotent)",
		Description: "Applies the schema migrations embedded in this binary that the database lacks, in one\n" +
			"transaction under an advisory lock. Running it again is a no-op. A database migrated by a\n" +
			"newer qos is refused, untouched.",
		Flags: []cli.Flag{dbURLFlag()},
		Action: func(c *cli.Context) error {
			conn, desc, err := connectDB(c)
			if err != nil {
				return err
			}
			defer closeDB(conn)
			res, err := schema.Migrate(c.Context, conn)
			if err != nil {
				return fmt.Errorf("%s: %w", desc, err)
			}
			out := c.App.Writer
			if len(res.Applied) == 0 {
				fmt.Fprintf(out, "%s schema %s: already at version %d, nothing to do\n", desc, res.Schema, res.To)
				return nil
			}
			for _, m := range res.Applied {
				fmt.Fprintf(out, "%s schema %s: applied %s\n", desc, res.Schema, m.Name)
			}
			fmt.Fprintf(out, "%s schema %s: version %d → %d\n", desc, res.Schema, res.From, res.To)
			return nil
		},
	}
}

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "look after the metastore database (status, prune)",
		Subcommands: []*cli.Command{
			{
				Name:  "status",
				Usage: "print the schema version and the daily partitions with their row counts",
				Flags: []cli.Flag{dbURLFlag()},
				Action: func(c *cli.Context) error {
					conn, desc, err := connectDB(c)
					if err != nil {
						return err
					}
					defer closeDB(conn)
					return dbStatus(c.Context, conn, desc, c.App.Writer)
				},
			},
			{
				Name:  "prune",
				Usage: "drop the daily partitions whose whole day is older than --older-than",
				Description: "Drops whole partitions (instant, no vacuum needed): every day that ended more than\n" +
					"--older-than ago. Rows of the day containing the cut are kept.",
				Flags: []cli.Flag{
					dbURLFlag(),
					&cli.StringFlag{Name: "older-than", Required: true, Category: cliflags.CatDatabase,
						Usage: "age of the cut: a duration such as 720h, or days such as 30d"},
					&cli.BoolFlag{Name: "dry-run", Category: cliflags.CatDatabase,
						Usage: "list what would be dropped, drop nothing"},
				},
				Action: func(c *cli.Context) error {
					age, err := parseAge(c.String("older-than"))
					if err != nil {
						return fmt.Errorf("--older-than: %w", err)
					}
					conn, desc, err := connectDB(c)
					if err != nil {
						return err
					}
					defer closeDB(conn)
					return dbPrune(c.Context, conn, desc, time.Now().Add(-age), c.Bool("dry-run"), c.App.Writer)
				},
			},
		},
	}
}

func dbStatus(ctx context.Context, conn *pgx.Conn, desc string, out io.Writer) error {
	name, v, err := schema.Version(ctx, conn)
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	fmt.Fprintf(out, "%s schema %s: version %d (this binary: %d)\n", desc, name, v, schema.Latest())
	if v == 0 {
		return nil
	}
	daily, other, err := schema.Partitions(ctx, conn)
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "partition\tday\trows (estimate)")
	for _, p := range daily {
		if p.Table != schema.Table {
			continue
		}
		var est float64
		if err := conn.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)`, p.Name).Scan(&est); err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\n", p.Name, p.Day.Format("2006-01-02"), max(est, 0))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, name := range other {
		fmt.Fprintf(out, "not managed (name not <table>_pYYYYMMDD): %s\n", name)
	}
	return nil
}

func dbPrune(ctx context.Context, conn *pgx.Conn, desc string, cut time.Time, dryRun bool, out io.Writer) error {
	if err := schema.CheckVersion(ctx, conn); err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	if dryRun {
		daily, _, err := schema.Partitions(ctx, conn)
		if err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		n := 0
		for _, p := range daily {
			if !p.Day.Add(24 * time.Hour).After(cut) {
				fmt.Fprintf(out, "would drop %s\n", p.Name)
				n++
			}
		}
		fmt.Fprintf(out, "%s: %d partitions end before %s (dry run: nothing dropped)\n", desc, n, cut.UTC().Format(time.RFC3339))
		return nil
	}
	dropped, err := schema.Prune(ctx, conn, cut)
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	for _, name := range dropped {
		fmt.Fprintf(out, "dropped %s\n", name)
	}
	fmt.Fprintf(out, "%s: dropped %d partitions ending before %s\n", desc, len(dropped), cut.UTC().Format(time.RFC3339))
	return nil
}

// parseAge reads a duration: Go's syntax (90m, 720h) or whole days (30d).
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 || n > 1e5 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (such as 720h or 30d)", s)
	}
	return d, nil
}

// parseTime reads a --from/--to bound: RFC 3339, a UTC date or date and
// time, or an age (36h, 7d) meaning that long before now. "" is open.
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	if d, err := parseAge(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2006-01-02, 2006-01-02T15:04:05Z, or an age such as 36h or 7d)", s)
}

const catReplay = "Replay"
