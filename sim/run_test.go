package sim

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
)

// passThrough is the simplest sidecar: it writes the hash seed, copies
// every packet of tpu/fwd/re1/re2 to qos_to_sig, and records what the
// simulator sends back on sig_to_qos, sch_to_qos and tx_status_cache.
type passThrough struct {
	seed   uint64
	in     [4]*channels.Consumer[channels.Packet]
	out    *channels.Producer[channels.Packet]
	sig    *channels.Consumer[channels.Packet]
	sch    *channels.Consumer[channels.RemainingMeta]
	status *channels.Consumer[channels.Signature]

	forwarded    map[uint64]bool // packet hashes sent to sigverify
	sent         int
	failed       int // sig_to_qos records
	notDiscarded int // sig_to_qos records without the DISCARD flag
	rows         int // sch_to_qos records
	executed     int // … with execution time > 0
	unknownRows  int // … whose hash was never forwarded
	statuses     int // tx_status_cache records
}

func startPassThrough(t *testing.T, o channels.Options, seed uint64) (pt *passThrough, stop func()) {
	t.Helper()
	pt = &passThrough{seed: seed, forwarded: make(map[uint64]bool)}
	var err error
	for i := range pt.in {
		if pt.in[i], err = channels.OpenConsumer[channels.Packet](o, channels.Table[i]); err != nil {
			t.Fatal(err)
		}
	}
	spec := func(n string) channels.Spec { s, _ := channels.Lookup(n); return s }
	if pt.out, err = channels.OpenProducer[channels.Packet](o, spec(channels.QoSToSig)); err != nil {
		t.Fatal(err)
	}
	if pt.sig, err = channels.OpenConsumer[channels.Packet](o, spec(channels.SigToQoS)); err != nil {
		t.Fatal(err)
	}
	if pt.sch, err = channels.OpenConsumer[channels.RemainingMeta](o, spec(channels.SchToQoS)); err != nil {
		t.Fatal(err)
	}
	if pt.status, err = channels.OpenConsumer[channels.Signature](o, spec(channels.TxStatusCache)); err != nil {
		t.Fatal(err)
	}
	pt.sch.SetMeta(channels.SeedMetaOffset, seed)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pt.loop(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			for _, c := range pt.in {
				_ = c.Close()
			}
			_ = pt.out.Close()
			_ = pt.sig.Close()
			_ = pt.sch.Close()
			_ = pt.status.Close()
		})
	}
	t.Cleanup(stop)
	return pt, stop
}

func (pt *passThrough) loop(done chan struct{}) {
	var p channels.Packet
	var m channels.RemainingMeta
	var s channels.Signature
	for {
		n := 0
		for _, c := range pt.in {
			for c.Pop(&p) {
				pt.forwarded[score.PacketHash(pt.seed, &p)] = true
				pt.out.Push(&p)
				pt.sent++
				n++
			}
		}
		pt.out.Sync()
		pt.out.Beat()
		for pt.sig.Pop(&p) {
			pt.failed++
			if p.Flags()&channels.FlagDiscard == 0 {
				pt.notDiscarded++
			}
			n++
		}
		for pt.sch.Pop(&m) {
			pt.rows++
			if m.ExecNanos() > 0 {
				pt.executed++
			}
			if !pt.forwarded[m.Hash()] {
				pt.unknownRows++
			}
			n++
		}
		for pt.status.Pop(&s) {
			pt.statuses++
			n++
		}
		if n == 0 {
			select {
			case <-done:
				return
			default:
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// loopConfig is the default story at 1/20 of its rates, for a short run
// under the race detector.
func loopConfig(t *testing.T) Config {
	t.Helper()
	c := DefaultConfig()
	c.Channels = channels.Options{Prefix: "simtest-", ShmDir: t.TempDir()}
	c.Duration = 1500 * time.Millisecond
	c.Warmup = 500 * time.Millisecond
	c.SeedWait = 5 * time.Second
	c.SigverifyPPS = 0
	for i := range c.Agents {
		c.Agents[i].PPS /= 20
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLoop runs the simulator against the pass-through sidecar and checks
// every channel and measurement against what the traffic must give.
func TestLoop(t *testing.T) {
	c := loopConfig(t)
	if err := Prepare(c); err != nil {
		t.Fatal(err)
	}
	const seed = 0x5eed
	pt, stop := startPassThrough(t, c.Channels, seed)
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stop()

	// The events of this run, from the oracle's replay.
	g := newTestGenerator(t, &c)
	var dups, bad, valid int
	for i := uint64(0); i < res.InPackets; i++ {
		switch ev := g.skip(); {
		case ev.dup:
			dups++
		case ev.kind == kindValid:
			valid++
		default:
			bad++
		}
	}
	t.Logf("in %d out %d dups %d failed %d verified %d included %d value %d oracle %d p50 %.0fµs p99 %.0fµs lag %.0fµs",
		res.InPackets, res.OutPackets, res.Duplicates, res.FailedSigverify, res.Verified, res.Included,
		res.Value, res.Oracle, res.LatencyP50Us, res.LatencyP99Us, res.ProducerLagUs)

	if res.HashSeed != seed {
		t.Errorf("hash seed %#x, want the sidecar's %#x", res.HashSeed, seed)
	}
	expIn := 0.0
	for _, a := range c.Agents {
		expIn += a.PPS * c.Duration.Seconds()
	}
	if got := float64(res.InPackets); math.Abs(got-expIn) > 0.1*expIn {
		t.Errorf("produced %v packets, want about %v", got, expIn)
	}
	if res.OutPackets > uint64(pt.sent) || float64(res.OutPackets) < 0.9*float64(res.InPackets) {
		t.Errorf("out %d, in %d, sent by the pass-through %d", res.OutPackets, res.InPackets, pt.sent)
	}
	// Everything that came out is accounted for exactly once.
	if got := res.Duplicates + res.FailedSigverify + res.Verified + res.SigverifyDropped; got != res.OutPackets {
		t.Errorf("duplicates+failed+verified+dropped = %d, out %d", got, res.OutPackets)
	}
	var sumOut uint64
	for _, a := range res.Agents {
		sumOut += a.OutPackets
	}
	if sumOut+res.Unattributed != res.OutPackets || res.Unattributed != 0 {
		t.Errorf("agents' output %d + unattributed %d != %d", sumOut, res.Unattributed, res.OutPackets)
	}
	if res.Duplicates == 0 || res.Duplicates > uint64(dups) {
		t.Errorf("%d duplicates in output, %d produced", res.Duplicates, dups)
	}
	if res.FailedSigverify == 0 || res.FailedSigverify > uint64(bad) || res.Verified > uint64(valid) || res.Foreign != 0 {
		t.Errorf("failed %d (bad produced %d), verified %d (valid produced %d), foreign %d", res.FailedSigverify, bad, res.Verified, valid, res.Foreign)
	}
	// What the sidecar received back.
	if pt.failed != int(res.FailedSigverify) || pt.notDiscarded != 0 {
		t.Errorf("sig_to_qos: %d records (%d without DISCARD), simulator failed %d", pt.failed, pt.notDiscarded, res.FailedSigverify)
	}
	if pt.rows != int(res.Verified) || pt.unknownRows != 0 {
		t.Errorf("sch_to_qos: %d rows (%d with unknown hashes), verified %d", pt.rows, pt.unknownRows, res.Verified)
	}
	if pt.executed != int(res.Included) || pt.statuses != int(res.Included) || res.Included == 0 {
		t.Errorf("executed rows %d, status records %d, included %d", pt.executed, pt.statuses, res.Included)
	}
	// Everything valid reached the scheduler, so the value is near the
	// oracle (packets arriving across a slot boundary move a little).
	if ratio := res.OracleShare(); ratio < 0.85 || ratio > 1.1 {
		t.Errorf("value %d is %.3f of the oracle %d", res.Value, ratio, res.Oracle)
	}
	// The pass-through lets the attackers through in proportion.
	if res.AttackerShareAfterWarmup < 0.5 {
		t.Errorf("attacker share after warm-up %v", res.AttackerShareAfterWarmup)
	}
	if res.LatencySamples == 0 || res.LatencyP50Us <= 0 || res.LatencyP50Us > 100_000 || res.LatencyP99Us < res.LatencyP50Us {
		t.Errorf("latency: %d samples, p50 %vµs p99 %vµs", res.LatencySamples, res.LatencyP50Us, res.LatencyP99Us)
	}
	var sb strings.Builder
	if err := WriteTable(&sb, []NamedResult{{Name: "pass-through", Result: res}}); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
}

// TestSigverifyCapacity: with a sigverify capacity, the packets beyond it
// are dropped and the oracle gets as many as sigverify took.
func TestSigverifyCapacity(t *testing.T) {
	c := loopConfig(t)
	c.Duration = time.Second
	c.SigverifyPPS = 1000
	if err := Prepare(c); err != nil {
		t.Fatal(err)
	}
	_, stop := startPassThrough(t, c.Channels, 1)
	res, err := Run(context.Background(), c)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	taken := res.FailedSigverify + res.Verified
	burst := float64(c.SigverifyPPS) * c.SigverifyBurst.Seconds()
	if max := float64(c.SigverifyPPS)*c.Duration.Seconds() + burst; float64(taken) > max+1 {
		t.Errorf("sigverify took %d packets, capacity %v", taken, max)
	}
	if res.SigverifyDropped == 0 {
		t.Error("nothing dropped beyond sigverify's capacity")
	}
}

func TestRunErrors(t *testing.T) {
	c := loopConfig(t)
	c.SeedWait = 50 * time.Millisecond
	if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "Prepare") {
		t.Errorf("without channels: %v", err)
	}
	if err := Prepare(c); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("without a sidecar: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.SeedWait = time.Minute
	if _, err := Run(ctx, c); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	c.Duration = 0
	if _, err := Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "duration") {
		t.Errorf("bad config: %v", err)
	}
	if err := Cleanup(c); err != nil {
		t.Fatal(err)
	}
	if err := Cleanup(c); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}

// TestRunCancel: a run stops promptly when its context is cancelled.
func TestRunCancel(t *testing.T) {
	c := loopConfig(t)
	c.Duration = time.Minute
	c.Warmup = time.Second
	c.HashSeed = 7
	if err := Prepare(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, c)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop", d)
	}
}

// TestOracleGroupsByProductionSlot: the oracle puts each packet in the
// wall-clock slot in which the producer pushed it. A producer that fell
// behind pushed its packets later than their virtual times; the oracle
// must follow where they really went, not crowd them into the early
// slots.
func TestOracleGroupsByProductionSlot(t *testing.T) {
	c := DefaultConfig()
	g := newTestGenerator(t, &c)
	r := newRecorder(&c, 1, g)
	const produced = 3000
	// Pushed evenly over every slot (virtual times cover only the first
	// few); sigverify's full capacity is 10 per slot, however many packets
	// the policy sent.
	per := uint64(produced / len(r.prodSlot))
	for i := range r.prodSlot {
		r.prodSlot[i] = per
	}
	r.capacity = 10
	r.produced = per * uint64(len(r.prodSlot))

	// The expectation, from an independent replay of the same events.
	ref := newTestGenerator(t, &c)
	var want, wantAfter uint64
	for w := range r.prodSlot {
		var items []item
		for range per {
			if ev := ref.skip(); ev.unique() {
				items = append(items, item{fee: ev.fee, cus: ev.cus})
			}
		}
		best := bestChoice(items, 10, c.SlotCUBudget)
		want += best
		if int64(w)*int64(c.SlotDuration) >= int64(c.Warmup) {
			wantAfter += best
		}
	}
	r.computeOracle(newTestGenerator(t, &c))
	if r.oracle != want || r.oracleAfter != wantAfter || want == 0 {
		t.Fatalf("oracle %d (after warm-up %d), want %d (%d)", r.oracle, r.oracleAfter, want, wantAfter)
	}
}
