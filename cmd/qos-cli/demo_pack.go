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
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	printPackDemo(c.App.Writer, results, dur)
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
		Feed: standin.FeedConfig{Traffic: traffic, VotePPS: 500, PayerBalance: 1_000_000_000_000, UnfundedShare: 0.1}})
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
	rctx, rcancel := context.WithTimeout(ctx, dur)
	defer rcancel()
	if err := r.Run(rctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	ps, _ := r.Stats()
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

// oracleFees is an upper bound of the fees any scheduler could have
// collected: every funded non-vote transaction fed, best fee per compute
// unit first, until the leader slots' block cost limit is spent (costed
// at their requested compute units, a lower bound of their cost: the
// bound stays an upper one). Locks and per-account limits are ignored.
func oracleFees(st *standin.Standin, clock standin.ClockConfig, dur time.Duration) uint64 {
	type tx struct{ fee, cus uint64 }
	var txs []tx
	st.Truths(func(_ [64]byte, t standin.Truth) {
		if t.Funded && t.Agent >= 0 {
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

func printPackDemo(w io.Writer, rs []packDemoResult, dur time.Duration) {
	fmt.Fprintf(w, "qos pack against the stand-in validator (Agave 4.1 ABI), %v per policy, same story:\n\n", dur)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tvalue (lamports)\tof oracle\tincluded\tfailed executions\tscheduler misses\tvotes landed/fed\texec p50 ms\texec p99 ms\tleaks/bad frees\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%d\t%d\t%d\t%d/%d\t%.1f\t%.1f\t%d/%d\t\n", r.Policy, r.ValueCaptured, 100*r.ShareOfOracle,
			r.Included, r.FailedExecutions, r.SchedulerMisses, r.VotesLanded, r.VotesFed, r.ExecP50Ms, r.ExecP99Ms, r.Leaks, r.BadFrees)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\noracle: fees of every funded transaction fed, best fee per CU first, within the leader slots' block limits (locks ignored): an upper bound.")
	for _, r := range rs {
		if r.Verdict != "" {
			fmt.Fprintf(w, "audit (%s): %s\n", r.Policy, r.Verdict)
		}
	}
}
