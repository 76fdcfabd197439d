// Package packmode is the runtime of `qos pack`: the busy loop that drives
// one Agave external-scheduler session (agave/session) with the scheduler
// core of package pack, and the reconnecting runner around it.
//
// Per pass of the loop, on one locked OS thread:
//
//	progress_tracker ─► all of it, every pass: leader state, slot, budget
//	worker_to_pack[i] ─► all of it, every pass: results → Finish, learning,
//	                     payloads freed or requeued, response and batch
//	                     arrays freed
//	tpu_to_pack ─► at most DrainBatch messages: admission (parse, fee, cost,
//	               score by policy) into the priority queue, votes into
//	               their own lane; with Config.Check every non-vote, and
//	               without it those with address-table lookups, go to
//	               CHECK first (a lock set is known only with its lookups
//	               resolved: pack never executes one that is not)
//	expiry ─► the lowest queued entries older than the TTL are freed
//	EXECUTE ─► only when LEADER_READY: votes first, then the queue by
//	           score; pack.Scheduler builds batches of ≤ 64 that
//	           conflict with no other worker's (and, with
//	           StrictBatchLocks, not within themselves) within the block
//	           and account budgets; each batch's array
//	           is allocated from the client's allocator handle and sent to
//	           its worker with max_working_slot
//
// Memory follows the ownership rules of Agave's scheduler bindings
// (shared/research/agave-external-scheduler.md §4.4, read from agave
// v4.0.0-rc.0 core/src/banking_stage and scheduler-bindings): every
// TpuToPack payload is pack's and is freed exactly once — when executed,
// refused, expired, evicted or rejected at admission, or at shutdown —
// every response array is freed after it is read, and each batch array
// the loop allocated is freed after its worker answered. An offset that
// points outside the mapping or at a block that is not live is counted
// and dropped, never followed.
//
// Learning: each execution (or CHECK) result, joined with what admission
// recorded (source IP, fee payer, fee, CU price, estimated cost, score),
// becomes a metastore row of kind RowPackResult (learn.go), handed to
// Config.Rows without blocking; the model's observation is built from
// that row (metastore.Row.PackObservation: pack.Judge, then
// pack.ModelObservation; policy "model" only), exactly as replay builds
// it from the stored row.
//
// Nothing in a pass allocates once the loop is warm.
package packmode
