package sim

import (
	"math/bits"
)

// Histogram layout: values below 16 have a bucket each; above, every power
// of two is split into 16 equal sub-buckets, so a bucket's width is at
// most 1/16 of its lower bound (quantiles within ±3.2 % at the midpoint).
const (
	histSubBits = 4
	histSub     = 1 << histSubBits
	histSize    = (64-histSubBits)*histSub + histSub
)

// histogram counts non-negative int64 values (nanoseconds) in a fixed
// array: adding never allocates. Negative values count as 0.
type histogram struct {
	counts [histSize]uint64
	n      uint64
}

// histBucket returns the bucket of v.
func histBucket(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // ≥ histSubBits
	sub := (v >> (e - histSubBits)) & (histSub - 1)
	return (e-histSubBits+1)*histSub + int(sub)
}

// histBounds returns the smallest and largest value of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	e := i/histSub + histSubBits - 1
	sub := uint64(i % histSub)
	lo = (histSub + sub) << (e - histSubBits)
	return lo, lo + (1 << (e - histSubBits)) - 1
}

func (h *histogram) add(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[histBucket(uint64(v))]++
	h.n++
}

// quantile returns the value below which a fraction q of the samples lie
// (the midpoint of the bucket holding rank ⌈q·n⌉), or 0 without samples.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	return h.quantileRank(min(max(rank, 1), h.n))
}

// quantileRank returns the midpoint of the bucket holding the sample of
// rank (1-based). REQUIRES: 1 ≤ rank ≤ h.n.
func (h *histogram) quantileRank(rank uint64) int64 {
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i]
		if seen >= rank {
			lo, hi := histBounds(i)
			return int64(lo + (hi-lo)/2)
		}
	}
	return 0
}

// hashSet is an open-addressing set of packet hashes (linear probing over
// a power-of-two table of u64, 0 marking an empty slot). It grows by
// doubling when half full, so inserting allocates only on those rare
// growths.
type hashSet struct {
	slots   []uint64
	n       int
	hasZero bool
}

func newHashSet(hint int) *hashSet {
	size := 1024
	for size < 2*hint {
		size <<= 1
	}
	return &hashSet{slots: make([]uint64, size)}
}

// insert adds h and reports whether it was already present.
func (s *hashSet) insert(h uint64) (present bool) {
	if h == 0 {
		present, s.hasZero = s.hasZero, true
		return present
	}
	if 2*(s.n+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := mix64(h) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return true
		case 0:
			s.slots[i] = h
			s.n++
			return false
		}
	}
}

func (s *hashSet) grow() {
	old := s.slots
	s.slots = make([]uint64, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := mix64(h) & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
	}
}

// len returns the number of distinct hashes inserted.
func (s *hashSet) len() int {
	if s.hasZero {
		return s.n + 1
	}
	return s.n
}

// share returns part/whole, or 0 when whole is 0.
func share(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return float64(part) / float64(whole)
}
