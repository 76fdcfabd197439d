package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/standin"
	"github.com/solqos/qos/sim"
)

// categoryAgaveSim groups the stand-in validator's flags.
const categoryAgaveSim = "agave stand-in"

func agaveSimCommand() *cli.Command {
	d := standin.DefaultClockConfig()
	return &cli.Command{
		Name:  "agave-sim",
		Usage: "run a stand-in Agave validator that serves the scheduler-bindings interface",
		Description: "agave-sim listens on <ledger>/scheduler_bindings.ipc (or --socket) as\n" +
			"`agave-validator --enable-scheduler-bindings` does, in the ABI of --agave-abi. A scheduler that logs\n" +
			"on gets memfds (2 MiB huge pages when available) holding an rts-alloc allocator and shaq queues; the\n" +
			"stand-in feeds tpu_to_pack from the traffic simulator (after a mock sigverify and dedup), publishes\n" +
			"progress (leader windows, slot progress, remaining block cost, latest blockhash), and runs workers that\n" +
			"check and execute the scheduler's batches against a small bank (fees, account locks, block and\n" +
			"per-account cost limits, recent blockhashes, processed signatures, lookup tables). It audits the\n" +
			"scheduler's memory discipline: every block it hands out must come back exactly once. At the end it\n" +
			"prints its counters; it exits 1 if a session failed or a block leaked or was freed twice.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "ledger", Usage: "ledger directory: listen on its scheduler_bindings.ipc", EnvVars: []string{"QOS_LEDGER"}, Category: categoryAgaveSim},
			&cli.StringFlag{Name: "socket", Usage: "listen on this socket path instead of the ledger's", EnvVars: []string{"QOS_AGAVE_SOCKET"}, Category: categoryAgaveSim},
			&cli.StringFlag{Name: "agave-abi", Usage: "ABI profile to serve: 4.0, 4.1 (Agave 4.1-4.2), 4.3 (handshake VERSION 5) or 4.4", Value: bindings.Newest().Name, EnvVars: []string{"QOS_AGAVE_ABI"}, Category: categoryAgaveSim},
			&cli.BoolFlag{Name: "huge-pages", Usage: "ask for 2 MiB huge pages for the allocator and queues (falls back to 4 KiB pages)", Value: true, EnvVars: []string{"QOS_AGAVE_SIM_HUGE_PAGES"}, Category: categoryAgaveSim},
			&cli.IntFlag{Name: "check-workers", Usage: "check workers on profile 4.3, whose logon names no count (execution workers, and 4.4's check workers, are the client's logon's)", Value: 1, Category: categoryAgaveSim},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until interrupted)", EnvVars: []string{"QOS_AGAVE_SIM_DURATION"}, Category: categoryAgaveSim},
			&cli.DurationFlag{Name: "slot-duration", Usage: "slot length", Value: d.SlotDuration, EnvVars: []string{"QOS_AGAVE_SIM_SLOT"}, Category: categoryAgaveSim},
			&cli.IntFlag{Name: "ticks-per-slot", Usage: "ticks per slot (progress is published on every tick)", Value: d.TicksPerSlot, Category: categoryAgaveSim},
			&cli.IntFlag{Name: "leader-window", Usage: "consecutive leader slots", Value: d.LeaderWindow, Category: categoryAgaveSim},
			&cli.IntFlag{Name: "leader-every", Usage: "a leader window starts every this many slots (= --leader-window: always leader)", Value: d.LeaderEvery, Category: categoryAgaveSim},
			&cli.Uint64Flag{Name: "start-slot", Usage: "slot at start", Value: d.StartSlot, Category: categoryAgaveSim},
			&cli.Uint64Flag{Name: "block-cost-limit", Usage: "block cost limit in cost units", Value: standin.MaxBlockUnits, Category: categoryAgaveSim},
			&cli.Uint64Flag{Name: "account-cost-limit", Usage: "per-writable-account cost limit in cost units", Value: standin.MaxWritableAccountUnits, Category: categoryAgaveSim},
			&cli.BoolFlag{Name: "relax-intrabatch-account-locks", Usage: "the bank lets transactions of one batch conflict with each other (SIMD-0083, active on every cluster since Agave 4.x; false: a later conflicting one fails with ACCOUNT_IN_USE)", Value: true, EnvVars: []string{"QOS_AGAVE_SIM_RELAX_INTRABATCH_ACCOUNT_LOCKS"}, Category: categoryAgaveSim},
			&cli.Uint64Flag{Name: "exec-ns-per-cu", Usage: "execution time a batch holds its account locks, per included compute unit", Value: 1, Category: categoryAgaveSim},
			&cli.StringFlag{Name: "config", Usage: "traffic simulator configuration (JSON, as qos-cli simulate --print-config)", EnvVars: []string{"QOS_SIM_CONFIG"}, Category: categoryAgaveSim},
			&cli.Float64Flag{Name: "rate-scale", Usage: "multiply every agent's packet rate", Value: 1, Category: categoryAgaveSim},
			&cli.Int64Flag{Name: "seed", Usage: "traffic seed (default: the configuration's)", EnvVars: []string{"QOS_SIM_SEED"}, Category: categoryAgaveSim},
			&cli.Float64Flag{Name: "vote-pps", Usage: "simple vote transactions per second from staked validators", Value: 500, Category: categoryAgaveSim},
			&cli.Uint64Flag{Name: "payer-balance", Usage: "lamports of every funded fee payer", Value: 1_000_000_000_000, Category: categoryAgaveSim},
			&cli.Float64Flag{Name: "unfunded-share", Usage: "share of fee payers with an empty account (their transactions fail with insufficient funds)", Value: 0.05, Category: categoryAgaveSim},
			&cli.BoolFlag{Name: "json", Usage: "print the counters and session reports as JSON", Category: categoryAgaveSim},
			&cli.BoolFlag{Name: "verbose", Usage: "log sessions and refusals on stderr", Category: categoryAgaveSim},
		},
		Action: runAgaveSim,
	}
}

// agaveSimConfig builds the stand-in's configuration from the flags.
func agaveSimConfig(c *cli.Context) (standin.Config, error) {
	var cfg standin.Config
	switch ledger, sock := c.String("ledger"), c.String("socket"); {
	case ledger != "" && sock != "":
		return cfg, errors.New("give --ledger or --socket, not both")
	case sock != "":
		cfg.Socket = sock
	case ledger != "":
		fi, err := os.Stat(ledger)
		if err != nil {
			return cfg, fmt.Errorf("ledger directory: %w", err)
		}
		if !fi.IsDir() {
			return cfg, fmt.Errorf("ledger %s is not a directory", ledger)
		}
		cfg.Socket = standin.SocketPath(ledger)
	default:
		return cfg, errors.New("give --ledger DIR (the socket is DIR/scheduler_bindings.ipc) or --socket PATH")
	}
	p, err := bindings.ParseProfile(c.String("agave-abi"))
	if err != nil {
		return cfg, err
	}
	if p.IsAuto() {
		return cfg, errors.New("--agave-abi auto is for clients; the stand-in serves one profile: 4.0, 4.1, 4.3 or 4.4")
	}
	cfg.Profile = p
	cfg.HugePages = c.Bool("huge-pages")
	cfg.Clock = standin.ClockConfig{StartSlot: c.Uint64("start-slot"), SlotDuration: c.Duration("slot-duration"),
		TicksPerSlot: c.Int("ticks-per-slot"), LeaderWindow: c.Int("leader-window"), LeaderEvery: c.Int("leader-every"),
		BankStartTicks: 1}
	cfg.Bank = standin.BankConfig{BlockCostLimit: c.Uint64("block-cost-limit"), AccountCostLimit: c.Uint64("account-cost-limit"),
		Seed: uint64(c.Int64("seed")), StrictBatchLocks: !c.Bool("relax-intrabatch-account-locks")}
	cfg.ExecNanosPerCU = c.Uint64("exec-ns-per-cu")
	cfg.CheckWorkers = c.Int("check-workers")
	traffic := sim.DefaultConfig()
	if path := c.String("config"); path != "" {
		if traffic, err = sim.LoadConfig(path); err != nil {
			return cfg, err
		}
	}
	if c.IsSet("seed") {
		traffic.Seed = c.Int64("seed")
	}
	scale := c.Float64("rate-scale")
	if scale <= 0 || scale > 100 {
		return cfg, fmt.Errorf("--rate-scale %v: must be in (0, 100]", scale)
	}
	for i := range traffic.Agents {
		traffic.Agents[i].PPS *= scale
	}
	// The simulator's own run length does not bound the stand-in.
	traffic.Duration, traffic.Warmup = time.Hour, 0
	cfg.Feed = standin.FeedConfig{Traffic: traffic, VotePPS: c.Float64("vote-pps"),
		PayerBalance: c.Uint64("payer-balance"), UnfundedShare: c.Float64("unfunded-share")}
	return cfg, nil
}

func runAgaveSim(c *cli.Context) error {
	cfg, err := agaveSimConfig(c)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if c.Bool("verbose") {
		level = slog.LevelInfo
	}
	cfg.Logger = slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
	st, err := standin.New(cfg)
	if err != nil {
		return err
	}
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	fmt.Fprintf(c.App.ErrWriter, "agave-sim: serving Agave %s (profile %s) on %s\n", cfg.Profile.Agave, cfg.Profile.Name, cfg.Socket)
	verdict := st.Serve(ctx)
	if c.Bool("json") {
		out := struct {
			Stats    standin.Stats           `json:"stats"`
			Sessions []standin.SessionReport `json:"sessions"`
			Verdict  string                  `json:"verdict,omitempty"`
		}{Stats: st.Stats(), Sessions: st.Reports()}
		if verdict != nil {
			out.Verdict = verdict.Error()
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printAgaveSim(c.App.Writer, st.Stats())
	}
	if verdict != nil {
		return fmt.Errorf("stand-in validator: %w", verdict)
	}
	return nil
}

// printAgaveSim prints the counters as a two-column table.
func printAgaveSim(w io.Writer, s standin.Stats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("sessions", s.Sessions)
	row("generated", s.Generated)
	row("dropped by sigverify / unparsable / dedup", fmt.Sprintf("%d / %d / %d", s.SigverifyFailed, s.Unparsable, s.Deduplicated))
	row("fed on tpu_to_pack (votes)", fmt.Sprintf("%d (%d)", s.Fed, s.Votes))
	row("dropped: allocator / queue full", fmt.Sprintf("%d / %d", s.DroppedAlloc, s.DroppedQueue))
	row("messages: execute / check / invalid / past max slot", fmt.Sprintf("%d / %d / %d / %d", s.ExecuteMessages, s.CheckMessages, s.Invalid, s.MaxSlotExceeded))
	row("executed (included)", s.Executed)
	row("fees collected (lamports)", s.Fees)
	row("cost units included", s.CostUnits)
	reasons := make([]string, 0, len(s.NotIncluded))
	for r := range s.NotIncluded {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		if r != "NONE" {
			row("  not included: "+r, s.NotIncluded[r])
		}
	}
	row("checked", s.Checked)
	row("blocks handed out / returned", fmt.Sprintf("%d / %d", s.BlocksGiven, s.BlocksReturned))
	row("unread in tpu_to_pack at the end", s.Undelivered)
	row("leaks / bad frees", fmt.Sprintf("%d / %d", s.Leaks, s.BadFrees))
	_ = tw.Flush()
}
