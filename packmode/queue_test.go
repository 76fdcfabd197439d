package packmode

import (
	"math/rand/v2"
	"sort"
	"testing"
)

// TestTxQueueOrder pushes random scores into a small queue, checking that
// evictions take the lowest and that pops come out highest first, against
// a sorted reference.
func TestTxQueueOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		pushes   int
		levels   int // distinct scores (ties exercise the arrival order)
	}{
		{"roomy", 64, 40, 1000},
		{"evicting", 16, 200, 1000},
		{"ties", 16, 200, 3},
		{"one", 1, 10, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.capacity)))
			q := newTxQueue(tc.capacity)
			var ref []node
			for i := range tc.pushes {
				nd := node{key: orderKey(float64(r.IntN(tc.levels))), ord: ^uint64(i), slot: int32(i)}
				ok, out := q.push(nd)
				// reference: sort descending, drop the last when over capacity
				ref = append(ref, nd)
				sort.Slice(ref, func(a, b int) bool { return above(&ref[a], &ref[b]) })
				if len(ref) > tc.capacity {
					low := ref[len(ref)-1]
					ref = ref[:len(ref)-1]
					switch {
					case low.slot == nd.slot && ok:
						t.Fatalf("push %d admitted though lowest", i)
					case low.slot != nd.slot && (!ok || out != low.slot):
						t.Fatalf("push %d: admitted %v evicted %d, want slot %d evicted", i, ok, out, low.slot)
					}
				} else if !ok || out != -1 {
					t.Fatalf("push %d into room: %v %d", i, ok, out)
				}
				if m, _ := q.min(); m.slot != ref[len(ref)-1].slot {
					t.Fatalf("min %d, want %d", m.slot, ref[len(ref)-1].slot)
				}
			}
			for _, want := range ref {
				got, ok := q.popMax()
				if !ok || got.slot != want.slot {
					t.Fatalf("popMax %d %v, want %d", got.slot, ok, want.slot)
				}
			}
			if _, ok := q.popMax(); ok {
				t.Fatal("popMax on empty queue")
			}
		})
	}
}
