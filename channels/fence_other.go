//go:build !amd64

package channels

import "sync/atomic"

// The two fences of the seqlock on weakly ordered processors (see "Memory
// ordering" in doc.go). They are built from sync/atomic operations only,
// so each rests on how Go implements those per architecture (read from the
// Go 1.26 sources, internal/runtime/atomic/atomic_*.s and
// cmd/compile/internal/ssagen/intrinsics.go; the ARMv8 rules are the
// Arm Architecture Reference Manual's, section B2.3 "Ordering
// requirements"):
//
//	arch      Store            Load                Swap
//	arm64     STLR (release)   LDAR (acquire)      SWPALD, or LDAXR/STLXR without LSE
//	ppc64x    SYNC; STD        SYNC; LD; ISYNC     LWSYNC; LDAR/STDCX.; ISYNC
//	riscv64   AMOSWAP.D.aqrl   LR.D.aq             AMOSWAP.D.aqrl
//	loong64   AMSWAPDB.D       LD.D; DBAR          AMSWAPDB.D
//	mips64x   SYNC; SD; SYNC   SYNC; LD; SYNC      SYNC; LLD/SCD; SYNC
//	s390x     STG; SYNC        LG (strongly ordered)
//
// The Go compiler does not move memory accesses across a sync/atomic
// operation (atomics are ordered in its memory chain), so the program
// order below is the order the processor sees.

// publishFence orders the tail store the producer just made before the
// record stores that follow it: without it, a record store into a slot a
// lagging consumer is still copying could become visible before the tail
// that tells the consumer so, and the consumer's re-check would pass a
// torn record.
//
// It is an atomic Load of the tail word itself. arm64: a store-release
// (STLR) followed in program order by a load-acquire (LDAR) is ordered
// (release-acquire is RCsc in ARMv8), and every access after a
// load-acquire is ordered after it: tail store, then tail load, then the
// record stores. This holds with or without the LSE atomics, unlike a
// Swap's LDAXR/STLXR pair, whose store half does not order later stores.
// ppc64x: the Load starts with SYNC, a full barrier. riscv64, loong64,
// mips64x, s390x: the Store already ends fully ordered (an .aqrl AMO, a
// barrier AMO, a trailing SYNC); the Load is then redundant but harmless.
// It costs one load per publish (every capacity/4 records, or per Sync).
func publishFence(tail *atomic.Uint64) { tail.Load() }

// loadFence orders the record copy before it ahead of the tail load after
// it (the read side of a seqlock): plain loads may otherwise complete
// after a later load-acquire.
//
// It is an atomic Swap of a word private to the consumer (no cache-line
// traffic). arm64: its store half is a store-release (SWPALD, or STLXR),
// which orders every earlier load before it, and the tail's load-acquire
// after it is ordered after that store-release (RCsc). ppc64x: LWSYNC
// orders earlier loads before later loads. riscv64, loong64, mips64x: a
// fully ordered AMO or SYNC. s390x: loads are not reordered.
func loadFence(w *atomic.Uint64) { w.Swap(0) }
