package rtsalloc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/solqos/qos/channels/shm"
)

// model is the reference: which blocks are live, who owns them, which are
// waiting for their owner's CleanRemoteFrees, and which 256-byte granules
// they cover.
type model struct {
	live    map[uint64]block
	order   []uint64 // live offsets, for picking by index
	pending []map[uint64]bool
	granule map[uint64]uint64 // granule -> block offset
	freed   []uint64          // offsets once freed
	nextID  uint64
	owned   []int // live blocks per owner slot
}

type block struct {
	owner int
	size  int // class size
	id    uint64
}

func (m *model) remove(off uint64) {
	b := m.live[off]
	m.owned[b.owner]--
	delete(m.live, off)
	for g := off; g < off+uint64(b.size); g += MinSize {
		delete(m.granule, g)
	}
	for i, o := range m.order {
		if o == off {
			m.order[i] = m.order[len(m.order)-1]
			m.order = m.order[:len(m.order)-1]
			break
		}
	}
	m.freed = append(m.freed, off)
}

func stamp(a *Allocator, off uint64, size int, id uint64) {
	b, _ := a.Bytes(off, size)
	binary.LittleEndian.PutUint64(b[8:], id)
	binary.LittleEndian.PutUint64(b[size-8:], ^id)
}

func stamped(a *Allocator, off uint64, size int, id uint64) bool {
	b, err := a.Bytes(off, size)
	return err == nil && binary.LittleEndian.Uint64(b[8:]) == id && binary.LittleEndian.Uint64(b[size-8:]) == ^id
}

// FuzzAllocator drives random allocate / local free / remote free / clean
// / bad free sequences over 2-4 slots of one allocator and checks them
// against the model: no block handed out twice or overlapping another, no
// live block's bytes changed by the allocator, remote frees visited
// exactly once by their owner, bad offsets refused, and at the end every
// slab back on the global list (no leak) with the shared state consistent.
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 2, 0, 0, 10, 0, 1, 200, 2, 1, 0, 3, 0, 0})
	f.Add([]byte{1, 3, 0, 0, 255, 1, 1, 3, 2, 2, 0, 3, 1, 0, 4, 0, 1, 4, 1, 2})
	f.Add([]byte{2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 2, 1, 1, 3, 0, 0, 4, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		// Up to ~340 operations: deep enough to cycle slabs through every
		// state, short enough for the fuzzer to minimise quickly.
		if len(in) < 2 || len(in) > 1024 {
			return
		}
		format := allFormats[int(in[0])%3]
		nslots := 2 + int(in[1])%3
		r, err := shm.Create("rtsalloc-fuzz", 12*16384, false)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := Create(r, format, nslots, 16384); err != nil {
			t.Fatal(err)
		}
		slots := make([]*Allocator, nslots)
		for i := range slots {
			if slots[i], err = Join(r, format, slotFor(format, i)); err != nil {
				t.Fatal(err)
			}
		}
		m := &model{live: map[uint64]block{}, granule: map[uint64]uint64{}, pending: make([]map[uint64]bool, nslots), owned: make([]int, nslots)}
		for i := range m.pending {
			m.pending[i] = map[uint64]bool{}
		}
		clean := func(i int) {
			a := slots[i]
			visited := map[uint64]bool{}
			n := a.CleanRemoteFrees(func(off uint64) {
				if visited[off] || !m.pending[i][off] {
					t.Fatalf("slot %d cleaned offset %d (pending %v, seen %v)", i, off, m.pending[i][off], visited[off])
				}
				visited[off] = true
				// The visit must come while the block is still the
				// owner's: before the free can put its emptied slab
				// back where another slot could hand the offset out
				// again (what a model checked only after the clean
				// returned could not see).
				if err := stillOwned(a, off); err != nil {
					t.Fatalf("slot %d visited offset %d after giving it up: %v", i, off, err)
				}
			})
			if n != len(m.pending[i]) || len(visited) != n {
				t.Fatalf("slot %d cleaned %d, want %d", i, n, len(m.pending[i]))
			}
			for off := range visited {
				m.remove(off)
			}
			m.pending[i] = map[uint64]bool{}
		}
		ops := in[2:]
		for k := 0; k+3 <= len(ops); k += 3 {
			op, si, arg := ops[k]%6, int(ops[k+1])%nslots, int(ops[k+2])
			a := slots[si]
			switch op {
			case 0, 1:
				size := 1 + arg*16
				if arg > 250 {
					size = MaxSize + arg - 250
				}
				off, ok := a.Allocate(size)
				if size > MaxSize {
					if ok {
						t.Fatalf("allocated %d bytes", size)
					}
					continue
				}
				if !ok {
					if a.Err() != nil {
						t.Fatal(a.Err())
					}
					continue // full
				}
				cs := ClassSize(classOf(size))
				if (off-a.l.slabs)%uint64(cs) != 0 {
					t.Fatalf("offset %d not aligned to %d", off, cs)
				}
				for g := off; g < off+uint64(cs); g += MinSize {
					if o, taken := m.granule[g]; taken {
						t.Fatalf("block %d (%d bytes) overlaps live block %d", off, cs, o)
					}
					m.granule[g] = off
				}
				m.nextID++
				m.live[off] = block{owner: si, size: cs, id: m.nextID}
				m.owned[si]++
				m.order = append(m.order, off)
				stamp(a, off, cs, m.nextID)
			case 2:
				if len(m.order) == 0 {
					continue
				}
				off := m.order[arg%len(m.order)]
				b := m.live[off]
				pending := false
				for i := range m.pending {
					pending = pending || m.pending[i][off]
				}
				if pending {
					continue // freeing it again would be a double free
				}
				if !stamped(a, off, b.size, b.id) {
					t.Fatalf("block %d corrupted while live", off)
				}
				if err := a.Free(off); err != nil {
					t.Fatalf("slot %d free %d: %v", si, off, err)
				}
				if b.owner == si {
					m.remove(off)
				} else {
					m.pending[b.owner][off] = true
				}
			case 3:
				clean(si)
			case 4:
				var off uint64
				switch arg % 4 {
				case 0:
					off = a.end + uint64(arg)*8
				case 1:
					off = uint64(arg)
				case 2:
					if len(m.order) == 0 {
						continue
					}
					off = m.order[arg%len(m.order)] + 8 + uint64(arg%4)*64
				case 3:
					if len(m.freed) == 0 {
						continue
					}
					off = m.freed[arg%len(m.freed)]
					if _, live := m.live[off]; live {
						continue
					}
					s := uint32((off - a.l.slabs) / uint64(a.l.slabSize))
					if o := a.assigned(s).Load(); o != null32 && o != uint32(a.Slot()) {
						continue // a remote double free: only the owner can tell
					}
				}
				if err := a.Free(off); err == nil || !(errors.Is(err, ErrBadOffset) || errors.Is(err, ErrNotAlloc)) {
					t.Fatalf("bad free of %d (kind %d) by slot %d: %v", off, arg%4, si, err)
				}
			case 5:
				n := arg * 37
				off := a.l.slabs + uint64(arg)*1021
				b, err := a.Bytes(off, n)
				if (err == nil) != (off+uint64(n) <= a.end) || (err == nil && len(b) != n) {
					t.Fatalf("Bytes(%d, %d): %d bytes, %v", off, n, len(b), err)
				}
			}
			for i, s := range slots {
				owned := m.owned[i]
				if s.LiveBlocks() != owned || s.Err() != nil || s.Rejected() != 0 {
					t.Fatalf("slot %d: %d live, model %d; err %v; rejected %d", i, s.LiveBlocks(), owned, s.Err(), s.Rejected())
				}
			}
			if k%48 == 0 {
				if _, err := invariants(a); err != nil {
					t.Fatal(err)
				}
			}
		}
		// Drain: finish remote frees, free everything, check for leaks.
		for i := range slots {
			clean(i)
		}
		for len(m.order) > 0 {
			off := m.order[0]
			b := m.live[off]
			if !stamped(slots[b.owner], off, b.size, b.id) {
				t.Fatalf("block %d corrupted while live", off)
			}
			if err := slots[b.owner].Free(off); err != nil {
				t.Fatal(err)
			}
			m.remove(off)
		}
		global, err := invariants(slots[0])
		if err != nil {
			t.Fatal(err)
		}
		if global != slots[0].NumSlabs() {
			t.Fatalf("leak: %d of %d slabs free at the end", global, slots[0].NumSlabs())
		}
		for _, s := range slots {
			if s.LiveBlocks() != 0 || s.Err() != nil {
				t.Fatalf("slot %d: %d live, %v", s.Slot(), s.LiveBlocks(), s.Err())
			}
			if s.format != V2 && s.outstanding().Load() != 0 {
				t.Fatalf("slot %d: outstanding %d", s.Slot(), s.outstanding().Load())
			}
			s.Close()
		}
	})
}

// stillOwned reports whether the block at off is still allocated to a:
// its bit is set in a's private bitmap, its slab is assigned to a's slot
// and the slab is not on the global free list.
func stillOwned(a *Allocator, off uint64) error {
	s, idx, _, owner, err := a.locate(off)
	if err != nil {
		return err
	}
	if owner != a.slot {
		return fmt.Errorf("slab %d assigned to slot %d", s, owner)
	}
	if w, m := a.bit(s, idx); *w&m == 0 {
		return fmt.Errorf("block %d of slab %d already free", idx, s)
	}
	n := uint32(0)
	for g := uint32(a.u32(hGlobal).Load()); g != null32 && g < a.l.numSlabs && n <= a.l.numSlabs; g = a.u32(a.node(g)).Load() {
		if g == s {
			return fmt.Errorf("slab %d is on the global free list", s)
		}
		n++
	}
	return nil
}
