package packmode

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/agave/standin"
	"github.com/solqos/qos/sim"
)

// packStandinRun is what one in-process run of pack mode against the
// stand-in validator counted on both sides.
type packStandinRun struct {
	standin standin.Stats
	pack    Stats
}

// runPackStandin runs the stand-in validator (profile p, a bank with
// strict or relaxed intra-batch locks) and pack mode's loop (intra-batch
// conflicts allowed or not, CHECK stage on or off) in this process on
// the default traffic story at rate scale, as `qos-cli demo --mode pack`
// does, for dur from the session being up and until enough has been
// included (stopWhenRun). The story's v0 transactions write their agent's hot account
// through an address-table lookup.
func runPackStandin(t *testing.T, p bindings.Profile, strict, intra, check bool, scale float64, dur time.Duration) packStandinRun {
	t.Helper()
	traffic := sim.DefaultConfig()
	for i := range traffic.Agents {
		traffic.Agents[i].PPS *= scale
	}
	traffic.Duration, traffic.Warmup = time.Hour, 0
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sock := filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
	st, err := standin.New(standin.Config{Socket: sock, Profile: p, Clock: standin.DefaultClockConfig(),
		Bank: standin.BankConfig{Seed: uint64(traffic.Seed), StrictBatchLocks: strict}, ExecNanosPerCU: 1, Logger: log,
		Feed: standin.FeedConfig{Traffic: traffic, VotePPS: 200, PayerBalance: 1_000_000_000_000, UnfundedShare: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	defer scancel()
	served := make(chan error, 1)
	go func() { served <- st.Serve(sctx) }()

	cfg := DefaultConfig()
	cfg.Policy = PolicyFeeOnly
	cfg.Logger = log
	cfg.StrictBatchLocks = !intra
	cfg.Check = check
	r, err := NewRunner(RunConfig{Socket: sock, Profile: p,
		Logon: handshake.Logon{WorkerCount: 4, CheckWorkerCount: 1, AllocatorSize: 1 << 28, AllocatorHandles: 1,
			TpuToPackCapacity: 16384, ProgressCapacity: 4096, PackToWorkerCapacity: 256, WorkerToPackCapacity: 256,
			PackToCheckCapacity: 256, CheckToPackCapacity: 256},
		Loop: cfg, Once: true, BackoffMin: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stopWhenRun(rctx, rcancel, r, st, dur)
	}()
	if err := r.Run(rctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("pack mode: %v", err)
	}
	rcancel()
	<-stopped
	ps, _ := r.Stats()
	time.Sleep(200 * time.Millisecond) // the stand-in sees the session end and audits it
	scancel()
	if err := <-served; err != nil {
		t.Errorf("stand-in verdict: %v", err)
	}
	return packStandinRun{standin: st.Stats(), pack: ps}
}

// Bounds of a run of runPackStandin. A run lasts dur from its session
// being up and until the stand-in has included runMinIncluded
// transactions (the leader window of the stand-in's clock is half of
// its slots), but no longer than runMaxAfterUp; a logon gives up after
// runLogonTimeout. On a loaded machine the logon (a large allocator) or
// a leader window may take much of a fixed run.
const (
	runMinIncluded  = 500
	runMaxAfterUp   = 30 * time.Second
	runLogonTimeout = time.Minute
)

// stopWhenRun calls stop once r's session has been up for dur and st has
// included runMinIncluded transactions, or after the bounds above.
func stopWhenRun(ctx context.Context, stop context.CancelFunc, r *Runner, st *standin.Standin, dur time.Duration) {
	defer stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	giveUp := time.NewTimer(runLogonTimeout)
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
	up := time.Now()
	for time.Since(up) < dur || (st.Stats().Executed < runMinIncluded && time.Since(up) < runMaxAfterUp) {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
		}
	}
}

// TestPackCausesNoAccountInUse: against a validator that holds a batch's
// account locks only while it executes it and releases them before its
// ExecutionResponse (Agave's consumer, and the stand-in), pack mode never
// makes a transaction fail with ACCOUNT_IN_USE: its lock set is complete
// (lookups resolved by CHECK before execution, pack.ErrUnresolvedLookups)
// and held from dispatch to the response, and a batch holds conflicting
// transactions only when the bank relaxes intra-batch locks. The story's
// v0 transactions write hot accounts that only their lookups name: a
// scheduler that executes them unresolved collides on them (thousands of
// ACCOUNT_IN_USE in a few seconds). The last case is the control: a
// scheduler that packs conflicting transactions into one batch for a
// bank with strict intra-batch locks must be caught.
func TestPackCausesNoAccountInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pack mode against the stand-in validator for about 12 s")
	}
	const dur = 2500 * time.Millisecond
	for _, tc := range []struct {
		name           string
		p              bindings.Profile
		strict, intra  bool
		check          bool
		wantAccountUse bool
	}{
		{name: "relaxed bank, batches without conflicts", p: bindings.Profile41},
		{name: "relaxed bank, conflicting batches", p: bindings.Profile41, intra: true},
		{name: "strict bank, batches without conflicts", p: bindings.Profile41, strict: true},
		{name: "check queues (4.4), full CHECK", p: bindings.Profile44, intra: true, check: true},
		{name: "control: strict bank, conflicting batches", p: bindings.Profile41, strict: true, intra: true, wantAccountUse: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runPackStandin(t, tc.p, tc.strict, tc.intra, tc.check, 0.25, dur)
			s := r.standin
			inUse := s.NotIncluded[bindings.ReasonAccountInUse.String()]
			t.Logf("included %d, ACCOUNT_IN_USE %d, not included %v; pack: checks %d (retried %d), batches %d",
				s.Executed, inUse, s.NotIncluded, r.pack.CheckBatches, r.pack.CheckRetried, r.pack.Batches)
			if s.Executed < 200 {
				t.Fatalf("only %d transactions included: the run did not get going", s.Executed)
			}
			if s.Leaks != 0 || s.BadFrees != 0 {
				t.Errorf("audit: %d leaks, %d bad frees", s.Leaks, s.BadFrees)
			}
			if tc.wantAccountUse {
				if inUse == 0 {
					t.Errorf("conflicting batches on a strict bank: no ACCOUNT_IN_USE; the test cannot see collisions")
				}
				return
			}
			if inUse != 0 {
				t.Errorf("%d transactions not included for ACCOUNT_IN_USE (of %d included): the scheduler sent batches that collide", inUse, s.Executed)
			}
			if r.pack.CheckBatches == 0 {
				t.Errorf("no CHECK batch: the v0 transactions' lookups were never resolved")
			}
		})
	}
}
