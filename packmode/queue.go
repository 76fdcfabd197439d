package packmode

import (
	"math"
	"math/bits"
)

// node is one queued transaction: its order (score, then arrival), the
// time it was first enqueued and its slot in the loop's transaction table.
// Pointer-free, 32 bytes.
type node struct {
	key  uint64 // orderKey(score)
	ord  uint64 // ^seq: among equal keys the older (smaller seq) is above
	enq  int64
	slot int32
}

// orderKey maps a score to a uint64 whose unsigned order is the score's
// (NaN as −∞, −0 as +0).
func orderKey(score float64) uint64 {
	switch {
	case score != score:
		score = math.Inf(-1)
	case score == 0:
		score = 0
	}
	b := math.Float64bits(score)
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

// above reports whether a leaves before b (128-bit key:ord compare).
func above(a, b *node) bool {
	_, borrow := bits.Sub64(b.ord, a.ord, 0)
	_, borrow = bits.Sub64(b.key, a.key, borrow)
	return borrow != 0
}

// txQueue is a fixed-capacity min-max heap of transaction slots, the same
// shape as score.Queue's heap but without a record slab and without
// dropping anything by itself: every entry that leaves (popped, evicted,
// expired) is handed back to the caller, which owns the payload behind it
// and must free it. Not safe for concurrent use.
type txQueue struct {
	h []node // len = capacity; h[:n] in use
	n int
}

func newTxQueue(capacity int) txQueue { return txQueue{h: make([]node, capacity)} }

func (q *txQueue) Len() int { return q.n }
func (q *txQueue) Cap() int { return len(q.h) }

// push inserts nd. When the queue is full the lowest entry makes room if
// nd is above it: its slot is returned as out (−1 when nothing left);
// otherwise nd is refused (admitted false) and nothing changes.
func (q *txQueue) push(nd node) (admitted bool, out int32) {
	if q.n < len(q.h) {
		q.h[q.n] = nd
		q.n++
		q.up(q.n - 1)
		return true, -1
	}
	if q.n == 0 || !above(&nd, &q.h[0]) {
		return false, -1
	}
	out = q.h[0].slot
	q.h[0] = nd
	q.down(0)
	return true, out
}

// popMax removes and returns the highest entry.
func (q *txQueue) popMax() (node, bool) {
	if q.n == 0 {
		return node{}, false
	}
	i := q.maxIndex()
	nd := q.h[i]
	q.removeAt(i)
	return nd, true
}

// max returns the highest entry without removing it.
func (q *txQueue) max() (node, bool) {
	if q.n == 0 {
		return node{}, false
	}
	return q.h[q.maxIndex()], true
}

// min returns the lowest entry without removing it.
func (q *txQueue) min() (node, bool) {
	if q.n == 0 {
		return node{}, false
	}
	return q.h[0], true
}

// popMin removes and returns the lowest entry.
func (q *txQueue) popMin() (node, bool) {
	if q.n == 0 {
		return node{}, false
	}
	nd := q.h[0]
	q.removeAt(0)
	return nd, true
}

func (q *txQueue) maxIndex() int {
	switch q.n {
	case 1:
		return 0
	case 2:
		return 1
	}
	if above(&q.h[2], &q.h[1]) {
		return 2
	}
	return 1
}

func (q *txQueue) removeAt(i int) {
	q.n--
	if i != q.n {
		q.h[i] = q.h[q.n]
		q.down(i)
		q.up(i)
	}
}

// minLevel reports whether index i is on a min level (levels 0, 2, 4, …).
func minLevel(i int) bool { return bits.LeadingZeros(uint(i+1))&1 == 1 }

func (q *txQueue) up(i int) {
	if i == 0 {
		return
	}
	h := q.h
	p := (i - 1) / 2
	if minLevel(i) {
		if above(&h[i], &h[p]) {
			h[i], h[p] = h[p], h[i]
			q.upDir(p, true)
		} else {
			q.upDir(i, false)
		}
	} else {
		if above(&h[p], &h[i]) {
			h[i], h[p] = h[p], h[i]
			q.upDir(p, false)
		} else {
			q.upDir(i, true)
		}
	}
}

// upDir moves h[i] up through its grandparents: towards the top of the
// max levels when max, of the min levels otherwise.
func (q *txQueue) upDir(i int, max bool) {
	h := q.h
	for i > 2 {
		g := ((i-1)/2 - 1) / 2
		if max != above(&h[i], &h[g]) {
			return
		}
		h[i], h[g] = h[g], h[i]
		i = g
	}
}

// more reports whether h[a] is more extreme than h[b]: above on a max
// level's side (max true), below on a min level's side.
func more(h []node, a, b int, max bool) bool {
	if max {
		return above(&h[a], &h[b])
	}
	return above(&h[b], &h[a])
}

// down restores the heap below i (the textbook min-max trickle-down).
func (q *txQueue) down(i int) {
	max := !minLevel(i)
	h := q.h[:q.n]
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		// m: the extreme of the children and grandchildren.
		m := c
		if c+1 < len(h) && more(h, c+1, m, max) {
			m = c + 1
		}
		gc := 2*c + 1
		for g := gc; g < gc+4 && g < len(h); g++ {
			if more(h, g, m, max) {
				m = g
			}
		}
		if !more(h, m, i, max) {
			return
		}
		h[i], h[m] = h[m], h[i]
		if m < gc { // a child: nothing below it to fix
			return
		}
		if p := (m - 1) / 2; more(h, p, m, max) {
			h[m], h[p] = h[p], h[m]
		}
		i = m
	}
}
