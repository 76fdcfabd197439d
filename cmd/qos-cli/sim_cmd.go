package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/sim"
)

// categorySimulation groups the simulator's own flags.
const categorySimulation = "simulation"

func simulateCommand() *cli.Command {
	flags := append(channelFlags(),
		&cli.StringFlag{
			Name:     "config",
			Usage:    "simulator configuration (JSON; fields absent keep the built-in story's values, see --print-config)",
			EnvVars:  []string{"QOS_SIM_CONFIG"},
			Category: categorySimulation,
		},
		&cli.DurationFlag{
			Name:        "duration",
			Usage:       "how long to produce traffic",
			DefaultText: "the configuration's; 5s in the built-in story",
			EnvVars:     []string{"QOS_SIM_DURATION"},
			Category:    categorySimulation,
		},
		&cli.DurationFlag{
			Name:        "warmup",
			Usage:       "the attackers' share of output is measured after this",
			DefaultText: "the configuration's; 3s in the built-in story",
			EnvVars:     []string{"QOS_SIM_WARMUP"},
			Category:    categorySimulation,
		},
		&cli.Int64Flag{
			Name:        "seed",
			Usage:       "traffic seed: the same seed gives the same packets",
			DefaultText: "the configuration's; 1 in the built-in story",
			EnvVars:     []string{"QOS_SIM_SEED"},
			Category:    categorySimulation,
		},
		&cli.Uint64Flag{
			Name:        "sigverify-pps",
			Usage:       "mock sigverify capacity in packets/s, 0 for unlimited; run qos with the same --target-pps",
			DefaultText: "the configuration's; 5000 in the built-in story",
			EnvVars:     []string{"QOS_SIM_SIGVERIFY_PPS"},
			Category:    categorySimulation,
		},
		&cli.Uint64Flag{
			Name:     "xxhash-seed",
			Usage:    "packet-hash seed; 0 reads the one the qos daemon writes into sch_to_qos metadata, waiting for it",
			EnvVars:  []string{"QOS_XXHASH_SEED"},
			Category: categorySimulation,
		},
		&cli.DurationFlag{
			Name:     "seed-wait",
			Usage:    "how long to wait for the qos daemon to write the packet-hash seed",
			Value:    30 * time.Second,
			EnvVars:  []string{"QOS_SIM_SEED_WAIT"},
			Category: categorySimulation,
		},
		&cli.StringFlag{
			Name:     "name",
			Usage:    "label of this run in the table, the JSON and the report (e.g. the daemon's policy)",
			Value:    "qos",
			EnvVars:  []string{"QOS_SIM_NAME"},
			Category: categorySimulation,
		},
		&cli.StringFlag{
			Name:     "report",
			Usage:    "write a self-contained HTML report (inline SVG charts) to this file",
			EnvVars:  []string{"QOS_SIM_REPORT"},
			Category: categorySimulation,
		},
		&cli.BoolFlag{
			Name:     "json",
			Usage:    "print the result as JSON on stdout (the table then goes to stderr)",
			EnvVars:  []string{"QOS_SIM_JSON"},
			Category: categorySimulation,
		},
		&cli.BoolFlag{
			Name:     "print-config",
			Usage:    "print the effective configuration as JSON and exit (a starting point for --config)",
			Category: categorySimulation,
		},
	)
	return &cli.Command{
		Name:  "simulate",
		Usage: "play the validator against a running qos daemon and measure what it lets through",
		Description: "simulate creates the eight channels under --prefix if they are missing, waits for the qos\n" +
			"daemon to publish its packet-hash seed, then for --duration produces the configured agents'\n" +
			"traffic (honest senders, a spammer, a sybil) on tpu/fwd(/re1/re2)_to_qos, verifies mock\n" +
			"signatures of what qos sends to sigverify (failures back on sig_to_qos), includes verified\n" +
			"transactions by fee per CU within each 400 ms slot's compute budget (results on sch_to_qos,\n" +
			"signatures on tx_status_cache), and prints one table row: value captured against the oracle,\n" +
			"spam share of output after the warm-up, failed sigverify, duplicates, rates and latency.\n" +
			"Start qos with the same --prefix and with --target-pps equal to --sigverify-pps.",
		Flags:  flags,
		Action: runSimulate,
	}
}

func runSimulate(c *cli.Context) error {
	cfg := sim.DefaultConfig()
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = sim.LoadConfig(path); err != nil {
			return err
		}
	}
	if c.IsSet("duration") {
		cfg.Duration = c.Duration("duration")
	}
	if c.IsSet("warmup") {
		cfg.Warmup = c.Duration("warmup")
	}
	if c.IsSet("seed") {
		cfg.Seed = c.Int64("seed")
	}
	if c.IsSet("sigverify-pps") {
		cfg.SigverifyPPS = c.Uint64("sigverify-pps")
	}
	if c.IsSet("xxhash-seed") {
		cfg.HashSeed = c.Uint64("xxhash-seed")
	}
	cfg.SeedWait = c.Duration("seed-wait")
	cfg.Channels = channelOptions(c)
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("simulator config: %w", err)
	}
	out, errw := c.App.Writer, c.App.ErrWriter
	if c.Bool("print-config") {
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return fmt.Errorf("print config: %w", err)
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
	if err := sim.Prepare(cfg); err != nil {
		return err
	}
	if cfg.HashSeed == 0 {
		fmt.Fprintf(errw, "simulate: waiting up to %v for the qos daemon's packet-hash seed in %s\n",
			cfg.SeedWait, cfg.Channels.Path(channels.SchToQoS))
	}
	res, err := sim.Run(c.Context, cfg)
	if err != nil {
		return err
	}
	runs := []sim.NamedResult{{Name: c.String("name"), Result: res}}
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(runs[0]); err != nil {
			return fmt.Errorf("print result: %w", err)
		}
		if err := sim.WriteTable(errw, runs); err != nil {
			return err
		}
	} else if err := sim.WriteTable(out, runs); err != nil {
		return err
	}
	if path := c.String("report"); path != "" {
		if err := writeSimReport(path, runs); err != nil {
			return err
		}
		fmt.Fprintf(errw, "simulate: report written to %s\n", path)
	}
	return nil
}

// writeSimReport writes the HTML report of runs to path.
func writeSimReport(path string, runs []sim.NamedResult) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write report %s: %w", path, cerr)
		}
	}()
	return sim.WriteHTMLReport(f, runs)
}
