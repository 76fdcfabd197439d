// Package pack is the scheduler core of pack mode: it decides which
// transactions go to which of the validator's execution workers, in
// batches, during the validator's leader slots — with no shared memory
// and no I/O of its own. The caller (the pack loop) decodes progress
// messages and execution responses and feeds them in; pack answers with
// batches of the caller's transaction ids.
//
// Its parts:
//
//   - Locks: read/write account locks held by in-flight batches, per
//     worker, thread-aware like Agave's ThreadAwareAccountLocks, so no
//     batch conflicts with another worker's;
//   - EstimateCost and CostParams: a transaction's block cost as Agave's
//     cost model computes it for scheduling (signatures, write locks,
//     instruction data, compute-unit limit, loaded-accounts data size);
//   - Budget: the leader slot's block budget (progress's
//     remaining_cost_units less what is in flight), the per-writable-account
//     limit, the vote limit and a reserve of block space for votes, with
//     reservation at dispatch and settlement on the execution response;
//   - Leader: the leader state from progress messages (EXECUTE only when
//     LEADER_READY; max_working_slot);
//   - Scheduler: the batch builder tying them together;
//   - Judge and the reason table: what an execution result teaches the
//     reputation model (credit, blame on the sender, or nothing).
//
// Hot paths (Keys.FromView, EstimateCost, Scheduler.Try, Flush, Finish)
// use preallocated pointer-free arrays and int32 indexes and do not
// allocate. None of the types is safe for concurrent use: the pack loop
// owns them.
//
// Compatibility with Agave rests on reading its source (release and file
// named next to each rule), not on a test against its code.
package pack
