package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/handshake"
	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/packmode"
)

// catAgave groups the scheduler-bindings flags of `qos pack`.
const catAgave = "Agave scheduler bindings"

// socketName is the file Agave's --enable-scheduler-bindings listens on
// inside the ledger directory (agave v4.0.0-rc.0 core/src/validator.rs).
const socketName = "scheduler_bindings.ipc"

func packCommand() *cli.Command {
	d := packmode.DefaultConfig()
	flags := []cli.Flag{
		&cli.StringFlag{Name: "ledger", Category: catAgave, EnvVars: cliflags.Env("ledger"),
			Usage: "the validator's ledger directory; the socket is DIR/" + socketName},
		&cli.StringFlag{Name: "bindings-socket", Category: catAgave, EnvVars: cliflags.Env("bindings-socket"),
			Usage: "the scheduler-bindings socket path (instead of --ledger)"},
		&cli.StringFlag{Name: "agave-abi", Category: catAgave, Value: "auto", EnvVars: cliflags.Env("agave-abi"),
			Usage: "ABI profile: 4.0, 4.1 (4.1–4.2), 4.3, 4.4 or auto (newest, then the one the validator names)"},
		&cli.IntFlag{Name: "workers", Category: catAgave, Value: 4, EnvVars: cliflags.Env("workers"),
			Usage: "execution workers the validator runs for qos (1..64)"},
		&cli.IntFlag{Name: "check-workers", Category: catAgave, Value: 1, EnvVars: cliflags.Env("check-workers"),
			Usage: "check workers (4.4 only)"},
		&cli.Uint64Flag{Name: "allocator-size", Category: catAgave, Value: 1 << 30, EnvVars: cliflags.Env("allocator-size"),
			Usage: "shared allocator size in bytes the validator creates for the session"},
		&cli.Uint64Flag{Name: "tpu-to-pack-capacity", Category: catAgave, Value: 65536, EnvVars: cliflags.Env("tpu-to-pack-capacity"),
			Usage: "tpu_to_pack queue capacity (messages)"},
		&cli.Uint64Flag{Name: "progress-capacity", Category: catAgave, Value: 4096, EnvVars: cliflags.Env("progress-capacity"),
			Usage: "progress_tracker queue capacity (a full one ends the session)"},
		&cli.Uint64Flag{Name: "worker-queue-capacity", Category: catAgave, Value: 1024, EnvVars: cliflags.Env("worker-queue-capacity"),
			Usage: "capacity of each pack_to_worker and worker_to_pack queue (and the check queues)"},
		&cli.StringFlag{Name: "policy", Value: "model", EnvVars: cliflags.Env("policy"),
			Usage: "model (reputation × fee per cost), fee-only (fee per cost, as Agave's scheduler) or fifo"},
		&cli.IntFlag{Name: "queue-capacity", Category: cliflags.CatQueue, Value: d.QueueCapacity, EnvVars: cliflags.Env("queue-capacity"),
			Usage: "transactions waiting at most; the lowest is evicted for a better one"},
		&cli.DurationFlag{Name: "queue-ttl", Category: cliflags.CatQueue, Value: d.QueueTTL, EnvVars: cliflags.Env("queue-ttl"),
			Usage: "how long a transaction may wait from arrival"},
		&cli.IntFlag{Name: "vote-capacity", Category: cliflags.CatQueue, Value: d.VoteCapacity, EnvVars: cliflags.Env("vote-capacity"),
			Usage: "votes waiting at most in their own lane"},
		&cli.IntFlag{Name: "drain-batch", Category: cliflags.CatQueue, Value: d.DrainBatch, EnvVars: cliflags.Env("drain-batch"),
			Usage: "tpu_to_pack messages taken per loop pass"},
		&cli.IntFlag{Name: "batch-depth", Category: cliflags.CatQueue, Value: d.Depth, EnvVars: cliflags.Env("batch-depth"),
			Usage: "batches in flight per worker"},
		&cli.BoolFlag{Name: "check", Category: cliflags.CatQueue, EnvVars: cliflags.Env("check"),
			Usage: "run every non-vote transaction through the validator's CHECK (status, fee-payer balance, lookup tables) before it may execute"},
		&cli.BoolFlag{Name: "relax-intrabatch-account-locks", Category: catAgave, Value: true, EnvVars: cliflags.Env("relax-intrabatch-account-locks"),
			Usage: "the validator lets transactions of one batch conflict (SIMD-0083, active on every cluster): conflicting transactions share a batch and run in order; false keeps them in separate batches"},
		&cli.BoolFlag{Name: "spill-to-next-slot", Category: catAgave, Value: true, EnvVars: cliflags.Env("spill-to-next-slot"),
			Usage: "a batch that misses its slot may run in the next slot of the same leader window (max_working_slot = slot + 1); false: it comes back MAX_WORKING_SLOT_EXCEEDED"},
		&cli.IntFlag{Name: "leader-end-cutoff", Category: catAgave, Value: d.EndCutoff, EnvVars: cliflags.Env("leader-end-cutoff"),
			Usage: "no EXECUTE batch from this percent of the leader window's last slot on (later ones would find no bank: BANK_NOT_AVAILABLE); above 100: none"},
		&cli.StringFlag{Name: "model-file", Category: cliflags.CatModel, EnvVars: cliflags.Env("model-file"),
			Usage: "model file: loaded at start if present, saved on shutdown"},
		&cli.StringFlag{Name: "metrics-addr", Category: cliflags.CatOps, EnvVars: cliflags.Env("metrics-addr"),
			Usage: "serve Prometheus metrics on this address (/metrics)"},
		&cli.DurationFlag{Name: "stats-interval", Category: cliflags.CatOps, Value: packmode.DefaultStatsInterval, EnvVars: cliflags.Env("stats-interval"),
			Usage: "period of the summary log line, and the window of its latency quantiles and of the qos_pack_*_interval_seconds gauges (the Prometheus histograms stay cumulative)"},
		&cli.DurationFlag{Name: "idle-sleep", Category: cliflags.CatOps, EnvVars: cliflags.Env("idle-sleep"),
			Usage: "sleep this long when idle for a while (0: spin; the production setting)"},
		&cli.BoolFlag{Name: "once", Category: cliflags.CatOps, Hidden: true,
			Usage: "exit when the first session ends instead of reconnecting (tests)"},
	}
	// The database flags are the sidecar's (declared once in db.go).
	db := newDBFlags()
	flags = append(flags, cliflags.AdmissionFlags()...)
	flags = append(flags, cliflags.ModelFlags()...)
	flags = append(flags, cliflags.WithEnv(db.list())...)
	flags = append(flags, cliflags.LogFlags()...)
	return &cli.Command{
		Name:  "pack",
		Usage: "run as the external scheduler of a stock Agave ≥ 4.0 validator",
		Description: "qos pack logs on to the validator's scheduler-bindings socket (agave-validator\n" +
			"--enable-scheduler-bindings), takes every transaction the validator received, ranks it by\n" +
			"IP/signer reputation × fee per cost, and sends conflict-free batches to the validator's\n" +
			"workers during its leader slots. While qos is not logged on the validator uses its own\n" +
			"scheduler. SIGINT/SIGTERM stop it cleanly (the model is saved).",
		Flags:  flags,
		Action: func(c *cli.Context) error { return runPack(c, &db) },
	}
}

func runPack(c *cli.Context, dbf *dbFlags) error {
	log, err := cliflags.Logger(c)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	socket := c.String("bindings-socket")
	if ledger := c.String("ledger"); ledger != "" {
		if socket != "" {
			return errors.New("give --ledger or --bindings-socket, not both")
		}
		socket = filepath.Join(ledger, socketName)
	}
	if socket == "" {
		return errors.New("no validator socket: give --ledger DIR (the validator's ledger) or --bindings-socket PATH")
	}
	abi := c.String("agave-abi")
	if abi == "" { // QOS_AGAVE_ABI= left empty
		abi = bindings.AutoName
	}
	profile, err := bindings.ParseProfile(abi)
	if err != nil {
		return fmt.Errorf("--agave-abi: %w", err)
	}
	workers := c.Int("workers")
	if workers < 1 || workers > pack.MaxWorkers {
		return fmt.Errorf("--workers %d: want 1..%d", workers, pack.MaxWorkers)
	}
	cfg := packmode.DefaultConfig()
	cfg.Logger = log
	if cfg.Policy, err = packmode.ParsePolicy(c.String("policy")); err != nil {
		return err
	}
	cfg.QueueCapacity = c.Int("queue-capacity")
	cfg.QueueTTL = c.Duration("queue-ttl")
	cfg.VoteCapacity = c.Int("vote-capacity")
	cfg.DrainBatch = c.Int("drain-batch")
	cfg.Depth = c.Int("batch-depth")
	cfg.IdleSleep = c.Duration("idle-sleep")
	cfg.Check = c.Bool("check")
	cfg.StrictBatchLocks = !c.Bool("relax-intrabatch-account-locks")
	cfg.KeepBatchesInSlot = !c.Bool("spill-to-next-slot")
	if cfg.EndCutoff = c.Int("leader-end-cutoff"); cfg.EndCutoff < 1 {
		return fmt.Errorf("--leader-end-cutoff %d: want a percent of the slot, 1 or more (above 100: no cutoff)", cfg.EndCutoff)
	}
	if cfg.Limits, err = cliflags.AdmissionLimits(c); err != nil {
		return err
	}
	mp, err := cliflags.ModelParams(c)
	if err != nil {
		return err
	}
	modelFile := c.String("model-file")
	if cfg.Policy == packmode.PolicyModel {
		if cfg.Model, err = loadModel(modelFile, mp, log); err != nil {
			return err
		}
	}
	statsEvery := c.Duration("stats-interval")
	if statsEvery <= 0 {
		return fmt.Errorf("--stats-interval %v: want a positive duration", statsEvery)
	}
	wq := c.Uint64("worker-queue-capacity")
	rc := packmode.RunConfig{
		Socket:  socket,
		Profile: profile,
		Logon: handshake.Logon{
			WorkerCount: uint64(workers), CheckWorkerCount: c.Uint64("check-workers"),
			AllocatorSize: c.Uint64("allocator-size"), AllocatorHandles: 1,
			TpuToPackCapacity: c.Uint64("tpu-to-pack-capacity"), ProgressCapacity: c.Uint64("progress-capacity"),
			PackToWorkerCapacity: wq, WorkerToPackCapacity: wq, PackToCheckCapacity: wq, CheckToPackCapacity: wq,
		},
		Loop:          cfg,
		Once:          c.Bool("once"),
		StatsInterval: statsEvery,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Rows of execution results (the model's inputs) go to Postgres as in
	// sidecar mode; the seed column tells this run's rows from another's.
	db, err := startDatabase(ctx, c, dbf, log)
	if err != nil {
		return err
	}
	rc.Loop.Rows = db.handoff()
	rc.Loop.Seed = runSeed()
	r, err := packmode.NewRunner(rc)
	if err != nil {
		db.close(log)
		return err
	}
	var srv *http.Server
	if addr := c.String("metrics-addr"); addr != "" {
		conf := packConfigCollector{queueCapacity: float64(cfg.QueueCapacity), voteCapacity: float64(cfg.VoteCapacity), workers: float64(workers)}
		if srv, err = servePackMetrics(addr, r, conf, db, log); err != nil {
			db.close(log)
			return err
		}
	}
	log.Info("qos pack starting", "socket", socket, "abi", profile.Name, "workers", workers, "policy", cfg.Policy.String())
	runErr := r.Run(ctx)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	db.close(log) // the loop has stopped
	st, _ := r.Stats()
	log.Info("qos pack stopped", "received", st.Received, "included", st.Ends[packmode.EndIncluded],
		"not_included", st.Ends[packmode.EndNotIncluded], "expired", st.Ends[packmode.EndExpired],
		"evicted", st.Ends[packmode.EndEvicted], "rejected", st.Ends[packmode.EndRejected],
		"held", st.Held, "free_errors", st.FreeErrors, "batches", st.Batches, "double_end", st.DoubleEnd,
		"unknown_batch", st.UnknownBatch, "bad_response", st.BadResponse, "unprocessed", st.Unprocessed,
		"rows", st.Rows, "rows_dropped", st.RowsDropped, "leaked_blocks", st.LeakedBlocks(),
		"votes", st.Votes, "votes_landed", st.VotesLanded, "parse_penalties", st.Penalized)
	if cfg.Model != nil && modelFile != "" {
		if err := cfg.Model.Save(modelFile); err != nil {
			log.Error("saving the model", "file", modelFile, "err", err)
			if runErr == nil {
				runErr = err
			}
		} else {
			log.Info("model saved", "file", modelFile)
		}
	}
	return runErr
}

func loadModel(path string, p model.Params, log *slog.Logger) (*model.IPSigner, error) {
	if path == "" {
		return model.New(p), nil
	}
	m, err := model.Load(path)
	switch {
	case err == nil:
		if err := m.SetParams(p); err != nil {
			return nil, fmt.Errorf("model file %s: %w", path, err)
		}
		st := m.Stats()
		log.Info("model loaded", "file", path, "ips", st.IPs, "signers", st.Signers)
		return m, nil
	case errors.Is(err, fs.ErrNotExist):
		log.Info("no model file yet; starting with an empty model", "file", path)
		return model.New(p), nil
	}
	return nil, fmt.Errorf("load model (move the file away to start fresh): %w", err)
}

// runSeed draws the seed column of this run's rows (pack mode has no
// packet hash seed): rows of two runs never share a key.
func runSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail (Go ≥ 1.24)
	return binary.LittleEndian.Uint64(b[:])
}

func servePackMetrics(addr string, r *packmode.Runner, conf packConfigCollector, db *database, log *slog.Logger) (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(packmode.NewCollector(r), conf)
	db.register(reg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return srv, nil
}
