package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/sim"
)

var qosBin, cliBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "qos-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	qosBin, cliBin = filepath.Join(dir, "qos"), filepath.Join(dir, "qos-cli")
	for bin, pkg := range map[string]string{qosBin: "../cmd/qos", cliBin: "../cmd/qos-cli"} {
		// Built without the race detector: these are the binaries an
		// operator runs, and the measurements depend on their speed.
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is one running qos process.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan error
}

func prefix(t *testing.T) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	p := "qose2e-" + hex.EncodeToString(b[:]) + "-"
	t.Cleanup(func() {
		for _, s := range channels.Table {
			_ = channels.Remove(channels.Options{Prefix: p}, s)
		}
	})
	return p
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, logs: new(bytes.Buffer), done: make(chan error, 1)}
	d.cmd = exec.Command(qosBin, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop sends SIGTERM and requires a clean exit within 20 s.
func (d *daemon) stop() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Fatalf("qos exited with %v after SIGTERM; log:\n%s", err, d.logs)
		}
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		d.t.Fatalf("qos did not exit within 20 s of SIGTERM; log:\n%s", d.logs)
	}
}

const (
	sigverifyPPS = "5000"
	duration     = "10s" // the spam share is measured over the 7 s after the 3 s warm-up
	warmup       = "3s"
)

// simulate runs qos-cli simulate against the daemon under prefix and
// returns its measurements.
func simulate(t *testing.T, prefix string, extra ...string) sim.Result {
	t.Helper()
	args := append([]string{"simulate", "--prefix", prefix, "--duration", duration, "--warmup", warmup,
		"--sigverify-pps", sigverifyPPS, "--seed-wait", "20s", "--json"}, extra...)
	cmd := exec.Command(cliBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("simulate: %v\n%s", err, stderr.String())
	}
	var nr sim.NamedResult
	if err := json.Unmarshal(stdout.Bytes(), &nr); err != nil {
		t.Fatalf("simulate output: %v\n%s", err, stdout.String())
	}
	t.Logf("%s", stderr.String())
	return nr.Result
}

// runPolicy runs the daemon under one policy against the simulator, both
// as processes, and stops the daemon with SIGTERM.
func runPolicy(t *testing.T, policy, modelFile string) sim.Result {
	t.Helper()
	p := prefix(t)
	run(t, cliBin, "init", "--prefix", p)
	args := []string{"--xxhash-seed", "12345", "--prefix", p, "--policy", policy,
		"--target-pps", sigverifyPPS, "--queue-capacity", "4096", "--idle-sleep", "50us", "--log-level", "info"}
	if modelFile != "" {
		args = append(args, "--model-file", modelFile)
	}
	d := startDaemon(t, args...)
	res := simulate(t, p)
	d.stop()
	if modelFile != "" && !strings.Contains(d.logs.String(), "model saved") {
		t.Fatalf("no model saved on SIGTERM; log:\n%s", d.logs)
	}
	return res
}

// TestDaemonAgainstSimulator is the end-to-end proof: under the default
// spam story the model beats both baselines on value captured, keeps the
// attackers' share of sigverify under 5 % after the warm-up, never sends a
// duplicate, and its model survives a restart.
func TestDaemonAgainstSimulator(t *testing.T) {
	modelFile := filepath.Join(t.TempDir(), "model.bin")
	results := map[string]sim.Result{}
	for _, policy := range []string{"model", "fee-only", "fifo"} {
		res := runPolicy(t, policy, map[string]string{"model": modelFile}[policy])
		results[policy] = res
		t.Logf("%-8s value %d of oracle %d (%.1f%%), spam share after warm-up %.2f%%, failed sigverify %d, duplicates %d, in %.0f pps, out %.0f pps, latency p50 %.0f µs p99 %.0f µs",
			policy, res.Value, res.Oracle, 100*res.OracleShare(), 100*res.AttackerShareAfterWarmup,
			res.FailedSigverify, res.Duplicates, res.InPPS, res.OutPPS, res.LatencyP50Us, res.LatencyP99Us)
		if res.Duplicates != 0 {
			t.Errorf("%s: %d duplicates reached sigverify", policy, res.Duplicates)
		}
		if res.OutPackets == 0 {
			t.Fatalf("%s: nothing reached sigverify", policy)
		}
	}
	m, fee, fifo := results["model"], results["fee-only"], results["fifo"]
	if m.Value <= fee.Value || m.Value <= fifo.Value {
		t.Errorf("model captured %d lamports; fee-only %d, fifo %d: the model must beat both", m.Value, fee.Value, fifo.Value)
	}
	share, end, after := attackerShareAfterExperience(m)
	if after == 0 {
		t.Fatalf("model: no packet reached sigverify after the warm-up: %v", m.OutPPSSeries)
	}
	t.Logf("model: attackers' share of output %.2f%% after the warm-up counted in packets (it ended at %.1f s), %.2f%% after %.1f s; per %.1f s: %.3f",
		100*share, end, 100*m.AttackerShareAfterWarmup, m.WarmupS, m.BucketS, m.AttackerShareSeries)
	if share >= 0.05 {
		t.Errorf("model: attackers' share of output after warm-up %.2f%%, want < 5%%", 100*share)
	}

	// The model saved on SIGTERM is loaded by the next start, and with no
	// traffic saved again unchanged: the same forward on its top keys.
	saved, err := model.Load(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	if st := saved.Stats(); st.IPs == 0 || st.Signers == 0 {
		t.Fatalf("saved model is empty: %+v", st)
	}
	p := prefix(t)
	run(t, cliBin, "init", "--prefix", p)
	d := startDaemon(t, "--xxhash-seed", "12345", "--prefix", p, "--model-file", modelFile, "--idle-sleep", "100us")
	time.Sleep(time.Second)
	d.stop()
	if !strings.Contains(d.logs.String(), "model loaded") {
		t.Fatalf("restarted daemon did not load the model; log:\n%s", d.logs)
	}
	reloaded, err := model.Load(modelFile)
	if err != nil {
		t.Fatal(err)
	}
	snap := saved.Snapshot()
	// The busiest keys: the most outcomes in each table.
	sort.Slice(snap.IPs, func(i, j int) bool { return snap.IPs[i].N > snap.IPs[j].N })
	sort.Slice(snap.Signers, func(i, j int) bool { return snap.Signers[i].N > snap.Signers[j].N })
	checked := 0
	for i := 0; i < len(snap.IPs) && i < 50; i++ {
		for j := 0; j < len(snap.Signers) && j < 20; j++ {
			ip, s := snap.IPs[i].IP, snap.Signers[j].Signer
			if a, b := saved.Forward(ip, s), reloaded.Forward(ip, s); a != b {
				t.Fatalf("forward(%v, %v) = %v before the restart, %v after", ip, s, a, b)
			}
			checked++
		}
	}
	if d := model.Diff(saved, reloaded, 0); len(d) > 0 {
		t.Fatalf("model changed across an idle restart: %v", d)
	}
	t.Logf("restart kept the model: %d IPs, %d signers; %d forward pairs compared", len(snap.IPs), len(snap.Signers), checked)
}

// attackerShareAfterExperience returns the attackers' share of the packets
// that reached sigverify after the first WarmupS/DurationS of them, and
// when (s) that warm-up ended. The warm-up is counted in packets, the
// feedback the model learns from, rather than in seconds: on a machine too
// busy to run the daemon and simulator at full speed it ends later instead
// of leaving the model less to learn from. On a quiet one the output rate
// is steady and it ends at WarmupS. It ends at the series' bucket boundary
// nearest to that count, and never before WarmupS. after is the number of
// packets after it.
func attackerShareAfterExperience(r sim.Result) (share, end float64, after uint64) {
	if len(r.Agents) == 0 || r.DurationS <= 0 {
		return 0, 0, 0
	}
	n := len(r.Agents[0].OutSeries)
	out, att := make([]uint64, n), make([]uint64, n)
	var total uint64
	for _, a := range r.Agents {
		for b, o := range a.OutSeries {
			out[b] += o
			if a.Attacker {
				att[b] += o
			}
			total += o
		}
	}
	target := float64(total) * r.WarmupS / r.DurationS
	k, cum, best := 0, 0.0, target // boundary k: buckets [0, k) are the warm-up
	for b := range n {
		cum += float64(out[b])
		if d := math.Abs(cum - target); d < best {
			k, best = b+1, d
		}
	}
	// Never before WarmupS: output front-loaded by a stall later in the
	// run does not shorten the warm-up.
	k = min(max(k, int(math.Round(r.WarmupS/r.BucketS))), n)
	var o, a uint64
	for b := k; b < n; b++ {
		o += out[b]
		a += att[b]
	}
	if o == 0 {
		return 0, float64(k) * r.BucketS, 0
	}
	return float64(a) / float64(o), float64(k) * r.BucketS, o
}

func TestAttackerShareAfterExperience(t *testing.T) {
	// 10 buckets of 1 s, warm-up 3 s; per bucket the honest and attacker
	// packets that reached sigverify.
	f := func(name string, honest, attack []uint64, wantEnd, wantShare float64) {
		t.Helper()
		r := sim.Result{DurationS: 10, WarmupS: 3, BucketS: 1, Agents: []sim.AgentResult{
			{Name: "honest", OutSeries: honest}, {Name: "spam", Attacker: true, OutSeries: attack}}}
		share, end, _ := attackerShareAfterExperience(r)
		if end != wantEnd || math.Abs(share-wantShare) > 1e-9 {
			t.Errorf("%s: warm-up ended at %v s with share %v, want %v s and %v", name, end, share, wantEnd, wantShare)
		}
	}
	// A steady rate: the warm-up ends at 3 s.
	f("steady", []uint64{90, 90, 90, 100, 100, 100, 100, 100, 100, 100}, []uint64{10, 10, 10, 0, 0, 0, 0, 0, 0, 0}, 3, 0)
	// Nothing reached sigverify for 3 s: the model had nothing to learn
	// from, and the warm-up lasts until about 30 % of the output (240 of
	// 800 packets: 200 by 5 s). Counted from 3 s the share would be 12.5 %.
	f("stalled start", []uint64{0, 0, 0, 50, 50, 100, 100, 100, 100, 100}, []uint64{0, 0, 0, 50, 50, 0, 0, 0, 0, 0}, 5, 0)
	// A stall late in the run does not end the warm-up before 3 s.
	f("late stall", []uint64{100, 100, 100, 100, 100, 0, 0, 0, 0, 90}, []uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 10}, 3, 10.0/300)
}
