package channels

import "sync/atomic"

// The two fences of the seqlock (see "Memory ordering" in doc.go). On
// amd64 both compile to nothing:
//
//   - Go's atomic Store of a uint64 is an XCHG, a full barrier: the tail
//     store is globally visible before any later store of the producer
//     (and TSO keeps stores in program order anyway).
//   - Under TSO a load is never reordered with an older load, so the
//     record copy's loads complete before the tail re-check's load.
//   - The Go compiler does not move memory accesses across a sync/atomic
//     operation or a call (atomics are ordered in its memory chain), so
//     the program order above is the machine order.
//
// Read from the Go 1.26 sources: cmd/compile/internal/ssagen/intrinsics.go
// (AtomicStore64 on amd64 lowers to XCHGQ, AtomicLoad64 to MOVQ) and
// verified on the compiled code (`go build -gcflags=-S`: Store and Swap
// both emit XCHGQ).

// publishFence orders the tail store just made by the producer before the
// record stores that follow it. tail is the tail word just stored.
func publishFence(*atomic.Uint64) {}

// loadFence orders the record copy before it ahead of the tail load after
// it (the read side of a seqlock). w is a word private to the consumer.
func loadFence(*atomic.Uint64) {}
