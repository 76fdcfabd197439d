package channels

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// Producer writes records into a channel. It never waits for the consumer:
// when the consumer falls behind, the oldest records are overwritten (the
// consumer notices and counts them as skipped).
//
// A Producer is not safe for concurrent use, except Beat, which may be
// called from any goroutine.
type Producer[R Record] struct {
	m         *mapping
	tailW     *atomic.Uint64 // = m.tail, one indirection less on the hot path
	recs      unsafe.Pointer // first record slot
	recSize   uintptr
	mask      uint64 // capacity-1
	burst     uint64 // publish at least every burst records
	tail      uint64 // private write index: next record goes to slot tail&mask
	published uint64 // the tail value last stored into the header
	lastConsB uint64 // consumer heartbeat seen by the previous ConsumerAlive
}

// OpenProducer creates the channel file of s, or joins an existing one.
// A missing or zeroed file is initialised (tail 0); an initialised file is
// joined keeping its tail, so a restarted producer continues where the
// previous one last published. The record type R must have the spec's
// record size.
func OpenProducer[R Record](o Options, s Spec) (*Producer[R], error) {
	if n := recordSize[R](); n != s.RecordSize {
		return nil, &Error{Path: o.Path(s.Name), Op: "open producer", Err: ErrInvalid,
			Detail: fmt.Sprintf("record type is %d bytes, channel %s holds %d-byte records", n, s.Name, s.RecordSize)}
	}
	m, err := openMapping(o, s, true, "open producer")
	if err != nil {
		return nil, err
	}
	p := &Producer[R]{
		m:       m,
		tailW:   m.tail,
		recs:    m.recs,
		recSize: uintptr(s.RecordSize),
		mask:    s.Capacity - 1,
		burst:   burst(s.Capacity),
	}
	// Load (acquire): continue after what the previous producer published.
	// Records it wrote but never published are lost, as in any restart.
	p.tail = m.tail.Load()
	p.published = p.tail
	// Load: baseline for ConsumerAlive.
	p.lastConsB = m.consumerHB.Load()
	return p, nil
}

// Push copies r into the next slot of the ring. The record becomes visible
// to the consumer when the tail is published: automatically every
// capacity/4 records, or by Sync.
func (p *Producer[R]) Push(r *R) {
	dst := (*R)(unsafe.Add(p.recs, uintptr(p.tail&p.mask)*p.recSize))
	copyRecord(dst, r) // plain stores; ordered before the tail store below
	p.tail++
	if p.tail-p.published >= p.burst {
		p.publish()
	}
}

// Sync publishes the tail now, making every pushed record visible.
func (p *Producer[R]) Sync() {
	if p.tail != p.published {
		p.publish()
	}
}

// publish stores the private tail into the header.
func (p *Producer[R]) publish() {
	// Store (release; Go's atomics are sequentially consistent): every
	// record written before this store is visible to a consumer whose
	// Load of the tail returns this value or a later one (a
	// happens-before edge of the Go memory model). This is the only
	// synchronisation between producer and consumer.
	p.tailW.Store(p.tail)
	// The next records overwrite slots a lagging consumer may still be
	// copying; it detects that by loading the tail again after its copy
	// (Consumer.Pop). That only works if this store is visible before
	// any of those record stores: a release store alone does not order
	// later stores on weakly ordered CPUs. See publishFence.
	publishFence(p.tailW)
	p.published = p.tail
}

// Tail returns the producer's write index: records pushed so far,
// published or not, counting from the ring's creation.
func (p *Producer[R]) Tail() uint64 { return p.tail }

// Beat increments the producer heartbeat. It may be called from any
// goroutine.
func (p *Producer[R]) Beat() {
	// Add (atomic RMW): the consumer only compares successive loads.
	p.m.producerHB.Add(1)
}

// ConsumerAlive reports whether the consumer heartbeat moved since the
// previous call (or since OpenProducer for the first call).
func (p *Producer[R]) ConsumerAlive() bool {
	// Load: a plain snapshot; no data depends on it.
	v := p.m.consumerHB.Load()
	moved := v != p.lastConsB
	p.lastConsB = v
	return moved
}

// Meta returns the u64 at metadata offset off (file offset 512+off).
// REQUIRES: off is a multiple of 8 in 0..104; it panics otherwise.
func (p *Producer[R]) Meta(off int) uint64 {
	// Load (acquire): pairs with SetMeta's store on the other side.
	return p.m.metaWord(off).Load()
}

// SetMeta stores v at metadata offset off.
// REQUIRES: off is a multiple of 8 in 0..104; it panics otherwise.
func (p *Producer[R]) SetMeta(off int, v uint64) {
	// Store (release): visible to the other side's next Meta load.
	p.m.metaWord(off).Store(v)
}

// Replaced reports whether Path() no longer names the mapped file: it was
// removed or recreated. It makes a stat system call; call it
// periodically, not per record.
func (p *Producer[R]) Replaced() bool { return p.m.replaced() }

// Created reports whether opening this producer wrote the header (a new
// or never-initialised file).
func (p *Producer[R]) Created() bool { return p.m.created }

// Path returns the channel file.
func (p *Producer[R]) Path() string { return p.m.path }

// Close publishes the tail and unmaps the ring. The producer must not be
// used afterwards. A file that shrank under the mapping is still unmapped,
// and the fault returned as an *Error matching ErrTruncated.
func (p *Producer[R]) Close() error {
	if p.m.mem == nil {
		return nil
	}
	ferr := p.m.guard("close", p.Sync)
	p.recs, p.tailW = nil, nil
	return errors.Join(ferr, p.m.unmap())
}
