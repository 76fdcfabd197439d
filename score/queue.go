package score

import (
	"math"
	"math/bits"
	"time"

	"github.com/solqos/qos/channels"
)

// Queue defaults.
const (
	DefaultQueueCapacity = 16384
	DefaultQueueTTL      = 2 * time.Second
)

// Entry is one queued packet: a small pointer-free heap element that
// refers to its record by slab slot, so reordering never moves records.
type Entry struct {
	// Score is the packet's priority (higher leaves first).
	Score float64
	// Seq is the arrival order; among equal scores the older (smaller
	// Seq) leaves first and the newer is evicted first.
	Seq uint64
	// Enqueued is the caller's clock (ns) at Push.
	Enqueued int64
	// Hash is the packet hash given to Push.
	Hash uint64
	// Aux is the caller's value given to Push, kept with the record.
	Aux uint64
	// Slot is the record's index in the queue's slab.
	Slot int32
}

// node is a heap element: the ordering key, the enqueue time (so the
// expiry test of the minimum reads only the heap) and the slot; 32 bytes,
// two to a cache line. The packet hash and the caller's value live in
// Queue.keys by slot.
//
// The order (score, then older first) is kept as one 128-bit unsigned
// number, key:ord, so that comparing two nodes is a subtraction with
// borrow and picking the lower of two a conditional move: sifting through
// the heap then costs no mispredicted branches.
type node struct {
	key  uint64 // orderKey(score)
	ord  uint64 // ^seq: among equal keys the older (smaller seq) is above
	enq  int64
	slot int32
}

// orderKey maps a score that is not NaN to a uint64 whose unsigned order
// is the score's order: positive scores get the sign bit set, negative
// ones are complemented. −0 must have been folded into +0 by the caller.
func orderKey(score float64) uint64 {
	b := math.Float64bits(score)
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

// keyScore inverts orderKey.
func keyScore(k uint64) float64 {
	if k>>63 != 0 {
		return math.Float64frombits(k &^ (1 << 63))
	}
	return math.Float64frombits(^k)
}

// newNode returns the node of a packet with the given score (NaN taken as
// −∞, −0 as +0) and arrival sequence.
func newNode(score float64, seq uint64, enq int64) node {
	switch {
	case score != score:
		score = math.Inf(-1)
	case score == 0:
		score = 0 // −0 → +0: they are equal scores
	}
	return node{key: orderKey(score), ord: ^seq, enq: enq}
}

// entry assembles the public Entry of a node.
func (q *Queue) entry(nd *node) Entry {
	k := q.keys[nd.slot]
	return Entry{Score: keyScore(nd.key), Seq: ^nd.ord, Enqueued: nd.enq, Hash: k.hash, Aux: k.aux, Slot: nd.slot}
}

// above reports whether a leaves before b: higher score, or equal score
// and older. It is key:ord > key:ord as 128-bit numbers, i.e. whether
// b − a borrows.
func above(a, b *node) bool {
	_, borrow := bits.Sub64(b.ord, a.ord, 0)
	_, borrow = bits.Sub64(b.key, a.key, borrow)
	return borrow != 0
}

// lower returns whichever of h[i] and h[j] is lower (i when neither is),
// without a branch.
func lower(h []node, i, j int) int {
	_, borrow := bits.Sub64(h[j].ord, h[i].ord, 0)
	_, borrow = bits.Sub64(h[j].key, h[i].key, borrow) // 1 if h[j] < h[i]
	return i + (j-i)&-int(borrow)
}

// higher returns whichever of h[i] and h[j] is higher (i when neither
// is), without a branch.
func higher(h []node, i, j int) int {
	_, borrow := bits.Sub64(h[i].ord, h[j].ord, 0)
	_, borrow = bits.Sub64(h[i].key, h[j].key, borrow) // 1 if h[i] < h[j]
	return i + (j-i)&-int(borrow)
}

// QueueStats counts what happened to packets offered to a Queue.
type QueueStats struct {
	Pushed      uint64 // admitted by Push
	Evicted     uint64 // lowest entries pushed out by a better newcomer
	RejectedLow uint64 // newcomers refused because the full queue held nothing lower
	Expired     uint64 // entries dropped for being older than the TTL
	Popped      uint64 // entries returned by PopMax or Pop
}

// Queue is a fixed-capacity priority queue of packet records: a min-max
// heap of Entry (by score, then arrival order) over a preallocated slab of
// records with a free-slot stack. Push copies a record once into its
// slot; when full, the lowest entry is evicted unless the newcomer is no
// higher, in which case the newcomer is refused. PopMax returns the
// highest entry not older than the TTL, dropping and counting the expired
// ones it meets. Nothing allocates after NewQueue.
//
// Heap layout: index 0 is the minimum; even levels (0, 2, …) are min
// levels, odd levels are max levels, so the maximum is at index 1 or 2.
type Queue struct {
	heap  []node            // len = capacity; heap[:n] is in use
	keys  []slotKeys        // by slot
	slab  []channels.Packet // by slot; len = capacity
	free  []int32           // free slots, a stack; free[:nfree] is in use
	n     int
	nfree int
	seq   uint64
	ttl   int64
	stats QueueStats
}

// NewQueue returns an empty queue holding at most capacity records
// (DefaultQueueCapacity if capacity ≤ 0) whose entries expire ttl after
// they were pushed (DefaultQueueTTL if ttl ≤ 0). The slab is allocated
// here: capacity × 1264 bytes.
func NewQueue(capacity int, ttl time.Duration) *Queue {
	if capacity <= 0 {
		capacity = DefaultQueueCapacity
	}
	capacity = min(capacity, math.MaxInt32)
	if ttl <= 0 {
		ttl = DefaultQueueTTL
	}
	q := &Queue{
		heap:  make([]node, capacity),
		keys:  make([]slotKeys, capacity),
		slab:  make([]channels.Packet, capacity),
		free:  make([]int32, capacity),
		nfree: capacity,
		ttl:   int64(ttl),
	}
	// Slot 0 on top of the stack, so slots are used in order.
	for i := range q.free {
		q.free[i] = int32(capacity - 1 - i)
	}
	return q
}

// Len returns the number of queued entries, expired ones included until
// they are met.
func (q *Queue) Len() int { return q.n }

// Cap returns the capacity.
func (q *Queue) Cap() int { return len(q.heap) }

// TTL returns the age beyond which entries are dropped.
func (q *Queue) TTL() time.Duration { return time.Duration(q.ttl) }

// Stats returns the counters since NewQueue.
func (q *Queue) Stats() QueueStats { return q.stats }

// expired reports whether an entry enqueued at enq is older than the TTL
// at now.
func (q *Queue) expired(enq, now int64) bool { return now-enq > q.ttl }

// slotKeys is what the queue keeps beside a record: its packet hash and
// the caller's value.
type slotKeys struct{ hash, aux uint64 }

// Push offers p with the given score, hash and caller's value aux (kept
// with the record and returned by Pop) at time now. It copies the
// record's data in use and its metadata into a free slot, or, when the
// queue is full, into the slot of the lowest entry, which it evicts —
// unless that entry has expired (then it is dropped as expired and the
// newcomer always enters) or the newcomer is not above it (then the
// newcomer is refused and counted in RejectedLow). A NaN score is taken as
// −∞. admitted reports whether p entered; evicted whether a live entry
// was pushed out for it.
func (q *Queue) Push(p *channels.Packet, score float64, hash, aux uint64, now int64) (admitted, evicted bool) {
	nd := newNode(score, q.seq, now)
	replace := q.n == len(q.heap) // the newcomer takes the minimum's place
	i := q.n                      // else it goes to the end
	if replace {
		if len(q.heap) == 0 {
			q.stats.RejectedLow++
			return false, false
		}
		m := &q.heap[0]
		switch {
		case q.expired(m.enq, now):
			q.stats.Expired++
		case !above(&nd, m):
			q.stats.RejectedLow++
			return false, false
		default:
			q.stats.Evicted++
			evicted = true
		}
		nd.slot = m.slot
		i = 0
	} else {
		q.nfree--
		nd.slot = q.free[q.nfree]
		q.n++
	}
	copyRecord(&q.slab[nd.slot], p)
	q.keys[nd.slot] = slotKeys{hash: hash, aux: aux}
	q.seq++
	q.stats.Pushed++
	q.heap[i] = nd
	if replace {
		q.down(0)
	} else {
		q.up(i)
	}
	q.check()
	return true, evicted
}

// Admits reports whether Push(p, score, hash, aux, now) would admit a packet
// now: the queue has a free slot, or its lowest entry has expired, or the
// newcomer is above the lowest entry (a tie keeps the older). It changes
// nothing and reads only the heap's root, so a caller can skip costlier
// steps (dedup, lookups) for packets the queue would refuse anyway.
func (q *Queue) Admits(score float64, now int64) bool {
	if q.n < len(q.heap) {
		return true
	}
	if len(q.heap) == 0 {
		return false
	}
	m := &q.heap[0]
	if q.expired(m.enq, now) {
		return true
	}
	nd := newNode(score, q.seq, 0)
	return above(&nd, m)
}

// copyRecord copies the bytes of src that matter, data[0:size] and the
// metadata, into dst; the rest of dst's data area is left stale, as it is
// in the validator's own buffers.
func copyRecord(dst, src *channels.Packet) {
	n := min(src.Size(), channels.PacketDataSize)
	copy(dst[:n], src[:n])
	copy(dst[channels.PacketDataSize:], src[channels.PacketDataSize:])
}

// PopMax removes and returns the highest entry that has not expired at
// now, with its record. Expired entries met on the way are dropped and
// counted. pkt points into the queue's slab and stays valid until the
// next Push. ok is false when the queue has nothing left to send.
func (q *Queue) PopMax(now int64) (pkt *channels.Packet, e Entry, ok bool) {
	slot, nd, ok := q.popMax(now)
	if !ok {
		return nil, Entry{}, false
	}
	return &q.slab[slot], q.entry(&nd), true
}

// Pop is PopMax without the entry: the highest unexpired record, valid
// until the next Push, and its caller's value, or ok false. The send path
// needs nothing else, and assembling the entry costs a store-forwarding
// stall per packet.
func (q *Queue) Pop(now int64) (pkt *channels.Packet, aux uint64, ok bool) {
	slot, _, ok := q.popMax(now)
	if !ok {
		return nil, 0, false
	}
	return &q.slab[slot], q.keys[slot].aux, true
}

// popMax removes the highest unexpired node and returns its slot and the
// node, counting the expired ones it drops on the way.
func (q *Queue) popMax(now int64) (slot int32, nd node, ok bool) {
	for q.n > 0 {
		i := q.maxIndex()
		nd = q.heap[i]
		q.removeAt(i)
		if q.expired(nd.enq, now) {
			q.stats.Expired++
			continue
		}
		q.stats.Popped++
		return nd.slot, nd, true
	}
	return 0, node{}, false
}

// PeekMax returns the highest entry without removing it (expired or not).
func (q *Queue) PeekMax() (Entry, bool) {
	if q.n == 0 {
		return Entry{}, false
	}
	return q.entry(&q.heap[q.maxIndex()]), true
}

// ExpireMin drops up to limit entries from the bottom while the lowest
// entry has expired at now, and returns how many it dropped. Low entries
// are the ones least likely to be popped before they age out, so calling
// this on an idle pass keeps dead entries from holding slots.
func (q *Queue) ExpireMin(now int64, limit int) int {
	k := 0
	for k < limit && q.n > 0 && q.expired(q.heap[0].enq, now) {
		q.removeAt(0)
		q.stats.Expired++
		k++
	}
	return k
}

// maxIndex returns the index of the maximum. REQUIRES: q.n > 0.
func (q *Queue) maxIndex() int {
	switch q.n {
	case 1:
		return 0
	case 2:
		return 1
	}
	if above(&q.heap[2], &q.heap[1]) {
		return 2
	}
	return 1
}

// removeAt removes heap[i], frees its slot and restores the heap.
// REQUIRES: 0 ≤ i < q.n.
func (q *Queue) removeAt(i int) {
	q.free[q.nfree] = q.heap[i].slot
	q.nfree++
	q.n--
	if i != q.n {
		q.heap[i] = q.heap[q.n]
		q.down(i)
		q.up(i)
	}
	q.check()
}

// minLevel reports whether index i is on a min level (levels 0, 2, 4, …).
// Level L = ⌊log2(i+1)⌋ and the leading-zero count of i+1 is
// UintSize−1−L, odd exactly when L is even (UintSize is 32 or 64).
func minLevel(i int) bool { return bits.LeadingZeros(uint(i+1))&1 == 1 }

// up restores the heap after heap[i] may have become out of place
// relative to its ancestors.
func (q *Queue) up(i int) {
	if i == 0 {
		return
	}
	h := q.heap
	p := (i - 1) / 2
	if minLevel(i) {
		if above(&h[i], &h[p]) {
			h[i], h[p] = h[p], h[i]
			q.upMax(p)
		} else {
			q.upMin(i)
		}
	} else {
		if above(&h[p], &h[i]) {
			h[i], h[p] = h[p], h[i]
			q.upMin(p)
		} else {
			q.upMax(i)
		}
	}
}

func (q *Queue) upMin(i int) {
	h := q.heap
	for i > 2 {
		g := ((i-1)/2 - 1) / 2
		if !above(&h[g], &h[i]) {
			return
		}
		h[i], h[g] = h[g], h[i]
		i = g
	}
}

func (q *Queue) upMax(i int) {
	h := q.heap
	for i > 2 {
		g := ((i-1)/2 - 1) / 2
		if !above(&h[i], &h[g]) {
			return
		}
		h[i], h[g] = h[g], h[i]
		i = g
	}
}

// down restores the heap after heap[i] may have become out of place
// relative to its descendants.
func (q *Queue) down(i int) {
	if minLevel(i) {
		q.downMin(i)
	} else {
		q.downMax(i)
	}
}

// downMin and downMax carry the sinking node in x and write each node
// once where it settles, instead of swapping at every level.

func (q *Queue) downMin(i int) {
	h := q.heap[:q.n]
	x := h[i]
	for {
		c := 2*i + 1
		if c >= len(h) {
			break
		}
		// m: the lowest of the children and grandchildren. With all four
		// grandchildren present it is one of them: each child is on a max
		// level, so not below its own children.
		gc := 2*c + 1
		var m int
		if gc+3 < len(h) {
			m = lower(h, lower(h, gc, gc+1), lower(h, gc+2, gc+3))
		} else {
			m = c
			if c+1 < len(h) {
				m = lower(h, m, c+1)
			}
			for g := gc; g < gc+4 && g < len(h); g++ {
				m = lower(h, m, g)
			}
		}
		if !above(&x, &h[m]) {
			break
		}
		h[i] = h[m]
		i = m
		if m < gc { // a child: it is on a max level with no min below to fix
			break
		}
		if p := (m - 1) / 2; above(&x, &h[p]) {
			x, h[p] = h[p], x
		}
	}
	h[i] = x
}

func (q *Queue) downMax(i int) {
	h := q.heap[:q.n]
	x := h[i]
	for {
		c := 2*i + 1
		if c >= len(h) {
			break
		}
		// m: the highest of the children and grandchildren; one of the
		// four grandchildren when they are all present (see downMin).
		gc := 2*c + 1
		var m int
		if gc+3 < len(h) {
			m = higher(h, higher(h, gc, gc+1), higher(h, gc+2, gc+3))
		} else {
			m = c
			if c+1 < len(h) {
				m = higher(h, m, c+1)
			}
			for g := gc; g < gc+4 && g < len(h); g++ {
				m = higher(h, m, g)
			}
		}
		if !above(&h[m], &x) {
			break
		}
		h[i] = h[m]
		i = m
		if m < gc {
			break
		}
		if p := (m - 1) / 2; above(&h[p], &x) {
			x, h[p] = h[p], x
		}
	}
	h[i] = x
}
