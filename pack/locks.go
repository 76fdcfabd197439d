package pack

import (
	"errors"
	"hash/maphash"
	"math/bits"
)

// MaxWorkers is the most execution workers a session can have: the
// handshake's MAX_WORKERS (64), which is also the width of a WorkerSet.
const MaxWorkers = 64

// WorkerSet is a set of worker indexes, bit w for worker w.
type WorkerSet uint64

// AllWorkers returns the set {0, …, n−1}.
func AllWorkers(n int) WorkerSet {
	if n >= MaxWorkers {
		return ^WorkerSet(0)
	}
	return WorkerSet(1)<<n - 1
}

// Has reports whether w is in s.
func (s WorkerSet) Has(w int) bool { return w >= 0 && w < MaxWorkers && s&(1<<w) != 0 }

// Len returns the number of workers in s.
func (s WorkerSet) Len() int { return bits.OnesCount64(uint64(s)) }

// only returns {w}.
func only(w int) WorkerSet { return WorkerSet(1) << w }

// single returns the one worker in s, or −1 when s has none or several.
func (s WorkerSet) single() int {
	if s == 0 || s&(s-1) != 0 {
		return -1
	}
	return bits.TrailingZeros64(uint64(s))
}

// Errors of the lock table. They mean the caller's bookkeeping is wrong
// (an unlock that matches no lock); the table is left unchanged.
var (
	ErrLocksFull  = errors.New("pack: account lock table is full")
	ErrNotLocked  = errors.New("pack: unlock of an account lock that is not held")
	ErrBadWorker  = errors.New("pack: worker index out of range")
	ErrBadEntryID = errors.New("pack: lock entry id out of range")
)

// lockEntry is the lock state of one account: who holds write locks (one
// worker, any number of times) and which workers hold read locks (their
// per-worker counts live in Locks.rc). 64 bytes, pointer-free.
type lockEntry struct {
	key     Pubkey
	hash    uint64
	readers WorkerSet // workers holding at least one read lock
	wcount  uint32    // write locks held, all by writer
	writer  uint8     // valid when wcount > 0
	live    bool      // the entry is in the index
	_       [2]byte
	// wStamp and rStamp are the serials of the batches that last write-
	// and read-locked the account; the scheduler uses them to keep
	// conflicting transactions out of one batch.
	wStamp, rStamp uint32
}

// Locks tracks, per account, the read and write locks that the
// transactions of in-flight batches hold, by worker — the model is
// Agave's ThreadAwareAccountLocks (agave core/src/banking_stage/
// transaction_scheduler/thread_aware_account_locks.rs, read at commit
// 56962014 of anza-xyz/agave): an account is write-locked by at most one
// worker (any number of times) and read-locked by any set of workers, and
// both only when the reader is that writer. A transaction may go to a
// worker that already holds conflicting locks, because a worker executes
// its batches in order; that is what makes the table thread-aware.
//
// Storage is preallocated: a slab of entries (ids stay fixed while
// locked, so a locked transaction can keep int32 ids instead of keys), an
// open-addressing index with linear probing and backward-shift deletion
// (no tombstones, so the table never degrades), and read counts per entry
// and worker. Keys are hashed with a per-table random maphash seed, so
// crafted keys cannot be made to collide. Nothing allocates after
// NewLocks; no method panics on any input.
type Locks struct {
	seed    maphash.Seed
	index   []int32 // entry id + 1, 0 = empty; len a power of two
	mask    uint64
	ents    []lockEntry
	rc      []uint32 // read counts, entry id × workers + worker
	free    []int32  // free entry ids, a stack
	workers int
	all     WorkerSet
	used    int // live entries
}

// NewLocks returns a table for the given number of workers (1..64) that
// holds locks on up to capacity distinct accounts at once.
func NewLocks(workers, capacity int) (*Locks, error) {
	if workers < 1 || workers > MaxWorkers {
		return nil, ErrBadWorker
	}
	if capacity < 1 || capacity > 1<<24 {
		return nil, errors.New("pack: lock table capacity must be between 1 and 16777216")
	}
	size := 1
	for size < 2*capacity { // load factor ≤ 1/2
		size <<= 1
	}
	l := &Locks{
		seed:    maphash.MakeSeed(),
		index:   make([]int32, size),
		mask:    uint64(size - 1),
		ents:    make([]lockEntry, capacity),
		rc:      make([]uint32, capacity*workers),
		free:    make([]int32, capacity),
		workers: workers,
		all:     AllWorkers(workers),
	}
	for i := range l.free {
		l.free[i] = int32(capacity - 1 - i)
	}
	return l, nil
}

// Workers returns the number of workers.
func (l *Locks) Workers() int { return l.workers }

// Len returns the number of accounts with at least one lock.
func (l *Locks) Len() int { return l.used }

// Cap returns the most accounts that can be locked at once.
func (l *Locks) Cap() int { return len(l.ents) }

func (l *Locks) hash(key *Pubkey) uint64 { return maphash.Bytes(l.seed, key[:]) }

// find returns the entry id of key, or −1.
func (l *Locks) find(key *Pubkey, h uint64) int32 {
	for i := h & l.mask; ; i = (i + 1) & l.mask {
		id := l.index[i] - 1
		if id < 0 {
			return -1
		}
		if e := &l.ents[id]; e.hash == h && e.key == *key {
			return id
		}
	}
}

// Lookup returns key's entry id, or −1 when the account holds no lock.
func (l *Locks) Lookup(key *Pubkey) int32 { return l.find(key, l.hash(key)) }

// insert adds an entry for key (known absent) and returns its id, or −1
// when the slab is full.
func (l *Locks) insert(key *Pubkey, h uint64) int32 {
	if len(l.free) == 0 {
		return -1
	}
	id := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	e := &l.ents[id]
	*e = lockEntry{key: *key, hash: h, live: true}
	i := h & l.mask
	for l.index[i] != 0 {
		i = (i + 1) & l.mask
	}
	l.index[i] = id + 1
	l.used++
	return id
}

// remove deletes entry id from the index (backward-shift deletion) and
// frees it.
func (l *Locks) remove(id int32) {
	e := &l.ents[id]
	i := e.hash & l.mask
	for l.index[i] != id+1 {
		i = (i + 1) & l.mask
	}
	// Shift later entries of the probe run back over the hole.
	for j := (i + 1) & l.mask; l.index[j] != 0; j = (j + 1) & l.mask {
		home := l.ents[l.index[j]-1].hash & l.mask
		// Move j to i when its home is not in the cyclic range (i, j].
		if (j-home)&l.mask >= (j-i)&l.mask {
			l.index[i] = l.index[j]
			i = j
		}
	}
	l.index[i] = 0
	e.live = false
	l.free = l.free[:len(l.free)+1]
	l.free[len(l.free)-1] = id
	l.used--
}

// schedulable returns the workers that may take a write (write true) or
// read lock on the account of entry id, as ThreadAwareAccountLocks'
// schedulable_threads does: unlocked, any worker; write-locked, only the
// writer; read-locked only, any worker for a read and for a write only
// the single reader (none if several read); both, only the writer (who
// is then the only reader).
func (l *Locks) schedulable(id int32, write bool) WorkerSet {
	if id < 0 {
		return l.all
	}
	e := &l.ents[id]
	switch {
	case e.wcount > 0:
		return only(int(e.writer))
	case !write:
		return l.all
	default:
		if w := e.readers.single(); w >= 0 {
			return only(w)
		}
		return 0
	}
}

// Schedulable returns the workers that keys' transaction could be locked
// on without conflicting with the locks held now; ids receives each key's
// entry id (−1 when the account holds no lock), for the caller to reuse.
// REQUIRES: len(ids) ≥ keys.Len().
func (l *Locks) Schedulable(keys *Keys, ids []int32) WorkerSet {
	set := l.all
	for i := range int(keys.n) {
		id := l.find(&keys.keys[i], l.hash(&keys.keys[i]))
		ids[i] = id
		if set != 0 {
			set &= l.schedulable(id, i < int(keys.nw))
		}
	}
	return set
}

// lock takes one lock on key for worker w, reusing entry id when it is
// not −1, and returns the entry id, or −1 when the table is full.
// REQUIRES: the lock is schedulable on w.
func (l *Locks) lock(key *Pubkey, id int32, w int, write bool, stamp uint32) int32 {
	if id < 0 {
		id = l.insert(key, l.hash(key))
		if id < 0 {
			return -1
		}
	}
	e := &l.ents[id]
	if write {
		e.writer = uint8(w)
		e.wcount++
		e.wStamp = stamp
	} else {
		e.readers |= only(w)
		l.rc[int(id)*l.workers+w]++
		e.rStamp = stamp
	}
	return id
}

// Lock takes keys' locks for worker w: ids must be what Schedulable
// returned for these keys (−1 entries are created), and receives the
// entry ids to give back to Unlock. stamp is recorded on each entry as
// the last batch to lock it (0 when not batching). It changes nothing and
// returns an error when w is out of range (ErrBadWorker), an id is stale
// (ErrBadEntryID), w may not take one of the locks (a conflict), or the
// table has no room for the new entries (ErrLocksFull).
func (l *Locks) Lock(keys *Keys, ids []int32, w int, stamp uint32) error {
	if w < 0 || w >= l.workers {
		return ErrBadWorker
	}
	n := int(keys.n)
	// Check first, so that a failure changes nothing.
	newEntries := 0
	for i := range n {
		if ids[i] < 0 {
			newEntries++
		} else if int(ids[i]) >= len(l.ents) || !l.ents[ids[i]].live {
			return ErrBadEntryID
		}
		if !l.schedulable(ids[i], i < int(keys.nw)).Has(w) {
			return errConflict
		}
	}
	if newEntries > len(l.free) {
		return ErrLocksFull
	}
	for i := range n {
		// A key repeated in one transaction: the first lock created the
		// entry, so look it up again rather than inserting it twice.
		if ids[i] < 0 {
			ids[i] = l.find(&keys.keys[i], l.hash(&keys.keys[i]))
		}
		ids[i] = l.lock(&keys.keys[i], ids[i], w, i < int(keys.nw), stamp)
	}
	return nil
}

var errConflict = errors.New("pack: account locks conflict with another worker's")

// unlock releases one lock of worker w on entry id.
func (l *Locks) unlock(id int32, w int, write bool) error {
	if id < 0 || int(id) >= len(l.ents) || !l.ents[id].live {
		return ErrBadEntryID
	}
	e := &l.ents[id]
	if write {
		if e.wcount == 0 || int(e.writer) != w {
			return ErrNotLocked
		}
		e.wcount--
	} else {
		c := &l.rc[int(id)*l.workers+w]
		if *c == 0 {
			return ErrNotLocked
		}
		*c--
		if *c == 0 {
			e.readers &^= only(w)
		}
	}
	if e.wcount == 0 && e.readers == 0 {
		l.remove(id)
	}
	return nil
}

// Unlock releases the locks Lock took for worker w: ids are the entry
// ids Lock returned, the first nw of them write locks. It stops at the
// first id that holds no such lock and returns ErrNotLocked or
// ErrBadEntryID (a bookkeeping error; the locks before it are released).
func (l *Locks) Unlock(ids []int32, nw int, w int) error {
	if w < 0 || w >= l.workers {
		return ErrBadWorker
	}
	for i, id := range ids {
		if err := l.unlock(id, w, i < nw); err != nil {
			return err
		}
	}
	return nil
}
