package channels

import "sync/atomic"

// loadFence orders the record copy before it ahead of the tail load after
// it (the read side of a seqlock).
//
// On amd64 (TSO) the processor never reorders a load with an older load,
// and the Go compiler does not move memory accesses across a sync/atomic
// operation or a call, so nothing is needed: this compiles to nothing.
func loadFence(*atomic.Uint64) {}
