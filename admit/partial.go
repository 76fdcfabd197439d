package admit

import (
	"fmt"

	"github.com/solqos/qos/internal/hashindex"
	"github.com/solqos/qos/internal/invariants"
)

// DefaultPartialCapacity is the daemon's default number of packets whose
// partial meta is kept while waiting for the scheduler's result.
const DefaultPartialCapacity = 1 << 20

// maxPartialCapacity keeps the index's home bits inside the 32-bit tag.
const maxPartialCapacity = 1 << 30

// Partial is what the loop knows about a packet when it admits it; the
// scheduler's result later completes it into a Row.
type Partial struct {
	ArrivedAt int64 // caller's clock, ns
	Channel   uint8 // source channel (index in the daemon's table)
	IP        [16]byte
	Signer    [32]byte
	// Ticket is the model's pending claim while the packet waits at
	// sigverify and the scheduler (SetTicket, when it was sent); 0 none.
	// It sits in the padding after Signer: the slot does not grow.
	Ticket  uint32
	Fee     uint64
	CUs     uint64
	CUPrice uint64
	Score   float64 // admission score
}

// pslot is one entry of the slab. It holds no pointers, so the GC never
// scans the slab.
type pslot struct {
	hash      uint64
	p         Partial
	prev      int32 // towards the most recent; -1 at the head
	next      int32 // towards the least recent; -1 at the tail
	completed bool
}

// PartialStore is a fixed-capacity LRU of Partial keyed by packet hash. An
// Insert of a hash already present reports a duplicate, so the store also
// deduplicates packets for as long as it remembers them.
//
// Layout: a slab of slots linked into a recency list by int32 indexes, and an
// open-addressing index (hashindex: linear probing, backward-shift deletion,
// load ≤ ½) whose words pack the upper 32 bits of the hash (the tag) above
// slot+1 (0 = empty). A word's home is its tag, so deletion never has to
// read the slab to move words.
//
// Not safe for concurrent use; no method allocates.
type PartialStore struct {
	slots []pslot
	index hashindex.Index // home bits: the tag, above 32 bits of slot+1
	head  int32           // most recently used, -1 when empty
	tail  int32           // least recently used, -1 when empty
	n     int32           // slots in use

	evicted uint64
}

// NewPartialStore returns a store holding up to capacity partials
// (DefaultPartialCapacity when capacity ≤ 0, at most 2^30).
func NewPartialStore(capacity int) *PartialStore {
	if capacity <= 0 {
		capacity = DefaultPartialCapacity
	}
	if capacity > maxPartialCapacity {
		capacity = maxPartialCapacity
	}
	return &PartialStore{
		slots: make([]pslot, capacity),
		index: hashindex.New(capacity, 32),
		head:  -1,
		tail:  -1,
	}
}

// Cap returns the capacity.
func (s *PartialStore) Cap() int { return len(s.slots) }

// Len returns the number of partials held.
func (s *PartialStore) Len() int { return int(s.n) }

// Evicted returns how many partials were pushed out by newer ones.
func (s *PartialStore) Evicted() uint64 { return s.evicted }

// find returns the index position and slot of hash, or (-1, -1).
func (s *PartialStore) find(hash uint64) (int, int32) {
	tag := hash >> 32
	for i := s.index.Home(tag); ; i = s.index.Next(i) {
		e := s.index.At(i)
		if e == 0 {
			return -1, -1
		}
		if e>>32 == tag {
			slot := int32(uint32(e)) - 1
			if s.slots[slot].hash == hash {
				return int(i), slot
			}
		}
	}
}

// Insert records p under hash. If hash is already present it reports a
// duplicate, marks the entry most recently used and keeps the first partial.
// Otherwise it stores p, evicting the least recently used entry when full.
func (s *PartialStore) Insert(hash uint64, p Partial) (duplicate bool) {
	if _, slot := s.find(hash); slot >= 0 {
		s.touch(slot)
		return true
	}
	var slot int32
	if int(s.n) < len(s.slots) {
		slot = s.n
		s.n++
	} else {
		slot = s.tail
		s.unlinkIndex(s.slots[slot].hash)
		s.unlinkList(slot)
		s.evicted++
	}
	s.slots[slot] = pslot{hash: hash, p: p, prev: -1, next: -1}
	s.pushFront(slot)
	s.index.Insert(hash>>32<<32 | uint64(slot+1))
	s.check(hash)
	return false
}

// Complete returns the partial stored under hash the first time a scheduler
// result arrives for it and marks it completed; the entry stays for dedup.
// A hash never inserted, evicted, or already completed returns false.
func (s *PartialStore) Complete(hash uint64) (Partial, bool) {
	_, slot := s.find(hash)
	if slot < 0 {
		return Partial{}, false
	}
	e := &s.slots[slot]
	if e.completed {
		return Partial{}, false
	}
	e.completed = true
	return e.p, true
}

// SetTicket records the model's pending-claim ticket of the packet
// stored under hash, which was just sent; Complete returns it with the
// partial. It reports false (and changes nothing) when hash is not
// remembered or already completed.
func (s *PartialStore) SetTicket(hash uint64, t uint32) bool {
	_, slot := s.find(hash)
	if slot < 0 || s.slots[slot].completed {
		return false
	}
	s.slots[slot].p.Ticket = t
	return true
}

// Get returns the partial stored under hash (completed or not) without
// changing anything, or false.
func (s *PartialStore) Get(hash uint64) (Partial, bool) {
	_, slot := s.find(hash)
	if slot < 0 {
		return Partial{}, false
	}
	return s.slots[slot].p, true
}

// Contains reports whether hash is remembered (completed or not).
func (s *PartialStore) Contains(hash uint64) bool {
	_, slot := s.find(hash)
	return slot >= 0
}

// unlinkIndex removes hash from the index.
// REQUIRES: hash is present.
func (s *PartialStore) unlinkIndex(hash uint64) {
	if i, _ := s.find(hash); i >= 0 {
		s.index.Delete(uint64(i))
	}
}

func (s *PartialStore) unlinkList(slot int32) {
	e := &s.slots[slot]
	if e.prev >= 0 {
		s.slots[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.slots[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *PartialStore) pushFront(slot int32) {
	e := &s.slots[slot]
	e.prev = -1
	e.next = s.head
	if s.head >= 0 {
		s.slots[s.head].prev = slot
	}
	s.head = slot
	if s.tail < 0 {
		s.tail = slot
	}
}

func (s *PartialStore) touch(slot int32) {
	if s.head == slot {
		return
	}
	s.unlinkList(slot)
	s.pushFront(slot)
}

// Peek loads the index word where a lookup of hash starts and returns it.
// It changes nothing; a caller about to insert many hashes peeks them all
// first so their cache misses overlap instead of following one another.
func (s *PartialStore) Peek(hash uint64) uint64 { return s.index.Peek(hash >> 32) }

// PeekEvictions loads, for the next k entries that inserts into a full
// store would evict, the index words where their removal starts, and
// returns their sum. It changes nothing; see Peek.
func (s *PartialStore) PeekEvictions(k int) uint64 {
	if int(s.n) < len(s.slots) {
		return 0
	}
	var sum uint64
	for slot := s.tail; slot >= 0 && k > 0; k-- {
		e := &s.slots[slot]
		sum += s.index.Peek(e.hash >> 32)
		slot = e.prev
	}
	return sum
}

// verify checks the store's invariants: the recency list and the index
// agree, and every listed slot is reachable through the index. O(n): for
// tests and the invariants build, never the hot path.
func (s *PartialStore) verify() error {
	seen := 0
	prev := int32(-1)
	for i := s.head; i >= 0; i = s.slots[i].next {
		if s.slots[i].prev != prev {
			return fmt.Errorf("slot %d: prev %d, want %d", i, s.slots[i].prev, prev)
		}
		prev = i
		seen++
		if seen > int(s.n) {
			return fmt.Errorf("recency list longer than %d", s.n)
		}
		if _, slot := s.find(s.slots[i].hash); slot != i {
			return fmt.Errorf("slot %d: hash %#x found at slot %d", i, s.slots[i].hash, slot)
		}
	}
	if prev != s.tail {
		return fmt.Errorf("tail %d, list ends at %d", s.tail, prev)
	}
	if seen != int(s.n) {
		return fmt.Errorf("list has %d entries, n = %d", seen, s.n)
	}
	used := 0
	for i := range s.index.Size() {
		if s.index.At(uint64(i)) != 0 {
			used++
		}
	}
	if used != int(s.n) {
		return fmt.Errorf("index has %d entries, n = %d", used, s.n)
	}
	return nil
}

// check runs verify after a change when built with the invariants tag
// (on stores of up to invariantsFullCheck entries; larger ones only check
// the entry just changed), and compiles away otherwise.
func (s *PartialStore) check(hash uint64) {
	if !invariants.Enabled {
		return
	}
	if _, slot := s.find(hash); slot < 0 || s.head < 0 || s.tail < 0 {
		panic(fmt.Sprintf("BUG: admit: partial %#x not found after insert (head %d, tail %d)", hash, s.head, s.tail))
	}
	if s.n <= invariantsFullCheck {
		if err := s.verify(); err != nil {
			panic("BUG: admit: " + err.Error())
		}
	}
}

// invariantsFullCheck bounds the stores the invariants build verifies whole
// after every insert.
const invariantsFullCheck = 1 << 10
