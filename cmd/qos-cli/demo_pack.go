package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/agave/standin"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/packmode"
	"github.com/solqos/qos/sim"
)

// packDemoResult is one policy's run of the pack-mode demo.
type packDemoResult struct {
	Policy string `json:"policy"`
	// ValueCaptured is the fees of included transactions; Oracle the
	// upper bound (see oracleFees); both in lamports.
	ValueCaptured uint64  `json:"value_captured"`
	Oracle        uint64  `json:"oracle"`
	ShareOfOracle float64 `json:"share_of_oracle"`
	Included      uint64  `json:"included"`
	// FailedExecutions took an execution slot and failed for a reason the
	// sender caused (cannot pay, stale, replay).
	FailedExecutions uint64 `json:"failed_executions"`
	// Of FailedExecutions: unfunded fee payers, stale blockhashes
	// (BLOCKHASH_NOT_FOUND) and replays (ALREADY_PROCESSED).
	Unfunded uint64 `json:"unfunded"`
	Stale    uint64 `json:"stale"`
	Replays  uint64 `json:"replays"`
	// SchedulerMisses are not-included results the scheduler caused
	// (account in use, cost limits, bank, max working slot).
	SchedulerMisses uint64  `json:"scheduler_misses"`
	VotesFed        uint64  `json:"votes_fed"`
	VotesLanded     uint64  `json:"votes_landed"`
	ExecP50Ms       float64 `json:"arrival_to_execution_p50_ms"`
	ExecP99Ms       float64 `json:"arrival_to_execution_p99_ms"`
	Leaks           uint64  `json:"leaks"`
	BadFrees        uint64  `json:"bad_frees"`
	Verdict         string  `json:"audit_verdict,omitempty"`
}

// packDemoDedupWindow is how long the stand-in's dedup remembers a
// signature before a re-sent copy reaches pack: Agave's sigverify stage
// resets its deduper at most every MAX_DEDUPER_AGE = 2 s
// (core/src/sigverify_stage.rs, read in copies from the code index, release
// not pinned).
const packDemoDedupWindow = 2 * time.Second

// runPackDemo runs, for each policy, the stand-in validator (profile 4.1)
// and pack mode's loop in this process on the same post-sigverify story.
func runPackDemo(c *cli.Context, traffic sim.Config, dur time.Duration) error {
	dir, err := os.MkdirTemp("", "qos-pack-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var results []packDemoResult
	for _, pol := range []packmode.Policy{packmode.PolicyModel, packmode.PolicyFeeOnly, packmode.PolicyFIFO} {
		r, err := packDemoOne(c.Context, filepath.Join(dir, pol.String()+".ipc"), traffic, pol, dur, c.Bool("verbose"))
		if err != nil {
			return fmt.Errorf("pack demo, policy %s: %w", pol, err)
		}
		results = append(results, r)
	}
	report := c.String("report")
	if report == "" {
		report = filepath.Join(os.TempDir(), "qos-pack-demo-report.html")
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		printPackDemo(c.App.Writer, results, dur)
	}
	if err := writePackReport(report, results, dur); err != nil {
		return err
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "\nreport: %s\n", report)
	}
	return nil
}

func packDemoOne(ctx context.Context, sock string, traffic sim.Config, pol packmode.Policy, dur time.Duration, verbose bool) (packDemoResult, error) {
	res := packDemoResult{Policy: pol.String()}
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.Default()
	}
	traffic.Duration, traffic.Warmup = time.Hour, 0
	clock := standin.DefaultClockConfig()
	st, err := standin.New(standin.Config{Socket: sock, Profile: bindings.Profile41, Clock: clock,
		Bank:           standin.BankConfig{BlockCostLimit: standin.MaxBlockUnits, AccountCostLimit: standin.MaxWritableAccountUnits, Seed: uint64(traffic.Seed)},
		ExecNanosPerCU: 1, Logger: log,
		Feed: standin.FeedConfig{Traffic: traffic, VotePPS: 500, PayerBalance: 1_000_000_000_000, UnfundedShare: 0.1,
			StaleShare: 0.05, ReplayShare: 0.05, DedupWindow: packDemoDedupWindow}})
	if err != nil {
		return res, err
	}
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	served := make(chan error, 1)
	go func() { served <- st.Serve(sctx) }()

	cfg := packmode.DefaultConfig()
	cfg.Policy = pol
	cfg.Logger = log
	if pol == packmode.PolicyModel {
		cfg.Model = model.New(model.DefaultParams())
	}
	r, err := packmode.NewRunner(packmode.RunConfig{Socket: sock, Profile: bindings.Profile41,
		Logon: handshake.Logon{WorkerCount: 4, AllocatorSize: 1 << 30, AllocatorHandles: 1, TpuToPackCapacity: 65536,
			ProgressCapacity: 4096, PackToWorkerCapacity: 1024, WorkerToPackCapacity: 1024},
		Loop: cfg, Once: true})
	if err != nil {
		return res, err
	}
	// The policy runs for dur from the moment its session is up: logging
	// on (a 1 GiB allocator) can take seconds on a busy machine, which
	// would otherwise come out of the run.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	go stopAfterUp(rctx, rcancel, r, dur)
	if err := r.Run(rctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	ps, _ := r.Stats()
	if ps.Sessions == 0 && ctx.Err() == nil {
		return res, fmt.Errorf("no session with the stand-in validator within %v", packDemoLogonTimeout)
	}
	// Let the stand-in see the session end and audit it.
	time.Sleep(200 * time.Millisecond)
	scancel()
	verdict := <-served
	ss := st.Stats()
	res.ValueCaptured = ss.Fees
	res.Included = ss.Executed
	for _, k := range []string{"INSUFFICIENT_FUNDS_FOR_FEE", "INVALID_ACCOUNT_FOR_FEE", "ACCOUNT_NOT_FOUND", "BLOCKHASH_NOT_FOUND", "ALREADY_PROCESSED", "SANITIZE_FAILURE", "ADDRESS_LOOKUP_TABLE_NOT_FOUND"} {
		res.FailedExecutions += ss.NotIncluded[k]
	}
	res.Unfunded = ss.NotIncluded["INSUFFICIENT_FUNDS_FOR_FEE"] + ss.NotIncluded["ACCOUNT_NOT_FOUND"]
	res.Stale, res.Replays = ss.NotIncluded["BLOCKHASH_NOT_FOUND"], ss.NotIncluded["ALREADY_PROCESSED"]
	for _, k := range []string{"ACCOUNT_IN_USE", "WOULD_EXCEED_MAX_BLOCK_COST_LIMIT", "WOULD_EXCEED_MAX_ACCOUNT_COST_LIMIT", "WOULD_EXCEED_MAX_VOTE_COST_LIMIT", "BANK_NOT_AVAILABLE"} {
		res.SchedulerMisses += ss.NotIncluded[k]
	}
	res.SchedulerMisses += ss.MaxSlotExceeded
	res.VotesFed, res.VotesLanded = ss.Votes, ps.VotesLanded
	res.ExecP50Ms = float64(ps.ToExecution.Quantile(0.5)) / 1e6
	res.ExecP99Ms = float64(ps.ToExecution.Quantile(0.99)) / 1e6
	res.Leaks, res.BadFrees = uint64(ss.Leaks), uint64(ss.BadFrees)
	if verdict != nil {
		res.Verdict = verdict.Error()
	}
	res.Oracle = oracleFees(st, clock, dur)
	if res.Oracle > 0 {
		res.ShareOfOracle = float64(res.ValueCaptured) / float64(res.Oracle)
	}
	return res, nil
}

// packDemoLogonTimeout bounds the wait for a policy's session.
const packDemoLogonTimeout = time.Minute

// stopAfterUp calls stop dur after r's session is up, or once
// packDemoLogonTimeout has passed without one.
func stopAfterUp(ctx context.Context, stop context.CancelFunc, r *packmode.Runner, dur time.Duration) {
	defer stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	giveUp := time.NewTimer(packDemoLogonTimeout)
	defer giveUp.Stop()
	for {
		if _, up := r.Stats(); up {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-giveUp.C:
			return
		case <-poll.C:
		}
	}
	run := time.NewTimer(dur)
	defer run.Stop()
	select {
	case <-ctx.Done():
	case <-run.C:
	}
}

// oracleFees is an upper bound of the fees any scheduler could have
// collected: every funded non-vote transaction fed, best fee per compute
// unit first, until the leader slots' block cost limit is spent (costed
// at their requested compute units, a lower bound of their cost: the
// bound stays an upper one). Locks and per-account limits are ignored.
func oracleFees(st *standin.Standin, clock standin.ClockConfig, dur time.Duration) uint64 {
	type tx struct{ fee, cus uint64 }
	var txs []tx
	st.Truths(func(_ [64]byte, t standin.Truth) {
		if t.Funded && !t.Stale && t.Agent >= 0 {
			txs = append(txs, tx{t.Fee, uint64(max(t.CUs, 1))})
		}
	})
	slices.SortFunc(txs, func(a, b tx) int {
		// fee/cus descending, compared without division
		l, r := a.fee*b.cus, b.fee*a.cus
		switch {
		case l > r:
			return -1
		case l < r:
			return 1
		}
		return 0
	})
	slots := uint64(dur / clock.SlotDuration)
	leader := slots * uint64(clock.LeaderWindow) / uint64(max(clock.LeaderEvery, 1))
	budget := leader * standin.MaxBlockUnits
	var fees, used uint64
	for _, t := range txs {
		if used+t.cus > budget {
			continue
		}
		used += t.cus
		fees += t.fee
	}
	return fees
}

// packDemoHeader and packDemoRow are the table of the pack demo, printed
// and in the HTML report.
var packDemoHeader = []string{"policy", "value (lamports)", "of oracle", "included", "failed executions",
	"unfunded", "stale hash", "replays", "scheduler misses", "votes landed/fed", "exec p50 ms", "exec p99 ms", "leaks/bad frees"}

func packDemoRow(r *packDemoResult) []string {
	return []string{r.Policy, fmt.Sprint(r.ValueCaptured), fmt.Sprintf("%.1f%%", 100*r.ShareOfOracle), fmt.Sprint(r.Included),
		fmt.Sprint(r.FailedExecutions), fmt.Sprint(r.Unfunded), fmt.Sprint(r.Stale), fmt.Sprint(r.Replays),
		fmt.Sprint(r.SchedulerMisses), fmt.Sprintf("%d/%d", r.VotesLanded, r.VotesFed),
		fmt.Sprintf("%.1f", r.ExecP50Ms), fmt.Sprintf("%.1f", r.ExecP99Ms), fmt.Sprintf("%d/%d", r.Leaks, r.BadFrees)}
}

const packDemoLegend = `
oracle: fees of every funded transaction fed on a live blockhash, best fee per CU first, within the leader slots' block limits (locks ignored): an upper bound.
failed executions: execution slots spent on transactions that failed for their sender's fault: unfunded fee payers, stale blockhashes (BLOCKHASH_NOT_FOUND), replays after the dedup window (ALREADY_PROCESSED) and other load errors.
scheduler misses: transactions not included for the scheduler's fault (account in use, cost limits, no bank, max working slot).
`

func printPackDemo(w io.Writer, rs []packDemoResult, dur time.Duration) {
	fmt.Fprintf(w, "qos pack against the stand-in validator (Agave 4.1 ABI), %v per policy, same story:\n\n", dur)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(packDemoHeader, "\t")+"\t")
	for i := range rs {
		fmt.Fprintln(tw, strings.Join(packDemoRow(&rs[i]), "\t")+"\t")
	}
	_ = tw.Flush()
	fmt.Fprint(w, packDemoLegend)
	for _, r := range rs {
		if r.Verdict != "" {
			fmt.Fprintf(w, "audit (%s): %s\n", r.Policy, r.Verdict)
		}
	}
}

// writePackReport writes the pack demo's HTML report to path: the table
// and two charts (value against the oracle; where execution slots went).
func writePackReport(path string, rs []packDemoResult, dur time.Duration) (err error) {
	p := sim.TablePage{Title: "qos pack-mode demo report", Header: packDemoHeader,
		Note: fmt.Sprintf("qos pack against the stand-in validator (Agave 4.1 ABI), %v per policy, the same post-sigverify story for each: "+
			"honest senders, a spammer, a sybil rotating IPs and fee payers, unfunded fee payers, stale blockhashes and replays after a %v dedup window.", dur, packDemoDedupWindow) +
			strings.ReplaceAll(packDemoLegend, "\n", " ")}
	policies := make([]string, len(rs))
	value := []sim.BarSeries{{Name: "captured"}, {Name: "oracle"}}
	slots := []sim.BarSeries{{Name: "included"}, {Name: "unfunded"}, {Name: "stale hash"}, {Name: "replays"}, {Name: "scheduler misses"}}
	for i := range rs {
		r := &rs[i]
		p.Rows = append(p.Rows, packDemoRow(r))
		policies[i] = r.Policy
		value[0].Values = append(value[0].Values, float64(r.ValueCaptured)/1e9)
		value[1].Values = append(value[1].Values, float64(r.Oracle)/1e9)
		for j, v := range []uint64{r.Included, r.Unfunded, r.Stale, r.Replays, r.SchedulerMisses} {
			slots[j].Values = append(slots[j].Values, float64(v))
		}
	}
	p.Charts = []sim.BarChart{
		{Title: "Value captured vs the oracle, SOL", Groups: policies, Series: value},
		{Title: "Where execution went: included, failed for the sender's fault, missed for the scheduler's", Groups: policies, Series: slots,
			Format: func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write report %s: %w", path, cerr)
		}
	}()
	if err := sim.WriteTablePage(f, &p); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}
