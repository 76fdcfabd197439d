package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/solqos/qos/cmd/internal/cliflags"
)

func topCommand() *cli.Command {
	return &cli.Command{
		Name:  "top",
		Usage: "live view of a running daemon, from its Prometheus endpoint (--metrics-addr)",
		Description: "top scrapes the daemon's metrics page once per --interval and shows rates and totals:\n" +
			"packets in per channel, admission outcomes and refusals by reason, sent per second against\n" +
			"the target, loop load, queue depth, feedback, model, database rows and peer liveness, plus\n" +
			"pack-mode figures and any metric newer than this top when the daemon exports them. A figure\n" +
			"the daemon does not export shows as —. On a terminal it is full screen (q or Esc quits);\n" +
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
			t := &top{
				sc:       newScraper(url, interval),
				url:      url,
				interval: interval,
				opts:     viewOpts{targetPPS: c.Float64("target-pps")},
			}
			out := c.App.Writer
			if !c.Bool("plain") && isTerminal(out) {
				scr, err := tcell.NewScreen()
				if err == nil {
					return t.runScreen(c.Context, scr)
				}
				fmt.Fprintf(c.App.ErrWriter, "qos-cli top: no full-screen terminal (%v): printing lines\n", err)
			}
			return t.runPlain(c.Context, out, c.App.ErrWriter, c.Int("count"))
		},
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// top holds one session's state: the scraper and the last two samples.
type top struct {
	sc        *scraper
	url       string
	interval  time.Duration
	opts      viewOpts
	prev, cur *sample
	lastErr   error
}

type scrapeResult struct {
	s   *sample
	err error
}

// accept records a scrape's outcome.
func (t *top) accept(r scrapeResult) {
	if r.err != nil {
		t.lastErr = r.err
		return
	}
	t.lastErr = nil
	t.prev, t.cur = t.cur, r.s
}

// runPlain prints a block of lines after every scrape from the second on
// (the first has no rates), until ctx ends or count blocks are out.
func (t *top) runPlain(ctx context.Context, out, errw io.Writer, count int) error {
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	printed := 0
	for {
		s, err := t.sc.scrape(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t.accept(scrapeResult{s, err})
		if err != nil {
			fmt.Fprintf(errw, "qos-cli top: %v\n", err)
		} else if t.prev != nil {
			fmt.Fprintf(out, "# qos top %s %s\n", t.cur.at.UTC().Format(time.RFC3339), t.url)
			for _, l := range plainLines(buildView(t.prev, t.cur, t.opts)) {
				fmt.Fprintln(out, l)
			}
			fmt.Fprintln(out)
			printed++
			if count > 0 && printed >= count {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// runScreen shows the view full screen until q, Esc, Ctrl-C or ctx ends.
// Scrapes run beside the event loop, so keys answer at once even while the
// daemon is slow to respond.
func (t *top) runScreen(ctx context.Context, scr tcell.Screen) error {
	if err := scr.Init(); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	defer scr.Fini()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan tcell.Event, 16)
	quit := make(chan struct{})
	defer close(quit)
	go scr.ChannelEvents(events, quit)

	results := make(chan scrapeResult, 1)
	inflight := false
	fetch := func() {
		inflight = true
		go func() {
			s, err := t.sc.scrape(ctx)
			results <- scrapeResult{s, err}
		}()
	}
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	fetch()
	t.draw(scr)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			switch ev := ev.(type) {
			case *tcell.EventKey:
				if ev.Key() == tcell.KeyEscape || ev.Key() == tcell.KeyCtrlC ||
					(ev.Key() == tcell.KeyRune && (ev.Rune() == 'q' || ev.Rune() == 'Q')) {
					return nil
				}
			case *tcell.EventResize:
				scr.Sync()
				t.draw(scr)
			}
		case <-tick.C:
			if !inflight {
				fetch()
			}
		case r := <-results:
			inflight = false
			if errors.Is(r.err, context.Canceled) {
				return nil
			}
			t.accept(r)
			t.draw(scr)
		}
	}
}

var (
	styleHeader = tcell.StyleDefault.Reverse(true)
	styleTitle  = tcell.StyleDefault.Bold(true)
	styleError  = tcell.StyleDefault.Foreground(tcell.ColorRed).Bold(true)
)

// draw renders the current view on scr.
func (t *top) draw(scr tcell.Screen) {
	scr.Clear()
	w, h := scr.Size()
	head := fmt.Sprintf(" qos top  %s  every %s", t.url, t.interval)
	if t.cur != nil {
		head += "  " + t.cur.at.Format("15:04:05")
	}
	head += "  (q quits)"
	scr.PutStrStyled(0, 0, padRight(head, w), styleHeader)
	y0 := 1
	switch {
	case t.lastErr != nil:
		scr.PutStrStyled(0, 1, truncate(t.lastErr.Error(), w), styleError)
		y0 = 2
	case t.cur == nil:
		scr.PutStrStyled(0, 1, "waiting for the first scrape…", tcell.StyleDefault)
		y0 = 2
	}
	lines, dropped := layoutScreen(buildView(t.prev, t.cur, t.opts), w, h-y0)
	for y, pieces := range lines {
		for _, p := range pieces {
			st := tcell.StyleDefault
			if p.title {
				st = styleTitle
			}
			scr.PutStrStyled(p.x, y0+y, p.text, st)
		}
	}
	if dropped > 0 {
		msg := fmt.Sprintf(" %d more group(s): enlarge the terminal ", dropped)
		scr.PutStrStyled(max(0, w-runeLen(msg)), h-1, msg, styleHeader)
	}
	scr.Show()
}
