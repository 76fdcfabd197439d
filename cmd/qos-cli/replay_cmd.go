package main

import (
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

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/schema"
)

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
		Description: "Streams the rows of the range (sidecar mode's completed transactions, qos pack's\n" +
			"execution results, penalties) in the order the daemon applied them and feeds them to the\n" +
			"model exactly as the daemon does (same Observe and Penalize calls, same batches), with the\n" +
			"model constants of the flags, and says how many rows of each kind it read. The rebuilt model\n" +
			"is the daemon's exactly when the daemon ran with --db-feedback (the default) and dropped no row.\n" +
			"--evaluate splits the transactions (completed or pack results) into training and test parts\n" +
			"(penalties still update the model in their place) and measures, for budgets of 1, 5, 10 and\n" +
			"25 % of the test transactions, the fee of scheduled transactions captured by ranking on\n" +
			"model score × fee/CU, on fee/CU alone, and by the oracle.",
		Flags:  append(flags, modelFlags()...),
		Action: runReplay,
	}
}

// replayReport is what --json prints.
type replayReport struct {
	DB   string `json:"db"`
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	Rows int64  `json:"rows"`
	// Completed counts sidecar mode's completed transactions (kind 0),
	// PackResults qos pack's execution and CHECK results (kind 3),
	// Penalties the penalty rows (failed sigverify, unparsable); Kinds
	// every kind by name (metastore.RowKind.String).
	Completed   int64                `json:"completed"`
	PackResults int64                `json:"pack_results"`
	Penalties   int64                `json:"feedback"`
	Kinds       map[string]int64     `json:"kinds"`
	Seconds     float64              `json:"seconds"`
	ModelFile   string               `json:"model_file,omitempty"`
	Model       *model.Stats         `json:"model,omitempty"`
	Frozen      bool                 `json:"frozen,omitempty"`
	Results     []replayBacktestJSON `json:"results,omitempty"`
	Best        *int                 `json:"best,omitempty"` // index in results (sweep)
}

type replayBacktestJSON struct {
	metastore.BacktestResult
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
	if err := schema.CheckVersion(c.Context, conn); err != nil {
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
	var results []metastore.BacktestResult
	var kinds metastore.KindCounts
	if evaluate || sweep {
		results, err = metastore.Backtest(c.Context, conn, metastore.BacktestOptions{
			From: from, To: to, Grid: grid,
			TrainFraction: c.Float64("train-fraction"),
			Frozen:        c.Bool("frozen"),
			PageRows:      c.Int("page-rows"),
			Progress:      prog.report,
			Kinds:         &kinds,
		})
		if err != nil {
			return err
		}
		m = results[0].Model
	} else {
		m, _, err = metastore.Replay(c.Context, conn, metastore.ReplayOptions{
			From: from, To: to, Params: params, PageRows: c.Int("page-rows"), Progress: prog.report, Kinds: &kinds,
		})
		if err != nil {
			return err
		}
	}
	rep.setKinds(&kinds)
	rep.Seconds = time.Since(start).Seconds()
	st := m.Stats()
	rep.Model = &st
	if out != "" {
		if err := m.Save(out); err != nil {
			return fmt.Errorf("write model: %w", err)
		}
	}
	for _, r := range results {
		rep.Results = append(rep.Results, replayBacktestJSON{BacktestResult: r, Merit: r.Merit(), FeeMerit: feeMerit(r)})
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

// setKinds fills the report's row counts from what the replay read.
func (rep *replayReport) setKinds(k *metastore.KindCounts) {
	rep.Rows = k.Total()
	rep.Completed = k[metastore.RowCompleted]
	rep.PackResults = k[metastore.RowPackResult]
	rep.Penalties = k.Penalties()
	rep.Kinds = make(map[string]int64, len(k))
	for i, n := range k {
		rep.Kinds[metastore.RowKind(i).String()] = n
	}
}

// replaySummary says what a replay read, kind by kind (the kinds it
// found; "no rows" when none): sidecar mode's completed transactions,
// qos pack's results, penalties by cause.
func replaySummary(rep *replayReport) string {
	var parts []string
	if rep.Completed > 0 {
		parts = append(parts, fmt.Sprintf("%d completed transactions (sidecar)", rep.Completed))
	}
	if rep.PackResults > 0 {
		parts = append(parts, fmt.Sprintf("%d execution results (qos pack)", rep.PackResults))
	}
	if rep.Penalties > 0 {
		var causes []string
		for _, k := range []metastore.RowKind{metastore.RowSigverifyFailed, metastore.RowUnparsable} {
			if n := rep.Kinds[k.String()]; n > 0 {
				causes = append(causes, fmt.Sprintf("%d %s", n, strings.ReplaceAll(k.String(), "_", " ")))
			}
		}
		parts = append(parts, fmt.Sprintf("%d penalties (%s)", rep.Penalties, strings.Join(causes, ", ")))
	}
	if len(parts) == 0 {
		return "no rows"
	}
	return strings.Join(parts, ", ")
}

func feeMerit(r metastore.BacktestResult) float64 {
	if len(r.Shares) == 0 {
		return 0
	}
	s := 0.0
	for _, b := range r.Shares {
		s += b.FeeShare()
	}
	return s / float64(len(r.Shares))
}

// bestResult returns the index of the highest merit (first on ties).
func bestResult(rs []metastore.BacktestResult) int {
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
	fmt.Fprintf(w, "replayed %d rows from %s in %.1fs (%.0f rows/s): %s\n",
		rep.Rows, rep.DB, rep.Seconds, rate, replaySummary(rep))
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
	for _, b := range r.Shares {
		fmt.Fprintf(tw, "%g%%\t%d\t%.0f\t%.0f\t%.0f\t%.1f%%\t%.1f%%\t\n",
			100*b.Share, b.K, b.Model, b.FeeOnly, b.Oracle, 100*b.ModelShare(), 100*b.FeeShare())
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
	for _, b := range r.Shares {
		fmt.Fprintf(tw, "%g%%\t", 100*b.Share)
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
		for _, b := range e.Shares {
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
