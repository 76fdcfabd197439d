package shaq

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/solqos/qos/channels/shm"
)

// queue is what both SPSC ends share: the element area and the header
// words, resolved once at join.
type queue struct {
	name    string
	format  Format
	buf     []byte // capacity*elem bytes after the header
	elem    int
	mask    uint64
	write   *atomic.Uint64
	read    *atomic.Uint64
	waiters *atomic.Uint64 // V4 only
	err     error
}

// Create writes a fresh SPSC header of format f into r for elements of
// elemSize bytes (the server side; Agave creates every queue). The capacity
// is the largest power of two that fits in r.Len() after the header. The
// indices are zeroed before the version/magic are stored, so a joiner that
// sees the magic sees the rest (as in shaq's initialize).
func Create(r *shm.Region, f Format, elemSize int) error {
	c, err := Capacity(f, r.Len(), elemSize)
	if err != nil {
		return fmt.Errorf("shaq: create in %s: %w", r.Name(), err)
	}
	h, err := r.Slice(0, f.HeaderSize())
	if err != nil {
		return err
	}
	clear(h)
	le := binary.LittleEndian
	switch f {
	case V1_0_2:
		le.PutUint64(h[offV1Size:], uint64(c))
		// The version byte is stored last with a SeqCst store in shaq 1.0.2;
		// a 4-byte atomic store of the word holding it (bytes 136..139, the
		// rest padding) is as strong.
		v, err := r.Uint32(offV1Version)
		if err != nil {
			return err
		}
		v.Store(versionV1)
	default:
		want := uint32(versionV3)
		if f == V4 {
			want = versionV4
		}
		le.PutUint32(h[offVersion:], want)
		le.PutUint32(h[offMask:], uint32(c-1))
		m, err := r.Uint64(offMagic)
		if err != nil {
			return err
		}
		// Release in shaq: publishes the fields written above.
		m.Store(magicSPSC)
	}
	return nil
}

// join checks r's header against f and resolves the queue's words.
func join(r *shm.Region, f Format, elemSize int) (queue, error) {
	q := queue{name: r.Name(), format: f, elem: elemSize}
	if !f.Valid() {
		return q, fmt.Errorf("shaq: join %s: %w %d", r.Name(), ErrFormat, f)
	}
	c, err := Capacity(f, r.Len(), elemSize)
	if err != nil {
		return q, &HeaderError{Name: r.Name(), Want: f.String(), Field: "file size", Got: uint64(r.Len()), Exp: uint64(MinimumFileSize(f, elemSize, 1)), Err: ErrFileSize}
	}
	hdr, err := r.Slice(0, f.HeaderSize())
	if err != nil {
		return q, err
	}
	le := binary.LittleEndian
	herr := func(field string, got, exp uint64, e error) error {
		return &HeaderError{Name: r.Name(), Want: f.String() + " SPSC", Field: field, Got: got, Exp: exp, Found: identify(hdr), Err: e}
	}
	switch f {
	case V1_0_2:
		// SeqCst load of the version byte in shaq; read through the
		// containing aligned word.
		v, _ := r.Uint32(offV1Version)
		if got := v.Load() & 0xff; got != versionV1 {
			return q, herr("version", uint64(got), versionV1, ErrVersion)
		}
		if got := le.Uint64(hdr[offV1Size:]); got != uint64(c) {
			return q, herr("buffer_size", got, uint64(c), ErrCapacity)
		}
		q.write, _ = r.Uint64(offV1Write)
		q.read, _ = r.Uint64(offV1Read)
	default:
		m, _ := r.Uint64(offMagic)
		// Acquire in shaq: pairs with Create's magic store, so the version
		// and mask read below are the creator's.
		if got := m.Load(); got != magicSPSC {
			return q, herr("magic", got, magicSPSC, ErrMagic)
		}
		want := uint64(versionV3)
		if f == V4 {
			want = versionV4
		}
		if got := uint64(le.Uint32(hdr[offVersion:])); got != want {
			return q, herr("version", got, want, ErrVersion)
		}
		if got := uint64(le.Uint32(hdr[offMask:])) + 1; got != uint64(c) {
			return q, herr("buffer_mask+1", got, uint64(c), ErrCapacity)
		}
		q.write, _ = r.Uint64(offWrite)
		q.read, _ = r.Uint64(offRead)
		if f == V4 {
			q.waiters, _ = r.Uint64(offWaiters)
		}
	}
	q.buf, err = r.Slice(f.HeaderSize(), c*elemSize)
	if err != nil {
		return q, err
	}
	q.mask = uint64(c - 1)
	return q, nil
}

// slot is the view of element i.
func (q *queue) slot(i uint64) []byte {
	o := int(i&q.mask) * q.elem
	return q.buf[o : o+q.elem : o+q.elem]
}

// Producer is the writing end of an SPSC queue. Not safe for concurrent use.
type Producer struct {
	q           queue
	cachedWrite uint64
	cachedRead  uint64
}

// NewProducer joins r as the producer of a format-f queue of elemSize-byte
// elements, checking the header. r must stay mapped while the queue is
// used (the same holds for every queue end).
func NewProducer(r *shm.Region, f Format, elemSize int) (*Producer, error) {
	q, err := join(r, f, elemSize)
	if err != nil {
		return nil, err
	}
	p := &Producer{q: q}
	// Acquire loads in shaq (load_write/load_read at join).
	p.cachedWrite = q.write.Load()
	p.cachedRead = q.read.Load()
	if p.cachedWrite-p.cachedRead > q.mask+1 {
		p.q.err = fmt.Errorf("shaq: %s: write %d is %d ahead of read %d: %w", q.name, p.cachedWrite, p.cachedWrite-p.cachedRead, p.cachedRead, ErrCorrupt)
		// Treat the queue as full until the consumer publishes a sane
		// read index.
		p.cachedRead = p.cachedWrite - (q.mask + 1)
	}
	return p, nil
}

// Reserve returns the next free slot to fill, or false when the queue is
// full as of the last Sync. The slot becomes visible at Commit.
func (p *Producer) Reserve() ([]byte, bool) {
	if p.cachedWrite-p.cachedRead > p.q.mask {
		return nil, false
	}
	s := p.q.slot(p.cachedWrite)
	p.cachedWrite++
	return s, true
}

// TryWrite copies b (at most the element size; the rest of the slot is
// zeroed) into the next slot. It does not Commit.
func (p *Producer) TryWrite(b []byte) bool {
	s, ok := p.Reserve()
	if !ok {
		return false
	}
	n := copy(s, b)
	clear(s[n:])
	return true
}

// Commit publishes every reserved slot. On V4 it then wakes a consumer
// sleeping on the write word.
func (p *Producer) Commit() {
	// Release in shaq: the slot contents written before it are visible to
	// a consumer whose Acquire load returns this index. Go's store is
	// sequentially consistent, so it also serves as the SeqCst fence shaq
	// 4.0 puts between this store and the waiters load below (on amd64 it
	// is an XCHG, a full barrier).
	p.q.write.Store(p.cachedWrite)
	if p.q.waiters != nil {
		// Relaxed in shaq, after the fence: either this load sees a
		// registered waiter, or that waiter's re-check (after its own
		// increment+fence) sees the write just stored.
		if p.q.waiters.Load() != 0 {
			futexWake(p.q.write, 1)
		}
	}
}

// Sync refreshes the producer's view of the consumer's read index.
func (p *Producer) Sync() {
	// Acquire in shaq: slots the consumer finalized are no longer read.
	r := p.q.read.Load()
	if p.cachedWrite-r > p.q.mask+1 {
		// The consumer claims to be behind by more than the capacity (or
		// ahead of us): treat the queue as full and say so.
		p.q.err = fmt.Errorf("shaq: %s: read %d is %d behind write %d: %w", p.q.name, r, p.cachedWrite-r, p.cachedWrite, ErrCorrupt)
		return
	}
	p.cachedRead = r
}

// Capacity is the number of slots.
func (p *Producer) Capacity() int { return int(p.q.mask) + 1 }

// Len is the number of elements reserved and not yet finalized by the
// consumer, as of the last Sync.
func (p *Producer) Len() int { return int(p.cachedWrite - p.cachedRead) }

// ElemSize is the element size in bytes.
func (p *Producer) ElemSize() int { return p.q.elem }

// Err reports a peer that published an impossible index (nil otherwise).
func (p *Producer) Err() error { return p.q.err }

// Consumer is the reading end of an SPSC queue. Not safe for concurrent use.
type Consumer struct {
	q           queue
	cachedWrite uint64
	cachedRead  uint64
}

// NewConsumer joins r as the consumer of a format-f queue of elemSize-byte
// elements, checking the header.
func NewConsumer(r *shm.Region, f Format, elemSize int) (*Consumer, error) {
	q, err := join(r, f, elemSize)
	if err != nil {
		return nil, err
	}
	c := &Consumer{q: q}
	c.cachedRead = q.read.Load()
	c.cachedWrite = c.cachedRead
	c.Sync()
	return c, nil
}

// TryRead returns the next committed element, or false when none is left as
// of the last Sync. The view stays valid until Finalize lets the producer
// reuse the slot.
func (c *Consumer) TryRead() ([]byte, bool) {
	if c.cachedRead == c.cachedWrite {
		return nil, false
	}
	s := c.q.slot(c.cachedRead)
	c.cachedRead++
	return s, true
}

// Finalize publishes the read index, giving the slots read so far back to
// the producer.
func (c *Consumer) Finalize() {
	// Release in shaq: our reads of the slots happen before the producer,
	// after its Acquire load of this index, overwrites them.
	c.q.read.Store(c.cachedRead)
}

// Sync refreshes the consumer's view of the producer's write index.
func (c *Consumer) Sync() {
	// Acquire in shaq: pairs with the producer's Commit store.
	w := c.q.write.Load()
	if w-c.cachedRead > c.q.mask+1 {
		c.q.err = fmt.Errorf("shaq: %s: write %d is %d ahead of read %d: %w", c.q.name, w, w-c.cachedRead, c.cachedRead, ErrCorrupt)
		return
	}
	c.cachedWrite = w
}

// Capacity is the number of slots.
func (c *Consumer) Capacity() int { return int(c.q.mask) + 1 }

// Len is the number of elements available as of the last Sync.
func (c *Consumer) Len() int { return int(c.cachedWrite - c.cachedRead) }

// ElemSize is the element size in bytes.
func (c *Consumer) ElemSize() int { return c.q.elem }

// Err reports a peer that published an impossible index (nil otherwise).
func (c *Consumer) Err() error { return c.q.err }

// Wait blocks until an element is available or timeout passes, reporting
// whether one is. It spins first; on V4 it then sleeps on the write word's
// futex as shaq 4.0's consumer does (so a shaq producer's wake reaches it),
// on older formats it yields and polls.
func (c *Consumer) Wait(timeout time.Duration) bool {
	return wait(c.q.write, c.q.waiters, timeout, c.ready)
}

func (c *Consumer) ready() bool {
	if c.cachedRead != c.cachedWrite {
		return true
	}
	c.Sync()
	return c.cachedRead != c.cachedWrite
}

// spinAttempts is how many times Wait re-checks before sleeping (shaq 4.0
// uses 2048 for a unit-cost check).
const spinAttempts = 2048

// wait is shaq 4.0's wait_for: spin, then register as a waiter, re-check,
// sleep on the low half of word while it still holds the snapshot,
// unregister. ready is a method value bound once per call; Wait is the slow
// path, so its cost does not matter.
func wait(word, waiters *atomic.Uint64, timeout time.Duration, ready func() bool) bool {
	if ready() {
		return true
	}
	deadline := time.Now().Add(timeout)
	for i := 0; i < spinAttempts; i++ {
		if ready() {
			return true
		}
	}
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return ready()
		}
		if waiters == nil {
			if ready() {
				return true
			}
			time.Sleep(min(left, 50*time.Microsecond))
			continue
		}
		// Register: shaq does fetch_add(Relaxed) then a SeqCst fence; Go's
		// Add is sequentially consistent (LOCK XADD), which is both. After
		// it, a producer's fence+load of waiters either sees us or its
		// write store is visible to the re-check below.
		waiters.Add(1)
		snap := word.Load()
		if ready() {
			waiters.Add(^uint64(0))
			return true
		}
		if word.Load() == snap {
			futexWait(word, uint32(snap), left)
		}
		// Unregister (AcqRel in shaq).
		waiters.Add(^uint64(0))
		if ready() {
			return true
		}
	}
}

// futexAddr is the address of the low 32 bits of the 64-bit word (byte
// offset 0 on little-endian, which is every platform Agave runs on).
func futexAddr(w *atomic.Uint64) uintptr { return uintptr(unsafe.Pointer(w)) }
