package sim

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSchedulerOrderAndBudget: candidates are included by fee per CU,
// highest first, first fit within the budget, ties in arrival order.
func TestSchedulerOrderAndBudget(t *testing.T) {
	s := newScheduler(100, 4)
	var sig [64]byte
	add := func(fee uint64, cus uint32) {
		sig[0]++
		s.add(uint64(len(s.cands)+1), fee, cus, 0, false, sig[:])
	}
	add(100, 50)  // 0: 2/CU
	add(400, 40)  // 1: 10/CU
	add(90, 30)   // 2: 3/CU
	add(60, 20)   // 3: 3/CU (tie with 2, arrives later)
	add(1000, 0)  // 4: zero CUs counts as 1: 1000/CU
	add(5000, 90) // 5: 55.5/CU but does not fit after 4 and 1? it does: 90 ≤ 100
	used := s.schedule()
	// Order: 4 (1000/CU, 0 CU), 5 (55.6, 90 → used 90), 1 (10, 40 → 130 > 100 skip),
	// 2 (3, 30 skip), 3 (3, 20 skip), 0 (2, 50 skip).
	want := []bool{false, false, false, false, true, true}
	for i, c := range s.cands {
		if c.included != want[i] {
			t.Errorf("candidate %d included = %v, want %v", i, c.included, want[i])
		}
		if c.sig[0] != byte(i+1) || c.hash != uint64(i+1) {
			t.Errorf("candidate %d lost its signature or hash", i)
		}
	}
	if used != 90 {
		t.Errorf("used %d CUs, want 90", used)
	}
	if got := s.order; !slices.Equal(got, []int32{4, 5, 1, 2, 3, 0}) {
		t.Errorf("order %v", got)
	}
	s.reset()
	if len(s.cands) != 0 {
		t.Fatal("reset left candidates")
	}
}

// TestSchedulerRandom checks on random slots that the budget is never
// exceeded, that inclusion follows fee per CU (nothing denser was left
// out while it would have fit at its turn), and that adding never
// allocates once the slot's capacity is reached.
func TestSchedulerRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var sig [64]byte
	for round := 0; round < 200; round++ {
		budget := uint64(r.IntN(2_000_000))
		s := newScheduler(budget, 300)
		n := r.IntN(300)
		for i := 0; i < n; i++ {
			s.add(uint64(i), uint64(r.IntN(1_000_000)), uint32(r.IntN(1_400_001)), 0, false, sig[:])
		}
		used := s.schedule()
		var sum uint64
		for _, c := range s.cands {
			if c.included {
				sum += uint64(c.cus)
			}
		}
		if sum != used || used > budget {
			t.Fatalf("round %d: used %d, sum %d, budget %d", round, used, sum, budget)
		}
		var acc uint64
		for k, i := range s.order {
			c := s.cands[i]
			if k > 0 {
				p := s.cands[s.order[k-1]]
				if denserFirst(p.fee, p.cus, c.fee, c.cus) > 0 {
					t.Fatalf("round %d: order not by fee per CU at %d", round, k)
				}
			}
			fits := acc+uint64(c.cus) <= budget
			if fits != c.included {
				t.Fatalf("round %d: candidate %d included %v, fits %v", round, i, c.included, fits)
			}
			if c.included {
				acc += uint64(c.cus)
			}
		}
	}
	s := newScheduler(1000, 64)
	if n := testing.AllocsPerRun(100, func() {
		s.reset()
		for i := 0; i < 64; i++ {
			s.add(uint64(i), uint64(i), uint32(i), 0, false, sig[:])
		}
	}); n != 0 {
		t.Errorf("add: %v allocs per slot", n)
	}
}

// TestBestChoice checks the oracle on small hand-computed cases.
func TestBestChoice(t *testing.T) {
	items := func() []item {
		return []item{
			{fee: 100, cus: 10}, // A: 10/CU
			{fee: 90, cus: 30},  // B: 3/CU
			{fee: 50, cus: 5},   // C: 10/CU
			{fee: 40, cus: 40},  // D: 1/CU
			{fee: 300, cus: 100},
		} // E: 3/CU
	}
	f := func(k int, budget, want uint64) {
		t.Helper()
		if got := bestChoice(items(), k, budget); got != want {
			t.Errorf("bestChoice(k=%d, budget=%d) = %d, want %d", k, budget, got, want)
		}
	}
	f(10, 50, 240)   // A+C+B (45 CUs): the optimum
	f(1, 1000, 300)  // one packet: E, the biggest fee, not A, the densest
	f(2, 110, 400)   // E+A
	f(10, 1000, 580) // everything
	f(0, 1000, 0)    // sigverify took nothing
	f(10, 4, 0)      // nothing fits
	f(3, 15, 150)    // A+C
	if got := bestChoice(nil, 5, 100); got != 0 {
		t.Errorf("no items: %d", got)
	}
	if got := bestChoice([]item{{fee: 7, cus: 0}}, 1, 0); got != 7 {
		t.Errorf("zero-CU item with zero budget: %d, want 7", got)
	}
}
