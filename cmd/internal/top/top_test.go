package top

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
)

// loadSample parses a testdata/top fixture as if scraped at at.
func loadSample(t testing.TB, name string, at time.Time) *sample {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := parseSample(f, at)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// cell returns the text of one cell of the view, or fails the test.
func cell(t *testing.T, groups []viewGroup, title, label string, col int) string {
	t.Helper()
	for _, g := range groups {
		if g.title != title {
			continue
		}
		for _, r := range g.rows {
			if r.label == label {
				if col >= len(r.cells) {
					t.Fatalf("%s / %s has %d cells, want #%d", title, label, len(r.cells), col)
				}
				return r.cells[col]
			}
		}
		t.Fatalf("group %q has no row %q", title, label)
	}
	t.Fatalf("no group %q", title)
	return ""
}

func hasGroup(groups []viewGroup, title string) bool {
	for _, g := range groups {
		if g.title == title {
			return true
		}
	}
	return false
}

// TestTopView: two scrapes of a real daemon (testdata/top, one second
// apart) give the rates and totals an operator reads; what the daemon does
// not export shows as —; the pack group appears only with pack metrics.
// TestTopPackView: two scrapes of a real `qos pack` (testdata/packmode-*,
// one second apart; the second edited to hold a reason first seen in it,
// batches in flight and cost in the slot) show the pack groups and none
// of the sidecar's.
func TestTopPackView(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s1 := loadSample(t, "packmode-1.prom", t0)
	s2 := loadSample(t, "packmode-2.prom", t0.Add(time.Second))
	v := buildView(s1, s2, viewOpts{})
	for _, tc := range []struct {
		title, label string
		col          int
		want         string
	}{
		{"pack: blocks", "included", 0, "2690"}, // 11014 - 8324
		{"pack: blocks", "included", 1, "11.0k"},
		// account_in_use 6047-4861, bank_not_available 4-1, and
		// would_exceed_max_block_cost_limit 3 (absent before: from 0).
		{"pack: blocks", "scheduler-caused misses", 0, "1192"},
		{"pack: blocks", "scheduler-caused misses", 1, "6054"},
		{"pack: blocks", "failed (not included)", 1, "75"},
		{"pack: blocks", "batches unprocessed", 0, "3"},
		{"pack: scheduler", "session up", 0, "yes"},
		{"pack: scheduler", "slot cost in flight", 0, "15.0M"},
		{"pack: scheduler", "slot cost in flight", 1, "60.0M"},
		{"pack: scheduler", "share of block limit", 0, "25.0%"},
		{"pack: scheduler", "leaked blocks", 0, "0"},        // 2 arrays, both in flight
		{"pack: scheduler", "worker 0 batches/s", 0, "354"}, // 1444 - 1090
		{"pack: scheduler", "worker 1 batches/s", 0, "372"},
		{"pack mode: all series", "slots_total", 1, "41"},
	} {
		if got := cell(t, v, tc.title, tc.label, tc.col); got != tc.want {
			t.Errorf("%s / %s [%d] = %q, want %q", tc.title, tc.label, tc.col, got, tc.want)
		}
	}
	for _, g := range []string{"packets in", "admission", "queue", "model", "peers", "database rows"} {
		if hasGroup(v, g) {
			t.Errorf("a pack scrape shows the sidecar's group %q", g)
		}
	}
	// A scrape that also holds the sidecar's metrics keeps its groups.
	if mixed := buildView(nil, loadSample(t, "pack.prom", t0), viewOpts{}); !hasGroup(mixed, "packets in") || hasGroup(mixed, "pack: blocks") {
		t.Error("a sidecar scrape with pack metrics lost the sidecar's groups")
	}
}

// TestTopPackViewIntervals: two scrapes of today's `qos pack`
// (testdata/packmode-new-*, one second apart, against the stand-in
// validator with --stats-interval 2s) show the figures older daemons did
// not export: the interval latencies (p50 and p99 of the daemon's last
// stats interval, not cumulative), each worker's busy share, the slot's
// block cost as the validator reports it and the mean fill of the leader
// slots that ended, sender-caused results, the leak itself (no longer
// minus the arrays in flight), and the model's tables.
func TestTopPackViewIntervals(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s1 := loadSample(t, "packmode-new-1.prom", t0)
	s2 := loadSample(t, "packmode-new-2.prom", t0.Add(time.Second))
	v := buildView(s1, s2, viewOpts{})
	for _, tc := range []struct {
		title, label string
		col          int
		want         string
	}{
		{"pack: blocks", "sender-caused (charged)", 0, "0"},
		{"pack: blocks", "sender-caused (charged)", 1, "28"},
		{"pack: scheduler", "slot cost used", 0, "27.9M"},
		{"pack: scheduler", "slot cost used", 1, "60.0M"},
		{"pack: scheduler", "share of block limit", 0, "46.5%"},
		{"pack: scheduler", "mean leader block fill", 0, "29.4%"}, // (1425986217 − 1355500468) / 4 slots / 60 M
		{"pack: scheduler", "leaked blocks", 0, "0"},              // 4 arrays live, 4 batches in flight
		{"pack: scheduler", "queued", 1, "16.4k"},
		{"pack: scheduler", "arrival→dispatch p50 (last 2s)", 0, "335.544ms"},
		{"pack: scheduler", "arrival→execution p99 (last 2s)", 0, "1.879048s"},
		{"pack: scheduler", "worker 0 busy", 0, "46.3%"}, // 5.008073936 − 4.544881431 s in 1 s
		{"pack: scheduler", "worker 1 busy", 0, "46.3%"},
		{"pack: model", "IPs", 0, "24"},
		{"pack: model", "learnt unpaid", 1, "28"},
		{"pack: model", "learnt paid", 0, "1380"}, // 16187 − 14807
	} {
		if got := cell(t, v, tc.title, tc.label, tc.col); got != tc.want {
			t.Errorf("%s / %s [%d] = %q, want %q", tc.title, tc.label, tc.col, got, tc.want)
		}
	}
	// An older daemon's cumulative p99 gauges still show, without the
	// interval's rows.
	old := buildView(loadSample(t, "packmode-1.prom", t0), loadSample(t, "packmode-2.prom", t0.Add(time.Second)), viewOpts{})
	if got := cell(t, old, "pack: scheduler", "arrival→execution p99", 0); got != "1.879048s" {
		t.Errorf("older daemon's p99: %q", got)
	}
	if got := cell(t, old, "pack: blocks", "sender-caused (charged)", 0); got != missing {
		t.Errorf("older daemon's sender-caused results: %q, want %s", got, missing)
	}
}

func TestTopView(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s1 := loadSample(t, "sidecar-1.prom", t0)
	s2 := loadSample(t, "sidecar-2.prom", t0.Add(time.Second))
	v := buildView(s1, s2, viewOpts{})
	f := func(title, label string, col int, want string) {
		t.Helper()
		if got := cell(t, v, title, label, col); got != want {
			t.Errorf("%s / %s [%d] = %q, want %q", title, label, col, got, want)
		}
	}
	f("packets in", "tpu_to_qos", 0, "160k") // 447257 - 287241 in 1 s
	f("packets in", "tpu_to_qos", 1, "447k")
	f("output", "sent /s", 0, "5450") // 18500 - 13050
	f("output", "target /s", 0, "5000")
	f("output", "sent / target", 0, "109.0%")
	f("queue", "lowest queued score", 0, "0.000412")
	f("model", "/24 prefixes", 0, "9")
	f("model", "/16 prefixes", 0, "3")
	f("model", "newcomer factor", 0, "0.94")
	f("model", "evicted (tables full)", 1, "0")
	f("database rows", "written", 0, missing) // no --db-url
	f("peers", "tpu_to_qos", 0, "yes")
	f("peers", "tx_status_cache", 1, "yes")
	if hasGroup(v, "pack mode") || hasGroup(v, "other qos metrics") {
		t.Errorf("a sidecar's scrape shows pack or unknown groups")
	}
	// The first row of packets in is the TPU channel (visiting order).
	for _, g := range v {
		if g.title == "packets in" && g.rows[0].label != "tpu_to_qos" {
			t.Errorf("first channel row %q, want tpu_to_qos", g.rows[0].label)
		}
	}

	// --target-pps overrides the exported target.
	if got := cell(t, buildView(s1, s2, viewOpts{targetPPS: 10900}), "output", "sent / target", 0); got != "50.0%" {
		t.Errorf("sent/target with --target-pps 10900 = %q, want 50.0%%", got)
	}
	// One scrape: totals, no rates.
	one := buildView(nil, s2, viewOpts{})
	if got := cell(t, one, "output", "sent /s", 0); got != missing {
		t.Errorf("rate from one scrape = %q, want %q", got, missing)
	}
	if got := cell(t, one, "output", "sent /s", 1); got != "18.5k" {
		t.Errorf("total from one scrape = %q, want 18.5k", got)
	}
	// No scrape at all: every figure missing, nothing panics.
	for _, g := range buildView(nil, nil, viewOpts{}) {
		for _, r := range g.rows {
			for _, c := range r.cells {
				if c != missing && c != "" {
					t.Errorf("no scrape: %s / %s shows %q", g.title, r.label, c)
				}
			}
		}
	}

	// Pack mode and unknown families are shown generically.
	p := buildView(s2, loadSample(t, "pack.prom", t0.Add(2*time.Second)), viewOpts{})
	if got := cell(t, p, "pack mode", "worker_busy_ratio 1", 0); got != "0.50" {
		t.Errorf("worker 1 busy = %q, want 0.50", got)
	}
	if got := cell(t, p, "pack mode", "locks_held", 0); got != "42" {
		t.Errorf("locks held = %q, want 42", got)
	}
	if got := cell(t, p, "pack mode", "leaked_blocks_total", 1); got != "0" {
		t.Errorf("leaked blocks = %q, want 0", got)
	}
	if got := cell(t, p, "other qos metrics", "future_widgets_total blue", 1); got != "3" {
		t.Errorf("unknown counter total = %q, want 3", got)
	}
}

// TestTopFault: a channel dropped after its file was shrunk under the
// mapping shows FAULT and its fault count in the peers group.
func TestTopFault(t *testing.T) {
	page := `# TYPE qos_channel_joined gauge
qos_channel_joined{channel="tpu_to_qos"} 0
qos_channel_joined{channel="fwd_to_qos"} 1
# TYPE qos_channel_faulted gauge
qos_channel_faulted{channel="tpu_to_qos"} 1
qos_channel_faulted{channel="fwd_to_qos"} 0
# TYPE qos_channel_faults_total counter
qos_channel_faults_total{channel="tpu_to_qos"} 2
qos_channel_faults_total{channel="fwd_to_qos"} 0
`
	s, err := parseSample(strings.NewReader(page), time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	v := buildView(nil, s, viewOpts{})
	for _, tc := range []struct {
		ch   string
		col  int
		want string
	}{
		{"tpu_to_qos", 0, "FAULT"}, {"tpu_to_qos", 3, "2"}, {"tpu_to_qos", 1, missing},
		{"fwd_to_qos", 0, "yes"}, {"fwd_to_qos", 3, "0"},
	} {
		if got := cell(t, v, "peers", tc.ch, tc.col); got != tc.want {
			t.Errorf("peers / %s [%d] = %q, want %q", tc.ch, tc.col, got, tc.want)
		}
	}
	for _, l := range plainLines(v) {
		if n := runeLen(l); n > blockWidth {
			t.Errorf("line wider than a block (%d > %d): %q", n, blockWidth, l)
		}
	}
}

// TestTopCounterReset: a counter that went down (daemon restarted) counts
// from zero instead of showing a negative rate.
func TestTopCounterReset(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	a, err := parseSample(strings.NewReader("# TYPE qos_events_total counter\nqos_events_total{event=\"sent\"} 1000\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseSample(strings.NewReader("# TYPE qos_events_total counter\nqos_events_total{event=\"sent\"} 40\n"), t0.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := rate(a, b, mEvents, "event", "sent"); !ok || r != 20 {
		t.Fatalf("rate after reset = %v, %v; want 20, true", r, ok)
	}
}

func TestTopFormat(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{fmtRate(0, true), "0"},
		{fmtRate(2.5, true), "2.50"},
		{fmtRate(8, true), "8"},
		{fmtRate(12345.6, true), "12.3k"},
		{fmtRate(3_400_000, true), "3.40M"},
		{fmtRate(1, false), missing},
		{fmtCount(9999, true), "9999"},
		{fmtCount(1.5e9, true), "1.50G"},
		{fmtPct(0.123, true), "12.3%"},
		{fmtBytes(1536, true), "1.5 KiB"},
		{fmtBytes(12, true), "12 B"},
		{fmtSeconds(0.0042, true), "4.2ms"},
		{fmtScore(0.00012, true), "0.00012"},
		{fmtBool(1, true), "yes"},
		{fmtBool(0, true), "no"},
		{truncate("abcdefgh", 5), "abcd…"},
		{padLeft("—", 3), "  —"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// metricsServer serves a metrics page whose counters grow by 1000 per
// request, as a running daemon's do.
func metricsServer(t *testing.T) *httptest.Server {
	t.Helper()
	var (
		mu sync.Mutex // the server's handlers run on their own goroutines
		n  int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE qos_events_total counter\nqos_events_total{event=\"sent\"} %d\n", 1000*k)
		fmt.Fprintf(w, "# TYPE qos_received_packets_total counter\nqos_received_packets_total{channel=\"tpu_to_qos\"} %d\n", 7000*k)
		fmt.Fprintf(w, "# TYPE qos_queue_length gauge\nqos_queue_length %d\n", 10+k)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// screenText returns the cells' text, one string per line. Call it only
// from the goroutine drawing on scr, or on a copy (see sizedScreen).
func screenText(scr tcell.SimulationScreen) []string {
	cells, w, h := scr.GetContents()
	lines := make([]string, h)
	for y := 0; y < h; y++ {
		var b strings.Builder
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			if len(c.Runes) == 0 {
				b.WriteByte(' ')
				continue
			}
			b.WriteString(string(c.Runes))
		}
		lines[y] = strings.TrimRight(b.String(), " ")
	}
	return lines
}

// lineWith returns the first block's line starting with prefix (the left
// column of the screen only).
func lineWith(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return truncate(l, blockWidth)
		}
	}
	return ""
}

// TestTopScreen runs the full-screen loop on tcell's simulation screen
// against a growing metrics page: the figures change from one redraw to
// the next, and q quits.
func TestTopScreen(t *testing.T) {
	srv := metricsServer(t)
	scr := tcell.NewSimulationScreen("UTF-8")
	tp := &top{sc: newScraper(srv.URL, time.Second), url: srv.URL, interval: 150 * time.Millisecond}
	done := make(chan error, 1)
	// Init sizes the simulation screen; SetSize after it.
	sized := &sizedScreen{SimulationScreen: scr, w: 132, h: 40}
	go func() { done <- tp.runScreen(context.Background(), sized) }()

	seen := map[string]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for len(seen) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if l := lineWith(sized.text(), "sent /s"); l != "" && !strings.Contains(l, missing) {
			seen[l] = true
		}
	}
	if len(seen) < 3 {
		t.Fatalf("saw %d distinct 'sent' lines in 10 s, want 3; screen:\n%s", len(seen), strings.Join(sized.text(), "\n"))
	}
	text := strings.Join(sized.text(), "\n")
	for _, want := range []string{"qos top", "packets in", "tpu_to_qos", "admission", "peers"} {
		if !strings.Contains(text, want) {
			t.Errorf("screen lacks %q:\n%s", want, text)
		}
	}
	scr.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q did not quit within 5 s")
	}
}

// sizedScreen sets the simulation screen's size right after Init, and
// keeps a copy of its text at every Show for the test to read (the
// simulation screen's own cells are not safe to read while it draws).
type sizedScreen struct {
	tcell.SimulationScreen
	w, h  int
	mu    sync.Mutex
	shown []string
}

func (s *sizedScreen) Show() {
	s.SimulationScreen.Show()
	lines := screenText(s.SimulationScreen)
	s.mu.Lock()
	s.shown = lines
	s.mu.Unlock()
}

func (s *sizedScreen) text() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shown
}

func (s *sizedScreen) Init() error {
	if err := s.SimulationScreen.Init(); err != nil {
		return err
	}
	s.SetSize(s.w, s.h)
	return nil
}

// FuzzTopParse: any bytes from an endpoint either fail to parse or give a
// view that renders, never a panic.
func FuzzTopParse(f *testing.F) {
	// Small seeds: the whole fixtures (5 KB) slow coverage-guided fuzzing
	// of the text parser to a few executions a second.
	for _, seed := range []string{
		// A counter by label, as qos_events_total is exported.
		"# TYPE qos_events_total counter\nqos_events_total{event=\"sent\"} 13050\nqos_events_total{event=\"admitted\"} 9\n",
		// Gauges, with and without labels.
		"# TYPE qos_queue_length gauge\nqos_queue_length 16384\n# TYPE qos_model_entries gauge\nqos_model_entries{table=\"ip\"} 17\n",
		// Pack mode and an unknown family.
		"# TYPE qos_pack_locks_held gauge\nqos_pack_locks_held 42\n# TYPE qos_future_widgets_total counter\nqos_future_widgets_total{kind=\"blue\"} 3\n",
		// Untyped, NaN and infinities.
		"qos_events_total{event=\"sent\"} NaN\nqos_target_pps +Inf\n",
		// Invalid UTF-8 in a label value.
		"# TYPE qos_pack_x counter\nqos_pack_x{a=\"\xff\"} -Inf\n",
		// A histogram and a summary.
		"# TYPE qos_h histogram\nqos_h_bucket{le=\"1\"} 1\nqos_h_bucket{le=\"+Inf\"} 2\nqos_h_sum 3\nqos_h_count 2\n# TYPE qos_s summary\nqos_s{quantile=\"0.5\"} 1\nqos_s_sum 1\nqos_s_count 1\n",
	} {
		f.Add([]byte(seed))
	}
	t0 := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseSample(bytes.NewReader(b), t0)
		if err != nil {
			if s != nil {
				t.Fatal("both a sample and an error")
			}
			return
		}
		prev, _ := parseSample(bytes.NewReader(b), t0.Add(-time.Second))
		g := buildView(prev, s, viewOpts{})
		_ = plainLines(g)
		_, _ = layoutScreen(g, 80, 24)
	})
}

// TestTopScreenSmall: on an 80×24 terminal the groups that do not fit are
// announced, and j scrolls them into view, k back.
func TestTopScreenSmall(t *testing.T) {
	srv := metricsServer(t)
	scr := tcell.NewSimulationScreen("UTF-8")
	tp := newTop(Config{URL: srv.URL, Interval: 100 * time.Millisecond})
	sized := &sizedScreen{SimulationScreen: scr, w: 80, h: 24}
	done := make(chan error, 1)
	go func() { done <- tp.runScreen(context.Background(), sized) }()
	t.Cleanup(func() {
		scr.InjectKey(tcell.KeyEscape, 0, tcell.ModNone)
		<-done
	})
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if ok(strings.Join(sized.text(), "\n")) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("screen never showed %s:\n%s", what, strings.Join(sized.text(), "\n"))
	}
	waitFor("the first groups and a note of more", func(s string) bool {
		return strings.Contains(s, "packets in") && !strings.Contains(s, "─ peers") && strings.Contains(s, "more group(s)")
	})
	for i := 0; i < 12; i++ {
		scr.InjectKey(tcell.KeyRune, 'j', tcell.ModNone)
	}
	waitFor("the peers group after scrolling down", func(s string) bool {
		return strings.Contains(s, "─ peers") && strings.Contains(s, "above")
	})
	scr.InjectKey(tcell.KeyRune, 'g', tcell.ModNone)
	waitFor("the top again", func(s string) bool {
		return strings.Contains(s, "─ packets in") && !strings.Contains(s, "above")
	})
}
