// Package shaq speaks the shared-memory queue format of the shaq crate
// (anza-xyz/shaq) used by Agave's scheduler bindings: single-producer
// single-consumer rings in three header versions, and shaq 4.0's
// multi-producer multi-consumer ring, all over a channels/shm Region. It
// creates queue headers (the server side, as Agave's handshake server does)
// and joins them with header checks; elements are byte views of a fixed
// size, never decoded here.
//
// # Layouts (little-endian, usize = 8 bytes)
//
// Read from the shaq sources at tags 1.0.2 (62a78836, src/lib.rs), v3.0.0
// (c2f4e1a7, src/spsc.rs) and v4.0.0 (1631fbbb, src/spsc.rs, src/mpmc.rs,
// src/futex.rs); the 1.0.2 and 4.0.0 headers were also checked against hex
// dumps of real queues (shared/research/agave-external-scheduler.md §3.1).
//
//	V1_0_2 (shaq 1.0.2, Agave 4.0), header 192 B:
//	  0 write u64 | 64 read u64 | 128 buffer_size u64 (capacity) | 136 version u8 = 1
//	V3 (shaq 3.0.0, Agave 4.1-4.3), header 192 B:
//	  0 magic u64 = "shaqspsc" big-endian | 8 version u32 = 0x0002_0000 |
//	  12 buffer_mask u32 | 64 write u64 | 128 read u64
//	V4 (shaq 4.0.0, Agave 4.4), header 256 B: as V3 with version 0x0003_0000,
//	  plus 192 waiters u64 (consumers sleeping on the futex)
//	MPMC (shaq 4.0.0 mpmc.rs), header 384 B:
//	  0 magic "shaqmpmc" | 8 version 0x0003_0000 | 12 buffer_mask u32 |
//	  64 producer_reservation | 128 producer_publication |
//	  192 consumer_reservation | 256 consumer_release | 320 waiters
//	MPMC of shaq 3.0.0 (v3.0.0 mpmc.rs, handshake VERSION 5), header 320 B:
//	  as 4.0.0 with version 0x0002_0000 and no waiters line
//
// Checked against the real crates in a session-local run (not part of CI:
// fetched code is never committed): shaq 1.0.2, 3.0.0 and 4.0.0 built from
// the tags above exchanged 200,000 elements with this package in both
// directions, each side creating the queue in turn, with both sides
// sleeping on the futex for 4.0.0 (so each side's wake reaches the other);
// likewise the 3.0.0 and 4.0.0 MPMC queues.
//
// Elements follow the header (every element type Agave sends has an
// alignment of at most 64, so the buffer starts right after it). Element i
// (counting from creation) lives in slot i & (capacity-1). The capacity is
// the largest power of two of elements that fits in the file after the
// header; joining recomputes it from the file size and rejects a header
// that disagrees, as shaq does.
//
// # Protocol
//
// Indices are free-running u64 counters. The producer keeps private copies
// of both: Reserve hands out the slot at its private write index (full when
// write - read > mask against its cached read), Commit publishes the write
// index, Sync refreshes its cached read. The consumer mirrors it: TryRead
// returns the slot at its private read index, Finalize publishes the read
// index, Sync refreshes its cached write. Nothing is visible to the peer
// before Commit/Finalize.
//
// On V4 (and MPMC) a consumer may sleep on a futex on the low 32 bits of the
// write (publication) word. The producer's Commit stores the write index,
// then (the SeqCst fence) loads waiters and, if any, issues FUTEX_WAKE
// without FUTEX_PRIVATE_FLAG (the memory is shared across processes).
// Without that step an Agave worker blocked in wait never wakes.
//
// # Memory ordering
//
// Go's sync/atomic operations are sequentially consistent: a store is at
// least a Release store, a load at least an Acquire load, a
// read-modify-write at least AcqRel. Every Rust access in shaq is one of
// these, so each Go atomic is as strong as its Rust counterpart or
// stronger; each one says what it orders.
//
// # Faults
//
// Joining checks magic, version and capacity and fails with a *HeaderError
// naming the file, the field and, when the header belongs to another shaq
// release, which one. Afterwards indices the peer publishes are only ever
// masked into the ring: a hostile or corrupt peer can make the queue look
// full or empty (reported by Err), never make this side read or write
// outside the mapping.
package shaq
