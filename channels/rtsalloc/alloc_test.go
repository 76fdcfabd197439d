package rtsalloc

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestAllocateFreeLocal(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			r := newAllocator(t, f, 2, 60)
			a := join(t, r, f, slotFor(f, 0))
			seen := map[uint64]int{}
			var offs []uint64
			for _, size := range []int{1, 255, 256, 257, 512, 1000, 2048, 4096} {
				for i := 0; i < 300; i++ {
					off, ok := a.Allocate(size)
					if !ok {
						t.Fatalf("allocate %d #%d failed: %v", size, i, a.Err())
					}
					if _, dup := seen[off]; dup {
						t.Fatalf("offset %d handed out twice", off)
					}
					b, err := a.Bytes(off, size)
					if err != nil {
						t.Fatal(err)
					}
					for j := range b {
						b[j] = byte(i)
					}
					seen[off] = size
					offs = append(offs, off)
				}
			}
			if a.LiveBlocks() != len(offs) {
				t.Fatalf("live %d, want %d", a.LiveBlocks(), len(offs))
			}
			if _, err := invariants(a); err != nil {
				t.Fatal(err)
			}
			for _, off := range offs {
				if err := a.Free(off); err != nil {
					t.Fatal(err)
				}
			}
			global, err := invariants(a)
			if err != nil {
				t.Fatal(err)
			}
			if global != a.NumSlabs() || a.LiveBlocks() != 0 {
				t.Fatalf("after freeing all: %d of %d slabs free, %d live", global, a.NumSlabs(), a.LiveBlocks())
			}
			if f != V2 && a.outstanding().Load() != 0 {
				t.Fatalf("outstanding bytes %d", a.outstanding().Load())
			}
		})
	}
}

func TestAllocateLimits(t *testing.T) {
	for _, f := range allFormats {
		r := newAllocator(t, f, 1, 2)
		a := join(t, r, f, 0)
		for _, size := range []int{0, -1, 4097, 1 << 30} {
			if _, ok := a.Allocate(size); ok {
				t.Errorf("%v: allocate %d succeeded", f, size)
			}
		}
		// Exhaust: every slab of 4096-byte blocks.
		n := 0
		for {
			if _, ok := a.Allocate(4096); !ok {
				break
			}
			n++
		}
		if want := a.NumSlabs() * testSlab / 4096; n != want || a.Err() != nil {
			t.Errorf("%v: %d blocks before full, want %d (%v)", f, n, want, a.Err())
		}
		if _, ok := a.Allocate(256); ok {
			t.Errorf("%v: allocate after exhaustion succeeded", f)
		}
	}
}

func TestRemoteFree(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			r := newAllocator(t, f, 3, 24)
			owner := join(t, r, f, slotFor(f, 0))
			other := join(t, r, f, slotFor(f, 1))
			if owner.Slot() == other.Slot() {
				t.Fatalf("both handles on slot %d", owner.Slot())
			}
			var offs []uint64
			for i := 0; i < 500; i++ {
				off, ok := owner.Allocate(256 << (i % 5))
				if !ok {
					t.Fatal("allocate failed")
				}
				b, _ := owner.Bytes(off, 16)
				binary.LittleEndian.PutUint64(b[8:], off)
				offs = append(offs, off)
			}
			want := map[uint64]bool{}
			for i, off := range offs {
				if i%3 == 0 {
					continue
				}
				if err := other.Free(off); err != nil {
					t.Fatal(err)
				}
				want[off] = true
			}
			if owner.LiveBlocks() != len(offs) {
				t.Fatal("remote free took effect before clean")
			}
			got := map[uint64]bool{}
			n := owner.CleanRemoteFrees(func(off uint64) {
				if got[off] {
					t.Errorf("visited %d twice", off)
				}
				got[off] = true
			})
			if n != len(want) || len(got) != len(want) || owner.Rejected() != 0 {
				t.Fatalf("cleaned %d (visited %d), want %d; rejected %d", n, len(got), len(want), owner.Rejected())
			}
			for off := range want {
				if !got[off] {
					t.Fatalf("offset %d not visited", off)
				}
			}
			if n := owner.CleanRemoteFrees(nil); n != 0 {
				t.Fatalf("second clean freed %d", n)
			}
			for i, off := range offs {
				if i%3 == 0 {
					if err := owner.Free(off); err != nil {
						t.Fatal(err)
					}
				}
			}
			global, err := invariants(owner)
			if err != nil || global != owner.NumSlabs() {
				t.Fatalf("after all frees: %d of %d free, %v", global, owner.NumSlabs(), err)
			}
		})
	}
}

func TestBadFrees(t *testing.T) {
	for _, f := range allFormats {
		t.Run(f.String(), func(t *testing.T) {
			r := newAllocator(t, f, 2, 4)
			a := join(t, r, f, slotFor(f, 0))
			b := join(t, r, f, slotFor(f, 1))
			off, _ := a.Allocate(1024)
			other, _ := b.Allocate(300)
			tests := []struct {
				name string
				off  uint64
				want error
			}{
				{"header", 0, ErrBadOffset},
				{"before slabs", a.l.slabs - 256, ErrBadOffset},
				{"past the end", a.end, ErrBadOffset},
				{"huge", 1 << 62, ErrBadOffset},
				{"inside a block", off + 256, ErrBadOffset},
				{"free slab", a.end - 256, ErrNotAlloc},
				{"never allocated block", off + 1024, ErrNotAlloc},
			}
			for _, tt := range tests {
				if err := a.Free(tt.off); !errors.Is(err, tt.want) {
					t.Errorf("%s: Free(%d) = %v, want %v", tt.name, tt.off, err, tt.want)
				}
			}
			if err := a.Free(off); err != nil {
				t.Fatal(err)
			}
			if err := a.Free(off); !errors.Is(err, ErrNotAlloc) {
				t.Errorf("double free: %v", err)
			}
			// A bogus remote free of a block b never allocated is refused
			// by b at clean time, and b's state survives.
			if err := a.Free(other + 512); err != nil {
				t.Fatalf("remote free: %v", err)
			}
			var hooked []uint64
			b.SetRejectHook(func(off uint64, err error) {
				if !errors.Is(err, ErrRemoteFree) {
					t.Errorf("hook error %v", err)
				}
				hooked = append(hooked, off)
			})
			if n := b.CleanRemoteFrees(nil); n != 0 || b.Rejected() != 1 || !errors.Is(b.RejectedErr(), ErrRemoteFree) {
				t.Fatalf("clean: %d freed, %d rejected, %v", n, b.Rejected(), b.RejectedErr())
			}
			if len(hooked) != 1 || hooked[0] != other+512 {
				t.Fatalf("reject hook saw %v, want [%d]", hooked, other+512)
			}
			if err := b.Free(other); err != nil {
				t.Fatal(err)
			}
			if _, err := invariants(a); err != nil || a.Err() != nil || b.Err() != nil {
				t.Fatal(err, a.Err(), b.Err())
			}
			if _, err := a.Bytes(a.end-8, 9); !errors.Is(err, ErrBadOffset) {
				t.Errorf("Bytes past the end: %v", err)
			}
			if _, err := a.Bytes(8, 8); !errors.Is(err, ErrBadOffset) {
				t.Errorf("Bytes of the header: %v", err)
			}
		})
	}
}

func TestSlots(t *testing.T) {
	for _, f := range []Format{V4, V5} {
		r := newAllocator(t, f, 3, 2)
		a := join(t, r, f, -1)
		n := a.NumWorkers()
		if n < 3 {
			t.Fatalf("%v: %d workers, want at least 3", f, n)
		}
		var hs []*Allocator
		for i := 1; i < n; i++ {
			hs = append(hs, join(t, r, f, -1))
		}
		if _, err := Join(r, f, -1); !errors.Is(err, ErrNoSlot) {
			t.Fatalf("%v: join with every slot claimed: %v", f, err)
		}
		if _, err := Join(r, f, 1); !errors.Is(err, ErrSlotTaken) {
			t.Fatalf("%v: join a taken slot: %v", f, err)
		}
		hs[0].Close()
		c := join(t, r, f, -1)
		if c.Slot() != hs[0].Slot() {
			t.Fatalf("%v: reclaimed slot %d, want %d", f, c.Slot(), hs[0].Slot())
		}
	}
	r := newAllocator(t, V2, 3, 2)
	if _, err := Join(r, V2, -1); !errors.Is(err, ErrSlot) {
		t.Fatalf("V2 claim: %v", err)
	}
	if _, err := Join(r, V2, 3); !errors.Is(err, ErrSlot) {
		t.Fatalf("V2 slot out of range: %v", err)
	}
}

// TestAdopt: a slot rejoined after its holder left keeps its blocks.
func TestAdopt(t *testing.T) {
	for _, f := range allFormats {
		r := newAllocator(t, f, 2, 4)
		a := join(t, r, f, 0)
		var offs []uint64
		for i := 0; i < 40; i++ {
			off, _ := a.Allocate(700)
			offs = append(offs, off)
		}
		a.Close()
		b := join(t, r, f, 0)
		if b.LiveBlocks() != 40 {
			t.Fatalf("%v: adopted %d live blocks, want 40", f, b.LiveBlocks())
		}
		for _, off := range offs {
			if err := b.Free(off); err != nil {
				t.Fatal(err)
			}
		}
		if off, ok := b.Allocate(700); !ok || off != offs[0] {
			t.Fatalf("%v: allocate after adopt: %d %v", f, off, ok)
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, f := range allFormats {
		r := newAllocator(t, f, 2, 2)
		for _, g := range allFormats {
			if g == f || (f != V5 && g != V5) {
				continue
			}
			if _, err := Join(r, g, 0); !errors.Is(err, ErrHeader) {
				t.Errorf("%v file joined as %v: %v", f, g, err)
			}
		}
	}
	// V2 and V4 share magic and version 1; the worker records tell them
	// apart.
	v2 := newAllocator(t, V2, 2, 2)
	if _, err := Join(v2, V4, -1); !errors.Is(err, ErrHeader) || !strings.Contains(err.Error(), "Agave 4.0") {
		t.Errorf("2.0 file joined as 3.x/4.x: %v", err)
	}
	v4 := newAllocator(t, V4, 2, 2)
	if _, err := Join(v4, V2, 0); !errors.Is(err, ErrLayout) {
		t.Errorf("3.x/4.x file joined as 2.0: %v", err)
	}
	r := newAllocator(t, V4, 2, 2)
	b := r.Bytes()
	binary.LittleEndian.PutUint32(b[hSlabs:], 1000)
	if _, err := Join(r, V4, -1); !errors.Is(err, ErrLayout) {
		t.Errorf("num_slabs beyond the file: %v", err)
	}
	binary.LittleEndian.PutUint32(b[hSlabs:], 2)
	binary.LittleEndian.PutUint32(b[hSlabSize:], 3000)
	if _, err := Join(r, V4, -1); !errors.Is(err, ErrSlabSize) {
		t.Errorf("bad slab size: %v", err)
	}
	clear(b[:8])
	if _, err := Join(r, V4, -1); !errors.Is(err, ErrHeader) {
		t.Errorf("zero magic: %v", err)
	}
	if err := Create(r, V2, 0, testSlab); !errors.Is(err, ErrWorkers) {
		t.Errorf("zero workers: %v", err)
	}
	if err := Create(r, V2, 2, 1000); !errors.Is(err, ErrSlabSize) {
		t.Errorf("bad slab: %v", err)
	}
	if err := Create(r, V5, 2, 1<<22); !errors.Is(err, ErrFileSize) {
		t.Errorf("file smaller than two slabs: %v", err)
	}
}

// TestLayoutV2Golden: the 0.x sample from the research note (dumped from a
// real rts-alloc 0.1.0): 16 KiB slabs, an 8-slab file, 4 workers.
func TestLayoutV2Golden(t *testing.T) {
	l, ok := layoutV2(8*16384, 16384, 4)
	want := layout{numWorkers: 4, numSlabs: 7, slabSize: 16384, free: 0x180, meta: 0x200, stacks: 0x580, slabs: 0x4000}
	if !ok || l != want {
		t.Fatalf("layout %+v, want %+v", l, want)
	}
}

// TestLayoutV4Golden: rts-alloc's own header test (index copy 2a61e1f4 /
// 693424f8): 4 workers, 8 slabs of 4096 bytes.
func TestLayoutV4Golden(t *testing.T) {
	l := layoutFor(V4.params(), 4, 4096, 8)
	if l.free != 384 || l.meta != 512 || l.stacks != 1536 || l.slabs != 4096 {
		t.Fatalf("layout %+v", l)
	}
}
