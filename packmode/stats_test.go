package packmode

import (
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
)

func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 100, 1000, 1 << 20, 1<<40 + 12345, 1<<63 + 5} {
		b := histBucket(v)
		if b < prev {
			t.Fatalf("bucket of %d is %d, below the previous %d", v, b, prev)
		}
		prev = b
		if up := histUpper(b); up < v || (b > 0 && histUpper(b-1) >= v) {
			t.Fatalf("value %d in bucket %d whose range ends at %d (previous %d)", v, b, up, histUpper(b-1))
		}
	}
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.add(int64(i) * 1000)
	}
	p99 := h.Quantile(0.99)
	if p99 < 990*time.Microsecond || p99 > 990*time.Microsecond*6/5 {
		t.Fatalf("p99 %v, want about 990µs", p99)
	}
}

// TestHistSince: the quantiles of an interval come from its values alone.
// A cumulative histogram of a slow minute then a fast one still says
// slow at p50; Since of the fast minute says fast at every quantile.
func TestHistSince(t *testing.T) {
	f := func(slow, fast int, slowNs, fastNs int64, q float64, wantCum, wantWin time.Duration) {
		t.Helper()
		var h Hist
		for range slow {
			h.add(slowNs)
		}
		start := h // the interval starts here
		for range fast {
			h.add(fastNs)
		}
		w := h.Since(&start)
		if w.Count() != uint64(fast) || w.Sum() != time.Duration(int64(fast)*fastNs) {
			t.Fatalf("interval: %d values summing to %v, want %d summing to %v", w.Count(), w.Sum(), fast, time.Duration(int64(fast)*fastNs))
		}
		within := func(got, want time.Duration) bool { return got >= want && got <= want*6/5 }
		if got := h.Quantile(q); !within(got, wantCum) {
			t.Errorf("cumulative q%v = %v, want about %v", q, got, wantCum)
		}
		if got := w.Quantile(q); !within(got, wantWin) {
			t.Errorf("interval q%v = %v, want about %v", q, got, wantWin)
		}
	}
	f(1000, 1000, 5_000_000, 20_000, 0.5, 20*time.Microsecond, 20*time.Microsecond) // half and half: p50 is the lower half
	f(3000, 1000, 5_000_000, 20_000, 0.5, 5*time.Millisecond, 20*time.Microsecond)  // mostly slow before
	f(3000, 1000, 5_000_000, 20_000, 0.99, 5*time.Millisecond, 20*time.Microsecond) // p99
	f(10, 10000, 5_000_000, 20_000, 0.99, 20*time.Microsecond, 20*time.Microsecond) // a few slow ones long ago
	f(1000, 10, 20_000, 5_000_000, 0.5, 20*time.Microsecond, 5*time.Millisecond)    // slower now
	var empty Hist
	if w := empty.Since(&empty); w.Count() != 0 || w.Quantile(0.99) != 0 {
		t.Fatalf("empty interval: %d values, p99 %v", w.Count(), w.Quantile(0.99))
	}
}

// TestHistPromBuckets: the Prometheus buckets count exactly the values at
// most their bound, bounds rise by powers of two, and the last holds every
// value below 2^35 ns.
func TestHistPromBuckets(t *testing.T) {
	vals := []int64{0, 1, 1000, 1023, 1024, 1025, 2047, 2048, 3000, 1 << 20, 1<<20 - 1, 5e9, 1<<35 - 1, 1 << 35, 1 << 40}
	var h Hist
	for _, v := range vals {
		h.add(v)
	}
	b := h.promBuckets()
	if len(b) != promLast-promFirst+1 {
		t.Fatalf("%d buckets, want %d", len(b), promLast-promFirst+1)
	}
	for k := promFirst; k <= promLast; k++ {
		bound := float64(uint64(1)<<k-1) / 1e9
		got, ok := b[bound]
		if !ok {
			t.Fatalf("no bucket at %g s (2^%d − 1 ns)", bound, k)
		}
		var want uint64
		for _, v := range vals {
			if v <= 1<<k-1 {
				want++
			}
		}
		if got != want {
			t.Errorf("bucket ≤ 2^%d−1 ns: %d values, want %d", k, got, want)
		}
	}
}

// TestMetersSteadyStateAllocs: the metering added to the loop (worker busy
// time per answer, slot cost per progress message) and the snapshot of
// the gauges, the model's figures included, allocate nothing once warm;
// and they measure: workers were busy, leader slots were counted.
func TestMetersSteadyStateAllocs(t *testing.T) {
	b := newBenchLoop(t, PolicyModel)
	warm, runs := 2000, 200
	if raceEnabled {
		warm, runs = 100, 10
	}
	for range warm {
		b.step(64)
	}
	round := func() {
		b.step(64)
		b.l.snapshot()
	}
	if allocs := testing.AllocsPerRun(runs, round); allocs != 0 && !raceEnabled {
		t.Fatalf("%v allocations per round with the snapshot", allocs)
	}
	st := b.st
	var busy int64
	for _, v := range st.WorkerBusy {
		busy += v
	}
	if busy <= 0 || st.LeaderSlots == 0 || st.LeaderSlotCost == 0 || !st.HasModel || st.Model.Observations == 0 || st.LeakedBlocks() != 0 {
		t.Fatalf("busy %v ns, %d leader slots of %d cost units, model %v %+v, leaked %d",
			busy, st.LeaderSlots, st.LeaderSlotCost, st.HasModel, st.Model, st.LeakedBlocks())
	}
}

// TestWorkerBusyUnion: a worker's busy time is the union of its batches'
// [sent, answered] intervals, answered in order; overlapping batches
// count once, idle gaps not at all.
func TestWorkerBusyUnion(t *testing.T) {
	f := func(batches [][2]int64, want int64) {
		t.Helper()
		l := &Loop{st: &Stats{}}
		for _, b := range batches { // {sent, answered}
			l.now = b[1]
			l.workerAnswered(1, b[0])
		}
		if got := l.st.WorkerBusy[1]; got != want || l.st.WorkerBusy[0] != 0 {
			t.Errorf("%v: busy %d (worker 0: %d), want %d", batches, got, l.st.WorkerBusy[0], want)
		}
	}
	f(nil, 0)
	f([][2]int64{{10, 30}}, 20)
	f([][2]int64{{10, 30}, {50, 60}}, 30)           // a gap of 20
	f([][2]int64{{10, 30}, {20, 45}}, 35)           // depth 2: the second waited behind the first
	f([][2]int64{{10, 30}, {20, 45}, {25, 45}}, 35) // answered in the same pass
	f([][2]int64{{10, 10}}, 0)                      // answered in the pass it was sent
}

// TestSlotMeter: a leader slot's block cost is the validator's limit (the
// largest remaining_cost_units seen while LEADER_READY) minus the slot's
// lowest; it counts when the slot ends, and only if LEADER_READY was seen
// in it.
func TestSlotMeter(t *testing.T) {
	type msg struct {
		slot      uint64
		state     bindings.LeaderState
		remaining uint64
	}
	f := func(msgs []msg, slots, cost, now, limit uint64) {
		t.Helper()
		l := &Loop{st: &Stats{}}
		l.cfg.Budget.BlockLimit = 60_000_000
		for _, m := range msgs {
			l.progressSeen(m.slot, m.state, m.remaining)
		}
		l.st.SlotLimit = l.cfg.Budget.BlockLimit
		l.snapshotMeters()
		if l.st.LeaderSlots != slots || l.st.LeaderSlotCost != cost || l.st.SlotCostUsed != now || l.st.SlotLimit != limit {
			t.Errorf("%v: %d slots costing %d, now %d of %d; want %d, %d, %d of %d",
				msgs, l.st.LeaderSlots, l.st.LeaderSlotCost, l.st.SlotCostUsed, l.st.SlotLimit, slots, cost, now, limit)
		}
	}
	const ready, starting, not = bindings.LeaderReady, bindings.LeaderStarting, bindings.NotLeader
	f(nil, 0, 0, 0, 60_000_000)
	f([]msg{{5, not, 0}, {6, not, 0}}, 0, 0, 0, 60_000_000)
	// A 48 M validator: slot 7 took 10 M then 30 M, slot 8 is under way.
	f([]msg{{7, ready, 48e6}, {7, ready, 38e6}, {7, ready, 18e6}, {8, ready, 48e6}, {8, ready, 40e6}}, 1, 30e6, 8e6, 48e6)
	// The bank went away before the slot changed: the slot still counts.
	f([]msg{{7, starting, 0}, {7, ready, 48e6}, {7, ready, 8e6}, {7, not, 0}, {8, not, 0}}, 1, 40e6, 0, 48e6)
	// Two leader slots, then not leader.
	f([]msg{{7, ready, 48e6}, {7, ready, 47e6}, {8, ready, 48e6}, {8, ready, 45e6}, {9, not, 0}}, 2, 4e6, 0, 48e6)
	// Its first message came late: the limit is known from another slot.
	f([]msg{{7, ready, 48e6}, {8, ready, 20e6}, {9, not, 0}}, 2, 28e6, 0, 48e6)
}
