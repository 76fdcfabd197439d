// Package channels owns the shared-memory rings between the validator and
// the sidecar: their file layout (wire-compatible with Temporal's headless
// que channel), creating and joining them on /dev/shm or hugetlbfs, the
// lossy producer and consumer, the table of named channels and their record
// layouts. It knows nothing of Solana or scoring; it is the only package
// that uses unsafe or atomics.
//
// # File layout
//
// One file per channel, /dev/shm/<prefix><name> or <hugetlbfs>/<prefix><name>
// (rounded up to whole huge pages there). Little-endian; each counter alone
// on a 128-byte line:
//
//	0     128    256    384    512          624   632   640
//	+-----+------+------+------+------------+-----+-----+--------------------+
//	|tail | head | prod | cons |  metadata  | N   |magic| N records          |
//	|u64  | u64  | hb   | hb   |  112 bytes | u64 |     | of the record size |
//	+-----+------+------+------+------------+-----+-----+--------------------+
//	 ^producer ^consumer                          "TEMPORAL" as LE u64
//
// Record i (counting from the ring's creation) lives in slot i & (N-1).
// sch_to_qos carries the packet-hash seed at metadata offset 0 (file
// offset 512).
//
// # Lossy ("headless") protocol
//
// The producer never waits. It writes record tail into its slot, increments
// a private tail, and publishes it (an atomic store) at least every N/4
// records and on Sync. The consumer keeps a private read index; when the
// published tail is more than N - N/4 ahead of it, the producer may be
// rewriting the slots it would read next, so it jumps to tail - (N - N/4)
// and counts the records it passed as skipped. It copies a record out, then
// loads the tail again: the producer publishes a tail beyond next+N-N/4
// before it starts rewriting slot next, so if the tail is still inside the
// window the copy is whole; otherwise it is discarded as an overrun (a
// seqlock read). The consumer stores its index as head every few hundred
// records and when idle; in lossy mode nobody depends on it but `qos-cli
// inspect`.
//
// # Memory ordering
//
// Go's sync/atomic operations are sequentially consistent. Two cases:
//
// A record published before the consumer reads it. The producer writes
// the record with plain stores, then stores the tail (release); the
// consumer loads the tail (acquire), then copies the record. The tail
// store is synchronized before the load that observes it, so the record's
// writes happen before its copy: this much is the Go memory model alone.
//
// A lagging consumer racing the producer around the ring (a seqlock). The
// consumer copies record i while the producer may be writing record i+N
// into the same slot; it keeps the copy only if a second tail load, after
// the copy, is still at most next+N-N/4. The producer publishes a tail
// beyond i+N-N/4 before it writes record i+N (it publishes at least every
// N/4 records). The argument needs two orderings that a release store and
// an acquire load do not give on weakly ordered CPUs:
//
//	producer: store tail ≥ i+N-N/4+1 ─publishFence─► stores of record i+N
//	consumer: loads of the copy of i ─loadFence─► load tail again
//
// so that a copy that saw any byte of record i+N also sees that tail, and
// is discarded. The copy races with the writes by design (and the writer
// may be another process, in C), which the Go memory model does not
// describe beyond word-sized reads; these two steps rest on how Go maps
// its atomics onto each processor's memory model, written out in
// fence_amd64.go and fence_other.go. Both fences compile to nothing on
// amd64 (TSO, and an atomic store there is a full barrier). Each atomic
// in the code says what it orders. Joining loads the magic before the
// capacity; initialising stores them in the opposite order.
//
// # Faults
//
// Joining checks the magic, the capacity and the file size before reading
// a record; every failure is an *Error naming the file and the remedy,
// matching one of the Err* sentinels. Whatever the producer writes into the
// header or the records afterwards, the consumer only ever reads slots
// inside the ring and never panics.
//
// Another process can shrink a channel file under a live mapping at any
// moment (a peer built for another capacity or record size sizes the file
// to its own idea before checking it; or a `truncate`), and touching a
// page past the new end raises SIGBUS. No size check can prevent that (it
// would race with the truncation), so the fault is made survivable: a
// goroutine running with debug.SetPanicOnFault(true) gets a panic instead
// of a crash. The caller recovers it at a point of its choosing, FaultAddr
// gives the faulting address, Faulted finds the Consumer or Producer it
// hit (by the address, or by the file's size when the system reports no
// address) and Detach drops that mapping without touching it again and
// returns an *Error (ErrTruncated) naming the file; the detached channel
// reads as empty until the caller joins the file again. Opening and
// closing handle a fault in their own mapping themselves. A file removed
// or recreated (a new inode) never faults: Replaced tells a consumer to
// rejoin.
//
// The package is Linux-only (mmap flags, hugetlbfs).
package channels
