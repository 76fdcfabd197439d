// Package sidecar is the daemon's single-threaded multiplexer: one busy
// loop that drains the validator's channels, scores and queues packets,
// paces the best toward sigverify, and feeds sigverify failures and
// scheduler results back into the model and the metastore hand-off.
//
// Per iteration of the loop:
//
//	tpu, fwd, re1, re2 ──(bounded batch each)──► admit: sender gate ► inspect ► score ► queue takes it? ► recent? ► dedup ► queue
//	tx_status_cache ─────────────────────────────► recent-signature set
//	sig_to_qos ──────────────────────────────────► model.Penalize(source IP)
//	sch_to_qos ───► join partial meta ──► model.Observe + metastore row
//	pacer ────────► queue.PopMax ► recent? ► qos_to_sig
//
// Nothing on this path allocates in steady state, takes a contended lock,
// makes a system call per packet or waits on another goroutine: counters
// are published as value snapshots through a one-slot channel with a
// non-blocking send, and model files are written by a helper goroutine from
// a serialised copy.
package sidecar
