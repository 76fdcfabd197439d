package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
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
	// FailedShare is FailedExecutions over every transaction executed
	// (included or failed): the execution slots spent on transactions that
	// paid nothing.
	FailedShare float64 `json:"failed_share"`
	// Of FailedExecutions: unfunded fee payers, stale blockhashes
	// (BLOCKHASH_NOT_FOUND) and replays (ALREADY_PROCESSED).
	Unfunded uint64 `json:"unfunded"`
	Stale    uint64 `json:"stale"`
	Replays  uint64 `json:"replays"`
	// SchedulerMisses are not-included results the scheduler caused
	// (account in use, cost limits, bank, max working slot).
	SchedulerMisses uint64  `json:"scheduler_misses"`
	Checked         uint64  `json:"checked"` // transactions the CHECK stage checked (--check)
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

// packStory is the pack demo's post-sigverify story (what reaches
// tpu_to_pack): the fee payers' shares of empty accounts, stale
// blockhashes and replays per agent, and the staked nodes forwarding the
// fwd channel.
type packStory struct {
	Traffic sim.Config
	Shares  map[string]standin.Shares
	Default standin.Shares
	Fwd     []netip.Addr
}

// packDemoStory is the pack demo's default story, as on a mainnet leader
// under spam (every packet below passed sigverify and dedup; about 70 %
// of what reaches the scheduler cannot pay):
//
//   - honest senders, 3 800 transactions/s: two pay high priority fees,
//     400/s each (together about 1.4 times the block space of the leader
//     slots), one of them reaching us through staked forwarders; one pays
//     low fees, 3 000/s (filler: the blocks are full with it); 3 % of
//     their fee payers run dry, 1 % of their transactions are stale and
//     2 % are re-sent after landing (a client's retry);
//   - a spam farm (8 IPs), 8 000/s with valid signatures claiming twice
//     the honest high fees, from fee payers that are all empty, 30 % on
//     a stale blockhash, 30 % re-sent after the dedup window: none of it
//     can pay, all of it outbids the honest senders;
//   - a sybil rotating 2 048 IPs and a fresh (never funded) fee payer per
//     transaction, 4 000/s of the same claims;
//   - a reputation farmer: IPs that pay for cheap transactions (1 000/s,
//     funded payers) and send 3 000/s of the same claims from fresh payers;
//   - the same claims forwarded by the staked forwarders, 3 000/s, fresh
//     payers (the forwarders pass on honest and spam traffic alike);
//   - votes, 500/s.
//
// Fee per cost alone puts the spam claims above the honest senders': they
// fill the queue and the execution round trips, and fail.
func packDemoStory(seed int64, dur time.Duration) packStory {
	honest := func(median float64, cuMin, cuMax uint32) []sim.MixConfig {
		return []sim.MixConfig{{Kind: sim.KindValid, Weight: 1, PriceMedian: median, PriceSigma: 0.8, CUMin: cuMin, CUMax: cuMax}}
	}
	claim := []sim.MixConfig{{Kind: sim.KindValid, Weight: 1, PriceMedian: 2_000_000, PriceSigma: 0.8, CUMin: 20_000, CUMax: 200_000}}
	cfg := sim.DefaultConfig()
	cfg.Seed, cfg.Duration, cfg.Warmup = seed, dur, 0
	cfg.Agents = []sim.AgentConfig{
		{Name: "honest-high", Channel: "tpu", PPS: 400, IPBase: "10.1.0.1", IPCount: 4, Signers: 8, V0Share: 0.5, Mix: honest(1_000_000, 20_000, 200_000)},
		{Name: "honest-high-fwd", Channel: "fwd", PPS: 400, IPBase: "2001:db8:100::1", IPCount: 4, Signers: 8, V0Share: 0.5, Mix: honest(1_000_000, 20_000, 200_000)},
		{Name: "honest-low", Channel: "tpu", PPS: 3000, IPBase: "10.2.0.1", IPCount: 8, Signers: 32, V0Share: 0.3, Mix: honest(10_000, 5_000, 100_000)},
		{Name: "spam-farm", Attacker: true, Channel: "tpu", PPS: 8000, IPBase: "198.51.100.1", IPCount: 8, Signers: 16, V0Share: 0.2, Mix: claim},
		{Name: "sybil", Attacker: true, Channel: "tpu", PPS: 4000, IPBase: "100.64.0.1", IPCount: 2048, Signers: 4, FreshSigners: true, V0Share: 0.2, Mix: claim},
		{Name: "farmer-paid", Channel: "tpu", PPS: 1000, IPBase: "203.0.113.1", IPCount: 8, Signers: 8, SharedIPs: true, V0Share: 0.2, Mix: honest(5_000, 5_000, 50_000)},
		{Name: "farmer-claims", Attacker: true, Channel: "tpu", PPS: 3000, IPBase: "203.0.113.1", IPCount: 8, Signers: 4, FreshSigners: true, SharedIPs: true, V0Share: 0.2, Mix: claim},
		{Name: "spam-fwd", Attacker: true, Channel: "fwd", PPS: 3000, IPBase: "2001:db8:bad::1", IPCount: 256, Signers: 4, FreshSigners: true, V0Share: 0.2, Mix: claim},
	}
	return packStory{
		Traffic: cfg,
		Default: standin.Shares{Unfunded: 0.03, Stale: 0.01, Replay: 0.02},
		Shares:  map[string]standin.Shares{"spam-farm": {Unfunded: 1, Stale: 0.3, Replay: 0.3}},
		Fwd:     []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12")},
	}
}

// runPackDemo runs, for each policy, the stand-in validator (profile 4.1)
// and pack mode's loop in this process on the same post-sigverify story:
// packDemoStory, or the given scenario or configuration's traffic with
// the stand-in's uniform shares.
func runPackDemo(c *cli.Context, traffic sim.Config, dur time.Duration) error {
	dir, err := os.MkdirTemp("", "qos-pack-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	story := packStory{Traffic: traffic, Default: standin.Shares{Unfunded: 0.1, Stale: 0.05, Replay: 0.05}}
	if c.String("scenario") == "" && c.String("config") == "" {
		story = packDemoStory(traffic.Seed, dur)
	}
	var results []packDemoResult
	for _, pol := range []packmode.Policy{packmode.PolicyModel, packmode.PolicyFeeOnly, packmode.PolicyFIFO} {
		r, err := packDemoOne(c.Context, filepath.Join(dir, pol.String()+".ipc"), story, pol, dur, c.Bool("check"), c.Bool("verbose"))
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
		printPackDemo(c.App.Writer, results, dur, c.Bool("check"))
	}
	if err := writePackReport(report, results, dur, c.Bool("check")); err != nil {
		return err
	}
	if !c.Bool("json") {
		fmt.Fprintf(c.App.Writer, "\nreport: %s\n", report)
	}
	return nil
}

func packDemoOne(ctx context.Context, sock string, story packStory, pol packmode.Policy, dur time.Duration, check, verbose bool) (packDemoResult, error) {
	res := packDemoResult{Policy: pol.String()}
	log := slog.New(slog.DiscardHandler)
	if verbose {
		log = slog.Default()
	}
	traffic := story.Traffic
	traffic.Duration, traffic.Warmup = time.Hour, 0
	clock := standin.DefaultClockConfig()
	// t0 is no later than the stand-in's clock origin: slots counted
	// from it cover every slot the run had.
	t0 := time.Now()
	st, err := standin.New(standin.Config{Socket: sock, Profile: bindings.Profile41, Clock: clock,
		Bank:           standin.BankConfig{BlockCostLimit: standin.MaxBlockUnits, AccountCostLimit: standin.MaxWritableAccountUnits, Seed: uint64(traffic.Seed)},
		ExecNanosPerCU: 1, Logger: log,
		Feed: standin.FeedConfig{Traffic: traffic, VotePPS: 500, PayerBalance: 1_000_000_000_000, UnfundedShare: story.Default.Unfunded,
			StaleShare: story.Default.Stale, ReplayShare: story.Default.Replay, DedupWindow: packDemoDedupWindow,
			AgentShares: story.Shares, Forwarders: story.Fwd}})
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
	cfg.Check = check
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
	// The run stops outside a leader window, so its last window is whole
	// for the policy as for the oracle (which counts every slot that began
	// before the stop).
	stoppedAt := make(chan time.Duration, 1)
	go func() {
		stopAfterUp(rctx, r, dur, func() bool { return clock.At(time.Since(t0)).LeaderState == standin.NotLeader })
		stoppedAt <- time.Since(t0)
		rcancel()
	}()
	if err := r.Run(rctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return res, err
	}
	ps, _ := r.Stats()
	rcancel()
	elapsed := <-stoppedAt
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
	if n := res.Included + res.FailedExecutions; n > 0 {
		res.FailedShare = float64(res.FailedExecutions) / float64(n)
	}
	res.Unfunded = ss.NotIncluded["INSUFFICIENT_FUNDS_FOR_FEE"] + ss.NotIncluded["ACCOUNT_NOT_FOUND"]
	res.Stale, res.Replays = ss.NotIncluded["BLOCKHASH_NOT_FOUND"], ss.NotIncluded["ALREADY_PROCESSED"]
	for _, k := range []string{"ACCOUNT_IN_USE", "WOULD_EXCEED_MAX_BLOCK_COST_LIMIT", "WOULD_EXCEED_MAX_ACCOUNT_COST_LIMIT", "WOULD_EXCEED_MAX_VOTE_COST_LIMIT", "BANK_NOT_AVAILABLE"} {
		res.SchedulerMisses += ss.NotIncluded[k]
	}
	res.SchedulerMisses += ss.MaxSlotExceeded
	res.Checked = ss.Checked
	res.VotesFed, res.VotesLanded = ss.Votes, ps.VotesLanded
	res.ExecP50Ms = float64(ps.ToExecution.Quantile(0.5)) / 1e6
	res.ExecP99Ms = float64(ps.ToExecution.Quantile(0.99)) / 1e6
	res.Leaks, res.BadFrees = uint64(ss.Leaks), uint64(ss.BadFrees)
	if verdict != nil {
		res.Verdict = verdict.Error()
	}
	res.Oracle = oracleFees(st, clock, elapsed)
	if res.Oracle > 0 {
		res.ShareOfOracle = float64(res.ValueCaptured) / float64(res.Oracle)
	}
	return res, nil
}

// packDemoLogonTimeout bounds the wait for a policy's session.
const packDemoLogonTimeout = time.Minute

// stopAfterUp returns dur after r's session is up and then at the first
// moment idle() reports true (polled every 10 ms), or once
// packDemoLogonTimeout has passed without a session, or when ctx ends.
func stopAfterUp(ctx context.Context, r *packmode.Runner, dur time.Duration, idle func() bool) {
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
		return
	case <-run.C:
	}
	for !idle() {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
	}
}

// oracleTx is one transaction the oracle may take.
type oracleTx struct {
	fee, cost uint64
	fedAt     time.Duration
	writable  [4]uint64
	nw        uint8
}

// oracleFees is the fees a clairvoyant scheduler collects from the same
// feed: it knows which transactions can pay (funded, on a live blockhash;
// votes aside), and in every leader slot of the run, in order, it takes
// the best fee per cost unit first among those fed before the slot ends
// and not taken yet, within the block cost limit and the per-writable-
// account limit, each at the cost the bank charges. It ignores locks,
// execution time, the TTL and the queue's capacity, and every leader slot
// counts whole from its first tick: the same bound for every policy.
// (Greedy by fee per cost is optimal for the fractional relaxation; a
// scheduler can beat it by at most the integrality gap, a transaction
// per block.)
func oracleFees(st *standin.Standin, clock standin.ClockConfig, elapsed time.Duration) uint64 {
	var txs []oracleTx
	st.Truths(func(_ [64]byte, t standin.Truth) {
		if t.Funded && !t.Stale && t.Agent >= 0 && t.Cost > 0 {
			txs = append(txs, oracleTx{fee: t.Fee, cost: t.Cost, fedAt: t.FedAt, writable: t.Writable, nw: t.NWritable})
		}
	})
	return oracleGreedy(txs, clock, elapsed, standin.MaxBlockUnits, standin.MaxWritableAccountUnits)
}

// oracleGreedy is oracleFees' scheduler over txs, for the leader slots of
// clock within [0, elapsed].
func oracleGreedy(txs []oracleTx, clock standin.ClockConfig, elapsed time.Duration, blockLimit, accountLimit uint64) uint64 {
	slices.SortFunc(txs, func(a, b oracleTx) int {
		// fee/cost descending, compared without division; then arrival
		l, r := a.fee*b.cost, b.fee*a.cost
		switch {
		case l > r:
			return -1
		case l < r:
			return 1
		}
		return int(a.fedAt - b.fedAt)
	})
	taken := make([]bool, len(txs))
	acct := make(map[uint64]uint64)
	every, window := uint64(max(clock.LeaderEvery, 1)), uint64(max(clock.LeaderWindow, 1))
	var fees uint64
	for k := uint64(0); time.Duration(k)*clock.SlotDuration < elapsed; k++ {
		if (clock.StartSlot+k)%every >= window {
			continue
		}
		end := time.Duration(k+1) * clock.SlotDuration
		clear(acct)
		var used uint64
		for i := range txs {
			t := &txs[i]
			if taken[i] || t.fedAt >= end || used+t.cost > blockLimit {
				continue
			}
			fits := true
			for _, w := range t.writable[:t.nw] {
				fits = fits && acct[w]+t.cost <= accountLimit
			}
			if !fits {
				continue
			}
			for _, w := range t.writable[:t.nw] {
				acct[w] += t.cost
			}
			taken[i] = true
			used += t.cost
			fees += t.fee
		}
	}
	return fees
}

// packDemoHeader and packDemoRow are the table of the pack demo, printed
// and in the HTML report.
var packDemoHeader = []string{"policy", "value (lamports)", "of oracle", "included", "failed executions", "failed share",
	"unfunded", "stale hash", "replays", "scheduler misses", "votes landed/fed", "exec p50 ms", "exec p99 ms", "leaks/bad frees"}

func packDemoRow(r *packDemoResult) []string {
	return []string{r.Policy, fmt.Sprint(r.ValueCaptured), fmt.Sprintf("%.1f%%", 100*r.ShareOfOracle), fmt.Sprint(r.Included),
		fmt.Sprint(r.FailedExecutions), fmt.Sprintf("%.0f%%", 100*r.FailedShare), fmt.Sprint(r.Unfunded), fmt.Sprint(r.Stale), fmt.Sprint(r.Replays),
		fmt.Sprint(r.SchedulerMisses), fmt.Sprintf("%d/%d", r.VotesLanded, r.VotesFed),
		fmt.Sprintf("%.1f", r.ExecP50Ms), fmt.Sprintf("%.1f", r.ExecP99Ms), fmt.Sprintf("%d/%d", r.Leaks, r.BadFrees)}
}

const packDemoLegend = `
oracle: a clairvoyant scheduler on the same feed: in each leader slot, the best fee per cost unit first among the transactions fed so far that can pay (funded, live blockhash), within the block and per-account cost limits at the bank's costs; locks, execution time and queue limits ignored.
failed executions: execution slots spent on transactions that failed for their sender's fault: unfunded fee payers, stale blockhashes (BLOCKHASH_NOT_FOUND), replays after the dedup window (ALREADY_PROCESSED) and other load errors; failed share: of every transaction executed.
scheduler misses: transactions not included for the scheduler's fault (account in use, cost limits, no bank, max working slot).
`

// packDemoCheck says whether the policies ran with the CHECK stage.
func packDemoCheck(check bool) string {
	if check {
		return "with the CHECK stage"
	}
	return "without the CHECK stage"
}

func printPackDemo(w io.Writer, rs []packDemoResult, dur time.Duration, check bool) {
	fmt.Fprintf(w, "qos pack against the stand-in validator (Agave 4.1 ABI), %v per policy, %s, same story:\n\n", dur, packDemoCheck(check))
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
func writePackReport(path string, rs []packDemoResult, dur time.Duration, check bool) (err error) {
	p := sim.TablePage{Title: "qos pack-mode demo report", Header: packDemoHeader,
		Note: fmt.Sprintf("qos pack against the stand-in validator (Agave 4.1 ABI), %v per policy, "+packDemoCheck(check)+", the same post-sigverify story for each: "+
			"honest senders (some through staked forwarders) and, outbidding them with transactions that cannot pay, a spam farm (empty fee payers, stale blockhashes, "+
			"replays after a %v dedup window), a sybil rotating IPs and fee payers, a reputation farmer and spam through the forwarders.", dur, packDemoDedupWindow) +
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
