package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// This file proves the pack-mode half of the operator kit against the
// binaries built from this tree: `qos pack` logged on to the stand-in
// validator (`qos-cli agave-sim`), its /metrics under the pack dashboard's
// queries, and qos-cli top's pack view.

// startProcess starts bin with args, its output in a buffer, and stops it
// with SIGTERM (then SIGKILL after 15 s) when the test ends.
func startProcess(t *testing.T, bin string, args ...string) (*lockedBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return out, done
}

// startPack starts the stand-in validator on a fresh ledger directory and
// `qos pack` logged on to it with --metrics-addr, and waits until qos
// reports the session up on /metrics. It returns the metrics address.
func startPack(t *testing.T) string {
	t.Helper()
	ledger := t.TempDir()
	simOut, simDone := startProcess(t, cliBin, "agave-sim", "--ledger", ledger, "--agave-abi", "4.1",
		"--huge-pages=false", "--slot-duration", "100ms", "--duration", "60s")
	addr := freeAddr(t)
	qosOut, qosDone := startProcess(t, qosBin, "pack", "--ledger", ledger, "--agave-abi", "4.1", "--workers", "2",
		"--allocator-size", "268435456", "--model-file", t.TempDir()+"/model.bin", "--metrics-addr", addr)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if page, err := scrapeMetrics(addr); err == nil && bytes.Contains(page, []byte("\nqos_pack_session_up 1\n")) {
			return addr
		}
		select {
		case err := <-qosDone:
			t.Fatalf("qos pack exited: %v\n%s\nagave-sim:\n%s", err, qosOut, simOut)
		case err := <-simDone:
			t.Fatalf("agave-sim exited: %v\n%s\nqos pack:\n%s", err, simOut, qosOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pack session on %s within 20 s\nqos pack:\n%s\nagave-sim:\n%s", addr, qosOut, simOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// packValue reads one unlabelled series of a metrics page.
func packValue(t *testing.T, page []byte, name string) float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	f := fams[name]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("%s: not one series on the page", name)
	}
	m := f.GetMetric()[0]
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestPackDashboardQueriesExported: deploy/grafana/qos-pack.json is well
// formed and every metric and literal label value its queries use is on
// /metrics of `qos pack` scheduling for the stand-in validator. Pack mode
// exports a not-included reason once it has occurred, so the page is
// scraped until the traffic has produced every one the queries name (or
// 30 s pass), and figures that must hold on any page are checked.
func TestPackDashboardQueriesExported(t *testing.T) {
	exprs := loadDashboard(t, "qos-pack.json")
	addr := startPack(t)
	var page []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		if page, err = scrapeMetrics(addr); err != nil {
			t.Fatal(err)
		}
		problems, _, err := exportProblems(exprs, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	checkExported(t, exprs, page)
	if v := packValue(t, page, "qos_pack_votes_landed_total"); v <= 0 {
		t.Errorf("qos_pack_votes_landed_total = %v: the stand-in's votes never landed", v)
	}
	if v := packValue(t, page, "qos_pack_slot_cost_limit"); v <= 0 {
		t.Errorf("qos_pack_slot_cost_limit = %v, want the block limit", v)
	}
	if l, f := packValue(t, page, "qos_pack_leaked_blocks"), packValue(t, page, "qos_pack_batches_in_flight"); l != 0 {
		t.Errorf("leaked_blocks %v (batches_in_flight %v): batch arrays held outside a batch", l, f)
	}
}

// TestTopPack runs qos-cli top in plain mode against `qos pack`: it shows
// the pack groups with live figures (included and worker rates moving,
// the session up, nothing leaked) and none of the sidecar's groups.
func TestTopPack(t *testing.T) {
	addr := startPack(t)
	out, err := exec.Command(cliBin, "top", "--metrics-addr", addr, "--plain", "--count", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("qos-cli top: %v\n%s", err, out)
	}
	blocks := strings.Split(strings.TrimSpace(string(out)), "# qos top ")
	if len(blocks) != 4 { // "" before the first header, then 3 blocks
		t.Fatalf("%d blocks, want 3:\n%s", len(blocks)-1, out)
	}
	last := blocks[3]
	t.Logf("qos-cli top --plain against qos pack, third block:\n# qos top %s", last)
	for _, want := range []string{"─ pack: blocks", "─ pack: scheduler", "─ pack mode: all series"} {
		if !strings.Contains(last, want) {
			t.Errorf("top lacks %q", want)
		}
	}
	for _, unwanted := range []string{"─ packets in", "─ admission", "─ peers"} {
		if strings.Contains(last, unwanted) {
			t.Errorf("top shows the sidecar's group %q against qos pack", unwanted)
		}
	}
	field := func(block, label string, i int) string {
		f := strings.Fields(strings.TrimPrefix(row(block, label), label))
		if i >= len(f) {
			return ""
		}
		return f[i]
	}
	for _, tc := range []struct {
		label string
		i     int
		want  func(string) bool
		what  string
	}{
		{"session up", 0, func(s string) bool { return s == "yes" }, "yes"},
		{"leaked blocks", 0, func(s string) bool { return s == "0" }, "0"},
		{"included", 0, func(s string) bool { return s != "" && s != "—" && s != "0" }, "a rate above 0"},
		{"received", 0, func(s string) bool { return s != "" && s != "—" && s != "0" }, "a rate above 0"},
		{"worker 0 batches/s", 0, func(s string) bool { return s != "" && s != "—" && s != "0" }, "a rate above 0"},
		{"worker 1 batches/s", 0, func(s string) bool { return s != "" && s != "—" && s != "0" }, "a rate above 0"},
		{"share of block limit", 0, func(s string) bool { return strings.HasSuffix(s, "%") }, "a percentage"},
	} {
		if got := field(last, tc.label, tc.i); !tc.want(got) {
			t.Errorf("row %q: %q, want %s", tc.label, got, tc.what)
		}
	}
	// Live: the totals move from one block to the next.
	if a, b := field(blocks[2], "included", 1), field(last, "included", 1); a == "" || a == b {
		t.Errorf("included total did not move between blocks: %q, %q", a, b)
	}
}
