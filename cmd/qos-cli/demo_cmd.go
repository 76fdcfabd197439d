package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/sidecar"
	"github.com/solqos/qos/sim"
)

// demoPolicyList parses --policies: policy names, comma-separated.
func demoPolicyList(s string) ([]sidecar.Policy, error) {
	var out []sidecar.Policy
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		p, err := sidecar.ParsePolicy(name)
		if err != nil {
			return nil, fmt.Errorf("--policies: %w", err)
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--policies: no policy in %q", s)
	}
	return out, nil
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run the sidecar against a simulated validator under spam, and compare it with FIFO and fee-only",
		Description: "demo needs no root and no database. It creates the eight channels on standard pages\n" +
			"under a temporary prefix, then, for each policy (model, fee-only, fifo), runs the sidecar\n" +
			"in this process against the simulator with the same traffic, prints one table comparing\n" +
			"them and writes an HTML report. It removes its channel files when done.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Value: 8 * time.Second, Usage: "traffic per policy"},
			&cli.DurationFlag{Name: "warmup", Value: 3 * time.Second, Usage: "spam share is measured after this"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "traffic seed: the same seed gives the same packets"},
			&cli.StringFlag{Name: "config", Usage: "simulator configuration (JSON, as written by `qos-cli simulate --print-config`); default: the built-in story"},
			&cli.StringFlag{Name: "scenario", Usage: "a named scenario of the library instead of the built-in story (see --list-scenarios); \"all\" runs every one and prints one table"},
			&cli.BoolFlag{Name: "list-scenarios", Usage: "list the named scenarios and exit"},
			&cli.StringFlag{Name: "policies", Value: "model,fee-only,fifo", Usage: "the policies to compare, comma-separated"},
			&cli.StringFlag{Name: "report", Usage: "HTML report path (default: qos-demo-report.html, with --mode pack qos-pack-demo-report.html, in the temporary directory)"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON instead of a table"},
			&cli.StringFlag{Name: "shm-dir", Value: channels.DefaultShmDir, Usage: "directory for the demo's channel files"},
			&cli.BoolFlag{Name: "verbose", Usage: "show the sidecar's own log"},
			&cli.StringFlag{Name: "mode", Value: "sidecar", Usage: "sidecar (the daemon in front of sigverify) or pack (qos pack against the stand-in Agave validator)"},
			&cli.BoolFlag{Name: "check", Usage: "with --mode pack: every policy runs the CHECK stage (status, fee payer, lookup tables) before execution"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	out := c.App.Writer
	if c.Bool("list-scenarios") {
		for _, sc := range sim.Scenarios() {
			fmt.Fprintf(out, "%-16s %s\n", sc.Name, sc.Description)
		}
		return nil
	}
	policies, err := demoPolicyList(c.String("policies"))
	if err != nil {
		return err
	}
	name := c.String("scenario")
	if name != "" && c.String("config") != "" {
		return fmt.Errorf("demo: give --scenario or --config, not both")
	}
	if name == "all" {
		if c.String("mode") != "sidecar" {
			return fmt.Errorf("demo: --scenario all runs sidecar mode only")
		}
		return runAllScenarios(c, policies)
	}
	cfg, err := demoConfig(c, name)
	if err != nil {
		return err
	}
	switch c.String("mode") {
	case "pack":
		return runPackDemo(c, cfg, cfg.Duration)
	case "sidecar":
	default:
		return fmt.Errorf("--mode %q: want sidecar or pack", c.String("mode"))
	}
	report := c.String("report")
	if report == "" {
		report = filepath.Join(os.TempDir(), "qos-demo-report.html")
	}
	logLevel := slog.LevelError
	if c.Bool("verbose") {
		logLevel = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))

	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(out, "qos demo: %d agents, %.0f packets/s offered, sigverify takes %d/s; %v per policy\n",
		len(cfg.Agents), offeredPPS(&cfg), cfg.SigverifyPPS, cfg.Duration)
	var runs []sim.NamedResult
	for _, p := range policies {
		fmt.Fprintf(out, "  running %-8s ... ", p)
		res, err := demoRun(ctx, cfg, p, log)
		if err != nil {
			fmt.Fprintln(out, "failed")
			return err
		}
		fmt.Fprintf(out, "%.1f%% of the oracle's value, spam %.1f%% of sigverify work after warm-up\n",
			100*res.OracleShare(), 100*res.AttackerWorkAfterWarmup)
		runs = append(runs, sim.NamedResult{Name: p.String(), Result: res})
	}
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runs); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out)
		if err := sim.WriteTable(out, runs); err != nil {
			return err
		}
		fmt.Fprint(out, demoLegend)
	}
	if err := writeSimReport(report, runs); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nreport: %s\n", report)
	return nil
}

const demoLegend = `
How to read it: each row is the same traffic through one ranking policy. "% oracle" is the
value captured against the best choice sigverify at full capacity and the scheduler could
have made from that traffic (the same bar for every policy); "spam" is the attackers' part
of what reached sigverify, by packets and by sigverify work (signatures checked), over the
whole run / after the warm-up; "worst honest" is the honest agent that got the smallest
share of the value it offered; "honest never verified" and the honest latency count every
honest transaction offered, those never sent as infinitely late ("never"). model is qos;
fee-only and fifo are baselines. qos-cli demo --list-scenarios shows other traffic.
`

// demoConfig is the simulator configuration the flags ask for: the
// built-in story, a --config file or a named scenario, with --duration,
// --warmup and --seed over it (a scenario keeps its own duration and
// warm-up unless those flags are given).
func demoConfig(c *cli.Context, scenario string) (sim.Config, error) {
	cfg := sim.DefaultConfig()
	switch {
	case scenario != "":
		sc, err := sim.LookupScenario(scenario)
		if err != nil {
			return cfg, err
		}
		cfg = sc.Config()
	case c.String("config") != "":
		var err error
		if cfg, err = sim.LoadConfig(c.String("config")); err != nil {
			return cfg, err
		}
	}
	if scenario == "" || c.IsSet("duration") {
		cfg.Duration = c.Duration("duration")
	}
	if scenario == "" || c.IsSet("warmup") {
		cfg.Warmup = c.Duration("warmup")
	}
	if cfg.Warmup >= cfg.Duration {
		cfg.Warmup = cfg.Duration / 2
	}
	cfg.Seed = c.Int64("seed")
	cfg.Channels = channels.Options{ShmDir: c.String("shm-dir"), Prefix: fmt.Sprintf("qos-demo-%d-", os.Getpid())}
	return cfg, cfg.Validate()
}

// runAllScenarios plays every scenario of the library under each policy
// and prints one summary table.
func runAllScenarios(c *cli.Context, policies []sidecar.Policy) error {
	out := c.App.Writer
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rows []sim.ScenarioRun
	for _, sc := range sim.Scenarios() {
		cfg, err := demoConfig(c, sc.Name)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		for _, p := range policies {
			fmt.Fprintf(c.App.ErrWriter, "scenario %-16s %-8s ...\n", sc.Name, p)
			res, err := demoRun(ctx, cfg, p, log)
			if err != nil {
				return fmt.Errorf("scenario %s, policy %s: %w", sc.Name, p, err)
			}
			rows = append(rows, sim.ScenarioRun{Scenario: sc.Name, NamedResult: sim.NamedResult{Name: p.String(), Result: res}})
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	return sim.WriteScenarioTable(out, rows)
}

// demoRun runs one policy: fresh channels, a sidecar in this process, the
// simulator against it, and the channels removed afterwards.
func demoRun(ctx context.Context, cfg sim.Config, p sidecar.Policy, log *slog.Logger) (res sim.Result, err error) {
	if err := sim.Prepare(cfg); err != nil {
		return res, err
	}
	defer func() {
		if cerr := sim.Cleanup(cfg); cerr != nil && err == nil {
			err = cerr
		}
	}()
	sc := sidecar.DefaultConfig()
	sc.Channels = cfg.Channels
	sc.Seed = randomSeed()
	sc.Policy = p
	sc.TargetPPS = cfg.SigverifyPPS
	sc.QueueCapacity = 4096
	sc.PartialCapacity = 1 << 18
	sc.RecentCapacity = 1 << 18
	sc.IdleSleep = 50 * time.Microsecond // the demo shares two cores with the simulator
	sc.LogInterval = time.Second
	sc.Logger = log
	s, err := sidecar.Open(sc)
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	res, err = sim.Run(ctx, cfg)
	cancel()
	if serr := <-done; serr != nil && err == nil {
		err = serr
	}
	return res, err
}

func offeredPPS(cfg *sim.Config) float64 {
	var n float64
	for _, a := range cfg.Agents {
		n += a.PPS
	}
	return n
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano()) | 1
	}
	return binary.LittleEndian.Uint64(b[:]) | 1
}
