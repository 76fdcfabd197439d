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
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/sim"
)

// TestCheckOnExecutionWorkers: on 4.0–4.3 the CHECK stage goes over the
// execution workers' queues, and the stand-in (as Agave's worker) refuses
// a CHECK whose max_working_slot is below its working bank's slot: every
// CHECK the loop sends is answered, none comes back unprocessed, and the
// stand-in's bank checks the transactions (which, with empty payers and
// stale blockhashes in the feed, fail some there).
func TestCheckOnExecutionWorkers(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sock := filepath.Join(t.TempDir(), "scheduler_bindings.ipc")
	st, err := standin.New(standin.Config{Socket: sock, Profile: bindings.Profile41, Logger: quiet,
		Clock: standin.ClockConfig{SlotDuration: 100 * time.Millisecond, LeaderWindow: 2, LeaderEvery: 4},
		Feed:  standin.FeedConfig{Traffic: sim.DefaultConfig(), UnfundedShare: 0.2, StaleShare: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- st.Serve(sctx) }()
	t.Cleanup(func() { scancel(); <-served })

	cfg := DefaultConfig()
	cfg.Check = true
	cfg.Model = model.New(model.DefaultParams())
	cfg.Logger = quiet
	r, err := NewRunner(RunConfig{Socket: sock, Profile: bindings.Profile41,
		Logon: handshake.Logon{WorkerCount: 2, AllocatorSize: 256 << 20, AllocatorHandles: 1, TpuToPackCapacity: 16384,
			ProgressCapacity: 4096, PackToWorkerCapacity: 256, WorkerToPackCapacity: 256},
		Loop: cfg, Once: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	ps, _ := r.Stats()
	ss := st.Stats()
	t.Logf("check batches %d, skipped %d, failed %d; stand-in checked %d, executed %d", ps.CheckBatches, ps.CheckSkipped, ps.CheckFailed, ss.Checked, ss.Executed)
	if ps.CheckBatches == 0 || ss.Checked == 0 || ps.CheckFailed == 0 {
		t.Fatalf("no CHECK answered: %d batches sent, %d checked by the stand-in, %d failed", ps.CheckBatches, ss.Checked, ps.CheckFailed)
	}
	if ps.CheckSkipped != 0 {
		t.Fatalf("%d transactions went on unchecked (CHECK answered unprocessed)", ps.CheckSkipped)
	}
}
