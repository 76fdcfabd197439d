package score

import (
	"testing"
	"time"
)

// TestQueuePeekMin checks PeekMin against the lowest score pushed so far,
// through evictions and pops, on queues of several capacities.
func TestQueuePeekMin(t *testing.T) {
	for _, tc := range []struct {
		capacity int
		scores   []float64
		pops     int
		want     float64 // lowest after the pushes and pops
		empty    bool
	}{
		{capacity: 4, empty: true},
		{capacity: 4, scores: []float64{3, 1, 2}, want: 1},
		{capacity: 2, scores: []float64{3, 1, 2}, want: 2}, // 1 evicted by 2
		{capacity: 8, scores: []float64{5, 0.25, 9, 7}, pops: 3, want: 0.25},
		{capacity: 3, scores: []float64{5, 6}, pops: 2, empty: true},
	} {
		q := NewQueue(tc.capacity, time.Second)
		for i, s := range tc.scores {
			q.Push(recordFor(uint64(i)), s, uint64(i), 0, 0)
		}
		for range tc.pops {
			q.PopMax(0)
		}
		e, ok := q.PeekMin()
		if ok == tc.empty || (ok && e.Score != tc.want) {
			t.Errorf("cap %d scores %v pops %d: PeekMin = %v %v, want %v (empty %v)", tc.capacity, tc.scores, tc.pops, e.Score, ok, tc.want, tc.empty)
		}
		if err := q.verify(); err != nil {
			t.Fatal(err)
		}
	}
}
