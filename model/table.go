package model

import (
	"math"
	"math/bits"
	"slices"
)

// key is what a table is keyed by: IP or Signer.
type key[K any] interface {
	comparable
	compare(K) int
}

// entry is one key's score. pos is its place in the median heaps: i ≥ 0 is
// lo[i], ^i (negative) is hi[i].
type entry[K any] struct {
	key   K
	score float64
	pos   int32
}

// pentry is a penalty-only key: one the model has penalised but never
// learned. It scores the table's median × mult (at least the floor), and
// does not count in the median.
type pentry[K any] struct {
	key  K
	mult float64 // product of the penalty factors received
}

// agg accumulates one key's values within a batch, in batch order.
type agg[K any] struct {
	key   K
	sum   float64
	count int32
	slot  int32 // the key's learned slot when learned, else -1
}

// item is what the heaps and selections order: a value (a score, or a
// distance to the median) and the slot it belongs to. Keeping the value
// next to the slot keeps those loops on contiguous memory.
type item struct {
	v    float64
	slot int32
}

// table maps keys to scores and keeps the exact median of its learned
// entries.
//
// Learned entries live in slab, penalty-only entries in pslab, both indexed
// by int32; index maps a key to its slot s in slab (s ≥ 0) or ^s in pslab
// (negative). None of them holds pointers, so the garbage collector does not
// scan them. The median of the learned scores is kept exact at all times by
// two heaps: lo, a max-heap of the lower ⌈n/2⌉ scores, and hi, a min-heap
// of the upper ⌊n/2⌋. Changing one score (Penalize) costs O(log n); Learn,
// which changes every score, rebuilds the heaps in O(n) with a selection.
// Penalty-only entries are outside the heaps: they never move the median.
type table[K key[K]] struct {
	index  map[K]int32
	slab   []entry[K]
	lo, hi []item
	median float64
	floor  float64 // MinScore: no score goes below it
	// maxVal is maxScore's value while maxKnown (cleared by any change).
	maxVal   float64
	maxKnown bool

	pslab  []pentry[K]
	selPen bool // the current selection's slots index pslab, not slab

	// Scratch, preallocated, reused by every learn and prune.
	order []item    // reordered by selections
	upd   []float64 // per slot: the EMA target of the current batch
	aggIx map[K]int32
	aggs  []agg[K]
}

// newTable returns a table for capacity learned and pcap penalty-only
// entries, learning batches of up to batch keys.
func newTable[K key[K]](capacity, pcap, batch int, floor float64) *table[K] {
	return &table[K]{
		index:  make(map[K]int32, capacity+pcap),
		slab:   make([]entry[K], 0, capacity),
		lo:     make([]item, 0, capacity/2+1),
		hi:     make([]item, 0, capacity/2+1),
		median: 1,
		floor:  floor,
		pslab:  make([]pentry[K], 0, pcap),
		order:  make([]item, 0, max(capacity, pcap)),
		upd:    make([]float64, 0, capacity),
		aggIx:  make(map[K]int32, batch),
		aggs:   make([]agg[K], 0, batch),
	}
}

func (t *table[K]) len() int { return len(t.slab) }

// score returns k's score: its learned score, the median × its penalty
// multiplier (at least the floor) when penalty-only, the median when
// unknown.
func (t *table[K]) score(k K) float64 {
	s, ok := t.index[k]
	switch {
	case !ok:
		return t.median
	case s >= 0:
		return t.slab[s].score
	}
	return t.penScore(^s)
}

// penScore is the score of penalty-only slot ps.
func (t *table[K]) penScore(ps int32) float64 {
	return max(t.floor, float64(t.median*t.pslab[ps].mult))
}

// --- median heaps -----------------------------------------------------------

// above reports whether value a belongs nearer the top of heap lo
// (max-heap) or hi (min-heap) than value b.
func above(isLo bool, a, b float64) bool {
	if isLo {
		return a > b
	}
	return a < b
}

func (t *table[K]) heap(isLo bool) []item {
	if isLo {
		return t.lo
	}
	return t.hi
}

// place records in the slab that h[i] now sits at i.
func (t *table[K]) place(isLo bool, h []item, i int) {
	if isLo {
		t.slab[h[i].slot].pos = int32(i)
	} else {
		t.slab[h[i].slot].pos = ^int32(i)
	}
}

// up sifts h[i] toward the top; it reports whether it moved.
func (t *table[K]) up(isLo bool, i int) bool {
	h := t.heap(isLo)
	x, start := h[i], i
	for i > 0 {
		p := (i - 1) / 2
		if !above(isLo, x.v, h[p].v) {
			break
		}
		h[i] = h[p]
		t.place(isLo, h, i)
		i = p
	}
	h[i] = x
	t.place(isLo, h, i)
	return i != start
}

// down sifts h[i] toward the leaves. REQUIRES: i < len(heap).
func (t *table[K]) down(isLo bool, i int) {
	h := t.heap(isLo)
	n := len(h)
	x := h[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && above(isLo, h[r].v, h[c].v) {
			c = r
		}
		if !above(isLo, h[c].v, x.v) {
			break
		}
		h[i] = h[c]
		t.place(isLo, h, i)
		i = c
	}
	h[i] = x
	t.place(isLo, h, i)
}

func (t *table[K]) push(isLo bool, it item) {
	if isLo {
		t.lo = append(t.lo, it)
		t.up(true, len(t.lo)-1)
	} else {
		t.hi = append(t.hi, it)
		t.up(false, len(t.hi)-1)
	}
}

// removeAt removes h[i] from heap isLo.
func (t *table[K]) removeAt(isLo bool, i int) {
	h := t.heap(isLo)
	last := len(h) - 1
	h[i] = h[last]
	h = h[:last]
	if isLo {
		t.lo = h
	} else {
		t.hi = h
	}
	if i < last && !t.up(isLo, i) {
		t.down(isLo, i)
	}
}

// unlink removes slot from whichever heap holds it.
func (t *table[K]) unlink(slot int32) {
	if p := t.slab[slot].pos; p >= 0 {
		t.removeAt(true, int(p))
	} else {
		t.removeAt(false, int(^p))
	}
}

// link adds slot to the heaps and restores their balance:
// len(lo) == len(hi) or len(lo) == len(hi)+1, and max(lo) ≤ min(hi).
func (t *table[K]) link(slot int32) {
	it := item{t.slab[slot].score, slot}
	if len(t.lo) == 0 || it.v <= t.lo[0].v {
		t.push(true, it)
	} else {
		t.push(false, it)
	}
	t.balance()
}

func (t *table[K]) balance() {
	for len(t.lo) > len(t.hi)+1 {
		it := t.lo[0]
		t.removeAt(true, 0)
		t.push(false, it)
	}
	for len(t.hi) > len(t.lo) {
		it := t.hi[0]
		t.removeAt(false, 0)
		t.push(true, it)
	}
	t.setMedian()
}

// setMedian reads the exact median off the heap tops: the middle score for
// an odd count, the mean of the two middle scores for an even count, 1 for
// an empty table.
func (t *table[K]) setMedian() {
	t.maxKnown = false
	switch {
	case len(t.lo) == 0:
		t.median = 1
	case len(t.lo) > len(t.hi):
		t.median = t.lo[0].v
	default:
		t.median = midpoint(t.lo[0].v, t.hi[0].v)
	}
}

// maxScore returns the highest score a key of the table can have: the
// highest learned score, or the median (what an unknown key gets) when it
// is higher. It scans the slab after each change (setMedian marks one),
// so it costs O(1) between learns.
func (t *table[K]) maxScore() float64 {
	if !t.maxKnown {
		m := t.median
		for i := range t.slab {
			m = max(m, t.slab[i].score)
		}
		t.maxVal, t.maxKnown = m, true
	}
	return t.maxVal
}

// midpoint is the mean of the two middle scores l ≤ h (both finite, ≥ 0):
// no overflow, and the product by 0.5 is exact, so no fused multiply-add
// can change the result.
func midpoint(l, h float64) float64 { return l + (h-l)*0.5 }

// rebuild recomputes both heaps from the slab in O(n): a selection splits
// the scores at rank ⌈n/2⌉, then each half is heapified.
func (t *table[K]) rebuild() {
	order := t.items(false, 0)
	k := (len(order) + 1) / 2
	t.selectSmallest(order, k)
	t.lo = append(t.lo[:0], order[:k]...)
	t.hi = append(t.hi[:0], order[k:]...)
	for _, isLo := range [2]bool{true, false} {
		h := t.heap(isLo)
		for i := range h {
			t.place(isLo, h, i)
		}
		for i := len(h)/2 - 1; i >= 0; i-- {
			t.down(isLo, i)
		}
	}
	t.setMedian()
}

// selectMedian computes the exact median of the slab's scores by selection,
// with the same result setMedian gives from valid heaps.
func (t *table[K]) selectMedian() float64 {
	order := t.items(false, 0)
	n := len(order)
	if n == 0 {
		return 1
	}
	k := (n + 1) / 2
	t.selectSmallest(order, k)
	l := order[0].v
	for _, it := range order[1:k] {
		l = max(l, it.v)
	}
	if n%2 == 1 {
		return l
	}
	h := order[k].v
	for _, it := range order[k+1:] {
		h = min(h, it.v)
	}
	return midpoint(l, h)
}

// items returns the scratch order holding one item per slot: its score,
// or with byDist its score's distance to m.
func (t *table[K]) items(byDist bool, m float64) []item {
	n := len(t.slab)
	if cap(t.order) < n {
		t.order = make([]item, n, n+n/4)
	}
	o := t.order[:n]
	for i := range o {
		v := t.slab[i].score
		if byDist {
			v = math.Abs(v - m)
		}
		o[i] = item{v, int32(i)}
	}
	return o
}

// --- selection --------------------------------------------------------------

// before is the strict total order selections use: by value, then by key
// bytes, so the chosen set never depends on the order of the slab.
func (t *table[K]) before(a, b item) bool {
	return a.v < b.v || a.v == b.v && t.keyBefore(a.slot, b.slot)
}

// keyBefore breaks ties between equal values by key bytes.
func (t *table[K]) keyBefore(a, b int32) bool {
	if t.selPen {
		return t.pslab[a].key.compare(t.pslab[b].key) < 0
	}
	return t.slab[a].key.compare(t.slab[b].key) < 0
}

func (t *table[K]) cmpItems(a, b item) int {
	if t.before(a, b) {
		return -1
	}
	if t.before(b, a) {
		return 1
	}
	return 0
}

// selectSmallest reorders s so that s[:k] holds its k first items in the
// order of before (in no particular order among themselves). Quickselect
// with a median-of-three pivot; after 2·log2(n) rounds without
// converging it sorts what is left, so the worst case is O(n log n).
func (t *table[K]) selectSmallest(s []item, k int) {
	t.selectWithin(s, k, 2*bits.Len(uint(len(s))))
}

// selectWithin is selectSmallest with at most budget partition rounds.
func (t *table[K]) selectWithin(s []item, k, budget int) {
	lo, hi := 0, len(s)
	if k <= lo || k >= hi {
		return
	}
	for hi-lo > 12 {
		if budget == 0 {
			slices.SortFunc(s[lo:hi], t.cmpItems)
			return
		}
		budget--
		p := lo + t.partition(s[lo:hi])
		switch {
		case p == k:
			return
		case p < k:
			lo = p + 1
		default:
			hi = p
		}
	}
	for i := lo + 1; i < hi; i++ { // insertion sort of the last few
		for j := i; j > lo && t.before(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// partition moves a median-of-three pivot to its final place in s and
// returns that place: everything before it comes before the pivot.
// REQUIRES: len(s) ≥ 4.
func (t *table[K]) partition(s []item) int {
	n := len(s)
	m := n / 2
	if t.before(s[m], s[0]) {
		s[m], s[0] = s[0], s[m]
	}
	if t.before(s[n-1], s[0]) {
		s[n-1], s[0] = s[0], s[n-1]
	}
	if t.before(s[n-1], s[m]) {
		s[n-1], s[m] = s[m], s[n-1]
	}
	// s[0] ≤ s[m] ≤ s[n-1]: park the pivot at n-2, partition s[1:n-2].
	s[m], s[n-2] = s[n-2], s[m]
	pivot := s[n-2]
	i := 1
	for j := 1; j < n-2; j++ {
		// Branch-free Lomuto step: s[1:i] come before the pivot, s[i:j]
		// do not; swapping unconditionally and advancing i by the
		// comparison avoids a mispredicted branch per element. Equal
		// values (rare) fall back to the key order.
		x := s[j]
		lt := x.v < pivot.v
		if x.v == pivot.v {
			lt = t.keyBefore(x.slot, pivot.slot)
		}
		s[j] = s[i]
		s[i] = x
		i += b2i(lt)
	}
	s[i], s[n-2] = s[n-2], s[i]
	return i
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// --- mutation ---------------------------------------------------------------

// set changes a learned slot's score (raised to the floor); the heaps stay
// valid.
func (t *table[K]) set(slot int32, score float64) {
	t.unlink(slot)
	t.slab[slot].score = max(t.floor, score)
	t.link(slot)
}

// insertPen adds an unknown key as penalty-only with multiplier mult.
func (t *table[K]) insertPen(k K, mult float64) {
	t.pslab = append(t.pslab, pentry[K]{key: k, mult: mult})
	t.index[k] = ^int32(len(t.pslab) - 1)
}

// removePen deletes penalty-only slot ps, moving the last one into its
// place.
func (t *table[K]) removePen(ps int32) {
	last := int32(len(t.pslab) - 1)
	delete(t.index, t.pslab[ps].key)
	if ps != last {
		t.pslab[ps] = t.pslab[last]
		t.index[t.pslab[ps].key] = ^ps
	}
	t.pslab = t.pslab[:last]
}

// prunePen removes the len-limit penalty-only entries whose scores are
// closest to the median: those with the largest multipliers (ties: lower
// key bytes first), keeping the most penalised. Their scores are median ×
// mult ≤ median, so the distance to the median is median × (1 - mult) and
// the order by mult is exact and does not depend on the median. Returns
// how many entries it removed.
func (t *table[K]) prunePen(limit int) int {
	r := len(t.pslab) - limit
	if r <= 0 {
		return 0
	}
	n := len(t.pslab)
	if cap(t.order) < n {
		t.order = make([]item, n, n+n/4)
	}
	order := t.order[:n]
	for i := range order {
		order[i] = item{-t.pslab[i].mult, int32(i)}
	}
	t.selPen = true
	t.selectSmallest(order, r)
	t.selPen = false
	gone := order[:r]
	slices.SortFunc(gone, func(a, b item) int { return int(a.slot - b.slot) })
	for i := r - 1; i >= 0; i-- { // highest slot first: the last slot is never pending
		t.removePen(gone[i].slot)
	}
	return r
}

// raiseFloor sets the floor to f, raising learned scores below it.
func (t *table[K]) raiseFloor(f float64) {
	t.floor = f
	changed := false
	for i := range t.slab {
		if t.slab[i].score < f {
			t.slab[i].score = f
			changed = true
		}
	}
	if changed {
		t.rebuild()
	}
}

// prune removes the len-limit entries whose scores are closest to the
// median (ties: lower key bytes first), keeping the extremes. REQUIRES
// valid heaps; leaves them valid. Returns how many entries it removed.
func (t *table[K]) prune(limit int) int {
	if len(t.slab) <= limit {
		return 0
	}
	return t.pruneAround(limit, t.median)
}

// pruneAround removes the len-limit entries closest to m, then rebuilds the
// heaps. REQUIRES: len > limit; m the exact median of the slab's scores.
func (t *table[K]) pruneAround(limit int, m float64) int {
	r := len(t.slab) - limit
	order := t.items(true, m)
	t.selectSmallest(order, r)
	gone := order[:r]
	slices.SortFunc(gone, func(a, b item) int { return int(a.slot - b.slot) })
	for i := r - 1; i >= 0; i-- { // highest slot first: the last slot is never pending
		t.removeSlot(gone[i].slot)
	}
	t.rebuild()
	return r
}

// removeSlot deletes slot, moving the last entry into its place. The heaps
// are left stale: the caller rebuilds them.
func (t *table[K]) removeSlot(slot int32) {
	last := int32(len(t.slab) - 1)
	delete(t.index, t.slab[slot].key)
	if slot != last {
		t.slab[slot] = t.slab[last]
		t.index[t.slab[slot].key] = slot
	}
	t.slab = t.slab[:last]
}

// accumulate adds one observation's value to k's batch aggregate.
func (t *table[K]) accumulate(k K, v float64) {
	i, ok := t.aggIx[k]
	if !ok {
		i = int32(len(t.aggs))
		t.aggs = append(t.aggs, agg[K]{key: k, slot: -1})
		t.aggIx[k] = i
	}
	t.aggs[i].sum += v
	t.aggs[i].count++
}

// learn applies the accumulated batch: every learned key moves by EMA
// toward its batch mean (if it had at least minObs observations) or else
// toward the learned median as it was before the batch; other keys with at
// least minObs observations become learned at their mean, times their
// penalty multiplier when they were penalty-only; scores are raised to the
// floor; then the learned entries are pruned to limit. Other penalty-only
// entries are left as they are. Returns how many entries pruning removed.
func (t *table[K]) learn(alpha float64, minObs, limit int) int {
	m0 := t.median
	n := len(t.slab)
	if cap(t.upd) < n {
		t.upd = make([]float64, n, n+n/4)
	}
	upd := t.upd[:n]
	for i := range upd {
		upd[i] = m0
	}
	for i := range t.aggs {
		a := &t.aggs[i]
		if int(a.count) < minObs {
			continue
		}
		if s, ok := t.index[a.key]; ok && s >= 0 {
			a.slot = s
			upd[s] = a.sum / float64(a.count)
		}
	}
	for i := range t.slab {
		t.slab[i].score = max(t.floor, ema(t.slab[i].score, upd[i], alpha))
	}
	for i := range t.aggs { // first-appearance order: deterministic slots
		a := &t.aggs[i]
		if int(a.count) < minObs || a.slot >= 0 {
			continue
		}
		v := a.sum / float64(a.count)
		if s, ok := t.index[a.key]; ok { // penalty-only: carries its penalty
			v = float64(v * t.pslab[^s].mult)
			t.removePen(^s)
		}
		slot := int32(len(t.slab))
		t.slab = append(t.slab, entry[K]{key: a.key, score: max(t.floor, v)})
		t.index[a.key] = slot
	}
	clear(t.aggIx)
	t.aggs = t.aggs[:0]
	if len(t.slab) > limit {
		return t.pruneAround(limit, t.selectMedian())
	}
	t.rebuild()
	return 0
}

// ema is the reference's update, old·(1-α) + new·α. The conversions force
// each product to be rounded on its own (no fused multiply-add), so every
// architecture computes the same bits.
func ema(old, nw, alpha float64) float64 {
	return float64(old*(1-alpha)) + float64(nw*alpha)
}
