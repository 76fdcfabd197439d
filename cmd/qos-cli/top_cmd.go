package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/cmd/internal/top"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "live view of a running daemon, from its Prometheus endpoint (--metrics-addr)",
		Description: "top scrapes the daemon's metrics page once per --interval and shows rates and totals:\n" +
			"packets in per channel, admission outcomes and refusals by reason, sent per second against\n" +
			"the target, loop load, queue depth, feedback, model, database rows and peer liveness, plus\n" +
			"pack-mode figures and any metric newer than this top when the daemon exports them. A figure\n" +
			"the daemon does not export shows as —. On a terminal it is full screen (q or Esc quits; j/k or\n" +
			"the arrow keys scroll groups that do not fit, g goes back to the top);\n" +
			"otherwise, or with --plain, it prints one block of lines per interval.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "metrics-addr", Value: "127.0.0.1:9464", EnvVars: cliflags.Env("metrics-addr"),
				Usage: "the daemon's --metrics-addr (the same QOS_ variable, so one environment file serves both)"},
			&cli.StringFlag{Name: "metrics-url", EnvVars: cliflags.Env("metrics-url"),
				Usage: "full URL of the metrics page, instead of --metrics-addr (e.g. behind a proxy)"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, EnvVars: cliflags.Env("top-interval"),
				Usage: "time between scrapes and redraws"},
			&cli.Float64Flag{Name: "target-pps", EnvVars: cliflags.Env("target-pps"),
				Usage: "the daemon's --target-pps, for a daemon that does not export qos_target_pps (0: read it from the daemon)"},
			&cli.BoolFlag{Name: "plain", Usage: "print lines even on a terminal"},
			&cli.IntFlag{Name: "count", Usage: "plain mode: stop after this many blocks (0: until interrupted)"},
		},
		Action: func(c *cli.Context) error {
			url := c.String("metrics-url")
			if url == "" {
				addr := c.String("metrics-addr")
				if _, _, err := net.SplitHostPort(addr); err != nil {
					return fmt.Errorf("--metrics-addr %q: %w (want host:port, as given to qos)", addr, err)
				}
				url = "http://" + addr + "/metrics"
			}
			interval := c.Duration("interval")
			if interval < 100*time.Millisecond {
				return fmt.Errorf("--interval %s: at least 100ms", interval)
			}
			if c.Int("count") < 0 {
				return fmt.Errorf("--count %d: must not be negative", c.Int("count"))
			}
			cfg := top.Config{URL: url, Interval: interval, TargetPPS: c.Float64("target-pps")}
			out := c.App.Writer
			if !c.Bool("plain") && isTerminal(out) {
				scr, err := tcell.NewScreen()
				if err == nil {
					return top.RunScreen(c.Context, scr, cfg)
				}
				fmt.Fprintf(c.App.ErrWriter, "qos-cli top: no full-screen terminal (%v): printing lines\n", err)
			}
			return top.RunPlain(c.Context, out, c.App.ErrWriter, c.Int("count"), cfg)
		},
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
