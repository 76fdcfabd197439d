package rtsalloc

import (
	"testing"
)

// BenchmarkAllocateFree: one Allocate plus one local Free (ns/op is the
// pair), with 2 MiB slabs as Agave uses them.
func BenchmarkAllocateFree(b *testing.B) {
	for _, f := range allFormats {
		b.Run(f.String(), func(b *testing.B) {
			r := newAllocatorSlab(b, f, 2, 8, 2<<20)
			a := join(b, r, f, slotFor(f, 0))
			// Keep a few blocks live so the slab stays partial (the usual
			// state) instead of going back to the global list every time.
			for i := 0; i < 4; i++ {
				a.Allocate(1232)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				off, ok := a.Allocate(1232)
				if !ok {
					b.Fatal("allocate failed")
				}
				if err := a.Free(off); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRemoteFree: slot 0 allocates, slot 1 frees remotely, slot 0
// cleans, in batches of 64 (ns/op per block, all three steps).
func BenchmarkRemoteFree(b *testing.B) {
	for _, f := range allFormats {
		b.Run(f.String(), func(b *testing.B) {
			r := newAllocatorSlab(b, f, 2, 8, 2<<20)
			owner := join(b, r, f, slotFor(f, 0))
			other := join(b, r, f, slotFor(f, 1))
			var offs [64]uint64
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(offs) {
				for j := range offs {
					offs[j], _ = owner.Allocate(300)
				}
				for _, off := range offs {
					if err := other.Free(off); err != nil {
						b.Fatal(err)
					}
				}
				if n := owner.CleanRemoteFrees(nil); n != len(offs) {
					b.Fatalf("cleaned %d", n)
				}
			}
		})
	}
}

// TestAllocs: allocate, local free, remote free and cleaning (with an
// audit callback) allocate nothing on the Go heap.
func TestAllocs(t *testing.T) {
	for _, f := range allFormats {
		r := newAllocator(t, f, 2, 8)
		a := join(t, r, f, slotFor(f, 0))
		o := join(t, r, f, slotFor(f, 1))
		a.Allocate(500)
		seen := 0
		visit := func(uint64) { seen++ }
		n := testing.AllocsPerRun(1000, func() {
			off, ok := a.Allocate(500)
			if !ok {
				panic("allocate")
			}
			if err := a.Free(off); err != nil {
				panic(err)
			}
			off, _ = a.Allocate(4000)
			if err := o.Free(off); err != nil {
				panic(err)
			}
			a.CleanRemoteFrees(visit)
			if _, err := a.Bytes(off, 64); err != nil {
				panic(err)
			}
		})
		if n != 0 || seen == 0 {
			t.Errorf("%v: %v allocs per run (visited %d)", f, n, seen)
		}
	}
}
