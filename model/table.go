package model

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// rec is one key's record of its latest outcomes, each weighted by the
// fee per compute unit its transaction claimed: the mean claim, the mean
// paid (the claim when the transaction was paid, else 0), the mean failed
// (the claim when it failed sigverify or did not parse, else 0), for a
// signer the mean its IPs' factors predicted (exp), and how many outcomes
// the means cover (at most Window).
type rec struct {
	claim float64
	paid  float64
	fail  float64 // IP tables only
	exp   float64 // signers only
	n     float64
}

// add folds one outcome into r: a running mean of the first w outcomes,
// then an exponential moving average of weight 1/w. Each operation is
// rounded on its own, so no architecture fuses one into a multiply-add
// and every one computes the same bits.
func (r *rec) add(claim, paid, fail, exp, w float64) {
	r.n = min(r.n+1, w)
	r.claim += float64((claim - r.claim) / r.n)
	r.paid += float64((paid - r.paid) / r.n)
	r.fail += float64((fail - r.fail) / r.n)
	r.exp += float64((exp - r.exp) / r.n)
}

// validity maps the share of r's claims that failed to [0, 1]: 1 up to
// tolerance, 0 from one half on, linear between.
func (r *rec) validity(tolerance float64) float64 {
	if !(r.claim > 0) {
		return 1
	}
	s := min(1, r.fail/r.claim)
	return min(1, max(0, float64(0.5-s)/float64(0.5-tolerance)))
}

// rate is the share of the value its outcomes claimed that was paid, and
// false when they claimed nothing (no evidence).
func (r *rec) rate() (float64, bool) {
	if !(r.claim > 0) {
		return 0, false
	}
	return min(1, r.paid/r.claim), true
}

// shrink is r's rate pulled toward prior: (rate·n + k'·prior) / (n + k'),
// where the prior's weight k' = k·(1 - n/w) fades as the record fills its
// window of w outcomes. With no evidence it is the prior; with a full
// window it is the record's own rate, so a sender whose every claim
// failed scores 0 (then MinScore), whatever its neighbourhood.
func shrink(r *rec, prior, k, w float64) float64 {
	x, ok := r.rate()
	if !ok {
		return prior
	}
	kk := float64(k * float64(1-r.n/w))
	return float64(float64(x*r.n)+float64(kk*prior)) / (r.n + kk)
}

// node is one entry of a table: its key, record, the event number of its
// last update (stamp) and its neighbours in the recency list.
type node[K any] struct {
	key        K
	r          rec
	stamp      uint64
	prev, next int32 // toward the most / least recently updated; -1 ends
}

// hashKey is what a table is keyed by: IP or Signer, with a keyed hash.
type hashKey interface {
	comparable
	hash(seed uint64) uint64
}

// mix is a keyed 64-bit mixing step (multiply-xorshift, wyhash style).
func mix(h, w uint64) uint64 {
	hi, lo := bits.Mul64(h^w, 0x9e3779b97f4a7c15)
	return hi ^ lo
}

// avalanche is the splitmix64 finaliser: every input bit reaches the low
// bits the index masks with.
func avalanche(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (ip IP) hash(seed uint64) uint64 {
	return avalanche(mix(mix(seed, binary.LittleEndian.Uint64(ip[0:])), binary.LittleEndian.Uint64(ip[8:])))
}

func (s Signer) hash(seed uint64) uint64 {
	h := seed
	for i := 0; i < 32; i += 8 {
		h = mix(h, binary.LittleEndian.Uint64(s[i:]))
	}
	return avalanche(h)
}

// table maps keys to records in a fixed number of slots, evicting the
// least recently updated entry when a new key needs a slot. Slots are
// indexed by int32 and hold no pointers, so the garbage collector does not
// scan them, and the index is an open-addressing table of int32 (linear
// probing, backward-shift deletion, load at most ½) keyed by a hash with
// a per-process random seed, so fee payers chosen to collide cannot make
// probes long. Slots and index start small and double (the index rebuilt
// in O(n)) until the table reaches its capacity; from then on nothing
// allocates. So a model, or a model file, costs memory for what it holds,
// not for what it may hold.
//
// What it evicts depends only on the order of updates (stamps are event
// numbers), never on the hash seed or where entries sit in memory: a
// table restored from its entries and stamps behaves exactly as the one
// saved.
type table[K hashKey] struct {
	idx        []int32 // slot+1, 0 = empty
	mask       uint64
	seed       uint64
	slots      []node[K]
	capacity   int
	head, tail int32 // most and least recently updated; -1 when empty
	evicted    uint64
}

// initialSlots is how many slots a table starts with.
const initialSlots = 256

func newTable[K hashKey](capacity int, seed uint64) *table[K] {
	t := &table[K]{seed: seed, capacity: capacity, head: -1, tail: -1}
	t.reserve(min(capacity, initialSlots))
	return t
}

// reserve makes room for n slots (at most capacity) without reallocating,
// with an index of at least 2n positions, rebuilding the index if it
// grows.
func (t *table[K]) reserve(n int) {
	n = min(n, t.capacity)
	if cap(t.slots) < n {
		t.slots = append(make([]node[K], 0, n), t.slots...)
	}
	size := 4
	for size < 2*n {
		size <<= 1
	}
	if size <= len(t.idx) {
		return
	}
	t.idx = make([]int32, size)
	t.mask = uint64(size - 1)
	for s := range t.slots {
		pos, _ := t.find(t.slots[s].key)
		t.idx[pos] = int32(s) + 1
	}
}

func (t *table[K]) len() int { return len(t.slots) }

// find returns k's index position and slot, or the empty position where
// k would go and -1.
func (t *table[K]) find(k K) (uint64, int32) {
	i := k.hash(t.seed) & t.mask
	for {
		v := t.idx[i]
		if v == 0 {
			return i, -1
		}
		if t.slots[v-1].key == k {
			return i, v - 1
		}
		i = (i + 1) & t.mask
	}
}

// remove deletes the index entry at position i, shifting later entries of
// its cluster back so that probing never needs tombstones.
func (t *table[K]) remove(i uint64) {
	t.idx[i] = 0
	j := i
	for {
		j = (j + 1) & t.mask
		v := t.idx[j]
		if v == 0 {
			return
		}
		home := t.slots[v-1].key.hash(t.seed) & t.mask
		// Move v back to i unless its home lies cyclically in (i, j].
		if (j-home)&t.mask >= (j-i)&t.mask {
			t.idx[i], t.idx[j] = v, 0
			i = j
		}
	}
}

// get returns k's record, or nil.
func (t *table[K]) get(k K) *rec {
	if _, s := t.find(k); s >= 0 {
		return &t.slots[s].r
	}
	return nil
}

// touch returns k's record for an update at event stamp, making k the
// most recently updated entry; a new key gets a fresh record in a free
// slot or in the least recently updated entry's, which is evicted.
func (t *table[K]) touch(k K, stamp uint64) *rec {
	pos, s := t.find(k)
	switch {
	case s >= 0:
		t.unlink(s)
	case len(t.slots) < t.capacity:
		if len(t.slots) == cap(t.slots) { // still growing toward capacity
			t.reserve(2 * len(t.slots))
			pos, _ = t.find(k)
		}
		s = int32(len(t.slots))
		t.slots = append(t.slots, node[K]{})
		t.idx[pos] = s + 1
	default:
		s = t.tail
		t.unlink(s)
		old, _ := t.find(t.slots[s].key)
		t.remove(old)
		pos, _ = t.find(k) // the removal may have moved k's place
		t.slots[s] = node[K]{}
		t.idx[pos] = s + 1
		t.evicted++
	}
	nd := &t.slots[s]
	nd.key, nd.stamp = k, stamp
	t.pushFront(s)
	return &nd.r
}

func (t *table[K]) unlink(s int32) {
	nd := &t.slots[s]
	if nd.prev >= 0 {
		t.slots[nd.prev].next = nd.next
	} else {
		t.head = nd.next
	}
	if nd.next >= 0 {
		t.slots[nd.next].prev = nd.prev
	} else {
		t.tail = nd.prev
	}
}

func (t *table[K]) pushFront(s int32) {
	nd := &t.slots[s]
	nd.prev, nd.next = -1, t.head
	if t.head >= 0 {
		t.slots[t.head].prev = s
	}
	t.head = s
	if t.tail < 0 {
		t.tail = s
	}
}

// restore fills the empty table with entries given in any order: they
// are linked by stamp, so the recency order is the saved one. REQUIRES:
// keys and stamps unique, len(es) ≤ capacity.
func (t *table[K]) restore(es []node[K]) {
	t.reserve(len(es))
	order := slices.Clone(es)
	slices.SortFunc(order, func(a, b node[K]) int {
		switch {
		case a.stamp < b.stamp:
			return -1
		case a.stamp > b.stamp:
			return 1
		}
		return 0
	})
	for _, e := range order { // oldest first: each becomes the head
		s := int32(len(t.slots))
		t.slots = append(t.slots, node[K]{key: e.key, r: e.r, stamp: e.stamp})
		pos, _ := t.find(e.key)
		t.idx[pos] = s + 1
		t.pushFront(s)
	}
}
