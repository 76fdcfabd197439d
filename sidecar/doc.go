// Package sidecar is the daemon's single-threaded multiplexer: one busy
// loop that drains the validator's channels, scores and queues packets,
// paces the best toward sigverify, and feeds sigverify failures and
// scheduler results back into the model and the metastore hand-off.
//
// Per iteration of the loop:
//
//	tpu, fwd, re1, re2 ─(bounded batch each)─► admit.Judge: sender gate ► inspect ► score ► queue takes it?
//	                                           (penalty of an unparsable packet applied before the next)
//	                                           admit.Admit: recently confirmed? ► dedup ► queue.Push
//	tx_status_cache ─────────────────────────► recent-signature set
//	sig_to_qos ──────────────────────────────► model.Penalize(source IP) + penalty row
//	sch_to_qos ───► match partial meta ──────► model.Observe + metastore row
//	pacer ────────► queue.Pop ► recently confirmed? ► qos_to_sig
//
// The decision on each packet is package admit's; this package owns the
// channels, the pacing, applying penalties and learning, the rows, and the
// periodic work (counters, heartbeats, rejoining recreated channels, model
// saves).
//
// Nothing on this path allocates in steady state, takes a contended lock,
// makes a system call per packet or waits on another goroutine: counters
// are published as Stats values through a one-slot channel with a
// non-blocking send, and model files are written by a helper goroutine from
// a serialised copy.
package sidecar
