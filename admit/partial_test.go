package admit

import (
	"container/list"
	"fmt"
	"math/rand/v2"
	"testing"
)

func partialFor(h uint64) Partial {
	var p Partial
	p.ArrivedAt = int64(h)
	p.Fee = h * 3
	p.Channel = uint8(h)
	p.IP[15] = byte(h)
	p.Signer[0] = byte(h >> 8)
	return p
}

func TestPartialStoreBasics(t *testing.T) {
	f := func(name string, capacity int, steps func(t *testing.T, s *PartialStore)) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			s := NewPartialStore(capacity)
			steps(t, s)
			if err := s.verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
	f("ticket set at send, returned by Complete", 4, func(t *testing.T, s *PartialStore) {
		s.Insert(1, partialFor(1))
		if s.SetTicket(2, 7) {
			t.Fatal("ticket set on an absent hash")
		}
		if !s.SetTicket(1, 7) {
			t.Fatal("ticket not set on a stored partial")
		}
		if p, _ := s.Get(1); p.Ticket != 7 {
			t.Fatalf("Get: ticket %d, want 7", p.Ticket)
		}
		p, ok := s.Complete(1)
		want := partialFor(1)
		want.Ticket = 7
		if !ok || p != want {
			t.Fatalf("Complete = %+v, %v; want the partial with ticket 7", p, ok)
		}
		if s.SetTicket(1, 8) {
			t.Fatal("ticket set on a completed partial")
		}
	})
	f("insert then duplicate", 4, func(t *testing.T, s *PartialStore) {
		if s.Insert(1, partialFor(1)) {
			t.Fatal("first insert reported duplicate")
		}
		if !s.Insert(1, partialFor(99)) {
			t.Fatal("second insert not a duplicate")
		}
		p, ok := s.Complete(1)
		if !ok || p != partialFor(1) {
			t.Fatalf("Complete = %+v, %v; want the first partial", p, ok)
		}
	})
	f("first result wins, dedup kept", 4, func(t *testing.T, s *PartialStore) {
		s.Insert(7, partialFor(7))
		if _, ok := s.Complete(7); !ok {
			t.Fatal("first Complete missed")
		}
		if _, ok := s.Complete(7); ok {
			t.Fatal("second Complete succeeded")
		}
		if !s.Insert(7, partialFor(7)) {
			t.Fatal("completed hash no longer deduplicates")
		}
	})
	f("unknown hash", 4, func(t *testing.T, s *PartialStore) {
		if _, ok := s.Complete(5); ok {
			t.Fatal("Complete of unknown hash succeeded")
		}
	})
	f("evicts least recent", 3, func(t *testing.T, s *PartialStore) {
		s.Insert(1, partialFor(1))
		s.Insert(2, partialFor(2))
		s.Insert(3, partialFor(3))
		s.Insert(1, partialFor(1)) // touch 1: 2 is now least recent
		s.Insert(4, partialFor(4))
		if s.Contains(2) {
			t.Fatal("2 should have been evicted")
		}
		for _, h := range []uint64{1, 3, 4} {
			if !s.Contains(h) {
				t.Fatalf("%d evicted", h)
			}
		}
		if s.Evicted() != 1 || s.Len() != 3 {
			t.Fatalf("evicted %d len %d", s.Evicted(), s.Len())
		}
	})
	f("colliding tags", 8, func(t *testing.T, s *PartialStore) {
		// Same upper 32 bits: same home and tag, told apart by the full hash.
		for i := range uint64(8) {
			s.Insert(0xabcd<<32|i, partialFor(i))
		}
		for i := range uint64(8) {
			p, ok := s.Complete(0xabcd<<32 | i)
			if !ok || p != partialFor(i) {
				t.Fatalf("hash %d: %+v %v", i, p, ok)
			}
		}
		s.Insert(0xabcd<<32|100, partialFor(100)) // evicts 0
		if s.Contains(0xabcd << 32) {
			t.Fatal("0 not evicted")
		}
	})
	f("zero and max hash", 2, func(t *testing.T, s *PartialStore) {
		s.Insert(0, partialFor(0))
		s.Insert(^uint64(0), partialFor(1))
		if !s.Contains(0) || !s.Contains(^uint64(0)) {
			t.Fatal("extreme hashes lost")
		}
	})
	f("default capacity", 0, func(t *testing.T, s *PartialStore) {
		if s.Cap() != DefaultPartialCapacity {
			t.Fatalf("cap %d", s.Cap())
		}
	})
}

// TestPartialStoreModel runs random operations against a plain map + list
// LRU and compares every answer, with hashes drawn from a small range so
// that tags collide and clusters wrap around the index.
func TestPartialStoreModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 7, 64} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(capacity), 1))
			s := NewPartialStore(capacity)
			type ref struct {
				hash      uint64
				completed bool
			}
			order := list.New() // front = most recent
			elems := map[uint64]*list.Element{}
			for step := range 20000 {
				// Upper bits from a few values so tags collide, lower bits random.
				h := uint64(rng.IntN(4))<<32 | uint64(rng.IntN(3*capacity+2))
				if rng.IntN(3) == 0 {
					p, ok := s.Complete(h)
					el, present := elems[h]
					want := present && !el.Value.(*ref).completed
					if ok != want {
						t.Fatalf("step %d: Complete(%#x) = %v, want %v", step, h, ok, want)
					}
					if ok {
						el.Value.(*ref).completed = true
						if p != partialFor(h) {
							t.Fatalf("step %d: wrong partial", step)
						}
					}
				} else {
					dup := s.Insert(h, partialFor(h))
					el, present := elems[h]
					if dup != present {
						t.Fatalf("step %d: Insert(%#x) dup = %v, want %v", step, h, dup, present)
					}
					if present {
						order.MoveToFront(el)
					} else {
						if order.Len() == capacity {
							last := order.Back()
							delete(elems, last.Value.(*ref).hash)
							order.Remove(last)
						}
						elems[h] = order.PushFront(&ref{hash: h})
					}
				}
				if step%97 == 0 {
					if err := s.verify(); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
				}
			}
			if s.Len() != order.Len() {
				t.Fatalf("len %d, reference %d", s.Len(), order.Len())
			}
		})
	}
}

func TestPartialStoreAllocs(t *testing.T) {
	s := NewPartialStore(1024)
	var h uint64
	p := partialFor(1)
	allocs := testing.AllocsPerRun(10000, func() {
		h += 0x9e3779b97f4a7c15
		s.Insert(h, p)
		s.Insert(h, p)
		s.SetTicket(h, 3)
		s.Complete(h)
		s.Complete(h ^ 1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}

// TestPeekChangesNothing: the early loads leave the store as it was.
func TestPeekChangesNothing(t *testing.T) {
	s := NewPartialStore(4)
	if s.PeekEvictions(3) != 0 {
		t.Fatal("PeekEvictions on a store with room should load nothing")
	}
	for h := uint64(1); h <= 4; h++ {
		s.Insert(h<<40|h, Partial{Fee: h})
	}
	_ = s.Peek(1<<40 | 1)
	_ = s.Peek(99)
	_ = s.PeekEvictions(10) // more than the store holds: stops at the head
	for h := uint64(1); h <= 4; h++ {
		if !s.Contains(h<<40 | h) {
			t.Fatalf("hash %d lost", h)
		}
	}
	// The least recent is still evicted first.
	s.Insert(5<<40|5, Partial{})
	if s.Contains(1<<40|1) || s.Len() != 4 {
		t.Fatal("Peek disturbed the LRU order")
	}
}
