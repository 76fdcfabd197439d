package rtsalloc

import (
	"errors"
	"fmt"
)

// Format is one rts-alloc crate line's shared-memory layout.
type Format uint8

const (
	// V2 is rts-alloc 2.0.0 (Agave 4.0): the 0.x layout, explicit slots.
	V2 Format = iota + 1
	// V4 is rts-alloc 3.x/4.x (Agave 4.1-4.3): claimed slots.
	V4
	// V5 is rts-alloc 5.x (Agave 4.4): per-worker remote-free head.
	V5
)

// String names the crate line.
func (f Format) String() string {
	switch f {
	case V2:
		return "rts-alloc 2.0"
	case V4:
		return "rts-alloc 3.x/4.x"
	case V5:
		return "rts-alloc 5.x"
	}
	return fmt.Sprintf("rts-alloc format %d", uint8(f))
}

// Valid reports whether f is a known format.
func (f Format) Valid() bool { return f >= V2 && f <= V5 }

// Size classes: 256, 512, 1024, 2048, 4096 bytes.
const (
	MinSize    = 256
	MaxSize    = 4096
	NumClasses = 5
)

// ClassSize is the block size of size class c.
func ClassSize(c int) int { return MinSize << c }

// classOf is rts-alloc's size_class_index: log2 of the next power of two,
// minus 8, at least 0; -1 when size is out of range.
func classOf(size int) int {
	if size <= 0 || size > MaxSize {
		return -1
	}
	c := 0
	for MinSize<<c < size {
		c++
	}
	return c
}

const (
	magic      = 0x0072_7473_616c_6f63 // u64::from_be_bytes(*b"\0rtsaloc")
	null32     = 0xFFFF_FFFF
	null16     = 0xFFFF
	null64     = ^uint64(0)
	headerSize = 128

	hMagic    = 0
	hVersion  = 8
	hWorkers  = 12
	hSlabs    = 16
	hSlabSize = 20
	hFree     = 24
	hMeta     = 28
	hStacks   = 32
	hSlabsOff = 36
	hGlobal   = 64

	nodeSize = 12 // LinkedListNode: global_next, worker_local_prev, worker_local_next
)

// params are the per-format layout constants.
type params struct {
	version   uint32
	rec       int  // worker record size
	heads     int  // offset of the class heads in a worker record
	metaSize  int  // slab meta record size
	metaAlign int  // slab meta alignment
	claim     bool // worker records start with claimed u8 and outstanding u64
	perWorker bool // V5: remote frees go to the owner's remote_free_head
	wide      bool // V5: 64-bit generation-tagged global head
}

func (f Format) params() params {
	switch f {
	case V2:
		return params{version: 1, rec: 64, heads: 0, metaSize: 128, metaAlign: 64}
	case V4:
		return params{version: 1, rec: 64, heads: 16, metaSize: 128, metaAlign: 64, claim: true}
	case V5:
		return params{version: 0x0004_0000, rec: 128, heads: 16, metaSize: 16, metaAlign: 8, claim: true, perWorker: true, wide: true}
	}
	return params{}
}

// Errors, matched with errors.Is.
var (
	ErrFormat      = errors.New("rtsalloc: unknown format")
	ErrHeader      = errors.New("rtsalloc: not an allocator of this format")
	ErrLayout      = errors.New("rtsalloc: allocator layout does not fit the file")
	ErrSlabSize    = errors.New("rtsalloc: invalid slab size")
	ErrWorkers     = errors.New("rtsalloc: invalid number of workers")
	ErrFileSize    = errors.New("rtsalloc: file too small for one slab")
	ErrSlot        = errors.New("rtsalloc: invalid worker slot")
	ErrNoSlot      = errors.New("rtsalloc: every worker slot is claimed")
	ErrSlotTaken   = errors.New("rtsalloc: worker slot already claimed")
	ErrBadOffset   = errors.New("rtsalloc: offset is not a block of this allocator")
	ErrNotAlloc    = errors.New("rtsalloc: block is not allocated (double free?)")
	ErrCorrupt     = errors.New("rtsalloc: shared allocator state is inconsistent")
	ErrClosed      = errors.New("rtsalloc: allocator closed")
	ErrRemoteFree  = errors.New("rtsalloc: another slot freed a block of ours that was not allocated")
	errUnreachable = errors.New("rtsalloc: internal error")
)

// layout is where everything lives.
type layout struct {
	numWorkers, numSlabs, slabSize uint32
	free, meta, stacks, slabs      uint64
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func stackSize(slabSize uint32) uint64 { return 4 + 2*uint64(slabSize/MinSize) }

// layoutFor is rts-alloc's layout for a given worker and slab count (the
// 3.x+ layout::layout_for; 0.x's offsets is the same walk with an upper
// bound of slabs).
func layoutFor(p params, workers, slabSize, slabs uint32) layout {
	l := layout{numWorkers: workers, numSlabs: slabs, slabSize: slabSize}
	off := uint64(headerSize) + uint64(p.rec)*uint64(workers)
	l.free = alignUp(off, 4)
	off = l.free + nodeSize*uint64(slabs)
	l.meta = alignUp(off, uint64(p.metaAlign))
	off = l.meta + uint64(p.metaSize)*uint64(slabs)
	l.stacks = alignUp(off, 8)
	off = l.stacks + stackSize(slabSize)*uint64(slabs)
	l.slabs = alignUp(off, uint64(slabSize))
	return l
}

// layoutV2 is 0.x layout::offsets: metadata sized for file/slab - 1 slabs,
// then as many slabs as fit after it.
func layoutV2(fileSize uint64, slabSize, workers uint32) (layout, bool) {
	upper := fileSize/uint64(slabSize) - 1
	if fileSize < uint64(slabSize) || upper > 1<<31 {
		return layout{}, false
	}
	l := layoutFor(V2.params(), workers, slabSize, uint32(upper))
	if l.slabs >= fileSize {
		return layout{}, false
	}
	l.numSlabs = uint32((fileSize - l.slabs) / uint64(slabSize))
	return l, l.numSlabs > 0
}

// layoutMaxWorkers is 3.x+ create: reserve whole metadata slabs for the
// slab bookkeeping and fill the slack with as many worker records as fit
// (at least minWorkers). From header.rs layout::max_workers (2a61e1f4);
// that create lays out exactly max_workers records is INFERRED.
func layoutMaxWorkers(p params, fileSize uint64, slabSize, minWorkers uint32) (layout, bool) {
	total := fileSize / uint64(slabSize)
	if total == 0 || total > 1<<31 {
		return layout{}, false
	}
	meta := uint64(1)
	for {
		if meta >= total {
			return layout{}, false
		}
		usable := uint32(total - meta)
		base := layoutFor(p, 0, slabSize, usable).slabs
		if need := (base + uint64(slabSize) - 1) / uint64(slabSize); need > meta {
			meta = need
			continue
		}
		max := (meta*uint64(slabSize) - base) / uint64(p.rec)
		if max < uint64(minWorkers) {
			meta++
			continue
		}
		if max > 1<<20 {
			max = 1 << 20
		}
		for w := uint32(max); w >= minWorkers && w > 0; w-- {
			l := layoutFor(p, w, slabSize, usable)
			if l.slabs+uint64(usable)*uint64(slabSize) <= fileSize {
				return l, true
			}
		}
		meta++
	}
}

func verifySlabSize(s uint32) error {
	if s == 0 || s&(s-1) != 0 || s < 4*MaxSize || s/MinSize > 0xFFFF {
		return fmt.Errorf("%w: %d (a power of two from %d to %d)", ErrSlabSize, s, 4*MaxSize, MinSize*0xFFFF)
	}
	return nil
}

// check validates a layout read from a header against the file size: every
// table inside the file, in order, aligned.
func (l layout) check(p params, fileSize uint64) error {
	bad := func(what string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrLayout, fmt.Sprintf(what, args...))
	}
	if l.numWorkers == 0 || l.numWorkers > 1<<20 {
		return bad("num_workers %d", l.numWorkers)
	}
	if err := verifySlabSize(l.slabSize); err != nil {
		return err
	}
	if l.numSlabs == 0 || uint64(l.numSlabs) > fileSize/uint64(l.slabSize) {
		return bad("num_slabs %d in a %d-byte file", l.numSlabs, fileSize)
	}
	n := uint64(l.numSlabs)
	if l.free < headerSize+uint64(p.rec)*uint64(l.numWorkers) || l.free%4 != 0 {
		return bad("free list at %d overlaps %d worker records", l.free, l.numWorkers)
	}
	if l.meta < l.free+nodeSize*n || l.meta%uint64(p.metaAlign) != 0 {
		return bad("slab meta at %d", l.meta)
	}
	if l.stacks < l.meta+uint64(p.metaSize)*n || l.stacks%8 != 0 {
		return bad("free stacks at %d", l.stacks)
	}
	if l.slabs < l.stacks+stackSize(l.slabSize)*n || l.slabs%uint64(l.slabSize) != 0 {
		return bad("slabs at %d", l.slabs)
	}
	if l.slabs+n*uint64(l.slabSize) > fileSize {
		return bad("%d slabs of %d bytes from %d exceed the %d-byte file", n, l.slabSize, l.slabs, fileSize)
	}
	return nil
}
