package sidecar

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/score"
)

// traffic is a validator stand-in that runs on the test's goroutine: it
// rewrites the nonce (last 8 data bytes) and signature of preallocated
// packets, so every packet is new without allocating.
type traffic struct {
	pkts  []channels.Packet
	sizes []int
	next  uint64
	// rising makes each packet's compute-unit price (the SetComputeUnitPrice
	// data, 19 bytes from the end) one lamport per CU above the previous
	// one, so every packet outscores everything queued before it.
	rising bool
}

func newTraffic(tb testing.TB, senders int) *traffic {
	tb.Helper()
	tr := &traffic{pkts: make([]channels.Packet, senders), sizes: make([]int, senders)}
	for i := range tr.pkts {
		x := tx{payer: payerN(i % 97), sig: sigN(i), limit: uint32(50_000 + 1000*(i%50)), price: uint64(1 + i%1000), nonce: 0}
		tr.pkts[i] = x.packet(tb, ipN(i%251))
		tr.sizes[i] = int(tr.pkts[i].Size())
	}
	return tr
}

// push writes n new packets to prod.
func (tr *traffic) push(prod *channels.Producer[channels.Packet], n int) {
	for range n {
		i := int(tr.next % uint64(len(tr.pkts)))
		p := &tr.pkts[i]
		tr.next++
		binary.LittleEndian.PutUint64(p[tr.sizes[i]-8:], tr.next)
		binary.LittleEndian.PutUint64(p[1:], tr.next) // signature bytes
		if tr.rising {
			binary.LittleEndian.PutUint64(p[tr.sizes[i]-19:], tr.next*1_000_000)
		}
		prod.Push(p)
	}
	prod.Sync()
}

// loopback plays sigverify and the scheduler: everything sent is reported
// back as a scheduler result, every 7th executed, every 50th first
// signature confirmed.
func (h *harness) loopback(seed uint64) int {
	var p channels.Packet
	var m channels.RemainingMeta
	n := 0
	for h.out.Pop(&p) {
		n++
		m.Set(score.PacketHash(seed, &p), uint64(n%7)*1000)
		h.sch.Push(&m)
		if n%50 == 0 {
			sig := channels.Signature(p[1:65])
			h.status.Push(&sig)
		}
	}
	h.sch.Sync()
	h.status.Sync()
	return n
}

// TestLoopAllocatesNothing pushes a million packets through the loop, with
// results fed back so the model learns and rows reach the hand-off, and
// requires that the loop allocated nothing after warm-up.
func TestLoopAllocatesNothing(t *testing.T) {
	handoff := metastore.NewHandoff(metastore.HandoffConfig{BatchRows: 1024, Batches: 8})
	// No writer drains it: once its batches are full, rows are counted as
	// dropped, which must not allocate either.
	h := newHarness(t, func(c *Config) {
		c.TargetPPS = 1 << 40 // send everything admitted
		c.QueueCapacity = 4096
		c.Handoff = handoff
	})
	tr := newTraffic(t, 4096)
	// Penalties too, so penalty rows reach the hand-off: an unparsable
	// packet on tpu and a failed-sigverify record per round.
	garbage := tr.pkts[0]
	garbage.SetData([]byte{0, 1, 2})
	failed := tr.pkts[1]
	failed.SetFlags(channels.FlagDiscard)
	mono := int64(0)
	run := func(packets int) {
		for sent := 0; sent < packets; sent += 2048 {
			tr.push(h.tpu, 1024)
			tr.push(h.fwd, 1024)
			h.tpu.Push(&garbage)
			h.tpu.Sync()
			h.sig.Push(&failed)
			h.sig.Sync()
			for range 40 {
				mono += int64(time.Millisecond)
				h.s.guardedStep(mono, mono)
			}
			h.loopback(0x5eed)
			h.s.guardedPeriodic(mono, mono)
		}
	}
	packets := 1_000_000
	if raceEnabled {
		packets = 100_000
	}
	run(100_000)
	// The producers here never beat: the first peer check reports them
	// stopped, once, and logging allocates. Let that happen before the
	// measurement (it does not recur while nothing changes).
	h.s.checkPeers()
	// MemStats counts the whole process: with one P, as in
	// testing.AllocsPerRun, the scheduler starts no new OS thread (whose
	// runtime structures it would count) while the loop runs.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	run(packets)
	runtime.ReadMemStats(&after)

	c := &h.s.snap
	// Every packet sent made a pending claim, settled by its result.
	if !h.s.pending || h.s.model.PendingStats().Dropped > 0 {
		t.Fatalf("pending claims not exercised: on %v, %+v", h.s.pending, h.s.model.PendingStats())
	}
	if c.TotalReceived() < uint64(packets) || c.Counters[Sent] < uint64(packets)*9/10 || c.Counters[ModelUpdates] < uint64(packets/1000) ||
		c.Counters[RowsOffered]+c.Counters[RowsDropped] < uint64(packets)*9/10 ||
		c.Counters[ParsePenalties] < uint64(packets/2048) || c.Counters[SigverifyFailed] < uint64(packets/2048) || c.Counters[PenaltyRows] == 0 {
		t.Fatalf("the run did not exercise the loop: received %d, sent %d, model updates %d, rows %d, penalties %d+%d, penalty rows %d",
			c.TotalReceived(), c.Counters[Sent], c.Counters[ModelUpdates], c.Counters[RowsOffered]+c.Counters[RowsDropped],
			c.Counters[ParsePenalties], c.Counters[SigverifyFailed], c.Counters[PenaltyRows])
	}
	if d := after.Mallocs - before.Mallocs; d > 0 {
		t.Fatalf("loop allocated %d objects (%d bytes) over %d packets", d, after.TotalAlloc-before.TotalAlloc, packets)
	}
}
