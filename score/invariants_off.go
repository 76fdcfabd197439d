//go:build !invariants

package score

// invariants is true under the invariants build tag: the queue then
// verifies its whole heap and slab after every change.
const invariants = false

func (q *Queue) check() {}
