package sigcache

import (
	"github.com/cespare/xxhash/v2"

	"github.com/solqos/qos/internal/hashindex"
	"github.com/solqos/qos/internal/invariants"
)

// DefaultCapacity is the status cache channel's capacity: the signatures of
// the last 2^20 confirmed transactions.
const DefaultCapacity = 1 << 20

// MaxCapacity bounds New's capacity: at 2^26 signatures the ring takes
// 512 MiB and the index 1 GiB.
const MaxCapacity = 1 << 26

// SignatureSize is the size of an ed25519 signature.
const SignatureSize = 64

// Set is a fixed-capacity FIFO set of signatures: Add inserts, evicting the
// oldest signature when full; Contains looks one up. A signature is stored
// as its seeded 64-bit XXH64, so two different signatures collide with
// probability about Len/2^64 per lookup, and an outsider who does not know
// the seed cannot aim for a collision.
//
// Memory is two pointer-free arrays allocated once: a ring of keys in
// insertion order and an open-addressing index of the keys themselves
// (hashindex: linear probing, load ≤ 1/2, backward-shift deletion). Add and
// Contains do not allocate. Not safe for concurrent use.
type Set struct {
	ring  []uint64 // keys in insertion order; ring[head] is the oldest when full
	head  int      // next position to write
	n     int      // keys held
	index hashindex.Index
	seed  uint64
	d     xxhash.Digest
}

// New returns an empty set holding up to capacity signatures, keyed by XXH64
// with seed. capacity is clamped to [1, MaxCapacity].
func New(capacity int, seed uint64) *Set {
	capacity = min(max(capacity, 1), MaxCapacity)
	return &Set{
		ring:  make([]uint64, capacity),
		index: hashindex.New(capacity, 0 /* home bits: the key itself */),
		seed:  seed,
	}
}

// Len returns how many signatures the set holds.
func (s *Set) Len() int { return s.n }

// Cap returns the set's capacity.
func (s *Set) Cap() int { return len(s.ring) }

// key hashes a signature; 0 marks an empty index slot, so it maps to 1.
func (s *Set) key(sig []byte) uint64 {
	s.d.ResetWithSeed(s.seed)
	s.d.Write(sig)
	k := s.d.Sum64()
	if k == 0 {
		k = 1
	}
	return k
}

// find returns the index slot holding k and whether it was found.
func (s *Set) find(k uint64) (uint64, bool) {
	for i := s.index.Home(k); ; i = s.index.Next(i) {
		switch s.index.At(i) {
		case k:
			return i, true
		case 0:
			return i, false
		}
	}
}

// Add inserts sig. Adding a signature already present does nothing (it
// keeps its place in the eviction order). When the set is full the oldest
// signature is evicted first.
func (s *Set) Add(sig *[SignatureSize]byte) {
	k := s.key(sig[:])
	if _, ok := s.find(k); ok {
		return
	}
	if s.n == len(s.ring) {
		if i, ok := s.find(s.ring[s.head]); ok {
			s.index.Delete(i)
		}
		s.n--
	}
	s.index.Insert(k)
	s.ring[s.head] = k
	s.head++
	if s.head == len(s.ring) {
		s.head = 0
	}
	s.n++
	if invariants.Enabled {
		if _, ok := s.find(k); !ok || s.n > len(s.ring) {
			panic("BUG: sigcache: key missing after Add, or the set over capacity")
		}
	}
}

// Contains reports whether sig (64 bytes) was added and not yet evicted.
// A slice of any other length is never contained.
func (s *Set) Contains(sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	_, ok := s.find(s.key(sig))
	return ok
}

// Key returns the set's key of a 64-byte signature, for ContainsKey and
// Peek; 0 for a slice of another length (never a key).
func (s *Set) Key(sig []byte) uint64 {
	if len(sig) != SignatureSize {
		return 0
	}
	return s.key(sig)
}

// ContainsKey is Contains for a key from Key.
func (s *Set) ContainsKey(k uint64) bool {
	if k == 0 {
		return false
	}
	_, ok := s.find(k)
	return ok
}

// Peek loads the index word where a lookup of k starts and returns it. It
// changes nothing; a caller about to look up many keys peeks them all first
// so their cache misses overlap instead of following one another.
func (s *Set) Peek(k uint64) uint64 { return s.index.Peek(k) }
