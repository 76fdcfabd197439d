// Package rtsalloc speaks the shared-memory slab allocator of the rts-alloc
// crate that Agave's scheduler bindings put every transaction, batch and
// response in: creating an allocator file (the server side, as Agave's
// handshake server does), joining it as one worker slot, allocating blocks
// of 256..4096 bytes by size class, freeing them locally or remotely, and
// draining the remote frees other slots made of this slot's blocks. Blocks
// are named by their byte offset from the start of the file; no pointer
// crosses the API, and every offset a caller or peer supplies is checked.
//
// # Formats
//
//   - V2: rts-alloc 2.0.0 (Agave 4.0). Read from rts-alloc 0.1.0 (apfitzge/
//     rts-alloc 1de428c0: src/header.rs, init.rs, allocator.rs, slab_meta.rs,
//     free_stack.rs, global_free_list.rs, worker_local_list.rs,
//     remote_free_list.rs) and checked against a dump of a real 0.1.0
//     allocator (shared/research/agave-external-scheduler.md §3.2). That
//     2.0.0 keeps this layout is INFERRED: its API (explicit worker index)
//     and module set match, its sources could not be fetched. The 0.x
//     layout and algorithms were checked against real rts-alloc 0.1.0 in a
//     session-local run (not part of CI): this package joined a
//     Rust-created allocator and Rust joined one this package created,
//     with remote frees in both directions drained by the other side and
//     every slab allocatable again afterwards.
//   - V4: rts-alloc 3.x/4.x (Agave 4.1-4.3). As V2 plus a claimed flag and
//     an outstanding-bytes counter at the start of each worker record (heads
//     move to +16) and slot claiming by CAS; the create-side layout sizes
//     the worker table to fill the metadata slabs. Read from an index copy
//     of anza-xyz/rts-alloc src/header.rs at 2a61e1f4 (VERSION still 1);
//     which crate releases carry exactly this is INFERRED.
//   - V5: rts-alloc 5.x (Agave 4.4). Worker records grow to 128 bytes with a
//     remote-free head at +64 that collects the offsets of this worker's
//     blocks freed by others (the next offset in each block's first 8
//     bytes); slab metadata shrinks to 16 bytes; a slab emptied by a local
//     free gets assigned_worker = NULL before going back to the global list.
//     Read from an index copy of anza-xyz/rts-alloc src/allocator.rs (id
//     62521954751) and src/header.rs at 693424f8. The version word
//     0x0004_0000 (5.1.0, from docs.rs, per the research note) and the
//     64-bit global free-list head packed as generation<<32 | slab index
//     (693424f8, an ABA guard) are INFERRED for the released 5.1 crate.
//
// # Layout (all formats; offsets in the header, little-endian)
//
//	0    magic u64 = 0x0072_7473_616c_6f63 ("\0rtsaloc" big-endian)
//	8    version u32 (V2, V4: 1; V5: 0x0004_0000)
//	12   num_workers u32, 16 num_slabs, 20 slab_size, 24 free_list_elements_offset,
//	28   slab_shared_meta_offset, 32 slab_free_stacks_offset, 36 slabs_offset
//	64   global free-list head (u32 slab index; V5: u64 generation<<32|index)
//	128  worker records, num_workers x (V2, V4: 64 B; V5: 128 B):
//	       V2:     partial u32 @8c, full u32 @8c+4 for size class c = 0..4
//	       V4, V5: claimed u8 @0, outstanding bytes u64 @8, heads @16+8c
//	       V5:     remote_free_head u64 @64 (NULL = 2^64-1)
//	free list elements: per slab {global_next, local_prev, local_next u32}
//	slab meta: per slab assigned_worker u32 @0 (NULL 0xFFFFFFFF),
//	       size_class u64 @8; V2, V4 add remote stack head u16 @64 (128 B
//	       records; V5: 16 B)
//	free stacks: per slab top u16, capacity u16, stack [slab_size/256]u16
//	slabs: slab i at slabs_offset + i*slab_size (slabs_offset a multiple of
//	       slab_size)
//
// # Memory ordering
//
// Go's sync/atomic operations are sequentially consistent, as strong as
// or stronger than the Acquire/Release/AcqRel of the Rust accesses they
// mirror. rts-alloc's 16-bit (remote stack head, block link) and 8-bit
// (claimed) atomics are accessed here through the aligned 32-bit word that
// contains them, touching only their bytes (the rest is padding or a freed
// block's dead bytes); on x86-64 a locked 32-bit operation and a locked
// 16/8-bit operation on the same cache line are atomic with respect to each
// other, and Agave runs on x86-64.
//
// # Faults
//
// Join validates the header (magic, version, sizes, and that every region
// lies inside the file). Afterwards every index read from shared memory
// (list heads and links, size classes, free-stack entries, remote-free
// chains) is range-checked before use; a violation stops that operation
// and is kept in Err. Free rejects an offset outside the slabs, not at a
// block start, in a free slab, or (for this slot's own blocks, tracked in a
// private bitmap) not currently allocated. Whether a remote block is live
// only its owner knows: a Go owner rejects and counts a bad remote free at
// CleanRemoteFrees.
package rtsalloc
