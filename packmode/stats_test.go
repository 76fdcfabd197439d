package packmode

import (
	"testing"
	"time"
)

func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 100, 1000, 1 << 20, 1<<40 + 12345, 1<<63 + 5} {
		b := histBucket(v)
		if b < prev {
			t.Fatalf("bucket of %d is %d, below the previous %d", v, b, prev)
		}
		prev = b
		if up := histUpper(b); up < v || (b > 0 && histUpper(b-1) >= v) {
			t.Fatalf("value %d in bucket %d whose range ends at %d (previous %d)", v, b, up, histUpper(b-1))
		}
	}
	var h Hist
	for i := 1; i <= 1000; i++ {
		h.add(int64(i) * 1000)
	}
	p99 := h.Quantile(0.99)
	if p99 < 990*time.Microsecond || p99 > 990*time.Microsecond*6/5 {
		t.Fatalf("p99 %v, want about 990µs", p99)
	}
}
