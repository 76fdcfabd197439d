package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1 << 40, math.MaxUint64} {
		i := histBucket(v)
		if i >= histSize || i < prev {
			t.Fatalf("bucket(%d) = %d", v, i)
		}
		prev = i
		lo, hi := histBounds(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if hi-lo > lo/16 {
			t.Errorf("bucket %d [%d, %d] wider than 1/16", i, lo, hi)
		}
	}
	// Buckets tile the line.
	for i := 1; i < histSize; i++ {
		_, phi := histBounds(i - 1)
		lo, _ := histBounds(i)
		if lo != phi+1 {
			t.Fatalf("gap between buckets %d and %d: %d, %d", i-1, i, phi, lo)
		}
	}
}

// TestHistogramQuantiles compares quantiles with the exact ones of the
// sorted samples, on synthetic latencies (log-normal around 50 µs).
func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]int64, 100_000)
	for i := range xs {
		xs[i] = int64(50_000 * math.Exp(r.NormFloat64()))
		h.add(xs[i])
	}
	slices.Sort(xs)
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		exact := float64(xs[int(math.Ceil(q*float64(len(xs))))-1])
		got := float64(h.quantile(q))
		if math.Abs(got-exact)/exact > 1.0/16 {
			t.Errorf("q%v = %v, exact %v", q, got, exact)
		}
	}
	h = histogram{}
	h.add(-5) // counts as 0
	h.add(7)
	if h.quantile(0.5) != 0 || h.quantile(1) != 7 {
		t.Errorf("small values: p50 %d, p100 %d", h.quantile(0.5), h.quantile(1))
	}
	if n := testing.AllocsPerRun(1000, func() { h.add(123456) }); n != 0 {
		t.Errorf("add: %v allocs", n)
	}
}

// TestHashSet checks duplicate detection across growth, including the
// hash 0.
func TestHashSet(t *testing.T) {
	s := newHashSet(10)
	r := rand.New(rand.NewPCG(5, 6))
	seen := make(map[uint64]bool)
	for i := 0; i < 50_000; i++ {
		h := r.Uint64() % 30_000 // many repeats
		if i%1000 == 0 {
			h = 0
		}
		if got := s.insert(h); got != seen[h] {
			t.Fatalf("insert(%d) = %v, want %v", h, got, seen[h])
		}
		seen[h] = true
	}
	if s.len() != len(seen) {
		t.Errorf("len %d, want %d", s.len(), len(seen))
	}
	big := newHashSet(1 << 12)
	i := uint64(1)
	if n := testing.AllocsPerRun(1000, func() { big.insert(i); i++ }); n != 0 {
		t.Errorf("insert below capacity: %v allocs", n)
	}
}

// TestResultShares builds a recorder's counters by hand and checks the
// shares, rates and series the result derives from them.
func TestResultShares(t *testing.T) {
	c := DefaultConfig()
	c.Duration = 1200 * time.Millisecond // 3 buckets of 500 ms, the last 200 ms
	c.Warmup = 500 * time.Millisecond
	c.Agents = c.Agents[:4] // honest-high, honest-high-v6, honest-low, spammer (attacker)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	g := newTestGenerator(t, &c)
	r := newRecorder(&c, 1, g)
	if r.nBuckets != 3 {
		t.Fatalf("%d buckets", r.nBuckets)
	}
	set := func(dst []uint64, b, a int, v uint64) { dst[b*r.nAgents+a] = v }
	// Input: bucket 0: 100 per agent; bucket 2: spammer 1000.
	for a := 0; a < 4; a++ {
		set(r.prodIn, 0, a, 100)
	}
	set(r.prodIn, 2, 3, 1000)
	r.produced = 1400
	// Output: bucket 0: spammer 30, honest-low 10; bucket 1: honest 40, spammer 0; bucket 2: spammer 5, honest-high 15.
	set(r.out, 0, 3, 30)
	set(r.out, 0, 2, 10)
	set(r.out, 1, 0, 40)
	set(r.out, 2, 3, 5)
	set(r.out, 2, 0, 15)
	r.received = 100
	r.outAgent[0], r.outAgent[2], r.outAgent[3] = 55, 10, 35
	r.outAfter, r.attackAfter = 60, 5
	r.value, r.oracle = 30, 40
	res := r.result()
	if got := res.AttackerShareAfterWarmup; math.Abs(got-5.0/60) > 1e-12 {
		t.Errorf("attacker share after warm-up %v", got)
	}
	if got := res.OracleShare(); got != 0.75 {
		t.Errorf("oracle share %v", got)
	}
	wantShare := []float64{0.75, 0, 0.25}
	wantIn := []float64{800, 0, 5000} // 400/0.5 s, 0, 1000/0.2 s
	wantOut := []float64{80, 80, 100}
	for b := 0; b < 3; b++ {
		if math.Abs(res.AttackerShareSeries[b]-wantShare[b]) > 1e-12 {
			t.Errorf("bucket %d attacker share %v, want %v", b, res.AttackerShareSeries[b], wantShare[b])
		}
		if math.Abs(res.InPPSSeries[b]-wantIn[b]) > 1e-9 || math.Abs(res.OutPPSSeries[b]-wantOut[b]) > 1e-9 {
			t.Errorf("bucket %d pps in %v out %v, want %v %v", b, res.InPPSSeries[b], res.OutPPSSeries[b], wantIn[b], wantOut[b])
		}
	}
	if res.Agents[3].InPackets != 1100 || res.Agents[3].OutPackets != 35 || !res.Agents[3].Attacker {
		t.Errorf("spammer %+v", res.Agents[3])
	}
	if math.Abs(res.InPPS-1400/1.2) > 1e-9 || math.Abs(res.OutPPS-100/1.2) > 1e-9 {
		t.Errorf("rates in %v out %v", res.InPPS, res.OutPPS)
	}
	if share(1, 0) != 0 {
		t.Error("share of nothing")
	}
}
