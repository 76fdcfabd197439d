package top

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gdamore/tcell/v2"
)

// Config is what one top session needs.
type Config struct {
	URL       string        // the metrics page
	Interval  time.Duration // between scrapes and redraws
	TargetPPS float64       // the daemon's --target-pps when it does not export qos_target_pps (0: read it)
}

// RunScreen shows the view full screen on scr until q, Esc, Ctrl-C or ctx
// ends; it initialises and finalises scr.
func RunScreen(ctx context.Context, scr tcell.Screen, cfg Config) error {
	return newTop(cfg).runScreen(ctx, scr)
}

// RunPlain prints a block of lines to out after every scrape from the
// second on, until ctx ends or count blocks are out (0: no limit). Scrape
// errors go to errw, and the next interval tries again.
func RunPlain(ctx context.Context, out, errw io.Writer, count int, cfg Config) error {
	return newTop(cfg).runPlain(ctx, out, errw, count)
}

func newTop(cfg Config) *top {
	return &top{sc: newScraper(cfg.URL, cfg.Interval), url: cfg.URL, interval: cfg.Interval, opts: viewOpts{targetPPS: cfg.TargetPPS}}
}

// top holds one session's state: the scraper and the last two samples.
type top struct {
	sc        *scraper
	url       string
	interval  time.Duration
	opts      viewOpts
	prev, cur *sample
	lastErr   error
	skip      int // groups scrolled off the top of a small screen
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
				if t.scroll(ev) {
					t.draw(scr)
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

// scroll moves the first group shown (on a screen too small for all of
// them) and reports whether the key was a scrolling one.
func (t *top) scroll(ev *tcell.EventKey) bool {
	switch {
	case ev.Key() == tcell.KeyDown || ev.Key() == tcell.KeyPgDn || ev.Key() == tcell.KeyRune && (ev.Rune() == 'j' || ev.Rune() == ' '):
		t.skip++
	case ev.Key() == tcell.KeyUp || ev.Key() == tcell.KeyPgUp || ev.Key() == tcell.KeyRune && ev.Rune() == 'k':
		t.skip--
	case ev.Key() == tcell.KeyHome || ev.Key() == tcell.KeyRune && ev.Rune() == 'g':
		t.skip = 0
	default:
		return false
	}
	return true // draw clamps skip to the groups there are
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
	groups := buildView(t.prev, t.cur, t.opts)
	t.skip = min(max(t.skip, 0), len(groups)-1)
	lines, dropped := layoutScreen(groups[t.skip:], w, h-y0)
	for y, pieces := range lines {
		for _, p := range pieces {
			st := tcell.StyleDefault
			if p.title {
				st = styleTitle
			}
			scr.PutStrStyled(p.x, y0+y, p.text, st)
		}
	}
	var msg string
	switch {
	case dropped > 0 && t.skip > 0:
		msg = fmt.Sprintf(" %d group(s) above (k/↑), %d below (j/↓) ", t.skip, dropped)
	case dropped > 0:
		msg = fmt.Sprintf(" %d more group(s): j/↓ or a larger terminal ", dropped)
	case t.skip > 0:
		msg = fmt.Sprintf(" %d group(s) above: k/↑ ", t.skip)
	}
	if msg != "" {
		scr.PutStrStyled(max(0, w-runeLen(msg)), h-1, msg, styleHeader)
	}
	scr.Show()
}
