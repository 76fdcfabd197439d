package sigcache

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// sig returns a distinct signature for each n.
func sig(n uint64) *[SignatureSize]byte {
	var s [SignatureSize]byte
	binary.LittleEndian.PutUint64(s[:], n)
	binary.LittleEndian.PutUint64(s[56:], ^n)
	return &s
}

func TestAddContainsEvictsOldest(t *testing.T) {
	s := New(4, 7)
	for n := uint64(0); n < 4; n++ {
		s.Add(sig(n))
	}
	if s.Len() != 4 {
		t.Fatalf("Len = %d, want 4", s.Len())
	}
	for n := uint64(0); n < 4; n++ {
		if !s.Contains(sig(n)[:]) {
			t.Fatalf("signature %d missing", n)
		}
	}
	s.Add(sig(4)) // evicts 0
	if s.Contains(sig(0)[:]) {
		t.Fatal("oldest signature not evicted")
	}
	for n := uint64(1); n < 5; n++ {
		if !s.Contains(sig(n)[:]) {
			t.Fatalf("signature %d missing after eviction", n)
		}
	}
	if s.Len() != 4 {
		t.Fatalf("Len = %d, want 4", s.Len())
	}
}

func TestAddTwiceKeepsPlace(t *testing.T) {
	s := New(2, 0)
	s.Add(sig(1))
	s.Add(sig(2))
	s.Add(sig(1)) // already present: no effect, 1 is still the oldest
	if s.Len() != 2 {
		t.Fatalf("Len = %d, want 2", s.Len())
	}
	s.Add(sig(3))
	if s.Contains(sig(1)[:]) || !s.Contains(sig(2)[:]) || !s.Contains(sig(3)[:]) {
		t.Fatal("re-adding a present signature changed the eviction order")
	}
}

func TestContainsWrongLength(t *testing.T) {
	s := New(8, 0)
	s.Add(sig(1))
	for _, n := range []int{0, 1, 63, 65, 128} {
		if s.Contains(make([]byte, n)) {
			t.Fatalf("Contains(%d bytes) = true", n)
		}
	}
	if !s.Contains(sig(1)[:]) {
		t.Fatal("added signature missing")
	}
}

func TestCapacityClamped(t *testing.T) {
	for _, c := range []int{-5, 0, 1} {
		s := New(c, 0)
		if s.Cap() != 1 {
			t.Fatalf("New(%d).Cap() = %d, want 1", c, s.Cap())
		}
		s.Add(sig(1))
		s.Add(sig(2))
		if s.Contains(sig(1)[:]) || !s.Contains(sig(2)[:]) || s.Len() != 1 {
			t.Fatalf("capacity-1 set wrong")
		}
	}
}

func TestSeedChangesKeys(t *testing.T) {
	a, b := New(1, 1), New(1, 2)
	if a.key(sig(9)[:]) == b.key(sig(9)[:]) {
		t.Fatal("the seed does not change the key")
	}
}

// TestAgainstOracle drives random adds and lookups against a map plus a
// FIFO slice, on small capacities so eviction and probe-run wrap-around
// (backward-shift deletion) are exercised heavily.
func TestAgainstOracle(t *testing.T) {
	for _, capacity := range []int{1, 2, 3, 7, 64, 1000} {
		r := rand.New(rand.NewPCG(uint64(capacity), 99))
		s := New(capacity, r.Uint64())
		present := map[uint64]bool{}
		var fifo []uint64
		universe := uint64(3 * capacity)
		for step := 0; step < 20000; step++ {
			n := r.Uint64N(universe)
			if r.IntN(2) == 0 {
				s.Add(sig(n))
				if !present[n] {
					if len(fifo) == capacity {
						delete(present, fifo[0])
						fifo = fifo[1:]
					}
					present[n] = true
					fifo = append(fifo, n)
				}
			}
			if got := s.Contains(sig(n)[:]); got != present[n] {
				t.Fatalf("cap %d step %d: Contains(%d) = %v, want %v", capacity, step, n, got, present[n])
			}
			if s.Len() != len(fifo) {
				t.Fatalf("cap %d step %d: Len = %d, want %d", capacity, step, s.Len(), len(fifo))
			}
		}
		for n := uint64(0); n < universe; n++ {
			if got := s.Contains(sig(n)[:]); got != present[n] {
				t.Fatalf("cap %d final: Contains(%d) = %v, want %v", capacity, n, got, present[n])
			}
		}
	}
}

func TestAllocs(t *testing.T) {
	s := New(1024, 3)
	x := sig(5)
	n := uint64(0)
	if a := testing.AllocsPerRun(1000, func() { n++; s.Add(sig(n)) }); a != 0 {
		// sig(n) is on the stack; Add must not allocate either.
		t.Fatalf("Add allocates %v per call", a)
	}
	if a := testing.AllocsPerRun(1000, func() { _ = s.Contains(x[:]) }); a != 0 {
		t.Fatalf("Contains allocates %v per call", a)
	}
}

func TestKeyAndPeek(t *testing.T) {
	s := New(8, 42)
	var a, b [SignatureSize]byte
	a[0], b[0] = 1, 2
	s.Add(&a)
	ka, kb := s.Key(a[:]), s.Key(b[:])
	if ka == 0 || kb == 0 || ka == kb {
		t.Fatalf("keys %x %x", ka, kb)
	}
	if !s.ContainsKey(ka) || s.ContainsKey(kb) || s.ContainsKey(0) || s.Key(a[:10]) != 0 {
		t.Fatal("ContainsKey disagrees with Add")
	}
	if s.ContainsKey(ka) != s.Contains(a[:]) || s.ContainsKey(kb) != s.Contains(b[:]) {
		t.Fatal("ContainsKey disagrees with Contains")
	}
	_ = s.Peek(ka)
	_ = s.Peek(kb)
	if !s.ContainsKey(ka) || s.Len() != 1 {
		t.Fatal("Peek changed the set")
	}
}
