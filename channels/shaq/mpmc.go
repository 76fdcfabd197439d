package shaq

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/solqos/qos/channels/shm"
)

// mpmc is shaq's multi-producer multi-consumer ring (src/mpmc.rs at v4.0.0
// 1631fbbb and at v3.0.0 c2f4e1a7), which Agave uses for its check-worker
// queues (4.4 with shaq 4.0.0; handshake VERSION 5 with shaq 3.0.0). The
// 3.0.0 header is the 4.0.0 one without the waiters line (320 bytes, no
// futex: consumers poll). Each
// side reserves a range by CAS on its reservation cursor, and publishes it
// in reservation order by waiting until the publication cursor reaches the
// range's start and storing its end.
type mpmc struct {
	name    string
	buf     []byte
	elem    int
	mask    uint64
	prodRes *atomic.Uint64
	prodPub *atomic.Uint64
	consRes *atomic.Uint64
	consRel *atomic.Uint64
	waiters *atomic.Uint64 // nil for shaq 3.0.0
	err     error
}

// publishTimeout bounds how long Commit/Finalize wait for an earlier
// reservation (another process's) to be published. shaq spins forever; a
// peer that died between reserve and publish would hang us, so we give up
// and report ErrStalled instead.
var publishTimeout = time.Second

// ErrStalled: an earlier reservation by another party was never published.
var ErrStalled = fmt.Errorf("shaq: MPMC queue stalled behind an unpublished reservation")

// MPMCHeaderSizeFor is the MPMC header size of format f (shaq 3.0.0: 320,
// 4.0.0: 384), or 0 when the release has no MPMC queue.
func MPMCHeaderSizeFor(f Format) int {
	switch f {
	case V3:
		return 320
	case V4:
		return MPMCHeaderSize
	}
	return 0
}

// CreateMPMC writes a fresh shaq 4.0 MPMC header into r for elemSize-byte
// elements (capacity: the largest power of two that fits).
func CreateMPMC(r *shm.Region, elemSize int) error { return CreateMPMCFormat(r, V4, elemSize) }

// CreateMPMCFormat writes a fresh MPMC header of shaq release f (V3 or V4).
func CreateMPMCFormat(r *shm.Region, f Format, elemSize int) error {
	h := MPMCHeaderSizeFor(f)
	if h == 0 {
		return fmt.Errorf("shaq: create MPMC in %s: %w: %v has no MPMC queue", r.Name(), ErrFormat, f)
	}
	if elemSize <= 0 || elemSize > 1<<20 {
		return fmt.Errorf("shaq: create MPMC in %s: %w: %d", r.Name(), ErrElemSize, elemSize)
	}
	c, ok := capacityFor(r.Len(), h, elemSize, true)
	if !ok {
		return fmt.Errorf("shaq: create MPMC in %s: %w: %d bytes", r.Name(), ErrFileSize, r.Len())
	}
	hdr, err := r.Slice(0, h)
	if err != nil {
		return err
	}
	clear(hdr)
	binary.LittleEndian.PutUint32(hdr[offVersion:], mpmcVersion(f))
	binary.LittleEndian.PutUint32(hdr[offMask:], uint32(c-1))
	m, _ := r.Uint64(offMagic)
	// Release in shaq: publishes the zeroed cursors and the fields above.
	m.Store(magicMPMC)
	return nil
}

func mpmcVersion(f Format) uint32 {
	if f == V3 {
		return versionV3
	}
	return versionV4
}

func joinMPMC(r *shm.Region, f Format, elemSize int) (*mpmc, error) {
	h := MPMCHeaderSizeFor(f)
	if h == 0 {
		return nil, fmt.Errorf("shaq: join %s: %w: %v has no MPMC queue", r.Name(), ErrFormat, f)
	}
	want := f.String() + " MPMC"
	if elemSize <= 0 || elemSize > 1<<20 {
		return nil, fmt.Errorf("shaq: join %s: %w: %d", r.Name(), ErrElemSize, elemSize)
	}
	c, ok := capacityFor(r.Len(), h, elemSize, true)
	if !ok {
		return nil, &HeaderError{Name: r.Name(), Want: want, Field: "file size", Got: uint64(r.Len()), Exp: uint64(h + elemSize), Err: ErrFileSize}
	}
	hdr, err := r.Slice(0, h)
	if err != nil {
		return nil, err
	}
	m, _ := r.Uint64(offMagic)
	// Acquire in shaq: the header fields read below are the creator's.
	if got := m.Load(); got != magicMPMC {
		return nil, &HeaderError{Name: r.Name(), Want: want, Field: "magic", Got: got, Exp: magicMPMC, Found: identify(hdr), Err: ErrMagic}
	}
	if got, exp := binary.LittleEndian.Uint32(hdr[offVersion:]), mpmcVersion(f); got != exp {
		return nil, &HeaderError{Name: r.Name(), Want: want, Field: "version", Got: uint64(got), Exp: uint64(exp), Found: identify(hdr), Err: ErrVersion}
	}
	if got := uint64(binary.LittleEndian.Uint32(hdr[offMask:])) + 1; got != uint64(c) {
		return nil, &HeaderError{Name: r.Name(), Want: want, Field: "buffer_mask+1", Got: got, Exp: uint64(c), Err: ErrCapacity}
	}
	q := &mpmc{name: r.Name(), elem: elemSize, mask: uint64(c - 1)}
	q.prodRes, _ = r.Uint64(offProdRes)
	q.prodPub, _ = r.Uint64(offProdPub)
	q.consRes, _ = r.Uint64(offConsRes)
	q.consRel, _ = r.Uint64(offConsRel)
	if f == V4 {
		q.waiters, _ = r.Uint64(offMWaiter)
	}
	if q.buf, err = r.Slice(h, c*elemSize); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *mpmc) slot(i uint64) []byte {
	o := int(i&q.mask) * q.elem
	return q.buf[o : o+q.elem : o+q.elem]
}

// publish waits until cur reaches start, then stores start+1: ranges
// become visible in reservation order.
func (q *mpmc) publish(cur *atomic.Uint64, start uint64) bool {
	if q.err != nil {
		return false // wedged behind a reservation that never published
	}
	// Acquire loads in shaq: the earlier range's publisher is done.
	for i := 0; cur.Load() != start; i++ {
		if i == 1024 {
			if !q.waitTurn(cur, start) {
				return false
			}
			break
		}
	}
	// Release in shaq: the slot's contents (written or read) happen before
	// the other side's Acquire load of this cursor.
	cur.Store(start + 1)
	return true
}

// waitTurn is publish's slow path: yield until cur reaches start or
// publishTimeout passes.
func (q *mpmc) waitTurn(cur *atomic.Uint64, start uint64) bool {
	deadline := time.Now().Add(publishTimeout)
	for cur.Load() != start {
		if time.Now().After(deadline) {
			q.err = fmt.Errorf("%w: %s waited %v for index %d (at %d)", ErrStalled, q.name, publishTimeout, start, cur.Load())
			return false
		}
		runtime.Gosched()
	}
	return true
}

// MPMCProducer is one producer of a shaq 4.0 MPMC queue. Several may share
// the queue (in this and other processes); one MPMCProducer is not safe
// for concurrent use.
type MPMCProducer struct {
	q       *mpmc
	start   uint64
	pending bool
}

// NewMPMCProducer joins r as a producer of a shaq 4.0 MPMC queue,
// checking the header.
func NewMPMCProducer(r *shm.Region, elemSize int) (*MPMCProducer, error) {
	return NewMPMCProducerFormat(r, V4, elemSize)
}

// NewMPMCProducerFormat joins r as a producer of a shaq release f (V3 or
// V4) MPMC queue.
func NewMPMCProducerFormat(r *shm.Region, f Format, elemSize int) (*MPMCProducer, error) {
	q, err := joinMPMC(r, f, elemSize)
	if err != nil {
		return nil, err
	}
	return &MPMCProducer{q: q}, nil
}

// Reserve claims the next slot, or reports false when the queue is full.
// One reservation is outstanding at a time: a Reserve while one is pending
// publishes the pending one first (its slot must be written by then, as
// for SPSC), and consumers see nothing of a reservation before it is
// published, since others' later reservations wait behind it.
func (p *MPMCProducer) Reserve() ([]byte, bool) {
	if p.pending {
		p.Commit()
	}
	q := p.q
	capacity := q.mask + 1
	// Relaxed in shaq; the CAS below validates it.
	res := q.prodRes.Load()
	for {
		// Acquire in shaq: slots consumers released are done being read.
		used := res - q.consRel.Load()
		if used > capacity-1 {
			return nil, false
		}
		// AcqRel CAS in shaq: claims [res, res+1) for us alone.
		if q.prodRes.CompareAndSwap(res, res+1) {
			break
		}
		res = q.prodRes.Load()
	}
	p.start, p.pending = res, true
	return q.slot(res), true
}

// Commit publishes the pending reservation (in reservation order), then
// wakes a sleeping consumer as shaq 4.0 does.
func (p *MPMCProducer) Commit() {
	if !p.pending {
		return
	}
	p.pending = false
	if !p.q.publish(p.q.prodPub, p.start) {
		return
	}
	// The publication store was sequentially consistent (shaq: Release +
	// SeqCst fence); then the waiters load (Relaxed in shaq). shaq 3.0.0
	// has no waiters.
	if p.q.waiters != nil && p.q.waiters.Load() != 0 {
		futexWake(p.q.prodPub, 1)
	}
}

// Sync exists for symmetry with Producer; the MPMC cursors are read live.
func (p *MPMCProducer) Sync() {}

// Capacity is the number of slots.
func (p *MPMCProducer) Capacity() int { return int(p.q.mask) + 1 }

// Len is the number of elements reserved and not yet released, now.
func (p *MPMCProducer) Len() int {
	n := p.q.prodRes.Load() - p.q.consRel.Load()
	if n > p.q.mask+1 {
		return int(p.q.mask) + 1
	}
	return int(n)
}

// Err reports a stalled queue (nil otherwise).
func (p *MPMCProducer) Err() error { return p.q.err }

// MPMCConsumer is one consumer of a shaq 4.0 MPMC queue. Not safe for
// concurrent use; make one per goroutine.
type MPMCConsumer struct {
	q       *mpmc
	start   uint64
	pending bool
}

// NewMPMCConsumer joins r as a consumer of a shaq 4.0 MPMC queue,
// checking the header.
func NewMPMCConsumer(r *shm.Region, elemSize int) (*MPMCConsumer, error) {
	return NewMPMCConsumerFormat(r, V4, elemSize)
}

// NewMPMCConsumerFormat joins r as a consumer of a shaq release f (V3 or
// V4) MPMC queue.
func NewMPMCConsumerFormat(r *shm.Region, f Format, elemSize int) (*MPMCConsumer, error) {
	q, err := joinMPMC(r, f, elemSize)
	if err != nil {
		return nil, err
	}
	return &MPMCConsumer{q: q}, nil
}

// TryRead claims the next published element, or reports false when none
// is. One element is held at a time: TryRead while one is held releases it
// first (Finalize), so copy out what you need before reading the next.
func (c *MPMCConsumer) TryRead() ([]byte, bool) {
	if c.pending {
		c.Finalize()
	}
	q := c.q
	capacity := q.mask + 1
	res := q.consRes.Load() // Relaxed in shaq; validated by the CAS.
	for {
		// Acquire in shaq: pairs with the producers' publication store, so
		// the slot contents are visible.
		avail := q.prodPub.Load() - res
		if avail == 0 || avail > capacity {
			return nil, false
		}
		// AcqRel CAS in shaq: claims [res, res+1).
		if q.consRes.CompareAndSwap(res, res+1) {
			break
		}
		res = q.consRes.Load()
	}
	c.start, c.pending = res, true
	return q.slot(res), true
}

// Finalize releases the held element back to the producers, in
// reservation order.
func (c *MPMCConsumer) Finalize() {
	if !c.pending {
		return
	}
	c.pending = false
	c.q.publish(c.q.consRel, c.start)
}

// Sync exists for symmetry with Consumer; the cursors are read live.
func (c *MPMCConsumer) Sync() {}

// Capacity is the number of slots.
func (c *MPMCConsumer) Capacity() int { return int(c.q.mask) + 1 }

// Len is the number of published elements not yet claimed, now.
func (c *MPMCConsumer) Len() int {
	n := c.q.prodPub.Load() - c.q.consRes.Load()
	if n > c.q.mask+1 {
		return 0
	}
	return int(n)
}

// Err reports a stalled queue (nil otherwise).
func (c *MPMCConsumer) Err() error { return c.q.err }

// Wait blocks until an element is published or timeout passes, sleeping on
// the publication word's futex as shaq 4.0's MPMC consumer does (polling on
// shaq 3.0.0).
func (c *MPMCConsumer) Wait(timeout time.Duration) bool {
	return wait(c.q.prodPub, c.q.waiters, timeout, c.ready)
}

func (c *MPMCConsumer) ready() bool {
	return c.q.prodPub.Load() != c.q.consRes.Load()
}
