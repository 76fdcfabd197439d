package pack

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/score"
)

// workload is a set of parsed transactions with a realistic account mix:
// a distinct fee payer each; 1–3 writable accounts, a fifth of them one
// of 8 hot accounts (AMM pools, popular mints) and the rest drawn from
// 200 000 with a skew toward low numbers; a program from 16, called with
// 1–2 readonly accounts from 1 000 (oracles, configs); a compute-budget
// limit and price. About 40 % are v0 with one lookup (one writable
// index) whose resolved key is provided.
type workload struct {
	views []score.View
	data  [][]byte
	res   [][]byte // resolved writable lookup keys, or nil
	costs []uint64
}

func newWorkload(tb testing.TB, n int, seed uint64) *workload {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	w := &workload{views: make([]score.View, n), data: make([][]byte, n), res: make([][]byte, n), costs: make([]uint64, n)}
	skew := func(m int) uint64 { // ~ Zipf-like: square of a uniform
		u := rng.Float64()
		return uint64(u * u * float64(m))
	}
	for i := range n {
		dedup := func(ks []Pubkey) []Pubkey {
			seen := map[Pubkey]bool{}
			out := ks[:0]
			for _, k := range ks {
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
			return out
		}
		var wr, ro []Pubkey
		for range 1 + rng.IntN(3) {
			if rng.IntN(5) == 0 {
				wr = append(wr, key(uint64(rng.IntN(8))))
			} else {
				wr = append(wr, key(100+skew(200_000)))
			}
		}
		for range 1 + rng.IntN(2) {
			ro = append(ro, key(1_000_000+uint64(rng.IntN(1000))))
		}
		wr, ro = dedup(wr), dedup(ro)
		prog := key(2_000_000 + uint64(rng.IntN(16)))
		keys := append([]Pubkey{key(1_000_000_000 + uint64(i))}, wr...) // payer first
		keys = append(keys, ro...)
		keys = append(keys, prog, score.ComputeBudgetProgram)
		nro := len(ro)
		nk := len(keys)
		accs := make([]byte, 0, nk)
		for a := 1; a < nk-2; a++ {
			accs = append(accs, byte(a))
		}
		tx := testTx{nreq: 1, nrou: uint8(nro + 2), keys: keys,
			ixs: []testIx{
				{prog: uint8(nk - 1), data: cbLimit(uint32(20_000 + rng.IntN(400_000)))},
				{prog: uint8(nk - 1), data: cbPrice(uint64(rng.IntN(100_000)))},
				{prog: uint8(nk - 2), accs: accs, data: make([]byte, 8+rng.IntN(64))},
			}}
		if rng.IntN(5) < 2 {
			tx.v0 = true
			tx.luts = []testLookup{{table: key(3_000_000 + uint64(rng.IntN(50))), writable: []byte{0}}}
			r := key(200_000_000 + skew(50_000))
			w.res[i] = r[:]
		}
		v, data, b := tx.parse(tb)
		w.views[i], w.data[i] = *v, data
		c, err := EstimateCost(v, data, b, false, DefaultCostParams())
		if err != nil {
			tb.Fatal(err)
		}
		w.costs[i] = c.Sum()
	}
	return w
}

// driver runs the workload through a Scheduler the way the pack loop
// would, with workers that answer at once: each step offers one
// candidate; when no worker has room, or every 4 × 64 candidates, it
// flushes and finishes every batch in flight (each transaction included
// at its estimate); a full block starts the next slot.
type driver struct {
	s         *Scheduler
	w         *workload
	ks        Keys
	results   [MaxBatch]ExecResult
	slot      uint64
	i         int
	sinceTick int
	scheduled uint64
	deferred  uint64
}

func newDriver(tb testing.TB, workers int, w *workload) *driver {
	tb.Helper()
	s, err := NewScheduler(DefaultParams(workers))
	if err != nil {
		tb.Fatal(err)
	}
	d := &driver{s: s, w: w, slot: 1}
	d.newSlot()
	return d
}

func (d *driver) newSlot() {
	d.slot++
	d.s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: d.slot, LeaderRangeEnd: d.slot + 3,
		RemainingCostUnits: BlockCostLimit})
}

// drain flushes and finishes every batch, each transaction included at
// its estimated cost.
func (d *driver) drain() {
	for _, ref := range d.s.Flush() {
		ids := d.s.TxIDs(ref)
		for k, id := range ids {
			d.results[k] = ExecResult{Slot: d.slot, CostUnits: d.w.costs[id]}
		}
		_ = d.s.Finish(ref, d.results[:len(ids)])
	}
}

// step offers the next candidate.
func (d *driver) step() {
	w := d.w
	i := d.i
	d.i++
	if d.i == len(w.views) {
		d.i = 0
	}
	if err := d.ks.FromView(&w.views[i], w.data[i], w.res[i], nil); err != nil {
		return
	}
	dec := d.s.Try(uint64(i), &d.ks, w.costs[i], false)
	switch dec.Outcome {
	case Scheduled:
		d.scheduled++
	case DeferBusy:
		d.deferred++
		d.drain()
		d.sinceTick = 0
	case DeferBlockCost:
		d.deferred++
		d.drain()
		d.newSlot()
	default:
		d.deferred++
	}
	d.sinceTick++
	if d.sinceTick == 4*MaxBatch {
		d.drain()
		d.sinceTick = 0
	}
}

// BenchmarkSchedule measures scheduling on one core with 4 workers: per
// candidate, the lock set from the parsed view (Keys.FromView) and
// Scheduler.Try, with Flush and Finish amortised over the batches.
// sched_tx/s counts the candidates that went into a batch.
func BenchmarkSchedule(b *testing.B) {
	for _, workers := range []int{4, 16} {
		b.Run(map[int]string{4: "workers=4", 16: "workers=16"}[workers], func(b *testing.B) {
			w := newWorkload(b, 1<<14, 3)
			d := newDriver(b, workers, w)
			for range 1 << 15 { // warm up: fill the tables once
				d.step()
			}
			d.scheduled, d.deferred = 0, 0
			b.ReportAllocs()
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range b.N {
				d.step()
			}
			el, cpu := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
			b.ReportMetric(float64(d.scheduled)/el, "sched_tx/s")
			// The machine is shared: CPU time says what one core does.
			b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(d.scheduled)/cpu, "sched_tx/cpu-s")
			b.ReportMetric(float64(d.deferred)/float64(b.N), "deferred/op")
		})
	}
}

// cpuTime returns the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEstimateCost measures the cost estimate of a parsed view.
func BenchmarkEstimateCost(b *testing.B) {
	w := newWorkload(b, 1024, 5)
	p := DefaultCostParams()
	budgets := make([]score.Budget, len(w.views))
	for i := range w.views {
		budgets[i], _ = w.views[i].Budget(w.data[i], score.DefaultFeeParams())
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var sink uint64
	for i := range b.N {
		j := i & 1023
		c, _ := EstimateCost(&w.views[j], w.data[j], budgets[j], false, p)
		sink += c.Sum()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	_ = sink
}

// TestScheduleAllocs proves the scheduling path allocates nothing in
// steady state: lock set, cost estimate, Try, Flush and Finish.
func TestScheduleAllocs(t *testing.T) {
	w := newWorkload(t, 4096, 9)
	d := newDriver(t, 4, w)
	for range 1 << 14 {
		d.step()
	}
	p := DefaultCostParams()
	budgets := make([]score.Budget, len(w.views))
	for i := range w.views {
		budgets[i], _ = w.views[i].Budget(w.data[i], score.DefaultFeeParams())
	}
	j := 0
	allocs := testing.AllocsPerRun(20_000, func() {
		d.step()
		_, _ = EstimateCost(&w.views[j], w.data[j], budgets[j], false, p)
		j = (j + 1) & 4095
	})
	if allocs != 0 {
		t.Errorf("%v allocations per scheduled transaction, want 0", allocs)
	}
	if d.scheduled == 0 {
		t.Error("nothing was scheduled")
	}
}
