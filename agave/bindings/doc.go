// Package bindings is the Go side of Agave's agave_scheduler_bindings: the
// fixed-layout messages an external scheduler ("pack") exchanges with an
// Agave validator over shared-memory queues, their flag sets and result
// codes, and the ABI profile of each supported Agave release line.
//
// Every message is a plain Go struct read from and written to a byte slice at
// the exact offsets of Agave's repr(C) struct (little endian, usize = 8
// bytes, padding written as zero). Nothing here touches shared memory
// directly: callers hand in the slot bytes a queue returned, or the bytes of
// the allocator mapping for the region helpers, and every read is bounds
// checked. Decoding returns a sentinel error (no allocation) that the caller
// wraps with the name of the queue or file it read.
//
// # Profiles and layouts
//
// The interface is marked unstable by Agave and changes with minor releases.
// Each Profile pins one release line; its ABI selects the message layouts:
//
//	ABI      Agave      bindings            Progress  CheckResponse  worker queues
//	ABI40    4.0        in-tree 4.0         48 B      64 B           PackToWorker (check+execute), tagged response region
//	ABI41    4.1–4.3    in-tree 4.1, 5.0.0  80 B      64 B           as ABI40
//	ABI44    4.4        6.0.0 (agave-sdk)   96 B      96 B           PackToExecutionWorker + PackToCheckWorker, untagged regions
//
// Sizes and offsets (golden-tested in layout_test.go):
//
//	SharableTransactionRegion       16  offset u64 @0, length u32 @8
//	SharablePubkeys                 16  offset u64 @0, num_pubkeys u32 @8
//	SharableTransactionBatchRegion  16  num_transactions u8 @0, transactions_offset u64 @8
//	TransactionResponseRegion       16  ABI40/41: tag u8 @0, num u8 @1, offset u64 @8
//	                                    ABI44:    num u8 @0, offset u64 @8 (no tag)
//	TpuToPack                       40  transaction @0, flags u8 @16, src_addr [16] @17
//	Progress (ABI40)                48  leader_state @0, current_slot @8, next_leader_slot @16,
//	                                    leader_range_end @24, remaining_cost_units @32, progress u8 @40
//	Progress (ABI41)                80  leader_state @0, progress u8 @1, epoch @8, current_slot @16,
//	                                    next_leader_slot @24, leader_range_end @32,
//	                                    remaining_cost_units @40, latest_blockhash [32] @48
//	Progress (ABI44)                96  as ABI41 to @40, remaining_allocated_accounts_data_size @48,
//	                                    latest_blockhash @56, target_bank_time_ms u16 @88
//	PackToWorker / ...ExecutionWorker 32 flags u16 @0, max_working_slot @8, batch @16
//	PackToCheckWorker (ABI44)       24  flags u16 @0, batch @8
//	WorkerToPack                    40  batch @0, processed_code u8 @16, responses @24
//	ExecutionResponse               32  execution_slot @0, not_included_reason u8 @8,
//	                                    cost_units @16, fee_payer_balance @24
//	CheckResponse (ABI40/41)        64  four flag bytes @0..3, included_slot @8, balance_slot @16,
//	                                    fee_payer_balance @24, resolution_slot @32,
//	                                    min_alt_deactivation_slot @40, resolved_pubkeys @48
//	CheckResponse (ABI44)           96  four flag bytes @0..3, scheduling_details_flags @4,
//	                                    included_slot @8, transaction_fee @16, prioritization_fee @24,
//	                                    estimated_cost_units @32, allocated_accounts_data_size @40,
//	                                    balance_slot @48, fee_payer_balance @56, resolution_slot @64,
//	                                    min_alt_deactivation_slot @72, resolved_pubkeys @80
//
// Sources (read, not tested against Rust code): Agave v4.0.0-rc.0 (8e3bcf0c)
// scheduler-bindings/src/lib.rs for ABI40; anza-xyz/agave-sdk tag
// agave-scheduler-bindings@v5.0.0 (9a295034) scheduler-bindings/src/lib.rs for
// ABI41; agave-sdk 711c4dfc (scheduler-bindings 6.0.0) for ABI44. The
// offsets were checked with offset_of! on those structs (see
// docs/agave-external-scheduler.md §4).
//
// # Ownership (from the bindings' documentation)
//
// A TpuToPack transfers its transaction block to pack, which must free it.
// A PackToWorker does not transfer anything: pack frees its batch array and
// payloads only after the matching WorkerToPack. A WorkerToPack transfers its
// response array, and each CheckResponse's resolved_pubkeys array when
// num_pubkeys > 0, to pack.
package bindings
