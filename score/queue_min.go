package score

// PeekMin returns the lowest entry without removing it (expired or not):
// the score a newcomer must beat when the queue is full. O(1): the
// minimum is the heap's root.
func (q *Queue) PeekMin() (Entry, bool) {
	if q.n == 0 {
		return Entry{}, false
	}
	return q.entry(&q.heap[0]), true
}
