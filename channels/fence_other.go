//go:build !amd64

package channels

import "sync/atomic"

// loadFence orders the record copy before it ahead of the tail load after
// it (the read side of a seqlock).
//
// Weakly ordered processors (arm64, ppc64, riscv64) may let a plain load
// of the copy complete after a later acquire load. An atomic swap is a
// full barrier in Go's implementation (arm64: SWPAL, or LDAXR/STLXR whose
// release half orders every earlier load before it, and a store-release
// is never reordered with a later load-acquire). w is a word private to
// the consumer, so the swap costs no cache-line traffic.
func loadFence(w *atomic.Uint64) { w.Swap(0) }
