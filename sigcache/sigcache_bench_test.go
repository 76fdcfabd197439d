package sigcache

import "testing"

var sink bool

func BenchmarkAdd(b *testing.B) {
	s := New(DefaultCapacity, 1)
	var x [SignatureSize]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		x[0], x[1], x[2], x[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		s.Add(&x)
	}
}

func benchContains(b *testing.B, hit bool) {
	s := New(DefaultCapacity, 1)
	var x [SignatureSize]byte
	for i := 0; i < DefaultCapacity; i++ {
		x[0], x[1], x[2], x[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		s.Add(&x)
	}
	if !hit {
		x[60] = 1
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		x[0], x[1], x[2] = byte(i), byte(i>>8), byte(i>>16)
		sink = s.Contains(x[:])
	}
}

func BenchmarkContainsHit(b *testing.B)  { benchContains(b, true) }
func BenchmarkContainsMiss(b *testing.B) { benchContains(b, false) }
