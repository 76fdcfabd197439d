package sim

import (
	"cmp"
	"math/bits"
	"slices"
)

// candidate is a verified transaction waiting for the slot's end.
type candidate struct {
	hash     uint64
	fee      uint64
	cus      uint32
	agent    int32
	unpaid   bool // its fee payer cannot pay: never included
	included bool
	sig      [64]byte
}

// denserFirst orders by fee per CU, highest first, comparing fee_a·cu_b
// with fee_b·cu_a exactly in 128 bits (a CU count of 0 counts as 1).
func denserFirst(feeA uint64, cuA uint32, feeB uint64, cuB uint32) int {
	ha, la := bits.Mul64(feeA, uint64(max(cuB, 1)))
	hb, lb := bits.Mul64(feeB, uint64(max(cuA, 1)))
	if c := cmp.Compare(hb, ha); c != 0 {
		return c
	}
	return cmp.Compare(lb, la)
}

// scheduler is the mock block producer: it collects the verified
// transactions of a slot and, at the slot's end, includes them by fee per
// CU, highest first, skipping any that no longer fit the CU budget
// (first fit). Candidates of equal fee per CU keep their arrival order.
// A candidate whose fee payer cannot pay is never included.
type scheduler struct {
	budget uint64
	cands  []candidate
	order  []int32
}

func newScheduler(budget uint64, hint int) *scheduler {
	return &scheduler{budget: budget, cands: make([]candidate, 0, hint), order: make([]int32, 0, hint)}
}

// add queues a verified transaction for the current slot.
func (s *scheduler) add(hash, fee uint64, cus uint32, agent int32, unpaid bool, sig []byte) {
	s.cands = append(s.cands, candidate{hash: hash, fee: fee, cus: cus, agent: agent, unpaid: unpaid})
	copy(s.cands[len(s.cands)-1].sig[:], sig)
}

// schedule marks the included candidates and returns the CUs used.
func (s *scheduler) schedule() uint64 {
	s.order = s.order[:0]
	for i := range s.cands {
		s.order = append(s.order, int32(i))
	}
	c := s.cands
	slices.SortStableFunc(s.order, func(a, b int32) int {
		return denserFirst(c[a].fee, c[a].cus, c[b].fee, c[b].cus)
	})
	var used uint64
	for _, i := range s.order {
		cu := uint64(c[i].cus)
		if !c[i].unpaid && used+cu <= s.budget {
			used += cu
			c[i].included = true
		}
	}
	return used
}

// reset empties the slot.
func (s *scheduler) reset() { s.cands = s.cands[:0] }

// item is a transaction the oracle may choose: its fee and CUs.
type item struct {
	fee uint64
	cus uint32
}

// bestChoice is the oracle of one slot window: the most fee obtainable by
// choosing at most k of items (what sigverify could take) whose CUs fit
// budget (what the scheduler could include). The exact problem is a
// two-constraint knapsack; this returns the better of two greedy passes
// (fee per CU first, and fee first), each taking items in order while
// they fit. It reorders items.
func bestChoice(items []item, k int, budget uint64) uint64 {
	if k <= 0 || len(items) == 0 {
		return 0
	}
	pass := func() uint64 {
		var fee, used uint64
		taken := 0
		for _, it := range items {
			if taken == k {
				break
			}
			if used+uint64(it.cus) <= budget {
				used += uint64(it.cus)
				fee += it.fee
				taken++
			}
		}
		return fee
	}
	slices.SortStableFunc(items, func(a, b item) int { return denserFirst(a.fee, a.cus, b.fee, b.cus) })
	byDensity := pass()
	slices.SortStableFunc(items, func(a, b item) int {
		if c := cmp.Compare(b.fee, a.fee); c != 0 {
			return c
		}
		return cmp.Compare(a.cus, b.cus)
	})
	return max(byDensity, pass())
}
