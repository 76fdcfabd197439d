package rtsalloc

import (
	"fmt"
)

// globalPop takes a slab off the global free list (a Treiber stack shared
// by every worker), or reports false when it is empty.
func (a *Allocator) globalPop() (uint32, bool) {
	for spins := uint64(0); ; spins++ {
		if spins > 1<<20 {
			a.corrupt("global free list never settles")
			return 0, false
		}
		var s, next uint32
		if a.p.wide {
			head := a.u64(hGlobal)
			// Acquire load in rts-alloc; the generation in the high half
			// changes on every successful CAS, so an ABA reuse of the same
			// index cannot pass the CAS below.
			h := head.Load()
			s = uint32(h)
			if s == null32 {
				return 0, false
			}
			if s >= a.l.numSlabs {
				a.corrupt("global free list head %d", s)
				return 0, false
			}
			next = a.u32(a.node(s)).Load() // Acquire in rts-alloc
			if next != null32 && next >= a.l.numSlabs {
				if head.Load() == h {
					a.corrupt("global free list link %d after slab %d", next, s)
					return 0, false
				}
				continue // a concurrent pop changed it
			}
			// AcqRel CAS in rts-alloc.
			if !head.CompareAndSwap(h, (h>>32+1)<<32|uint64(next)) {
				continue
			}
		} else {
			head := a.u32(hGlobal)
			s = head.Load() // Acquire in rts-alloc
			if s == null32 {
				return 0, false
			}
			if s >= a.l.numSlabs {
				a.corrupt("global free list head %d", s)
				return 0, false
			}
			next = a.u32(a.node(s)).Load()
			if next != null32 && next >= a.l.numSlabs {
				if head.Load() == s {
					a.corrupt("global free list link %d after slab %d", next, s)
					return 0, false
				}
				continue // a concurrent pop changed it
			}
			// AcqRel CAS in rts-alloc (0.x has no ABA tag: a pop racing a
			// pop+push of the same slab by others is a hazard of the
			// format itself).
			if !head.CompareAndSwap(s, next) {
				continue
			}
		}
		a.u32(a.node(s)).Store(null32) // Release in rts-alloc
		return s, true
	}
}

// globalPush returns an empty slab to the global free list.
func (a *Allocator) globalPush(s uint32) {
	node := a.u32(a.node(s))
	for {
		if a.p.wide {
			head := a.u64(hGlobal)
			h := head.Load()
			// Release store of the link, then AcqRel CAS: a popper that
			// reads the new head reads this link.
			node.Store(uint32(h))
			if head.CompareAndSwap(h, (h>>32+1)<<32|uint64(s)) {
				return
			}
		} else {
			head := a.u32(hGlobal)
			h := head.Load()
			node.Store(h)
			if head.CompareAndSwap(h, s) {
				return
			}
		}
	}
}

// listPush puts slab s at the head of this worker's class-c list. Only
// this worker touches its lists; the atomics (Release stores in rts-alloc)
// only matter to a later holder of the slot.
func (a *Allocator) listPush(c int, full bool, s uint32) error {
	head := a.listHead(c, full)
	h := head.Load()
	if h != null32 && h >= a.l.numSlabs {
		return a.corrupt("class %d list head %d", c, h)
	}
	a.u32(a.node(s) + 4).Store(null32)
	a.u32(a.node(s) + 8).Store(h)
	if h != null32 {
		a.u32(a.node(h) + 4).Store(s)
	}
	head.Store(s)
	return nil
}

// listRemove unlinks slab s from this worker's class-c list.
func (a *Allocator) listRemove(c int, full bool, s uint32) error {
	prev := a.u32(a.node(s) + 4).Swap(null32)
	next := a.u32(a.node(s) + 8).Swap(null32)
	if (prev != null32 && prev >= a.l.numSlabs) || (next != null32 && next >= a.l.numSlabs) {
		return a.corrupt("slab %d links %d/%d", s, prev, next)
	}
	if prev != null32 {
		a.u32(a.node(prev) + 8).Store(next)
	} else {
		a.listHead(c, full).Store(next)
	}
	if next != null32 {
		a.u32(a.node(next) + 4).Store(prev)
	}
	return nil
}

// Allocate returns the offset of a block of at least size bytes (1..4096),
// or false: size out of range, allocator full, closed, or inconsistent
// (see Err).
func (a *Allocator) Allocate(size int) (uint64, bool) {
	c := classOf(size)
	if c < 0 || a.closed || a.err != nil {
		return 0, false
	}
	capacity := a.perSlabCaps[c]
	s := a.listHead(c, false).Load()
	if s == null32 {
		var ok bool
		if s, ok = a.globalPop(); !ok {
			return 0, false
		}
		// assign: owner, class, empty remote stack (Release stores in
		// rts-alloc), then a full free stack handing out index 0 first.
		a.assigned(s).Store(a.slot)
		a.class(s).Store(uint64(c))
		if !a.p.perWorker {
			w := a.remote16(s)
			for {
				old := w.Load()
				if w.CompareAndSwap(old, old|null16) {
					break
				}
			}
		}
		*a.stackCap(s) = capacity
		for i := uint16(0); i < capacity; i++ {
			*a.stackEntry(s, i) = capacity - 1 - i
		}
		*a.stackTop(s) = capacity
		clear(a.live[uint64(s)*a.wordsPer : uint64(s+1)*a.wordsPer])
		if a.listPush(c, false, s) != nil {
			return 0, false
		}
	} else if s >= a.l.numSlabs {
		a.corrupt("class %d partial head %d", c, s)
		return 0, false
	}
	top := a.stackTop(s)
	if *top == 0 || *top > capacity || *a.stackCap(s) != capacity {
		a.corrupt("partial slab %d free stack %d/%d", s, *top, *a.stackCap(s))
		return 0, false
	}
	idx := *a.stackEntry(s, *top-1)
	if idx >= capacity {
		a.corrupt("slab %d free stack entry %d", s, idx)
		return 0, false
	}
	w, m := a.bit(s, idx)
	if *w&m != 0 {
		a.corrupt("slab %d hands out live block %d", s, idx)
		return 0, false
	}
	*top--
	if *top == 0 {
		if a.listRemove(c, false, s) != nil || a.listPush(c, true, s) != nil {
			return 0, false
		}
	}
	*w |= m
	a.liveBlocks++
	if a.p.claim {
		a.outstanding().Add(uint64(ClassSize(c))) // Relaxed in rts-alloc
	}
	return a.slabBase(s) + uint64(idx)*uint64(ClassSize(c)), true
}

// locate checks that off is the start of a block in an assigned slab and
// returns the slab, index, class and owner.
func (a *Allocator) locate(off uint64) (s uint32, idx uint16, c int, owner uint32, err error) {
	if off < a.l.slabs || off >= a.end {
		return 0, 0, 0, 0, fmt.Errorf("rtsalloc: %s: offset %d: %w (slabs span [%d, %d))", a.name, off, ErrBadOffset, a.l.slabs, a.end)
	}
	rel := off - a.l.slabs
	s = uint32(rel / uint64(a.l.slabSize))
	within := rel % uint64(a.l.slabSize)
	// Acquire loads in rts-alloc: the owner's assign happened before.
	owner = a.assigned(s).Load()
	if owner == null32 {
		return 0, 0, 0, 0, fmt.Errorf("rtsalloc: %s: offset %d: %w (its slab %d is free)", a.name, off, ErrNotAlloc, s)
	}
	if owner >= a.l.numWorkers {
		return 0, 0, 0, 0, a.corrupt("slab %d assigned to worker %d of %d", s, owner, a.l.numWorkers)
	}
	cl := a.class(s).Load()
	if cl >= NumClasses {
		return 0, 0, 0, 0, a.corrupt("slab %d size class %d", s, cl)
	}
	c = int(cl)
	if within%uint64(ClassSize(c)) != 0 {
		return 0, 0, 0, 0, fmt.Errorf("rtsalloc: %s: offset %d: %w (not at a %d-byte block start in slab %d)", a.name, off, ErrBadOffset, ClassSize(c), s)
	}
	return s, uint16(within / uint64(ClassSize(c))), c, owner, nil
}

// Free releases the block at off: a local free when this slot owns its
// slab, otherwise a remote free the owner completes at its next
// CleanRemoteFrees. A bad offset is an error and changes nothing.
func (a *Allocator) Free(off uint64) error {
	if a.closed {
		return fmt.Errorf("rtsalloc: %s: %w", a.name, ErrClosed)
	}
	s, idx, c, owner, err := a.locate(off)
	if err != nil {
		return err
	}
	if owner == a.slot {
		if err := a.localFree(s, idx, c); err != nil {
			return fmt.Errorf("rtsalloc: %s: offset %d: %w", a.name, off, err)
		}
		return nil
	}
	a.remoteFree(off, s, idx, owner)
	return nil
}

// localFree returns block idx of own slab s to its free stack and moves the
// slab between lists as rts-alloc does.
func (a *Allocator) localFree(s uint32, idx uint16, c int) error {
	if err := a.checkFree(s, idx, c); err != nil {
		return err
	}
	return a.release(s, idx, c)
}

// release is localFree once checkFree has passed.
func (a *Allocator) release(s uint32, idx uint16, c int) error {
	w, m := a.bit(s, idx)
	capacity := a.perSlabCaps[c]
	top := a.stackTop(s)
	wasFull := *top == 0
	*a.stackEntry(s, *top) = idx
	*top++
	*w &^= m
	a.liveBlocks--
	if a.p.claim {
		a.outstanding().Add(^uint64(ClassSize(c) - 1)) // Relaxed in rts-alloc
	}
	switch {
	case wasFull:
		// Full -> partial (a slab holds at least 4 blocks, so it cannot go
		// from full to empty in one free).
		if err := a.listRemove(c, true, s); err != nil {
			return err
		}
		return a.listPush(c, false, s)
	case *top == capacity:
		// Empty: back to the global list. 5.x first clears the owner
		// (Release store), 0.x-4.x leave it.
		if err := a.listRemove(c, false, s); err != nil {
			return err
		}
		if a.p.perWorker {
			a.assigned(s).Store(null32)
		}
		a.globalPush(s)
	}
	return nil
}

// checkFree reports whether block idx of own slab s can be freed now: it
// is allocated and the slab's free stack has room. It changes nothing.
func (a *Allocator) checkFree(s uint32, idx uint16, c int) error {
	w, m := a.bit(s, idx)
	if *w&m == 0 {
		return ErrNotAlloc
	}
	capacity := a.perSlabCaps[c]
	if top := *a.stackTop(s); top >= capacity || *a.stackCap(s) != capacity {
		return a.corrupt("slab %d free stack %d/%d on free", s, top, *a.stackCap(s))
	}
	return nil
}

// freeVisited completes a remote free of own block idx of slab s at off:
// visit first, then the local free. The order matters: the free can empty
// the slab and push it on the global list, where another slot (another
// thread or process) may pop it at once and hand out this very offset
// again (a fresh slab hands out its block 0 first). A visit after the
// free would then report the block as back after it was already out
// again, and an auditor keyed by offset would see the new owner's block
// "handed out while still out" and its later free as a double free.
func (a *Allocator) freeVisited(off uint64, s uint32, idx uint16, c int, visit func(off uint64)) error {
	if err := a.checkFree(s, idx, c); err != nil {
		return err
	}
	if visit != nil {
		visit(off)
	}
	return a.release(s, idx, c)
}

// remoteFree hands a block of another worker's slab back to that worker.
func (a *Allocator) remoteFree(off uint64, s uint32, idx uint16, owner uint32) {
	if a.p.perWorker {
		// 5.x: push the offset on the owner's remote-free stack; the link
		// is the block's first 8 bytes (Release store, AcqRel CAS).
		head := a.remoteHead(owner)
		link := a.u64(off)
		for {
			h := head.Load()
			link.Store(h)
			if head.CompareAndSwap(h, off) {
				return
			}
		}
	}
	// 0.x-4.x: push the index on the slab's remote stack; the link is the
	// block's first 2 bytes (an AtomicU16). We write them through the
	// block's first 32-bit word; bytes 2-3 of a freed block are dead.
	head := a.remote16(s)
	link := a.u32(off)
	for {
		h := head.Load()
		link.Store(link.Load()&^0xFFFF | h&0xFFFF)
		if head.CompareAndSwap(h, h&^0xFFFF|uint32(idx)) {
			return
		}
	}
}

// CleanRemoteFrees completes the remote frees other slots made of this
// slot's blocks (rts-alloc's clean_remote_free_lists / clean_remote_frees;
// Agave's threads call it every loop) and returns how many blocks it
// freed. visit, if not nil, is called with each block's offset, so a
// caller can audit which of its blocks a peer freed; it runs while the
// block is still allocated to this slot, before the free makes it (or its
// emptied slab) available to any slot again, so a Give recorded after
// another slot's Allocate never precedes the visit of the same offset. A remote free of a
// block that was not allocated is refused and counted in Rejected.
func (a *Allocator) CleanRemoteFrees(visit func(off uint64)) int {
	if a.closed || a.err != nil {
		return 0
	}
	if a.p.perWorker {
		return a.cleanPerWorker(visit)
	}
	n := 0
	for c := 0; c < NumClasses; c++ {
		for _, full := range [2]bool{false, true} {
			s := a.listHead(c, full).Load()
			for steps := uint32(0); s != null32; steps++ {
				if s >= a.l.numSlabs || steps > a.l.numSlabs {
					a.corrupt("class %d list walk at slab %d", c, s)
					return n
				}
				// Read the link before freeing can move s to another list.
				next := a.u32(a.node(s) + 8).Load()
				n += a.drainSlab(s, c, visit)
				if a.err != nil {
					return n
				}
				s = next
			}
		}
	}
	return n
}

// drainSlab empties one V2/V4 slab's remote stack.
func (a *Allocator) drainSlab(s uint32, c int, visit func(off uint64)) int {
	head := a.remote16(s)
	var h uint32
	for {
		// swap(NULL, AcqRel) of the u16 head in rts-alloc.
		h = head.Load()
		if h&0xFFFF == null16 {
			return 0
		}
		if head.CompareAndSwap(h, h|null16) {
			break
		}
	}
	capacity := a.perSlabCaps[c]
	n := 0
	idx := uint16(h)
	for steps := uint16(0); idx != null16; steps++ {
		if idx >= capacity || steps >= capacity {
			// A link out of range, or a cycle (a block pushed twice links
			// to itself): the rest of the chain is lost to the owner.
			a.reject(a.slabBase(s)+uint64(idx)*uint64(ClassSize(c)), "slab %d remote stack: entry %d after %d steps (a double or bogus remote free)", s, idx, steps)
			return n
		}
		off := a.slabBase(s) + uint64(idx)*uint64(ClassSize(c))
		next := uint16(a.u32(off).Load()) // Acquire in rts-alloc
		if err := a.freeVisited(off, s, idx, c, visit); err != nil {
			if a.err != nil {
				return n
			}
			a.reject(off, "slab %d block %d (offset %d) freed remotely but not allocated", s, idx, off)
		} else {
			n++
		}
		if next == idx {
			a.reject(off, "slab %d block %d (offset %d) freed remotely twice", s, idx, off)
			return n
		}
		idx = next
	}
	return n
}

// cleanPerWorker empties this worker's V5 remote-free stack.
func (a *Allocator) cleanPerWorker(visit func(off uint64)) int {
	// swap(NULL, AcqRel) in rts-alloc: the chain is ours from here.
	off := a.remoteHead(a.slot).Swap(null64)
	n := 0
	for steps := uint64(0); off != null64; steps++ {
		if steps > a.maxBlocks || off < a.l.slabs || off >= a.end || off%MinSize != 0 {
			// Without a block there is no next link to read: the rest of
			// the chain is lost to us.
			a.reject(off, "remote-free chain: offset %d after %d steps", off, steps)
			return n
		}
		next := a.u64(off).Load() // Acquire in rts-alloc
		s, idx, c, owner, err := a.locate(off)
		if err == nil && owner != a.slot {
			err = fmt.Errorf("slab owned by worker %d", owner)
		}
		if err == nil {
			err = a.freeVisited(off, s, idx, c, visit)
		}
		if err != nil {
			if a.err != nil {
				return n
			}
			a.reject(off, "offset %d freed remotely but not allocated by slot %d: %v", off, a.slot, err)
		} else {
			n++
		}
		if next == off {
			a.reject(off, "offset %d freed remotely twice", off)
			return n
		}
		off = next
	}
	return n
}

// reject records a remote free this slot refused; off is the offending
// offset (or the bad link value read from the chain).
func (a *Allocator) reject(off uint64, format string, args ...any) {
	a.rejected++
	if a.rejectErr == nil || a.rejectHook != nil {
		err := fmt.Errorf("rtsalloc: %s slot %d: %w: %s", a.name, a.slot, ErrRemoteFree, fmt.Sprintf(format, args...))
		if a.rejectErr == nil {
			a.rejectErr = err
		}
		if a.rejectHook != nil {
			a.rejectHook(off, err)
		}
	}
}

// SetRejectHook sets a function called with each remote free of this
// slot's blocks that CleanRemoteFrees refuses (a double free, a block never
// allocated, or a broken chain: then off is the bad link), so an auditor
// can name every offending offset. nil removes it. It is called on the
// cleaning goroutine.
func (a *Allocator) SetRejectHook(hook func(off uint64, err error)) { a.rejectHook = hook }

// Bytes is the n-byte view at off, which must lie inside the slab area
// (where every block and so every message payload lives).
func (a *Allocator) Bytes(off uint64, n int) ([]byte, error) {
	if n < 0 || off < a.l.slabs || off > a.end || uint64(n) > a.end-off {
		return nil, fmt.Errorf("rtsalloc: %s: [%d, +%d): %w (slabs span [%d, %d))", a.name, off, n, ErrBadOffset, a.l.slabs, a.end)
	}
	if a.closed {
		return nil, fmt.Errorf("rtsalloc: %s: %w", a.name, ErrClosed)
	}
	return a.mem[off : off+uint64(n) : off+uint64(n)], nil
}
