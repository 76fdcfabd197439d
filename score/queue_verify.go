package score

import (
	"fmt"

	"github.com/solqos/qos/internal/invariants"
)

// check verifies the whole heap and slab after every change when built
// with the invariants tag (internal/invariants); otherwise it compiles away.
func (q *Queue) check() {
	if !invariants.Enabled {
		return
	}
	if err := q.verify(); err != nil {
		panic("BUG: score: " + err.Error())
	}
}

// verify checks the queue's consistency: counts, the min-max heap order
// between every entry and each of its ancestors, and that used and free
// slots partition the slab. It is O(n log n): for tests and the
// invariants build tag, never the hot path.
func (q *Queue) verify() error {
	c := len(q.heap)
	if q.n < 0 || q.n > c || q.nfree < 0 || q.n+q.nfree != c || len(q.slab) != c || len(q.free) != c || len(q.keys) != c {
		return fmt.Errorf("queue counts: n=%d nfree=%d capacity=%d", q.n, q.nfree, c)
	}
	h := q.heap[:q.n]
	for i := 1; i < len(h); i++ {
		for a := (i - 1) / 2; ; a = (a - 1) / 2 {
			if minLevel(a) && above(&h[a], &h[i]) {
				return fmt.Errorf("min-level entry %d above its descendant %d", a, i)
			}
			if !minLevel(a) && above(&h[i], &h[a]) {
				return fmt.Errorf("max-level entry %d below its descendant %d", a, i)
			}
			if a == 0 {
				break
			}
		}
	}
	seen := make([]bool, c)
	mark := func(s int32, what string) error {
		if s < 0 || int(s) >= c {
			return fmt.Errorf("%s slot %d out of range", what, s)
		}
		if seen[s] {
			return fmt.Errorf("%s slot %d used twice", what, s)
		}
		seen[s] = true
		return nil
	}
	for i := range h {
		if err := mark(h[i].slot, "queued"); err != nil {
			return err
		}
	}
	for _, s := range q.free[:q.nfree] {
		if err := mark(s, "free"); err != nil {
			return err
		}
	}
	return nil
}
