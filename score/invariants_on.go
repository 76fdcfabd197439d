//go:build invariants

package score

// invariants is true under the invariants build tag: the queue then
// verifies its whole heap and slab after every change.
const invariants = true

func (q *Queue) check() {
	if err := q.verify(); err != nil {
		panic("BUG: score: " + err.Error())
	}
}
