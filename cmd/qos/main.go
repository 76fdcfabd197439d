// Command qos is the QoS sidecar daemon: it joins the validator's channels,
// scores and paces packets toward sigverify, and learns who brings value.
// See README.md for running it next to a validator.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/sidecar"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "qos:", err)
		os.Exit(1)
	}
}

// daemonFlags are the daemon's own flags. Each is read through its
// field, so its name is written once; cliflags.WithEnv derives its
// QOS_ environment variable.
type daemonFlags struct {
	xxhashSeed         *cli.Uint64Flag
	policy             *cli.StringFlag
	targetPps          *cli.Uint64Flag
	pacerTick          *cli.DurationFlag
	pacerBurst         *cli.Uint64Flag
	queueCapacity      *cli.IntFlag
	queueTtl           *cli.DurationFlag
	rescoreBelow       *cli.Float64Flag
	partialCapacity    *cli.IntFlag
	recentCapacity     *cli.IntFlag
	outputBackpressure *cli.BoolFlag
	packetBatch        *cli.IntFlag
	modelFile          *cli.StringFlag
	saveInterval       *cli.DurationFlag
	metricsAddr        *cli.StringFlag
	joinTimeout        *cli.DurationFlag
	user               *cli.StringFlag
	idleSleep          *cli.DurationFlag
	db                 dbFlags
}

func newDaemonFlags() *daemonFlags {
	d := sidecar.DefaultConfig()
	return &daemonFlags{
		xxhashSeed: &cli.Uint64Flag{Name: "xxhash-seed",
			Usage: "seed of the packet hash; published to the validator in sch_to_qos metadata (required in sidecar mode)"},
		policy: &cli.StringFlag{Name: "policy", Value: d.Policy.String(),
			Usage: "ranking: model (reputation × fee/CU, learning), fee-only or fifo (baselines)"},
		targetPps: &cli.Uint64Flag{Name: "target-pps", Category: cliflags.CatQueue, Value: d.TargetPPS,
			Usage: "packets per second handed to sigverify"},
		pacerTick: &cli.DurationFlag{Name: "pacer-tick", Category: cliflags.CatQueue, Value: d.PacerTick,
			Usage: "pacer refill period"},
		pacerBurst: &cli.Uint64Flag{Name: "pacer-burst", Category: cliflags.CatQueue,
			Usage: "unused sending budget carried over, in packets (0: 10 ms of --target-pps)"},
		queueCapacity: &cli.IntFlag{Name: "queue-capacity", Category: cliflags.CatQueue, Value: d.QueueCapacity,
			Usage: "packets held in the priority queue; when full the lowest score is evicted"},
		queueTtl: &cli.DurationFlag{Name: "queue-ttl", Category: cliflags.CatQueue, Value: d.QueueTTL,
			Usage: "queued packets older than this are dropped, never sent"},
		rescoreBelow: &cli.Float64Flag{Name: "rescore-below", Category: cliflags.CatQueue, Value: d.RescoreBelow,
			Usage: "model policy: a packet whose score, recomputed at send, fell below this share of its admission score is queued again at the new score (0: off)"},
		partialCapacity: &cli.IntFlag{Name: "partial-capacity", Category: cliflags.CatQueue, Value: d.PartialCapacity,
			Usage: "packet hashes remembered for dedup and for joining scheduler results"},
		recentCapacity: &cli.IntFlag{Name: "recent-capacity", Category: cliflags.CatQueue, Value: d.RecentCapacity,
			Usage: "recently confirmed signatures remembered"},
		outputBackpressure: &cli.BoolFlag{Name: "output-backpressure", Category: cliflags.CatQueue,
			Usage: "keep packets queued instead of sending more than sigverify can read without skipping (3/4 of qos_to_sig unread; only for a consumer that publishes its read index; such sends are always counted as output_overwrite)"},
		packetBatch: &cli.IntFlag{Name: "packet-batch", Category: cliflags.CatQueue, Value: d.PacketBatch,
			Usage: "packets taken from one channel per loop visit"},
		modelFile: &cli.StringFlag{Name: "model-file", Category: cliflags.CatModel,
			Usage: "model file: loaded at start if present, saved on shutdown and every --save-interval"},
		saveInterval: &cli.DurationFlag{Name: "save-interval", Category: cliflags.CatModel, Value: d.SaveInterval,
			Usage: "periodic model save (0: only on shutdown)"},
		metricsAddr: &cli.StringFlag{Name: "metrics-addr", Category: cliflags.CatOps,
			Usage: "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464); off when empty"},
		joinTimeout: &cli.DurationFlag{Name: "join-timeout", Category: cliflags.CatChannels, Value: 30 * time.Second,
			Usage: "at start, keep retrying channels that do not exist or are not initialised yet for this long (0: fail at once)"},
		user: &cli.StringFlag{Name: "user", Category: cliflags.CatOps,
			Usage: "drop privileges to this user after joining the channels (default: the invoking user under sudo)"},
		idleSleep: &cli.DurationFlag{Name: "idle-sleep", Category: cliflags.CatOps,
			Usage: "sleep this long when idle for over 1 ms (0: spin; the production setting)"},
		db: newDBFlags(),
	}
}

// list returns every flag of the daemon, for the app.
func (f *daemonFlags) list() []cli.Flag {
	flags := []cli.Flag{f.xxhashSeed, f.policy, f.targetPps, f.pacerTick, f.pacerBurst, f.queueCapacity, f.queueTtl, f.rescoreBelow, f.partialCapacity, f.recentCapacity, f.outputBackpressure, f.packetBatch, f.modelFile, f.saveInterval, f.metricsAddr, f.joinTimeout, f.user, f.idleSleep}
	flags = append(flags, cliflags.ChannelFlags()...)
	flags = append(flags, cliflags.ModelFlags()...)
	flags = append(flags, cliflags.PendingFlags()...)
	flags = append(flags, cliflags.AdmissionFlags()...)
	flags = append(flags, f.db.list()...)
	flags = append(flags, cliflags.LogFlags()...)
	return cliflags.WithEnv(flags)
}

func app() *cli.App {
	f := newDaemonFlags()
	return &cli.App{
		Name:  "qos",
		Usage: "QoS sidecar for a Solana validator",
		Description: "qos joins the validator's shared-memory channels (create them first with `qos-cli init`),\n" +
			"scores every packet by IP/signer reputation × fee per compute unit, keeps the best in a\n" +
			"priority queue and hands them to sigverify at --target-pps. SIGINT/SIGTERM stop it cleanly.",
		Flags:    f.list(),
		Action:   func(c *cli.Context) error { return run(c, f) },
		Commands: []*cli.Command{packCommand()},
	}
}

func run(c *cli.Context, f *daemonFlags) error {
	log, err := cliflags.Logger(c)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	cfg := sidecar.DefaultConfig()
	cfg.Logger = log
	cfg.Channels = cliflags.ChannelOptions(c)
	if !c.IsSet(f.xxhashSeed.Name) {
		//lint:ignore ST1005 worded as urfave/cli's own message for a missing required flag
		return errors.New("Required flag \"xxhash-seed\" not set (sidecar mode; `qos pack` does not need it)")
	}
	cfg.Seed = f.xxhashSeed.Get(c)
	if cfg.Policy, err = sidecar.ParsePolicy(f.policy.Get(c)); err != nil {
		return err
	}
	cfg.TargetPPS = f.targetPps.Get(c)
	cfg.PacerTick = f.pacerTick.Get(c)
	cfg.PacerBurst = f.pacerBurst.Get(c)
	cfg.QueueCapacity = f.queueCapacity.Get(c)
	cfg.QueueTTL = f.queueTtl.Get(c)
	cfg.RescoreBelow = f.rescoreBelow.Get(c)
	cfg.PartialCapacity = f.partialCapacity.Get(c)
	cfg.RecentCapacity = f.recentCapacity.Get(c)
	cfg.PacketBatch = f.packetBatch.Get(c)
	cfg.OutputBackpressure = f.outputBackpressure.Get(c)
	cfg.ModelFile = f.modelFile.Get(c)
	cfg.SaveInterval = f.saveInterval.Get(c)
	cfg.IdleSleep = f.idleSleep.Get(c)
	if cfg.Model, err = cliflags.ModelParams(c); err != nil {
		return err
	}
	if cfg.Pending, err = cliflags.PendingParams(c); err != nil {
		return err
	}
	if cfg.Limits, err = cliflags.AdmissionLimits(c); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := startDatabase(ctx, c, &f.db, log)
	if err != nil {
		return err
	}
	cfg.Handoff = db.handoff()

	s, err := openWhenReady(ctx, cfg, f.joinTimeout.Get(c), log)
	if err != nil {
		db.close(log)
		return err
	}
	if err := dropPrivileges(f.user.Get(c), log); err != nil {
		db.close(log)
		return err
	}
	var srv *http.Server
	if addr := f.metricsAddr.Get(c); addr != "" {
		if srv, _, err = serveMetrics(addr, s, db, log, newConfigCollector(cfg)); err != nil {
			db.close(log)
			return err
		}
	}
	runErr := s.Run(ctx)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	db.close(log)
	if runErr != nil {
		return runErr
	}
	log.Info("stopped cleanly")
	return nil
}

// openWhenReady opens the sidecar, retrying while the validator has not
// created or initialised its channels yet, up to timeout.
func openWhenReady(ctx context.Context, cfg sidecar.Config, timeout time.Duration, log *slog.Logger) (*sidecar.Sidecar, error) {
	deadline := time.Now().Add(timeout)
	warned := false
	for {
		s, err := sidecar.Open(cfg)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, channels.ErrNotExist) && !errors.Is(err, channels.ErrNotInitialised) || time.Now().After(deadline) {
			return nil, err
		}
		if !warned {
			warned = true
			log.Warn("waiting for the validator's channels", "err", err, "timeout", timeout)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// serveMetrics serves the sidecar's (and the database sink's, and extra)
// metrics with the Go runtime's and the process's on addr at /metrics, and
// returns the server and the address it listens on.
func serveMetrics(addr string, s *sidecar.Sidecar, db *database, log *slog.Logger, extra ...prometheus.Collector) (*http.Server, net.Addr, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(s.Collector())
	reg.MustRegister(extra...)
	db.register(reg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
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
	return srv, ln.Addr(), nil
}
