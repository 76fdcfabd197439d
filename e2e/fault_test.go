package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// computeBudget is ComputeBudget111111111111111111111111111111.
var computeBudget = func() (k [32]byte) {
	b, _ := hex.DecodeString("0306466fe5211732ffecadba72c39be7bc8ce5bbc5f7126b2c439b3a40000000")
	copy(k[:], b)
	return k
}()

// txPacket builds a packet of a valid legacy transaction (one signature,
// a compute-unit limit and price, one instruction whose data is n, so each
// is unique) from ip.
func txPacket(t *testing.T, n uint64, ip netip.Addr) channels.Packet {
	t.Helper()
	var payer [32]byte
	binary.LittleEndian.PutUint64(payer[:], n%64+1)
	payer[31] = 0x77
	var sig [64]byte
	binary.LittleEndian.PutUint64(sig[:], n+1)
	sig[63] = 0x55
	d := []byte{1}
	d = append(d, sig[:]...)
	d = append(d, 1, 0, 2, 3)
	d = append(d, payer[:]...)
	d = append(d, computeBudget[:]...)
	prog := [32]byte{9, 9, 9}
	d = append(d, prog[:]...)
	d = append(d, make([]byte, 32)...) // blockhash
	d = append(d, 3)
	d = append(d, 1, 0, 5, 2)
	d = binary.LittleEndian.AppendUint32(d, 10_000)
	d = append(d, 1, 0, 9, 3)
	d = binary.LittleEndian.AppendUint64(d, 1000)
	d = append(d, 2, 0, 8)
	d = binary.LittleEndian.AppendUint64(d, n)
	var p channels.Packet
	if !p.SetData(d) {
		t.Fatal("transaction too large")
	}
	p.SetAddr(ip)
	p.SetPort(8001)
	return p
}

// Source addresses tell the channels apart in what reaches qos_to_sig.
var (
	tpuIP = netip.MustParseAddr("10.1.0.1")
	fwdIP = netip.MustParseAddr("10.2.0.1")
)

// faultPeer is the validator's side of the test: producers on tpu_to_qos
// and fwd_to_qos, the sigverify reader of qos_to_sig.
type faultPeer struct {
	t        *testing.T
	o        channels.Options
	tpu, fwd *channels.Producer[channels.Packet]
	out      *channels.Consumer[channels.Packet]
	n        uint64
	got      map[netip.Addr]int // packets read from qos_to_sig, by source
}

func (p *faultPeer) push(to *channels.Producer[channels.Packet], ip netip.Addr, k int) {
	for range k {
		p.n++
		pk := txPacket(p.t, p.n, ip)
		to.Push(&pk)
	}
	to.Sync()
}

// pump feeds both producers (those open) and reads qos_to_sig (when
// open) until cond holds, or fails after 15 s.
func (p *faultPeer) pump(what string, logs *lockedBuffer, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s; got %v; log:\n%s", what, p.got, logs)
		}
		if p.tpu != nil {
			p.push(p.tpu, tpuIP, 4)
		}
		if p.fwd != nil {
			p.push(p.fwd, fwdIP, 4)
		}
		if p.out != nil {
			var pk channels.Packet
			for p.out.Pop(&pk) {
				if a, ok := pk.Addr(); ok {
					p.got[a]++
				}
			}
			p.out.Beat()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *faultPeer) truncate(name string, size int64) {
	p.t.Helper()
	if err := os.Truncate(p.o.Path(name), size); err != nil {
		p.t.Fatal(err)
	}
}

// scrape returns the metrics' samples by name{labels}.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			m[l[:i]] = v
		}
	}
	return m
}

// errorLines returns the daemon's log lines at level ERROR.
func errorLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}

// TestDaemonSurvivesTruncatedChannels is the cross-process proof that a
// peer shrinking channel files under the daemon does not kill it: this
// process plays the validator, truncates tpu_to_qos (which the daemon
// reads) to nothing and qos_to_sig (which it writes) to one page, then
// restores both. The daemon logs one error naming each channel, counts
// the faults (qos_channel_faults_total), serves the other channels
// meanwhile, rejoins both once valid, forwards from both again, and exits
// 0 on SIGTERM.
func TestDaemonSurvivesTruncatedChannels(t *testing.T) {
	pre := prefix(t)
	o := channels.Options{Prefix: pre}
	for _, s := range channels.Table {
		if _, err := channels.Create(o, s); err != nil {
			t.Fatal(err)
		}
	}
	logs := new(lockedBuffer)
	cmd := exec.Command(qosBin, "--xxhash-seed", "7", "--prefix", pre, "--idle-sleep", "50us",
		"--metrics-addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})
	waitLog := func(what string, re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				return m
			}
			select {
			case err := <-done:
				t.Fatalf("qos exited (%v) while waiting for %s; log:\n%s", err, what, logs)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; log:\n%s", what, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	metricsAddr := waitLog("the metrics address", regexp.MustCompile(`serving metrics"? addr=(\S+)`))[1]
	waitLog("the loop", regexp.MustCompile(`loop started`))

	open := func(name string) *channels.Producer[channels.Packet] {
		t.Helper()
		p, err := channels.OpenProducer[channels.Packet](o, mustSpec(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	peer := &faultPeer{t: t, o: o, tpu: open(channels.TPU), fwd: open(channels.FWD), got: map[netip.Addr]int{}}
	out, err := channels.OpenConsumer[channels.Packet](o, mustSpec(t, channels.QoSToSig))
	if err != nil {
		t.Fatal(err)
	}
	peer.out = out
	peer.pump("packets from both channels", logs, func() bool { return peer.got[tpuIP] > 0 && peer.got[fwdIP] > 0 })

	// 1. tpu_to_qos shrinks to nothing (this process's producer lets go
	// of it first: it would fault too).
	_ = peer.tpu.Close()
	peer.tpu = nil
	peer.truncate(channels.TPU, 0)
	waitLog("the tpu_to_qos fault", regexp.MustCompile(`level=ERROR .*channel=tpu_to_qos`))
	fwdBefore := peer.got[fwdIP]
	peer.pump("fwd_to_qos served after the tpu_to_qos fault", logs, func() bool { return peer.got[fwdIP] >= fwdBefore+50 })

	// 2. qos_to_sig shrinks to one page (its header stays).
	_ = peer.out.Close()
	peer.out = nil
	peer.truncate(channels.QoSToSig, 4096)
	outFault := regexp.MustCompile(`level=ERROR .*channel=qos_to_sig`)
	peer.pump("the qos_to_sig fault (on the next send)", logs, func() bool { return outFault.MatchString(logs.String()) })
	received := func() float64 { return scrape(t, metricsAddr)[`qos_received_packets_total{channel="fwd_to_qos"}`] }
	r0 := received()
	peer.pump("fwd_to_qos read while qos_to_sig is dropped", logs, func() bool { return received() >= r0+100 })
	m := scrape(t, metricsAddr)
	for k, want := range map[string]float64{
		`qos_channel_faults_total{channel="tpu_to_qos"}`: 1,
		`qos_channel_faults_total{channel="qos_to_sig"}`: 1,
		`qos_channel_faults_total{channel="fwd_to_qos"}`: 0,
		`qos_channel_faulted{channel="tpu_to_qos"}`:      1,
		`qos_channel_faulted{channel="qos_to_sig"}`:      1,
		`qos_channel_joined{channel="tpu_to_qos"}`:       0,
		`qos_events_total{event="channel_faults"}`:       2,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("while faulted: %s = %v (present %v), want %v", k, got, ok, want)
		}
	}

	// 3. The peer restores both: qos_to_sig's size (its header is
	// intact), tpu_to_qos's size and header (its producer initialises
	// the zeroed file again).
	peer.truncate(channels.QoSToSig, mustSpec(t, channels.QoSToSig).MinSize())
	peer.truncate(channels.TPU, mustSpec(t, channels.TPU).MinSize())
	peer.tpu = open(channels.TPU)
	if !peer.tpu.Created() {
		t.Fatal("tpu_to_qos was not initialised again")
	}
	waitLog("both rejoins", regexp.MustCompile(`(?s)rejoined after the fault[^\n]*channel=(tpu_to_qos|qos_to_sig).*rejoined after the fault[^\n]*channel=(tpu_to_qos|qos_to_sig)`))
	if out, err = channels.OpenConsumer[channels.Packet](o, mustSpec(t, channels.QoSToSig)); err != nil {
		t.Fatal(err)
	}
	peer.out = out
	before := map[netip.Addr]int{tpuIP: peer.got[tpuIP], fwdIP: peer.got[fwdIP]}
	peer.pump("packets from both channels after the rejoins", logs, func() bool {
		return peer.got[tpuIP] >= before[tpuIP]+50 && peer.got[fwdIP] >= before[fwdIP]+50
	})
	// The metrics come from the loop's snapshots: wait for one taken after
	// both rejoins (the values are checked exactly below).
	peer.pump("a metrics snapshot after the rejoins", logs, func() bool {
		return scrape(t, metricsAddr)[`qos_events_total{event="rejoins"}`] >= 2
	})
	m = scrape(t, metricsAddr)
	for k, want := range map[string]float64{
		`qos_channel_faults_total{channel="tpu_to_qos"}`: 1,
		`qos_channel_faults_total{channel="qos_to_sig"}`: 1,
		`qos_channel_faulted{channel="tpu_to_qos"}`:      0,
		`qos_channel_faulted{channel="qos_to_sig"}`:      0,
		`qos_channel_joined{channel="tpu_to_qos"}`:       1,
		`qos_events_total{event="rejoins"}`:              2,
	} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("after the rejoins: %s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	_ = peer.tpu.Close()
	_ = peer.fwd.Close()
	_ = peer.out.Close()

	// 4. SIGTERM: a clean exit, and exactly one error per faulted channel.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("qos exited with %v after SIGTERM; log:\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("qos did not exit within 20 s of SIGTERM; log:\n%s", logs)
	}
	errs := errorLines(logs.String())
	if len(errs) != 2 || !strings.Contains(strings.Join(errs, "\n"), o.Path(channels.TPU)) ||
		!strings.Contains(strings.Join(errs, "\n"), o.Path(channels.QoSToSig)) {
		t.Fatalf("want exactly one error per faulted channel, naming its file; got %d:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "after the fault") || strings.Contains(l, "not valid yet") || strings.Contains(l, "stopped cleanly") {
			t.Logf("daemon: %s", l)
		}
	}
	for _, k := range []string{`qos_channel_faults_total{channel="tpu_to_qos"}`, `qos_channel_faults_total{channel="qos_to_sig"}`,
		`qos_events_total{event="channel_faults"}`, `qos_events_total{event="rejoins"}`} {
		t.Logf("metric after the rejoins: %s %v", k, m[k])
	}
	t.Logf("read from qos_to_sig: %d from tpu_to_qos, %d from fwd_to_qos", peer.got[tpuIP], peer.got[fwdIP])
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Fatalf("no clean stop logged:\n%s", logs)
	}
}

func mustSpec(t *testing.T, name string) channels.Spec {
	t.Helper()
	s, ok := channels.Lookup(name)
	if !ok {
		t.Fatalf("no channel %s", name)
	}
	return s
}
