// Package hashindex is the open-addressing table under the daemon's
// fixed-size sets: a power-of-two array of nonzero 64-bit words (0 marks an
// empty slot), linear probing, load at most one half, and deletion by
// backward shift, so there are no tombstones and a lookup ends at the first
// empty slot.
//
// A word's home slot is (word >> Shift) & mask: a set of keys uses the key
// itself (Shift 0); a table that packs a tag above a slab index uses the
// tag (Shift 32). The caller probes with Home, Next and At, so a lookup
// compares words (or reads its slab) inline, without a callback; Insert
// and Delete keep the probe runs consistent.
//
// The array is pointer-free and allocated once; no method allocates. Not
// safe for concurrent use.
package hashindex

import "github.com/solqos/qos/internal/invariants"

// Index is an open-addressing table of nonzero words.
type Index struct {
	words []uint64
	mask  uint64
	shift uint
}

// New returns an index with room for at least 2×capacity words (so the
// load stays at most one half when the caller holds at most capacity),
// whose words have their home bits at shift.
func New(capacity int, shift uint) Index {
	size := uint64(2)
	for size < 2*uint64(max(capacity, 1)) {
		size <<= 1
	}
	return Index{words: make([]uint64, size), mask: size - 1, shift: shift}
}

// Size returns the number of slots.
func (x *Index) Size() int { return len(x.words) }

// Home returns the slot where the probe run of a word with home bits h
// (the word's bits at shift) starts.
func (x *Index) Home(h uint64) uint64 { return h & x.mask }

// Next returns the slot after i, wrapping around.
func (x *Index) Next(i uint64) uint64 { return (i + 1) & x.mask }

// At returns the word in slot i; 0 when empty.
func (x *Index) At(i uint64) uint64 { return x.words[i] }

// Peek loads the word where a probe run from home bits h starts and
// returns it. It changes nothing; a caller about to look up many words
// peeks them all first so their cache misses overlap instead of following
// one another.
func (x *Index) Peek(h uint64) uint64 { return x.words[h&x.mask] }

// Insert stores w (nonzero) in the first empty slot of its probe run.
// REQUIRES: w is not present and the index is less than half full.
func (x *Index) Insert(w uint64) {
	if invariants.Enabled && w == 0 {
		panic("BUG: hashindex: inserting the empty word")
	}
	i := (w >> x.shift) & x.mask
	for x.words[i] != 0 {
		i = (i + 1) & x.mask
	}
	x.words[i] = w
}

// Delete empties slot i by backward-shift deletion: later words of its
// probe run move back into the hole, unless their home lies cyclically in
// (hole, j], so that no lookup meets an empty slot before its word.
// REQUIRES: slot i holds a word.
func (x *Index) Delete(i uint64) {
	if invariants.Enabled && x.words[i] == 0 {
		panic("BUG: hashindex: deleting an empty slot")
	}
	hole := i
	j := hole
	for {
		j = (j + 1) & x.mask
		w := x.words[j]
		if w == 0 {
			break
		}
		home := (w >> x.shift) & x.mask
		if (j-home)&x.mask >= (j-hole)&x.mask {
			x.words[hole] = w
			hole = j
		}
	}
	x.words[hole] = 0
}
