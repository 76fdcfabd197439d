package rtsalloc

import "testing"

// TestVisitBeforeReuse pins the order CleanRemoteFrees promises: a block
// is visited while it still belongs to its owner, before any slot can be
// handed it again. The stand-in validator's audit records "came back" in
// the visit and "handed out" after Allocate on other goroutines; when the
// remote free emptied the block's slab, the slab used to go back to the
// global list before the visit, so another slot could pop it and hand out
// the same offset (the slab's first block) while the audit still counted
// it as out, and then saw it "freed twice".
func TestVisitBeforeReuse(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			r := newAllocator(t, f, 3, 4)
			owner := join(t, r, f, slotFor(f, 0))
			client := join(t, r, f, slotFor(f, 1))
			other := join(t, r, f, slotFor(f, 2))
			off, ok := owner.Allocate(MaxSize) // slab 0, block 0
			if !ok {
				t.Fatal("allocate failed")
			}
			if err := client.Free(off); err != nil {
				t.Fatal(err)
			}
			visited := 0
			n := owner.CleanRemoteFrees(func(v uint64) {
				visited++
				if v != off {
					t.Fatalf("visited %d, want %d", v, off)
				}
				// Another slot, as another thread of the validator would,
				// allocates while the visit runs.
				got, ok := other.Allocate(MaxSize)
				if !ok {
					t.Fatalf("other slot cannot allocate: %v", other.Err())
				}
				if got == off {
					t.Fatalf("offset %d handed out again by slot %d while its remote free was being visited", off, other.Slot())
				}
			})
			if n != 1 || visited != 1 || owner.Rejected() != 0 {
				t.Fatalf("cleaned %d, visited %d, rejected %d", n, visited, owner.Rejected())
			}
			// Once visited, the emptied slab is free for anyone.
			if _, err := invariants(owner); err != nil {
				t.Fatal(err)
			}
		})
	}
}
