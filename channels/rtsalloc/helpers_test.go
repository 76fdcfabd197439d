package rtsalloc

import (
	"fmt"
	"testing"

	"github.com/solqos/qos/channels/shm"
)

var allFormats = []Format{V2, V4, V5}

const testSlab = 64 << 10 // small slabs keep tests quick; Agave uses 2 MiB

// newAllocator creates a format-f allocator of slabs slabs of testSlab
// bytes (plus metadata) in a fresh memfd.
func newAllocator(t testing.TB, f Format, workers, slabs int) *shm.Region {
	t.Helper()
	return newAllocatorSlab(t, f, workers, slabs, testSlab)
}

func newAllocatorSlab(t testing.TB, f Format, workers, slabs, slab int) *shm.Region {
	t.Helper()
	r, err := shm.Create("rtsalloc-test", (slabs+2)*slab, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := Create(r, f, workers, slab); err != nil {
		t.Fatal(err)
	}
	return r
}

func join(t testing.TB, r *shm.Region, f Format, slot int) *Allocator {
	t.Helper()
	a, err := Join(r, f, slot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// slotFor is the explicit slot for V2 and "claim" for the others.
func slotFor(f Format, i int) int {
	if f == V2 {
		return i
	}
	return -1
}

// invariants walks the whole shared state through a's view: every slab is
// on exactly one list (the global one or one worker's partial/full list of
// its class), owned by that worker, with a free stack matching the list.
// It returns how many slabs are on the global list.
func invariants(a *Allocator) (int, error) {
	seen := make([]string, a.l.numSlabs)
	mark := func(s uint32, where string) error {
		if s >= a.l.numSlabs {
			return fmt.Errorf("%s: slab %d out of range", where, s)
		}
		if seen[s] != "" {
			return fmt.Errorf("slab %d on %s and %s", s, seen[s], where)
		}
		seen[s] = where
		return nil
	}
	global := 0
	h := a.u32(hGlobal).Load()
	for s := h; s != null32; s = a.u32(a.node(s)).Load() {
		if global > int(a.l.numSlabs) {
			return 0, fmt.Errorf("global list longer than %d slabs (a cycle)", a.l.numSlabs)
		}
		if err := mark(s, "global"); err != nil {
			return 0, err
		}
		global++
	}
	for w := uint32(0); w < a.l.numWorkers; w++ {
		for c := 0; c < NumClasses; c++ {
			for _, full := range [2]bool{false, true} {
				where := fmt.Sprintf("worker %d class %d full=%v", w, c, full)
				off := headerSize + uint64(w)*uint64(a.p.rec) + uint64(a.p.heads) + 8*uint64(c)
				if full {
					off += 4
				}
				prev := uint32(null32)
				for s := a.u32(off).Load(); s != null32; s = a.u32(a.node(s) + 8).Load() {
					if err := mark(s, where); err != nil {
						return 0, err
					}
					if p := a.u32(a.node(s) + 4).Load(); p != prev {
						return 0, fmt.Errorf("%s: slab %d prev %d, want %d", where, s, p, prev)
					}
					prev = s
					if a.assigned(s).Load() != w || a.class(s).Load() != uint64(c) {
						return 0, fmt.Errorf("%s: slab %d meta %d/%d", where, s, a.assigned(s).Load(), a.class(s).Load())
					}
					top, capacity := *a.stackTop(s), *a.stackCap(s)
					if capacity != a.perSlabCaps[c] || (full && top != 0) || (!full && (top == 0 || top >= capacity)) {
						return 0, fmt.Errorf("%s: slab %d free stack %d/%d", where, s, top, capacity)
					}
				}
			}
		}
	}
	for s, where := range seen {
		if where == "" {
			return 0, fmt.Errorf("slab %d is on no list (leaked)", s)
		}
	}
	return global, nil
}
