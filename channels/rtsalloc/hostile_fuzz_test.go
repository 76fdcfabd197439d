package rtsalloc

import (
	"encoding/binary"
	"testing"

	"github.com/solqos/qos/channels/shm"
)

// FuzzHostileState: a peer (or a bug elsewhere) scribbles over the
// allocator's shared metadata and over freed blocks' links; joining and
// using the allocator afterwards must never panic or touch memory outside
// the mapping: every operation either works or fails with an error.
func FuzzHostileState(f *testing.F) {
	f.Add([]byte{0, 12, 0, 0xff, 0x40, 0, 7})
	f.Add([]byte{1, 0x80, 0, 0x13, 0x88, 0, 0xff, 0x90, 1, 2})
	f.Add([]byte{2, 0x00, 1, 0x20, 0x10, 0x02, 0x33})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1 || len(in) > 512 {
			return
		}
		format := allFormats[int(in[0])%3]
		r, err := shm.Create("rtsalloc-hostile", 10*16384, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := Create(r, format, 3, 16384); err != nil {
			t.Fatal(err)
		}
		// Some real state first: blocks in several classes, remote frees
		// pending.
		a, err := Join(r, format, 0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Join(r, format, 1)
		if err != nil {
			t.Fatal(err)
		}
		var offs []uint64
		for i := 0; i < 40; i++ {
			if off, ok := a.Allocate(256 << (i % 5)); ok {
				offs = append(offs, off)
			}
		}
		for i, off := range offs {
			if i%2 == 0 {
				b.Free(off)
			}
		}
		a.Close()
		b.Close()
		// Scribble: (offset u16, value u8) triples over the metadata, and
		// over the first bytes of the blocks (where remote links live).
		mem := r.Bytes()
		slabs := uint64(binary.LittleEndian.Uint32(mem[hSlabsOff:]))
		for k := 1; k+3 <= len(in); k += 3 {
			o := uint64(binary.LittleEndian.Uint16(in[k:]))
			if in[k+2]&1 == 1 && len(offs) > 0 {
				o = offs[int(o)%len(offs)] + o%8
			} else {
				o %= slabs
			}
			mem[o] = in[k+2]
		}
		for slot := 0; slot < 3; slot++ {
			s := slot
			if format != V2 && slot == 2 {
				s = -1
			}
			h, err := Join(r, format, s)
			if err != nil {
				continue
			}
			for i, off := range offs {
				if i%3 == slot {
					h.Free(off)
				}
			}
			h.CleanRemoteFrees(func(off uint64) {
				if _, err := h.Bytes(off, MinSize); err != nil {
					t.Fatalf("visited offset %d outside the slabs", off)
				}
			})
			for i := 0; i < 30; i++ {
				off, ok := h.Allocate(1 + i*131)
				if !ok {
					continue
				}
				if _, err := h.Bytes(off, 1+i*131); err != nil {
					t.Fatalf("allocated offset %d unusable: %v", off, err)
				}
				if i%2 == 0 {
					h.Free(off)
				}
			}
			h.Free(uint64(len(in)) * 4099)
			h.Close()
		}
	})
}
