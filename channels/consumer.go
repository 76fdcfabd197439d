package channels

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Consumer reads records from a channel. It keeps its read index private
// and trusts nothing the producer wrote: whatever the tail says, it only
// ever reads slots inside the ring, and it never returns a record that was
// being overwritten while it copied it.
//
// A Consumer is not safe for concurrent use, except Beat, which may be
// called from any goroutine.
type Consumer[R Record] struct {
	m       *mapping
	tail    *atomic.Uint64 // = m.tail, one indirection less on the hot path
	recs    unsafe.Pointer // first record slot
	recSize uintptr
	mask    uint64 // capacity-1
	window  uint64 // capacity - capacity/4: how far behind the tail a slot is still intact
	stride  uint64 // store head at least every stride records

	next      uint64 // private read index: the next record to return
	headPub   uint64 // the head value last stored into the header
	read      uint64
	skipped   uint64
	resyncs   uint64
	lastProdB uint64        // producer heartbeat seen by the previous ProducerAlive
	fence     atomic.Uint64 // private word for loadFence on weakly ordered CPUs
}

// maxPopAttempts bounds the retries of one Pop when every copy is
// overwritten before it completes (only a producer gone wild, or writing
// garbage tails, can cause that): Pop then reports nothing for now.
const maxPopAttempts = 4

// headStride bounds how many records the consumer reads between two
// stores of its head (the store is informational: lag for inspection).
const headStride = 256

// testHookAfterCopy, when set by a test, runs between copying a record and
// re-checking the tail, to overwrite the slot at the worst moment.
var testHookAfterCopy func()

// OpenConsumer joins the existing, initialised channel file of s and
// starts at its current tail: records published before the join are not
// read. The record type R must have the spec's record size.
func OpenConsumer[R Record](o Options, s Spec) (*Consumer[R], error) {
	if n := recordSize[R](); n != s.RecordSize {
		return nil, &Error{Path: o.Path(s.Name), Op: "open consumer", Err: ErrInvalid,
			Detail: fmt.Sprintf("record type is %d bytes, channel %s holds %d-byte records", n, s.Name, s.RecordSize)}
	}
	m, err := openMapping(o, s, false, "open consumer")
	if err != nil {
		return nil, err
	}
	c := &Consumer[R]{
		m:       m,
		tail:    m.tail,
		recs:    m.recs,
		recSize: uintptr(s.RecordSize),
		mask:    s.Capacity - 1,
		window:  s.Capacity - burst(s.Capacity),
		stride:  min(burst(s.Capacity), headStride),
	}
	// Load (acquire): start at the published tail.
	c.next = m.tail.Load()
	c.storeHead()
	// Load: baseline for ProducerAlive.
	c.lastProdB = m.producerHB.Load()
	return c, nil
}

// Pop copies the next record into dst and returns true, or returns false
// when there is nothing new. Records the producer overwrote before they
// were read are skipped and counted (Skipped). It never allocates.
func (c *Consumer[R]) Pop(dst *R) bool {
	for range maxPopAttempts {
		// Load (acquire; pairs with the producer's Store of the tail):
		// every record with index < t is completely written.
		t := c.tail.Load()
		next := c.next
		if t == next {
			if c.headPub != next {
				c.storeHead() // idle: a good moment to publish progress
			}
			return false
		}
		if t < next {
			// The tail went backwards: the file was reinitialised under
			// us, or the producer wrote garbage. Resynchronise on it.
			c.next = t
			c.resyncs++
			c.storeHead()
			return false
		}
		if t-next > c.window {
			// Overrun: slots within N/4 of the tail may be being
			// rewritten already. Jump to the oldest intact record.
			c.skipped += t - c.window - next
			next = t - c.window
			c.next = next
		}
		src := (*R)(unsafe.Add(c.recs, uintptr(next&c.mask)*c.recSize))
		copyRecord(dst, src)
		if testHookAfterCopy != nil {
			testHookAfterCopy()
		}
		// The copy above must complete before the tail is loaded again
		// (a seqlock read): see loadFence.
		loadFence(&c.fence)
		// Load (acquire): the producer stores a tail > next+window before
		// it starts writing record next+N into this slot (it publishes at
		// least every N/4 records), and publishFence makes that store
		// visible before the record's. So if the tail is still within the
		// window, the copy saw no byte of a newer record.
		t2 := c.tail.Load()
		if t2 >= next && t2-next <= c.window {
			c.next = next + 1
			c.read++
			if c.next-c.headPub >= c.stride {
				c.storeHead()
			}
			return true
		}
		// Overwritten while copying (or the tail went backwards): go
		// round again, which skips and counts this record.
	}
	return false
}

// storeHead publishes the private read index into the header.
func (c *Consumer[R]) storeHead() {
	// Store: informational only (inspection shows lag); in lossy mode the
	// producer never reads it, so no ordering is needed beyond atomicity.
	c.m.head.Store(c.next)
	c.headPub = c.next
}

// Commit stores the read index into the header now (it is otherwise
// stored every few hundred records and whenever Pop finds nothing new).
func (c *Consumer[R]) Commit() { c.storeHead() }

// Read returns how many records Pop has returned.
func (c *Consumer[R]) Read() uint64 { return c.read }

// Skipped returns how many records were lost to overruns.
func (c *Consumer[R]) Skipped() uint64 { return c.skipped }

// Resyncs returns how many times the tail was found behind the read
// index (the producer reinitialised the file or wrote garbage).
func (c *Consumer[R]) Resyncs() uint64 { return c.resyncs }

// Next returns the index of the next record Pop will return.
func (c *Consumer[R]) Next() uint64 { return c.next }

// Lag returns how many published records are waiting (0 if the tail is
// behind the read index).
func (c *Consumer[R]) Lag() uint64 {
	// Load: a plain snapshot for counters.
	t := c.m.tail.Load()
	if t < c.next {
		return 0
	}
	return t - c.next
}

// Beat increments the consumer heartbeat. It may be called from any
// goroutine.
func (c *Consumer[R]) Beat() {
	// Add (atomic RMW): the producer only compares successive loads.
	c.m.consumerHB.Add(1)
}

// ProducerAlive reports whether the producer heartbeat moved since the
// previous call (or since OpenConsumer for the first call).
func (c *Consumer[R]) ProducerAlive() bool {
	// Load: a plain snapshot; no data depends on it.
	v := c.m.producerHB.Load()
	moved := v != c.lastProdB
	c.lastProdB = v
	return moved
}

// Meta returns the u64 at metadata offset off (file offset 512+off).
// REQUIRES: off is a multiple of 8 in 0..104; it panics otherwise.
func (c *Consumer[R]) Meta(off int) uint64 {
	// Load (acquire): pairs with SetMeta's store on the other side.
	return c.m.metaWord(off).Load()
}

// SetMeta stores v at metadata offset off.
// REQUIRES: off is a multiple of 8 in 0..104; it panics otherwise.
func (c *Consumer[R]) SetMeta(off int, v uint64) {
	// Store (release): visible to the other side's next Meta load.
	c.m.metaWord(off).Store(v)
}

// Replaced reports whether Path() no longer names the mapped file: it was
// removed, or recreated (by the validator, say). The consumer should then
// Close and OpenConsumer again. It makes a stat system call; call it
// periodically, not per record.
func (c *Consumer[R]) Replaced() bool { return c.m.replaced() }

// Path returns the channel file.
func (c *Consumer[R]) Path() string { return c.m.path }

// Close stores the head and unmaps the ring. The consumer must not be
// used afterwards. A file that shrank under the mapping is still unmapped,
// and the fault returned as an *Error matching ErrTruncated.
func (c *Consumer[R]) Close() error {
	if c.m.mem == nil {
		return nil
	}
	ferr := c.m.guard("close", c.storeHead)
	c.recs, c.tail = nil, nil
	return errors.Join(ferr, c.m.unmap())
}
