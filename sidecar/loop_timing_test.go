package sidecar

import (
	"encoding/binary"
	"fmt"
	"github.com/solqos/qos/admit"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/sim"
)

// BenchmarkLoopAdmit measures the loop's per-packet work on the input side
// — pop, evaluate, model forward, score, queue check, recently-confirmed
// check, dedup insert, queue push — on a full queue. The validator's
// pushes into tpu_to_qos happen with the timer stopped, 16384 packets at a
// time (half the ring), so the figure is the sidecar's own cost; the ring
// is read after the producer wrote it, as on the daemon's core.
//
// Two regimes:
//   - flood: the queue is full of better packets (prices and payers repeat
//     over 8192 senders, the clock never expires anything), so after the
//     first pass most packets are refused after evaluation — the common
//     case when the input far exceeds --target-pps;
//   - queued: every packet pays one lamport per CU more than the one
//     before, so each is admitted: recently-confirmed lookup, dedup insert
//     with eviction from the full table, queue eviction and push — the
//     worst case per packet.
//
// The dedup (partial meta) and recently-confirmed tables are random-access
// structures: at the daemon's default 1M entries each lookup is a cache
// miss; the 16k-table cases show what the rest of the path costs.
// "admitted" is the share of packets the queue took.
func BenchmarkLoopAdmit(b *testing.B) {
	for _, regime := range []struct {
		name   string
		rising bool
	}{{"flood", false}, {"queued", true}} {
		for _, tables := range []struct {
			name    string
			entries int
		}{{"tables=1M", 1 << 20}, {"tables=16k", 1 << 14}} {
			b.Run(regime.name+"/"+tables.name, func(b *testing.B) {
				benchAdmit(b, regime.rising, func(c *Config) {
					c.QueueCapacity = 16384
					c.QueueTTL = time.Hour
					c.PartialCapacity, c.RecentCapacity = tables.entries, tables.entries
				})
			})
		}
	}
}

func benchAdmit(b *testing.B, rising bool, edit func(*Config)) {
	h := newHarness(b, edit)
	// Fill the recently-confirmed set, as a running validator would.
	var sig channels.Signature
	for i := range h.s.recent.Cap() {
		sig[0], sig[1], sig[2], sig[3], sig[63] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0xEE
		h.s.recent.Add((*[64]byte)(&sig))
	}
	tr := newTraffic(b, 8192)
	tr.rising = rising
	const chunk = 16384
	var mono int64
	b.ReportAllocs()
	b.SetBytes(channels.PacketSize)
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(chunk, b.N-done)
		b.StopTimer()
		tr.push(h.tpu, n)
		b.StartTimer()
		for got := 0; got < n; {
			mono += 1000
			got += h.s.drainPackets(0, h.s.in[0], mono)
		}
		done += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
	b.ReportMetric(float64(h.s.snap.Admission.Events[admit.EventAdmitted])/float64(h.s.snap.Received[0]), "admitted")
}

// BenchmarkLoopEndToEnd runs whole loop iterations (every input, the
// pacer, the output) on the benchmark goroutine, with the daemon's default
// table sizes, while a second goroutine plays the validator on the other
// core: it keeps tpu_to_qos between a quarter and a half full (so the loop
// always has input and is never lapped) and reads qos_to_sig, so that
// neither side's work runs on the sidecar's core. packets/s is what the
// loop took in; "sent/s" what it released at the --target-pps of the case;
// "busy" the share of the time spent in loop steps that handled records
// (below 1, the producer, not the loop, set the pace).
// The traffic is the flood regime of BenchmarkLoopAdmit.
func BenchmarkLoopEndToEnd(b *testing.B) {
	for _, target := range []uint64{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("target-pps=%d", target), func(b *testing.B) {
			benchEndToEnd(b, target)
		})
	}
}

func benchEndToEnd(b *testing.B, target uint64) {
	h := newHarness(b, func(c *Config) {
		c.QueueCapacity = 16384
		c.PartialCapacity = admit.DefaultPartialCapacity
		c.RecentCapacity = DefaultConfig().RecentCapacity
		c.TargetPPS = target
		c.PacerBurst = 0 // the daemon's default: 10 ms of the target
	})
	tr := newTraffic(b, 8192)
	quarter := int(h.tpu.Capacity() / 4)
	driveLoop(b, h, 0, func() { tr.push(h.tpu, quarter) })
	b.ReportMetric(float64(h.s.in[0].Skipped()), "skipped")
}

// driveLoop plays the validator on a second goroutine — it calls feed
// whenever tpu_to_qos is less than half full, and drains qos_to_sig —
// while whole loop steps run on the benchmark goroutine: first, untimed,
// until warm packets have been received, then until b.N more have. It
// reports, over the timed part, packets/s, the admitted share, sent/s and
// busy: the share of the time spent in steps that handled records (below
// 1, feed set the pace, not the loop). It returns the counters as they
// were when the timer started.
func driveLoop(b *testing.B, h *harness, warm uint64, feed func()) Stats {
	b.Helper()
	capacity := h.tpu.Capacity()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var sink channels.Packet
		for {
			select {
			case <-stop:
				return
			default:
			}
			if unread, known := h.tpu.Unread(); !known || unread < capacity/2 {
				feed()
			}
			for h.out.Pop(&sink) {
			}
		}
	}()
	b.ReportAllocs()
	start := time.Now()
	for h.s.snap.TotalReceived() < warm {
		now := time.Since(start).Nanoseconds()
		h.s.guardedStep(now, now)
	}
	before := h.s.snap
	var busy int64
	b.ResetTimer()
	for h.s.snap.TotalReceived()-before.TotalReceived() < uint64(b.N) {
		now := time.Since(start).Nanoseconds()
		if h.s.guardedStep(now, now) > 0 {
			busy += time.Since(start).Nanoseconds() - now
		}
	}
	b.StopTimer()
	close(stop)
	<-done
	secs := b.Elapsed().Seconds()
	got := float64(h.s.snap.TotalReceived() - before.TotalReceived())
	b.ReportMetric(got/secs, "packets/s")
	b.ReportMetric(float64(h.s.snap.Admission.Events[admit.EventAdmitted]-before.Admission.Events[admit.EventAdmitted])/got, "admitted")
	b.ReportMetric(float64(h.s.snap.Counters[Sent]-before.Counters[Sent])/secs, "sent/s")
	b.ReportMetric(float64(busy)/1e9/secs, "busy")
	return before
}

// BenchmarkLoopStory is BenchmarkLoopEndToEnd with the simulator's attack
// story for traffic, its spammer raised to 4 M packets/s (so nearly all
// of the input): duplicates, unparsable packets (each a model penalty),
// bad signatures, low fees and a sybil rotating 2 048 addresses, on tpu
// and fwd. The other core replays 131 072 packets of it (sim.Traffic),
// each with a fresh first signature, keeping both rings a quarter to half
// full; nothing plays sigverify or the scheduler, so the model learns from
// parse penalties only. The loop first takes storyWarm packets untimed, so
// the figures are the steady state. Two settings:
//   - demo: the demo's --target-pps 5000 and --queue-capacity 4096; the
//     honest traffic (7 000 packets/s) keeps the queue's bar high, and
//     packets from the sunk spammer are often gated before parsing;
//   - target-pps=100000, default queue: honest traffic cannot fill the
//     output, the queue fills with spam, and every packet is parsed and
//     scored.
func BenchmarkLoopStory(b *testing.B) {
	for _, bc := range []struct {
		name   string
		target uint64
		queue  int
	}{{"demo", 5000, 4096}, {"target-pps=100000", 100_000, 16384}} {
		b.Run(bc.name, func(b *testing.B) { benchStory(b, bc.target, bc.queue) })
	}
}

// storyPool is a slice of the attack story with the spammer at 4 M
// packets/s, generated once per test binary: 131 072 packets (about 160
// MB) and their channels.
var storyPool = sync.OnceValues(func() ([]channels.Packet, []uint8) {
	cfg := sim.DefaultConfig()
	for i := range cfg.Agents {
		if cfg.Agents[i].Name == "spammer" {
			cfg.Agents[i].PPS = 4_000_000
		}
	}
	tr, err := sim.NewTraffic(cfg)
	if err != nil {
		panic("story traffic: " + err.Error())
	}
	pkts := make([]channels.Packet, 1<<17)
	chans := make([]uint8, len(pkts))
	for i := range pkts {
		chans[i] = uint8(tr.Next(&pkts[i]))
	}
	return pkts, chans
})

func benchStory(b *testing.B, target uint64, queue int) {
	pool, chans := storyPool()
	h := newHarness(b, func(c *Config) {
		c.QueueCapacity = queue
		c.PartialCapacity = admit.DefaultPartialCapacity
		c.RecentCapacity = DefaultConfig().RecentCapacity
		c.TargetPPS = target
		c.PacerBurst = 0
	})
	prods := [2]*channels.Producer[channels.Packet]{h.tpu, h.fwd}
	var seq uint64
	before := driveLoop(b, h, storyWarm, func() {
		for range 2048 {
			i := seq % uint64(len(pool))
			seq++
			// A fresh first signature (or message bytes, for a packet
			// without one): replays are new packets, and unparsable ones
			// stay unparsable.
			binary.LittleEndian.PutUint64(pool[i][1:], seq)
			if ch := chans[i]; int(ch) < len(prods) {
				prods[ch].Push(&pool[i])
			}
		}
		for _, pr := range prods {
			pr.Sync()
		}
	})
	now := &h.s.snap
	got := float64(now.TotalReceived() - before.TotalReceived())
	b.ReportMetric(float64(now.TotalRejected()-before.TotalRejected())/got, "rejected")
	b.ReportMetric(float64(now.Admission.Events[admit.EventDuplicates]-before.Admission.Events[admit.EventDuplicates])/got, "duplicates")
	b.ReportMetric(float64(now.Admission.Events[admit.EventGated]-before.Admission.Events[admit.EventGated])/got, "gated")
}

// storyWarm is how many packets of the story the loop takes before
// LoopStory's timer starts: at 0.2 % honest traffic, enough for honest
// packets to fill the demo's 4096-entry queue and set its bar.
const storyWarm = 4_000_000
