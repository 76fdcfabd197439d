package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/solqos/qos/schema/schematest"
)

// This file proves the operator kit against the daemon built from this
// tree: qos-cli top in a real terminal (tmux), the Grafana dashboard's
// queries against /metrics, and the systemd units.

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// needTool fails (never skips) when a tool the test drives is missing.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s package (scripts/test does): %v", name, pkg, err)
	}
	return p
}

// startWithMetrics starts the daemon on fresh channels with
// --metrics-addr and waits until /metrics answers. It returns the daemon,
// the channel prefix and the metrics address.
func startWithMetrics(t *testing.T, extra ...string) (*daemon, string, string) {
	t.Helper()
	p := prefix(t)
	run(t, cliBin, "init", "--prefix", p)
	addr := freeAddr(t)
	args := append([]string{"--xxhash-seed", "4242", "--prefix", p, "--target-pps", sigverifyPPS,
		"--queue-capacity", "4096", "--idle-sleep", "50us", "--metrics-addr", addr}, extra...)
	d := startDaemon(t, args...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := scrapeMetrics(addr); err == nil {
			return d, p, addr
		}
		select {
		case err := <-d.done:
			t.Fatalf("qos exited before serving metrics: %v\n%s", err, d.logs)
		default:
		}
		if time.Now().After(deadline) {
			_ = d.cmd.Process.Kill()
			<-d.done
			t.Fatalf("no /metrics on %s within 20 s; log:\n%s", addr, d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrapeMetrics fetches the daemon's metrics page.
func scrapeMetrics(addr string) ([]byte, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// grafanaPanel is what the schema check reads of a dashboard panel.
type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's panels
}

type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var panelTypes = map[string]bool{"row": true, "timeseries": true, "stat": true, "state-timeline": true, "gauge": true, "bargauge": true, "table": true, "text": true}

// loadDashboard reads deploy/grafana/<name> and checks what Grafana
// needs to import it: identity, schema version, panels with unique ids on
// the 24-column grid without overlap, a Prometheus datasource variable
// every query uses, and queries with unique refIds. It returns every
// PromQL expression (panels and template variables).
func loadDashboard(t *testing.T, name string) []string {
	t.Helper()
	path := filepath.Join("..", "deploy", "grafana", name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var d grafanaDashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || !regexp.MustCompile(`^[A-Za-z0-9_-]{1,40}$`).MatchString(d.UID) {
		t.Errorf("%s: title %q, uid %q: want a title and a uid of 1-40 [A-Za-z0-9_-]", path, d.Title, d.UID)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("%s: schemaVersion %d, want >= 36 (Grafana 9+)", path, d.SchemaVersion)
	}
	var exprs []string
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil || q.Query == "" {
				t.Errorf("%s: variable %s has no query: %s", path, v.Name, v.Query)
			}
			exprs = append(exprs, q.Query)
		}
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("%s: no datasource variable of type datasource", path)
	}
	ids := map[int]string{}
	taken := map[[2]int]string{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			where := fmt.Sprintf("%s: panel %d %q", path, p.ID, p.Title)
			if p.ID <= 0 || ids[p.ID] != "" {
				t.Errorf("%s: id missing or used twice (also %q)", where, ids[p.ID])
			}
			ids[p.ID] = p.Title
			if !panelTypes[p.Type] || p.Title == "" {
				t.Errorf("%s: type %q unknown or title empty", where, p.Type)
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
				t.Errorf("%s: gridPos %+v outside the 24-column grid", where, g)
			}
			for x := g.X; x < g.X+g.W && x < 24; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if other, ok := taken[[2]int{x, y}]; ok {
						t.Errorf("%s overlaps %q at (%d,%d)", where, other, x, y)
						return
					}
					taken[[2]int{x, y}] = p.Title
				}
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: datasource %+v, want prometheus ${datasource}", where, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			refs := map[string]bool{}
			for _, q := range p.Targets {
				if q.RefID == "" || refs[q.RefID] || strings.TrimSpace(q.Expr) == "" {
					t.Errorf("%s: query %q refId %q empty or repeated", where, q.Expr, q.RefID)
				}
				if err := balanced(q.Expr); err != nil {
					t.Errorf("%s: query %q: %v", where, q.Expr, err)
				}
				refs[q.RefID] = true
				exprs = append(exprs, q.Expr)
			}
		}
	}
	walk(d.Panels)
	if len(exprs) < 10 {
		t.Errorf("%s: %d queries, want the panels an operator needs", path, len(exprs))
	}
	return exprs
}

// balanced checks that a query's brackets and quotes pair up: the cheap
// part of PromQL syntax that a hand edit breaks most often.
func balanced(expr string) error {
	var stack []byte
	inQuote := false
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, c)
		case c == ')' || c == '}' || c == ']':
			open := map[byte]byte{')': '(', '}': '{', ']': '['}[c]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Errorf("unbalanced %q at byte %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote || len(stack) > 0 {
		return fmt.Errorf("unclosed brackets %q, unclosed quote %v", stack, inQuote)
	}
	return nil
}

var (
	selectorRE = regexp.MustCompile(`\b((?:qos|process|go)_[a-zA-Z0-9_]*)\s*(\{[^}]*\})?`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	plainAltRE = regexp.MustCompile(`^[a-zA-Z0-9_]+(\|[a-zA-Z0-9_]+)*$`)
)

// checkExported requires every metric a query names to be on the metrics
// page, and every label value it matches literally (event="sent",
// event=~"admitted|gated", and the plain alternatives of a regular
// expression such as reason=~"account_in_use|would_exceed_.+") to occur in
// that metric's series: a typo in an event name would otherwise give an
// empty panel, not an error.
func checkExported(t *testing.T, exprs []string, page []byte) {
	t.Helper()
	problems, checked, err := exportProblems(exprs, page)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if checked == 0 {
		t.Fatal("no metric found in the dashboard's queries")
	}
	if len(problems) == 0 {
		t.Logf("%d queries, %d metric references, all exported", len(exprs), checked)
	}
}

// exportProblems is checkExported's check: what is missing from page, and
// how many metric references the queries hold.
func exportProblems(exprs []string, page []byte) (problems []string, checked int, err error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		return nil, 0, fmt.Errorf("metrics page: %w", err)
	}
	for _, e := range exprs {
		for _, m := range selectorRE.FindAllStringSubmatch(e, -1) {
			name, sel := m[1], m[2]
			f := fams[name]
			if f == nil {
				f = seriesFamily(fams, name)
			}
			if f == nil {
				problems = append(problems, fmt.Sprintf("query %q: metric %s is not exported", e, name))
				continue
			}
			checked++
			for _, mm := range matcherRE.FindAllStringSubmatch(sel, -1) {
				label, op, val := mm[1], mm[2], mm[3]
				if strings.Contains(val, "$") || (op != "=" && op != "=~") {
					continue
				}
				for _, want := range strings.Split(val, "|") {
					if op == "=~" && !plainAltRE.MatchString(want) {
						continue // a pattern, not a value
					}
					found := false
					for _, s := range f.GetMetric() {
						for _, lp := range s.GetLabel() {
							if lp.GetName() == label && lp.GetValue() == want {
								found = true
							}
						}
					}
					if !found {
						problems = append(problems, fmt.Sprintf("query %q: no series %s{%s=%q} exported", e, name, label, want))
					}
				}
			}
		}
	}
	return problems, checked, nil
}

// seriesFamily returns the histogram or summary family whose _bucket,
// _sum or _count series name is (histogram_quantile reads _bucket), or
// nil.
func seriesFamily(fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || fams[base] == nil {
			continue
		}
		switch t := fams[base].GetType(); {
		case t == dto.MetricType_HISTOGRAM, t == dto.MetricType_SUMMARY && suffix != "_bucket":
			return fams[base]
		}
	}
	return nil
}

// TestDashboardQueriesExported: the dashboard is well formed and every
// metric and literal label value its queries use is on /metrics of a
// running daemon (with a database, so the sink's metrics are there).
func TestDashboardQueriesExported(t *testing.T) {
	exprs := loadDashboard(t, "qos.json")
	db := schematest.New(t, "ops")
	d, _, addr := startWithMetrics(t, "--db-url", db.URL)
	page, err := scrapeMetrics(addr)
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	checkExported(t, exprs, page)
}

// tmux runs one tmux command on the test's own server socket.
func tmux(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", sock, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// row returns the first captured line starting with label, cut to the
// left column (another group may share the line on the right).
func row(screen, label string) string {
	for _, l := range strings.Split(screen, "\n") {
		if strings.HasPrefix(l, label) {
			r := []rune(l)
			if len(r) > 61 {
				r = r[:61]
			}
			return strings.TrimRight(string(r), " ")
		}
	}
	return ""
}

// TestTopInTmux drives qos-cli top in a real terminal — a tmux pane, a
// pseudo-terminal with a terminal emulator reading the escape codes, as an
// operator over SSH sees it — against the daemon under the simulator's
// traffic: the screen's figures change from one second to the next, and q
// quits with status 0.
func TestTopInTmux(t *testing.T) {
	needTool(t, "tmux", "tmux")
	d, p, addr := startWithMetrics(t)
	sim := exec.Command(cliBin, "simulate", "--prefix", p, "--duration", "12s", "--sigverify-pps", sigverifyPPS, "--seed-wait", "20s")
	var simOut bytes.Buffer
	sim.Stdout, sim.Stderr = &simOut, &simOut
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Wait() }()
	t.Cleanup(func() {
		if sim.ProcessState == nil {
			_ = sim.Process.Kill()
			<-simDone
		}
	})

	sock := "qos-top-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", sock, "kill-server").Run() })
	// top runs under a shell that writes its exit status to a file: tmux
	// learns a dead pane's status only when it reaps the process, and
	// was seen never to report it (tmux 3.3a, status and signal empty
	// 15 s after the process was gone).
	statusFile := filepath.Join(t.TempDir(), "top.status")
	tmux(t, sock, "new-session", "-d", "-s", "top", "-x", "132", "-y", "60",
		"sh", "-c", fmt.Sprintf(`"$0" "$@"; echo $? >'%[1]s.tmp' && mv '%[1]s.tmp' '%[1]s'`, statusFile),
		cliBin, "top", "--metrics-addr", addr, "--target-pps", sigverifyPPS)
	tmux(t, sock, "set-option", "-t", "top", "remain-on-exit", "on")

	// Wait for live figures: packets flowing and rates computed.
	var first string
	deadline := time.Now().Add(25 * time.Second)
	for time.Now().Before(deadline) {
		s := tmux(t, sock, "capture-pane", "-p", "-t", "top")
		if f := strings.Fields(row(s, "all channels")); len(f) == 4 && f[2] != "—" && f[2] != "0" {
			first = s
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if first == "" {
		t.Fatalf("no live figures on the screen within 25 s; screen:\n%s", tmux(t, sock, "capture-pane", "-p", "-t", "top"))
	}
	// Redraws change the live rows: capture until each differs from the
	// first capture, or fail after 20 s (a redraw is due every second).
	labels := []string{"all channels", "tpu_to_qos", "admitted"}
	var second string
	changed := func() bool {
		for _, label := range labels {
			if a, b := row(first, label), row(second, label); a == "" || a == b {
				return false
			}
		}
		return true
	}
	captured := time.Now()
	for deadline := captured.Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		second = tmux(t, sock, "capture-pane", "-p", "-t", "top")
		if changed() || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("screen (132×60 tmux pane), first capture:\n%s", first)
	t.Logf("second capture, %.1f s later:\n%s", time.Since(captured).Seconds(), second)
	for _, label := range labels {
		a, b := row(first, label), row(second, label)
		if a == "" || a == b {
			t.Errorf("row %q did not change between redraws in 20 s:\n  %s\n  %s", label, a, b)
		}
	}
	for _, want := range []string{"qos top", "packets in", "admission", "output", "queue", "feedback", "model", "peers", "sent / target"} {
		if !strings.Contains(second, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	if r := row(second, "tpu_to_qos"); !strings.Contains(r, "k") {
		t.Errorf("tpu_to_qos row %q: want thousands of packets per second", r)
	}

	tmux(t, sock, "send-keys", "-t", "top", "q")
	// Top must be gone within 5 s of q, with status 0.
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(statusFile); err == nil {
			if st := strings.TrimSpace(string(b)); st != "0" {
				t.Fatalf("top exited with status %s after q; screen:\n%s", st, tmux(t, sock, "capture-pane", "-p", "-t", "top"))
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("top still running 5 s after q; screen:\n%s", tmux(t, sock, "capture-pane", "-p", "-t", "top"))
		}
	}
	// The terminal is restored: the alternate screen is gone.
	if after := tmux(t, sock, "capture-pane", "-p", "-t", "top"); strings.Contains(after, "packets in") {
		t.Errorf("screen not restored after q:\n%s", after)
	}
	if err := <-simDone; err != nil {
		t.Fatalf("simulate: %v\n%s", err, simOut.String())
	}
	d.stop()
}

// TestSystemdUnits runs systemd-analyze verify on deploy/systemd/*.service
// with ExecStart pointing at the binary built from this tree (verify
// checks that it exists and is executable). Any output is a finding: verify
// exits 0 on unknown keys and bad values, printing them.
func TestSystemdUnits(t *testing.T) {
	needTool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	units, err := filepath.Glob(filepath.Join("..", "deploy", "systemd", "*.service"))
	if err != nil || len(units) < 2 {
		t.Fatalf("units: %v %v", units, err)
	}
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart=/usr/local/bin/qos")) {
			t.Fatalf("%s: ExecStart is not /usr/local/bin/qos (the README installs there)", u)
		}
		for _, want := range []string{"User=", "Group=", "Restart=", "EnvironmentFile=/etc/qos/", "RemoveIPC=no", "NoNewPrivileges=yes", "ProtectSystem=strict"} {
			if !bytes.Contains(b, []byte("\n"+want)) {
				t.Errorf("%s: no %s line", u, want)
			}
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/qos"), []byte(qosBin))
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, paths...)...)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", strings.Join(paths, " "), err, out)
	}
	for _, p := range paths {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", p).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", p, err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		t.Logf("%s", lines[len(lines)-1])
	}
}

func TestBalanced(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum(rate(qos_events_total{event="sent"}[$__rate_interval]))`, true},
		{`sum(rate(qos_events_total{event="a)b"}[1m]))`, true},
		{`sum(rate(qos_events_total{event="sent"}[1m])`, false},
		{`sum(rate(qos_events_total{event="sent"]))`, false},
		{`qos_events_total{event="sent}`, false},
	} {
		if err := balanced(tc.expr); (err == nil) != tc.ok {
			t.Errorf("balanced(%q) = %v, want ok=%v", tc.expr, err, tc.ok)
		}
	}
}
