package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	qsql "github.com/solqos/qos/sql"
)

// modelFlags are the model's constants, spelled as the daemon spells them
// (--model-window, --prior-weight, --unknown-prior, --min-observations,
// --max-ips, --max-prefixes, --max-signers, --min-score).
func modelFlags() []cli.Flag { return cliflags.ModelFlags() }

// modelParams reads and validates the flags of modelFlags.
func modelParams(c *cli.Context) (model.Params, error) { return cliflags.ModelParams(c) }

// dbURLFlag is the connection flag of every database command.
func dbURLFlag() cli.Flag {
	return &cli.StringFlag{Name: "db-url", Category: cliflags.CatDatabase, EnvVars: cliflags.Env("db-url"),
		Usage: "Postgres to use: a postgres:// URL or key=value string; when empty (or for what it leaves out) " +
			"the standard PG* variables (PGHOST, PGDATABASE, PGUSER, PGPASSWORD, …) apply. " +
			"Tables live in the first schema of search_path (add ?search_path=NAME to choose one)"}
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
			res, err := qsql.Migrate(c.Context, conn)
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
	schema, v, err := qsql.Version(ctx, conn)
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	fmt.Fprintf(out, "%s schema %s: version %d (this binary: %d)\n", desc, schema, v, qsql.Latest())
	if v == 0 {
		return nil
	}
	daily, other, err := qsql.Partitions(ctx, conn)
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "partition\tday\trows (estimate)")
	for _, p := range daily {
		if p.Table != qsql.Table {
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
	if err := qsql.CheckVersion(ctx, conn); err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	if dryRun {
		daily, _, err := qsql.Partitions(ctx, conn)
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
	dropped, err := qsql.Prune(ctx, conn, cut)
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

func replayCommand() *cli.Command {
	flags := []cli.Flag{
		dbURLFlag(),
		&cli.StringFlag{Name: "from", Category: catReplay,
			Usage: "first time replayed (inclusive): 2006-01-02, an RFC 3339 time, or an age such as 7d; open when empty"},
		&cli.StringFlag{Name: "to", Category: catReplay,
			Usage: "end of the range (exclusive), same forms as --from; open when empty"},
		&cli.StringFlag{Name: "out", Category: catReplay,
			Usage: "write the rebuilt model here (the daemon loads it with --model-file); required unless --evaluate or --sweep"},
		&cli.BoolFlag{Name: "evaluate", Category: catReplay,
			Usage: "train on the first part of the range and report how the model ranks the rest against fee/CU alone and the oracle"},
		&cli.Float64Flag{Name: "train-fraction", Category: catReplay, Value: 0.7,
			Usage: "share of the rows (in time order) used only for training by --evaluate and --sweep"},
		&cli.BoolFlag{Name: "frozen", Category: catReplay,
			Usage: "stop learning after the training part (default: keep learning while scoring, as the daemon does)"},
		&cli.BoolFlag{Name: "sweep", Category: catReplay,
			Usage: "evaluate a grid of model parameters (the --sweep-* lists) in one pass and print the best"},
		&cli.StringFlag{Name: "sweep-window", Category: catReplay, Value: "50,200,1000",
			Usage: "model-window values tried by --sweep"},
		&cli.StringFlag{Name: "sweep-min-observations", Category: catReplay, Value: "1,5,20",
			Usage: "min-observations values tried by --sweep"},
		&cli.StringFlag{Name: "sweep-prior-weight", Category: catReplay, Value: "1,4,16",
			Usage: "prior-weight values tried by --sweep"},
		&cli.BoolFlag{Name: "json", Category: catReplay,
			Usage: "print the report as JSON"},
		&cli.IntFlag{Name: "page-rows", Category: catReplay, Value: 8192,
			Usage: "rows fetched per query (keyset pages; memory does not grow with the range)"},
	}
	return &cli.Command{
		Name:  "replay",
		Usage: "rebuild the model from the metastore's rows, write a model file, and evaluate rankings",
		Description: "Streams the rows of the range (completed transactions and penalties) in the order the\n" +
			"daemon applied them and feeds them to the model exactly as the daemon does (same Observe and\n" +
			"Penalize calls, same batches), with the model constants of the flags. The rebuilt model is\n" +
			"the daemon's exactly when the daemon ran with --db-feedback (the default) and dropped no row.\n" +
			"--evaluate splits the completed transactions into training and test parts (penalties still\n" +
			"update the model in their place) and measures, for budgets of 1, 5, 10 and 25 % of the test\n" +
			"transactions, the fee of scheduled transactions captured by ranking on model score × fee/CU,\n" +
			"on fee/CU alone, and by the oracle.",
		Flags:  append(flags, modelFlags()...),
		Action: runReplay,
	}
}

// replayReport is what --json prints.
type replayReport struct {
	DB        string                 `json:"db"`
	From      string                 `json:"from,omitempty"`
	To        string                 `json:"to,omitempty"`
	Rows      int64                  `json:"rows"`
	Completed int64                  `json:"completed"` // completed-transaction rows
	Feedback  int64                  `json:"feedback"`  // penalty rows (failed sigverify, unparsable)
	Seconds   float64                `json:"seconds"`
	ModelFile string                 `json:"model_file,omitempty"`
	Model     *model.Stats           `json:"model,omitempty"`
	Frozen    bool                   `json:"frozen,omitempty"`
	Results   []replayEvalResultJSON `json:"results,omitempty"`
	Best      *int                   `json:"best,omitempty"` // index in results (sweep)
}

type replayEvalResultJSON struct {
	metastore.EvalResult
	Merit    float64 `json:"merit"`     // mean model share of the oracle over the budgets
	FeeMerit float64 `json:"fee_merit"` // same for fee/CU alone
}

func runReplay(c *cli.Context) error {
	params, err := modelParams(c)
	if err != nil {
		return err
	}
	now := time.Now()
	from, err := parseTime(c.String("from"), now)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := parseTime(c.String("to"), now)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return fmt.Errorf("--to (%s) is not after --from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	evaluate, sweep, out := c.Bool("evaluate"), c.Bool("sweep"), c.String("out")
	if out == "" && !evaluate && !sweep {
		return errors.New("--out is required (where to write the model), unless --evaluate or --sweep")
	}
	grid := []model.Params{params}
	if sweep {
		g, err := sweepGrid(c, params)
		if err != nil {
			return err
		}
		grid = append(grid, g...)
	}
	conn, desc, err := connectDB(c)
	if err != nil {
		return err
	}
	defer closeDB(conn)
	if err := qsql.CheckVersion(c.Context, conn); err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	prog := newProgressPrinter(c.App.ErrWriter)
	rep := replayReport{DB: desc, ModelFile: out, Frozen: c.Bool("frozen")}
	if !from.IsZero() {
		rep.From = from.UTC().Format(time.RFC3339Nano)
	}
	if !to.IsZero() {
		rep.To = to.UTC().Format(time.RFC3339Nano)
	}
	start := time.Now()
	var m *model.IPSigner
	var results []metastore.EvalResult
	if evaluate || sweep {
		results, err = metastore.Evaluate(c.Context, conn, metastore.EvalOptions{
			From: from, To: to, Grid: grid,
			TrainFraction: c.Float64("train-fraction"),
			Frozen:        c.Bool("frozen"),
			PageRows:      c.Int("page-rows"),
			Progress:      prog.report,
		})
		if err != nil {
			return err
		}
		m = results[0].Model
		rep.Completed = results[0].TrainRows + results[0].TestRows
		rep.Feedback = results[0].FeedbackRows
		rep.Rows = rep.Completed + rep.Feedback
	} else {
		m, rep.Rows, err = metastore.Replay(c.Context, conn, metastore.ReplayOptions{
			From: from, To: to, Params: params, PageRows: c.Int("page-rows"), Progress: prog.report,
		})
		if err != nil {
			return err
		}
		// A fresh model: every feedback row was one penalty.
		rep.Feedback = int64(m.Stats().Penalties)
		rep.Completed = rep.Rows - rep.Feedback
	}
	rep.Seconds = time.Since(start).Seconds()
	st := m.Stats()
	rep.Model = &st
	if out != "" {
		if err := m.Save(out); err != nil {
			return fmt.Errorf("write model: %w", err)
		}
	}
	for _, r := range results {
		rep.Results = append(rep.Results, replayEvalResultJSON{EvalResult: r, Merit: r.Merit(), FeeMerit: feeMerit(r)})
	}
	if sweep {
		best := bestResult(results)
		rep.Best = &best
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printReplay(c.App.Writer, &rep)
}

func feeMerit(r metastore.EvalResult) float64 {
	if len(r.Budgets) == 0 {
		return 0
	}
	s := 0.0
	for _, b := range r.Budgets {
		s += b.FeeShare()
	}
	return s / float64(len(r.Budgets))
}

// bestResult returns the index of the highest merit (first on ties).
func bestResult(rs []metastore.EvalResult) int {
	best := 0
	for i := range rs {
		if rs[i].Merit() > rs[best].Merit() {
			best = i
		}
	}
	return best
}

// sweepGrid is the cross product of the --sweep-* lists over base, minus
// combinations the model rejects and base itself.
func sweepGrid(c *cli.Context, base model.Params) ([]model.Params, error) {
	windows, err := parseFloats(c.String("sweep-window"))
	if err != nil {
		return nil, fmt.Errorf("--sweep-window: %w", err)
	}
	minObs, err := parseFloats(c.String("sweep-min-observations"))
	if err != nil {
		return nil, fmt.Errorf("--sweep-min-observations: %w", err)
	}
	weights, err := parseFloats(c.String("sweep-prior-weight"))
	if err != nil {
		return nil, fmt.Errorf("--sweep-prior-weight: %w", err)
	}
	var grid []model.Params
	for _, wi := range windows {
		for _, mo := range minObs {
			for _, pw := range weights {
				p := base
				p.Window, p.MinObservations, p.PriorWeight = int(wi), int(mo), pw
				if p == base || p.Validate() != nil || mo != float64(int(mo)) || wi != float64(int(wi)) {
					continue
				}
				grid = append(grid, p)
			}
		}
	}
	if len(grid) > 512 {
		return nil, fmt.Errorf("sweep grid has %d points; at most 512 are evaluated in one pass", len(grid))
	}
	return grid, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty list")
	}
	return out, nil
}

func printReplay(w io.Writer, rep *replayReport) error {
	rate := 0.0
	if rep.Seconds > 0 {
		rate = float64(rep.Rows) / rep.Seconds
	}
	fmt.Fprintf(w, "replayed %d rows from %s in %.1fs (%.0f rows/s): %d completed transactions, %d penalties\n",
		rep.Rows, rep.DB, rep.Seconds, rate, rep.Completed, rep.Feedback)
	if st := rep.Model; st != nil {
		fmt.Fprintf(w, "model: %d IPs, %d + %d prefixes, %d signers, %d observations (%d paid), unknown IP factor %.4g\n",
			st.IPs, st.NearPrefixes, st.WidePrefixes, st.Signers, st.Observations, st.Paid, st.UnknownIP)
	}
	if rep.ModelFile != "" {
		fmt.Fprintf(w, "model written to %s\n", rep.ModelFile)
	}
	if len(rep.Results) == 0 {
		return nil
	}
	r := rep.Results[0]
	mode := "learning online while scoring, as the daemon does"
	if rep.Frozen {
		mode = "model frozen after training"
	}
	fmt.Fprintf(w, "\nevaluation: trained on %d rows, tested on %d (%s)\n", r.TrainRows, r.TestRows, mode)
	fmt.Fprintln(w, "value = total fee (lamports) of scheduled transactions among the top k test rows")
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "budget\tk\tmodel×fee/CU\tfee/CU only\toracle\tmodel/oracle\tfee/oracle\t")
	for _, b := range r.Budgets {
		fmt.Fprintf(tw, "%g%%\t%d\t%.0f\t%.0f\t%.0f\t%.1f%%\t%.1f%%\t\n",
			100*b.Budget, b.K, b.Model, b.FeeOnly, b.Oracle, 100*b.ModelShare(), 100*b.FeeShare())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Best == nil {
		return nil
	}
	idx := make([]int, len(rep.Results))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rep.Results[idx[a]].Merit > rep.Results[idx[b]].Merit })
	fmt.Fprintf(w, "\nsweep: %d parameter sets; merit = mean share of the oracle over the budgets (fee/CU only: %.1f%%)\n",
		len(rep.Results), 100*r.FeeMerit)
	tw = tabwriter.NewWriter(w, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "rank\twindow\tmin-obs\tprior-weight\tmerit\t")
	for _, b := range r.Budgets {
		fmt.Fprintf(tw, "%g%%\t", 100*b.Budget)
	}
	fmt.Fprintln(tw)
	for rank, i := range idx {
		if rank == 10 {
			break
		}
		e := rep.Results[i]
		mark := ""
		if i == 0 {
			mark = " (flags)"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%g\t%.1f%%%s\t", rank+1, e.Params.Window, e.Params.MinObservations, e.Params.PriorWeight, 100*e.Merit, mark)
		for _, b := range e.Budgets {
			fmt.Fprintf(tw, "%.1f%%\t", 100*b.ModelShare())
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b := rep.Results[*rep.Best]
	fmt.Fprintf(w, "best: --model-window %d --min-observations %d --prior-weight %g (merit %.1f%%, flags' %.1f%%, fee/CU only %.1f%%)\n",
		b.Params.Window, b.Params.MinObservations, b.Params.PriorWeight, 100*b.Merit, 100*r.Merit, 100*r.FeeMerit)
	return nil
}

// progressPrinter shows replay progress: one rewritten line on a
// terminal, a plain line every few seconds otherwise.
type progressPrinter struct {
	w     io.Writer
	tty   bool
	every time.Duration
	last  time.Time
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	p := &progressPrinter{w: w, every: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.every = true, 200*time.Millisecond
		}
	}
	return p
}

func (p *progressPrinter) report(pr metastore.Progress) {
	if !pr.Done && time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	pct := 100.0
	if pr.Total > 0 {
		pct = 100 * float64(pr.Rows) / float64(pr.Total)
	}
	line := fmt.Sprintf("replay: %d/%d rows (%.1f%%), %.0f rows/s, ETA %s, at %s",
		pr.Rows, pr.Total, pct, pr.RowsPerSecond(), pr.ETA().Round(time.Second), pr.At.Format(time.RFC3339))
	switch {
	case p.tty && pr.Done:
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	case p.tty:
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	default:
		fmt.Fprintln(p.w, line)
	}
}
