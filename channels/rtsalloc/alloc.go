package rtsalloc

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/solqos/qos/channels/shm"
)

// Allocator is one worker slot's handle on an allocator file. It is not
// safe for concurrent use; give each goroutine (or process) its own slot.
type Allocator struct {
	name    string
	format  Format
	p       params
	l       layout
	mem     []byte         // the whole mapping
	base    unsafe.Pointer // &mem[0]; every offset below was bounds-checked
	end     uint64         // end of the slab area
	slot    uint32
	claimed bool
	closed  bool

	// live has one bit per possible block (slab_size/256 per slab) for the
	// blocks this slot owns and has handed out: Free and CleanRemoteFrees
	// refuse a block whose bit is clear.
	live        []uint64
	wordsPer    uint64
	liveBlocks  int
	maxBlocks   uint64 // bound on any chain walk
	stackSz     uint64
	perSlabCaps [NumClasses]uint16

	err        error
	rejected   int
	rejectErr  error
	rejectHook func(off uint64, err error)
}

// Create initialises an allocator of format f over the whole of r (the
// server side: Agave's handshake server creates it with 2 MiB slabs and
// 1 + worker_count + allocator_handles workers). For V2 numWorkers is
// exact; for V4/V5 it is a minimum and the table is sized to fill the
// metadata slabs (read NumWorkers from a joined handle). Nothing must use
// r while Create runs.
func Create(r *shm.Region, f Format, numWorkers, slabSize int) error {
	if !f.Valid() {
		return fmt.Errorf("rtsalloc: create in %s: %w %d", r.Name(), ErrFormat, f)
	}
	if numWorkers <= 0 || numWorkers > 1<<16 {
		return fmt.Errorf("rtsalloc: create in %s: %w: %d", r.Name(), ErrWorkers, numWorkers)
	}
	if slabSize <= 0 || slabSize > 1<<30 {
		return fmt.Errorf("rtsalloc: create in %s: %w: %d", r.Name(), ErrSlabSize, slabSize)
	}
	if err := verifySlabSize(uint32(slabSize)); err != nil {
		return fmt.Errorf("rtsalloc: create in %s: %w", r.Name(), err)
	}
	p := f.params()
	size := uint64(r.Len())
	var l layout
	var ok bool
	if f == V2 {
		l, ok = layoutV2(size, uint32(slabSize), uint32(numWorkers))
	} else {
		l, ok = layoutMaxWorkers(p, size, uint32(slabSize), uint32(numWorkers))
	}
	if !ok {
		return fmt.Errorf("rtsalloc: create in %s: %w: %d bytes, %d-byte slabs, %d workers", r.Name(), ErrFileSize, size, slabSize, numWorkers)
	}
	if err := l.check(p, size); err != nil {
		return fmt.Errorf("rtsalloc: create in %s: %w", r.Name(), errUnreachable)
	}
	meta, err := r.Slice(0, int(l.slabs))
	if err != nil {
		return err
	}
	clear(meta)
	le := binary.LittleEndian
	le.PutUint32(meta[hVersion:], p.version)
	le.PutUint32(meta[hWorkers:], l.numWorkers)
	le.PutUint32(meta[hSlabs:], l.numSlabs)
	le.PutUint32(meta[hSlabSize:], l.slabSize)
	le.PutUint32(meta[hFree:], uint32(l.free))
	le.PutUint32(meta[hMeta:], uint32(l.meta))
	le.PutUint32(meta[hStacks:], uint32(l.stacks))
	le.PutUint32(meta[hSlabsOff:], uint32(l.slabs))
	for w := uint64(0); w < uint64(l.numWorkers); w++ {
		rec := headerSize + w*uint64(p.rec)
		for c := uint64(0); c < NumClasses; c++ {
			le.PutUint32(meta[rec+uint64(p.heads)+8*c:], null32)
			le.PutUint32(meta[rec+uint64(p.heads)+8*c+4:], null32)
		}
		if p.perWorker {
			le.PutUint64(meta[rec+64:], null64)
		}
	}
	// Every slab on the global list in order 0 -> 1 -> ... -> n-1.
	for s := uint64(0); s < uint64(l.numSlabs); s++ {
		node := l.free + nodeSize*s
		next := uint32(s + 1)
		if s == uint64(l.numSlabs)-1 {
			next = null32
		}
		le.PutUint32(meta[node:], next)
		le.PutUint32(meta[node+4:], null32)
		le.PutUint32(meta[node+8:], null32)
		m := l.meta + uint64(p.metaSize)*s
		le.PutUint32(meta[m:], null32)
		if !p.perWorker {
			le.PutUint16(meta[m+64:], null16)
		}
	}
	// Global head = slab 0 (generation 0 for V5).
	le.PutUint32(meta[hGlobal:], 0)
	m, err := r.Uint64(hMagic)
	if err != nil {
		return err
	}
	// The magic goes in last: a joiner that sees it (its load is
	// sequentially consistent) sees everything above.
	m.Store(magic)
	return nil
}

// Join attaches to r's allocator as one worker slot. slot >= 0 takes that
// slot (V2's only mode: Agave 4.0 hands the client slots
// 1+worker_count+k; V4/V5 claim it and fail if it is taken); slot = -1
// claims the first free slot (V4/V5, as rts-alloc's join does). Close
// releases a claimed slot. r must stay mapped while the Allocator is used.
func Join(r *shm.Region, f Format, slot int) (*Allocator, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("rtsalloc: join %s: %w %d", r.Name(), ErrFormat, f)
	}
	p := f.params()
	hdr, err := r.Slice(0, headerSize)
	if err != nil {
		return nil, fmt.Errorf("rtsalloc: join %s: %w: %d-byte file", r.Name(), ErrFileSize, r.Len())
	}
	m, _ := r.Uint64(hMagic)
	le := binary.LittleEndian
	// Sequentially consistent load: pairs with Create's final magic store.
	if got := m.Load(); got != magic {
		return nil, fmt.Errorf("rtsalloc: join %s: %w: magic %#x, want %#x (is this the allocator fd, the first one Agave sends?)", r.Name(), ErrHeader, got, uint64(magic))
	}
	if got := le.Uint32(hdr[hVersion:]); got != p.version {
		return nil, fmt.Errorf("rtsalloc: join %s: %w: version %#x, want %#x for %v (%s)", r.Name(), ErrHeader, got, p.version, f, versionHint(got))
	}
	l := layout{
		numWorkers: le.Uint32(hdr[hWorkers:]),
		numSlabs:   le.Uint32(hdr[hSlabs:]),
		slabSize:   le.Uint32(hdr[hSlabSize:]),
		free:       uint64(le.Uint32(hdr[hFree:])),
		meta:       uint64(le.Uint32(hdr[hMeta:])),
		stacks:     uint64(le.Uint32(hdr[hStacks:])),
		slabs:      uint64(le.Uint32(hdr[hSlabsOff:])),
	}
	if err := l.check(p, uint64(r.Len())); err != nil {
		return nil, fmt.Errorf("rtsalloc: join %s as %v: %w", r.Name(), f, err)
	}
	if f == V2 {
		// 0.x join recomputes the layout from the file size and compares.
		if want, ok := layoutV2(uint64(r.Len()), l.slabSize, l.numWorkers); !ok || want != l {
			return nil, fmt.Errorf("rtsalloc: join %s as %v: %w: header offsets differ from the 0.x layout for this file size", r.Name(), f, ErrLayout)
		}
	}
	if p.claim {
		// In 3.x+ records, bytes 1-7 are padding after the claimed flag; in
		// a 0.x/2.0 record they hold list heads (0xFFFFFFFF when empty).
		for w := uint64(0); w < uint64(l.numWorkers); w++ {
			rec := headerSize + w*uint64(p.rec)
			b := r.Bytes()[rec : rec+8]
			if b[0] > 1 || le.Uint32(b[0:])>>8 != 0 || le.Uint32(b[4:]) != 0 {
				return nil, fmt.Errorf("rtsalloc: join %s as %v: %w: worker %d's record is not a claimed-slot record (the file looks like rts-alloc 2.0, Agave 4.0: pick that ABI profile)", r.Name(), f, ErrHeader, w)
			}
		}
	}
	a := &Allocator{
		name: r.Name(), format: f, p: p, l: l,
		mem: r.Bytes(), end: l.slabs + uint64(l.numSlabs)*uint64(l.slabSize),
		stackSz: stackSize(l.slabSize),
	}
	a.base = unsafe.Pointer(&a.mem[0])
	a.wordsPer = (uint64(l.slabSize/MinSize) + 63) / 64
	a.live = make([]uint64, a.wordsPer*uint64(l.numSlabs))
	a.maxBlocks = uint64(l.numSlabs) * uint64(l.slabSize/MinSize)
	for c := range a.perSlabCaps {
		a.perSlabCaps[c] = uint16(l.slabSize / uint32(ClassSize(c)))
	}
	if err := a.claim(slot); err != nil {
		return nil, err
	}
	if err := a.adopt(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func versionHint(v uint32) string {
	switch v {
	case 1:
		return "the header is rts-alloc 0.x-4.x: the validator is Agave 4.0-4.3"
	case 0x0004_0000, 0x0003_0000:
		return "the header is rts-alloc 5.x: the validator is Agave 4.4"
	}
	return "unknown rts-alloc release"
}

func (a *Allocator) claim(slot int) error {
	n := int(a.l.numWorkers)
	if slot < -1 || slot >= n {
		return fmt.Errorf("rtsalloc: join %s: %w: %d of %d", a.name, ErrSlot, slot, n)
	}
	if !a.p.claim {
		if slot < 0 {
			return fmt.Errorf("rtsalloc: join %s: %w: %v has no slot claiming; pass the slot Agave assigned (1 + worker_count + k)", a.name, ErrSlot, a.format)
		}
		a.slot = uint32(slot)
		return nil
	}
	try := func(w int) bool {
		word := a.u32(headerSize + uint64(w)*uint64(a.p.rec))
		for {
			// The claimed flag is byte 0 of this word; bytes 1-3 are
			// padding. AcqRel CAS(0 -> 1) in rts-alloc; ours is
			// sequentially consistent.
			old := word.Load()
			if old&0xff != 0 {
				return false
			}
			if word.CompareAndSwap(old, old|1) {
				return true
			}
		}
	}
	if slot >= 0 {
		if !try(slot) {
			return fmt.Errorf("rtsalloc: join %s: %w: %d", a.name, ErrSlotTaken, slot)
		}
		a.slot, a.claimed = uint32(slot), true
		return nil
	}
	for w := 0; w < n; w++ {
		if try(w) {
			a.slot, a.claimed = uint32(w), true
			return nil
		}
	}
	return fmt.Errorf("rtsalloc: join %s: %w (%d slots)", a.name, ErrNoSlot, n)
}

// adopt marks as live every block of the slabs already on this slot's
// lists (a slot a previous holder left blocks in) and checks those lists.
func (a *Allocator) adopt() error {
	for c := 0; c < NumClasses; c++ {
		for _, full := range [2]bool{false, true} {
			head := a.listHead(c, full)
			prev := uint32(null32)
			s := head.Load()
			for steps := uint32(0); s != null32; steps++ {
				if s >= a.l.numSlabs || steps >= a.l.numSlabs {
					return a.corrupt("worker %d class %d list: slab %d", a.slot, c, s)
				}
				if got := a.u32(a.node(s) + 4).Load(); got != prev {
					return a.corrupt("slab %d: prev link %d, want %d", s, got, prev)
				}
				if a.assigned(s).Load() != a.slot || a.class(s).Load() != uint64(c) {
					return a.corrupt("slab %d on worker %d's list is not its class-%d slab", s, a.slot, c)
				}
				top, capacity := a.stackTop(s), a.stackCap(s)
				if *capacity != a.perSlabCaps[c] || *top > *capacity || (full && *top != 0) || (!full && *top == 0) {
					return a.corrupt("slab %d free stack %d/%d", s, *top, *capacity)
				}
				w := a.live[uint64(s)*a.wordsPer : uint64(s+1)*a.wordsPer]
				for i := uint16(0); i < *capacity; i++ {
					w[i/64] |= 1 << (i % 64)
				}
				for i := uint16(0); i < *top; i++ {
					idx := *a.stackEntry(s, i)
					if idx >= *capacity || w[idx/64]&(1<<(idx%64)) == 0 {
						return a.corrupt("slab %d free stack entry %d", s, idx)
					}
					w[idx/64] &^= 1 << (idx % 64)
				}
				a.liveBlocks += int(*capacity - *top)
				prev = s
				s = a.u32(a.node(s) + 8).Load()
			}
		}
	}
	return nil
}

// Close releases the slot (V4/V5 claimed slots) and detaches. Blocks still
// allocated stay assigned to the slot, as in rts-alloc. It does not unmap
// the region.
func (a *Allocator) Close() error {
	if a.closed {
		return nil
	}
	a.closed = true
	if a.claimed {
		word := a.u32(headerSize + uint64(a.slot)*uint64(a.p.rec))
		for {
			// Release store of claimed = 0 in rts-alloc.
			old := word.Load()
			if word.CompareAndSwap(old, old&^0xff) {
				break
			}
		}
		a.claimed = false
	}
	return nil
}

// Format is the allocator's format.
func (a *Allocator) Format() Format { return a.format }

// Slot is this handle's worker index.
func (a *Allocator) Slot() int { return int(a.slot) }

// NumWorkers is the number of worker slots in the file.
func (a *Allocator) NumWorkers() int { return int(a.l.numWorkers) }

// NumSlabs is the number of slabs; SlabSize their size.
func (a *Allocator) NumSlabs() int { return int(a.l.numSlabs) }

// SlabSize is the size of each slab in bytes.
func (a *Allocator) SlabSize() int { return int(a.l.slabSize) }

// LiveBlocks is how many blocks this slot has allocated and not seen freed.
func (a *Allocator) LiveBlocks() int { return a.liveBlocks }

// Rejected counts remote frees of this slot's blocks that were refused
// (the block was not allocated): another slot's double or bogus free.
func (a *Allocator) Rejected() int { return a.rejected }

// RejectedErr describes the first refused remote free (nil if none).
func (a *Allocator) RejectedErr() error { return a.rejectErr }

// Err is the first inconsistency found in the shared state (nil if none);
// once set, Allocate fails.
func (a *Allocator) Err() error { return a.err }

func (a *Allocator) corrupt(format string, args ...any) error {
	err := fmt.Errorf("rtsalloc: %s slot %d: %w: %s", a.name, a.slot, ErrCorrupt, fmt.Sprintf(format, args...))
	if a.err == nil {
		a.err = err
	}
	return err
}

// Accessors. Each offset is derived from a layout validated at Join and an
// index range-checked by the caller, so it lies inside the mapping and is
// aligned for its width (header and records at multiples of 4 or 8).

func (a *Allocator) u32(off uint64) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Add(a.base, off))
}

func (a *Allocator) u64(off uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(a.base, off))
}

func (a *Allocator) u16(off uint64) *uint16 {
	return (*uint16)(unsafe.Add(a.base, off))
}

func (a *Allocator) record() uint64 { return headerSize + uint64(a.slot)*uint64(a.p.rec) }

func (a *Allocator) listHead(c int, full bool) *atomic.Uint32 {
	off := a.record() + uint64(a.p.heads) + 8*uint64(c)
	if full {
		off += 4
	}
	return a.u32(off)
}

func (a *Allocator) node(s uint32) uint64 { return a.l.free + nodeSize*uint64(s) }

func (a *Allocator) metaOff(s uint32) uint64 { return a.l.meta + uint64(a.p.metaSize)*uint64(s) }

func (a *Allocator) assigned(s uint32) *atomic.Uint32 { return a.u32(a.metaOff(s)) }

func (a *Allocator) class(s uint32) *atomic.Uint64 { return a.u64(a.metaOff(s) + 8) }

// remote16 is the word holding a V2/V4 slab's remote stack head (a u16
// alone on its 64-byte line).
func (a *Allocator) remote16(s uint32) *atomic.Uint32 { return a.u32(a.metaOff(s) + 64) }

func (a *Allocator) stackTop(s uint32) *uint16 { return a.u16(a.l.stacks + a.stackSz*uint64(s)) }

func (a *Allocator) stackCap(s uint32) *uint16 { return a.u16(a.l.stacks + a.stackSz*uint64(s) + 2) }

func (a *Allocator) stackEntry(s uint32, i uint16) *uint16 {
	return a.u16(a.l.stacks + a.stackSz*uint64(s) + 4 + 2*uint64(i))
}

func (a *Allocator) slabBase(s uint32) uint64 { return a.l.slabs + uint64(s)*uint64(a.l.slabSize) }

func (a *Allocator) bit(s uint32, idx uint16) (*uint64, uint64) {
	return &a.live[uint64(s)*a.wordsPer+uint64(idx/64)], 1 << (idx % 64)
}

// workerMetaOutstanding is the V4/V5 outstanding-bytes counter.
func (a *Allocator) outstanding() *atomic.Uint64 { return a.u64(a.record() + 8) }

// remoteHead is the V5 per-worker remote-free head of worker w.
func (a *Allocator) remoteHead(w uint32) *atomic.Uint64 {
	return a.u64(headerSize + uint64(w)*uint64(a.p.rec) + 64)
}
