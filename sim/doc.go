// Package sim plays the validator around a running qos sidecar so that
// anyone can watch it work and measure how well it protects a leader.
//
// It creates the eight channels, produces TPU/FWD(/relayer) traffic from
// configurable agents (honest senders, a spammer, a sybil; agents may
// start and stop mid-run, share addresses behind a NAT, name another
// agent's fee payers with bad signatures, send valid transactions whose
// fee payer cannot pay, or use a fresh fee payer per transaction; see
// Scenarios for the named library), consumes what
// the sidecar sends to sigverify, verifies mock signatures (failures go
// back on sig_to_qos), schedules verified transactions by fee per compute
// unit within a per-slot budget (results on sch_to_qos, included first
// signatures on tx_status_cache), and measures the outcome against an
// oracle computed from the same deterministic traffic: the best value
// sigverify at full capacity and the scheduler could have taken, the same
// bar for every policy however many packets it sent.
//
// Data flow of one Run (validator side in this package, qos in between):
//
//	generator ──tpu/fwd/re1/re2_to_qos──► qos ──qos_to_sig──► sigverify ─fail─► sig_to_qos ──► qos
//	                                                             │ ok
//	                                                             ▼
//	                                                         scheduler ──► sch_to_qos, tx_status_cache ──► qos
//
// Transactions are real legacy and v0 Solana wire format (so the sidecar's
// parser sees what a validator would) with SetComputeUnitLimit and
// SetComputeUnitPrice instructions and a last instruction whose 24 data
// bytes attribute the packet:
//
//	0       4        6        8             16            24
//	+-------+--------+--------+-------------+-------------+
//	| QSIM  |agent u16|flag u16| seq u64     | produce ns  |
//	+-------+--------+--------+-------------+-------------+
//
// Flag bit 0 marks a transaction whose fee payer cannot pay: it verifies,
// but the mock scheduler never includes it (and it pays nothing).
//
// Signatures are a mock scheme (keyed xxhash of the message, expanded to
// 64 bytes), cheap to make and to check; they are not cryptography.
//
// Traffic is a pure function of the configuration and its seed: the same
// seed yields the same packet bytes in the same order, which makes runs
// under different sidecar policies comparable and lets the oracle be
// recomputed after the run instead of recorded during it.
package sim
