package hashindex

import (
	"math/rand/v2"
	"testing"
)

// find returns the slot holding w, probing from its home.
func find(x *Index, w uint64) (uint64, bool) {
	for i := x.Home(w >> x.shift); ; i = x.Next(i) {
		switch x.At(i) {
		case w:
			return i, true
		case 0:
			return i, false
		}
	}
}

// TestBackwardShiftDirect checks deletion inside colliding runs that wrap
// around the end of the index, with hand-placed words, for both layouts:
// home bits at the bottom (a key set) and above a 32-bit slab index.
func TestBackwardShiftDirect(t *testing.T) {
	for _, shift := range []uint{0, 32} {
		x := New(4, shift) // 8 slots
		if x.Size() != 8 {
			t.Fatalf("Size = %d, want 8", x.Size())
		}
		// Words whose home is slot 6, 6, 7, 0 (wrapping).
		homes := []uint64{6 | 8, 6 | 16, 7 | 8, 0 | 8}
		for order := range homes {
			clear(x.words)
			for _, h := range homes {
				x.Insert(h << shift)
			}
			i, ok := find(&x, homes[order]<<shift)
			if !ok {
				t.Fatalf("shift %d: word %d not found after insert", shift, order)
			}
			x.Delete(i)
			for j, h := range homes {
				if _, ok := find(&x, h<<shift); ok != (j != order) {
					t.Fatalf("shift %d: after deleting word %d (home %d): find(word %d, home %d) = %v",
						shift, order, homes[order]&x.mask, j, h&x.mask, ok)
				}
			}
		}
	}
}

// TestAgainstMap inserts and deletes random words, against a map, in a
// small index where runs collide and wrap.
func TestAgainstMap(t *testing.T) {
	for _, shift := range []uint{0, 32} {
		r := rand.New(rand.NewPCG(uint64(shift), 7))
		const capacity = 16
		x := New(capacity, shift)
		present := map[uint64]bool{}
		for step := range 50_000 {
			w := (r.Uint64N(64) + 1) << shift // few distinct words: many hits
			if i, ok := find(&x, w); ok != present[w] {
				t.Fatalf("shift %d step %d: find(%x) = %v, want %v", shift, step, w, ok, present[w])
			} else if ok {
				x.Delete(i)
				delete(present, w)
			} else if len(present) < capacity {
				x.Insert(w)
				present[w] = true
			}
			if x.Peek(w>>shift) != x.At(x.Home(w>>shift)) {
				t.Fatal("Peek differs from At(Home)")
			}
		}
	}
}

func TestAllocs(t *testing.T) {
	x := New(1024, 0)
	w := uint64(1)
	if a := testing.AllocsPerRun(1000, func() {
		x.Insert(w)
		i, _ := find(&x, w)
		x.Delete(i)
		w++
	}); a != 0 {
		t.Fatalf("Insert/Delete allocate %v per call", a)
	}
}
