package admit

import "testing"

var sinkBool bool

// BenchmarkPartialInsert inserts distinct hashes into a full default-sized
// store, so every insert evicts: the daemon's steady state.
func BenchmarkPartialInsert(b *testing.B) {
	s := NewPartialStore(DefaultPartialCapacity)
	p := partialFor(1)
	var h uint64
	for range DefaultPartialCapacity {
		h += 0x9e3779b97f4a7c15
		s.Insert(h, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h += 0x9e3779b97f4a7c15
		sinkBool = s.Insert(h, p)
	}
}

// BenchmarkPartialDuplicate hits recently inserted hashes.
func BenchmarkPartialDuplicate(b *testing.B) {
	s := NewPartialStore(DefaultPartialCapacity)
	p := partialFor(1)
	const n = 1 << 16
	var hs [n]uint64
	var h uint64
	for i := range DefaultPartialCapacity {
		h += 0x9e3779b97f4a7c15
		s.Insert(h, p)
		hs[i%n] = h
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkBool = s.Insert(hs[i%n], p)
		i++
	}
}

// BenchmarkPartialInsertComplete is the join path: insert a packet, later
// complete it.
func BenchmarkPartialInsertComplete(b *testing.B) {
	s := NewPartialStore(DefaultPartialCapacity)
	p := partialFor(1)
	step := uint64(0x9e3779b97f4a7c15)
	lagStep := uint64(4096) * step // wraps: the hash inserted 4096 steps ago
	var h uint64
	for range DefaultPartialCapacity {
		h += 0x9e3779b97f4a7c15
		s.Insert(h, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h += 0x9e3779b97f4a7c15
		s.Insert(h, p)
		_, sinkBool = s.Complete(h - lagStep)
	}
}
