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

func app() *cli.App {
	d := sidecar.DefaultConfig()
	flags := []cli.Flag{
		&cli.Uint64Flag{Name: "xxhash-seed", EnvVars: cliflags.Env("xxhash-seed"),
			Usage: "seed of the packet hash; published to the validator in sch_to_qos metadata (required in sidecar mode)"},
		&cli.StringFlag{Name: "policy", Value: d.Policy.String(), EnvVars: cliflags.Env("policy"),
			Usage: "ranking: model (reputation × fee/CU, learning), fee-only or fifo (baselines)"},
		&cli.Uint64Flag{Name: "target-pps", Category: cliflags.CatQueue, Value: d.TargetPPS, EnvVars: cliflags.Env("target-pps"),
			Usage: "packets per second handed to sigverify"},
		&cli.DurationFlag{Name: "pacer-tick", Category: cliflags.CatQueue, Value: d.PacerTick, EnvVars: cliflags.Env("pacer-tick"),
			Usage: "pacer refill period"},
		&cli.Uint64Flag{Name: "pacer-burst", Category: cliflags.CatQueue, EnvVars: cliflags.Env("pacer-burst"),
			Usage: "unused sending budget carried over, in packets (0: 10 ms of --target-pps)"},
		&cli.IntFlag{Name: "queue-capacity", Category: cliflags.CatQueue, Value: d.QueueCapacity, EnvVars: cliflags.Env("queue-capacity"),
			Usage: "packets held in the priority queue; when full the lowest score is evicted"},
		&cli.DurationFlag{Name: "queue-ttl", Category: cliflags.CatQueue, Value: d.QueueTTL, EnvVars: cliflags.Env("queue-ttl"),
			Usage: "queued packets older than this are dropped, never sent"},
		&cli.Float64Flag{Name: "rescore-below", Category: cliflags.CatQueue, Value: d.RescoreBelow, EnvVars: cliflags.Env("rescore-below"),
			Usage: "model policy: a packet whose score, recomputed at send, fell below this share of its admission score is queued again at the new score (0: off)"},
		&cli.IntFlag{Name: "partial-capacity", Category: cliflags.CatQueue, Value: d.PartialCapacity, EnvVars: cliflags.Env("partial-capacity"),
			Usage: "packet hashes remembered for dedup and for joining scheduler results"},
		&cli.IntFlag{Name: "recent-capacity", Category: cliflags.CatQueue, Value: d.RecentCapacity, EnvVars: cliflags.Env("recent-capacity"),
			Usage: "recently confirmed signatures remembered"},
		&cli.BoolFlag{Name: "output-backpressure", Category: cliflags.CatQueue, EnvVars: cliflags.Env("output-backpressure"),
			Usage: "keep packets queued instead of sending more than sigverify can read without skipping (3/4 of qos_to_sig unread; only for a consumer that publishes its read index; such sends are always counted as output_overwrite)"},
		&cli.IntFlag{Name: "packet-batch", Category: cliflags.CatQueue, Value: d.PacketBatch, EnvVars: cliflags.Env("packet-batch"),
			Usage: "packets taken from one channel per loop visit"},
		&cli.StringFlag{Name: "model-file", Category: cliflags.CatModel, EnvVars: cliflags.Env("model-file"),
			Usage: "model file: loaded at start if present, saved on shutdown and every --save-interval"},
		&cli.DurationFlag{Name: "save-interval", Category: cliflags.CatModel, Value: d.SaveInterval, EnvVars: cliflags.Env("save-interval"),
			Usage: "periodic model save (0: only on shutdown)"},
		&cli.StringFlag{Name: "metrics-addr", Category: cliflags.CatOps, EnvVars: cliflags.Env("metrics-addr"),
			Usage: "serve Prometheus metrics on this address (e.g. 127.0.0.1:9464); off when empty"},
		&cli.DurationFlag{Name: "join-timeout", Category: cliflags.CatChannels, Value: 30 * time.Second, EnvVars: cliflags.Env("join-timeout"),
			Usage: "at start, keep retrying channels that do not exist or are not initialised yet for this long (0: fail at once)"},
		&cli.StringFlag{Name: "user", Category: cliflags.CatOps, EnvVars: cliflags.Env("user"),
			Usage: "drop privileges to this user after joining the channels (default: the invoking user under sudo)"},
		&cli.DurationFlag{Name: "idle-sleep", Category: cliflags.CatOps, EnvVars: cliflags.Env("idle-sleep"),
			Usage: "sleep this long when idle for over 1 ms (0: spin; the production setting)"},
	}
	flags = append(flags, cliflags.ChannelFlags()...)
	flags = append(flags, cliflags.ModelFlags()...)
	flags = append(flags, cliflags.AdmissionFlags()...)
	flags = append(flags, dbFlags()...)
	flags = append(flags, cliflags.LogFlags()...)
	return &cli.App{
		Name:  "qos",
		Usage: "QoS sidecar for a Solana validator",
		Description: "qos joins the validator's shared-memory channels (create them first with `qos-cli init`),\n" +
			"scores every packet by IP/signer reputation × fee per compute unit, keeps the best in a\n" +
			"priority queue and hands them to sigverify at --target-pps. SIGINT/SIGTERM stop it cleanly.",
		Flags:    flags,
		Action:   run,
		Commands: []*cli.Command{packCommand()},
	}
}

func run(c *cli.Context) error {
	log, err := cliflags.Logger(c)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	cfg := sidecar.DefaultConfig()
	cfg.Logger = log
	cfg.Channels = cliflags.ChannelOptions(c)
	if !c.IsSet("xxhash-seed") {
		return errors.New("Required flag \"xxhash-seed\" not set (sidecar mode; `qos pack` does not need it)")
	}
	cfg.Seed = c.Uint64("xxhash-seed")
	if cfg.Policy, err = sidecar.ParsePolicy(c.String("policy")); err != nil {
		return err
	}
	cfg.TargetPPS = c.Uint64("target-pps")
	cfg.PacerTick = c.Duration("pacer-tick")
	cfg.PacerBurst = c.Uint64("pacer-burst")
	cfg.QueueCapacity = c.Int("queue-capacity")
	cfg.QueueTTL = c.Duration("queue-ttl")
	cfg.RescoreBelow = c.Float64("rescore-below")
	cfg.PartialCapacity = c.Int("partial-capacity")
	cfg.RecentCapacity = c.Int("recent-capacity")
	cfg.PacketBatch = c.Int("packet-batch")
	cfg.OutputBackpressure = c.Bool("output-backpressure")
	cfg.ModelFile = c.String("model-file")
	cfg.SaveInterval = c.Duration("save-interval")
	cfg.IdleSleep = c.Duration("idle-sleep")
	if cfg.Model, err = cliflags.ModelParams(c); err != nil {
		return err
	}
	if cfg.Limits, err = cliflags.AdmissionLimits(c); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := startDatabase(ctx, c, log)
	if err != nil {
		return err
	}
	cfg.Handoff = db.handoff()

	s, err := openWhenReady(ctx, cfg, c.Duration("join-timeout"), log)
	if err != nil {
		db.close(log)
		return err
	}
	if err := dropPrivileges(c.String("user"), log); err != nil {
		db.close(log)
		return err
	}
	var srv *http.Server
	if addr := c.String("metrics-addr"); addr != "" {
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
