// Package score makes the per-packet decisions of the sidecar without any
// I/O: it inspects a transaction's wire bytes with their source address
// and flags (Evaluator.InspectTx, the daemon's one inspection; packet
// records go through the thin wrappers Inspect and Evaluate), parses and
// sanitizes the Solana transaction in place (legacy, v0 and v1, as current
// Agave's TransactionView does), applies the checks Agave makes before it
// buys a transaction a place (compute-budget instructions, account locks;
// see View.Admit), computes its fee and requested compute units the way
// Agave does, hashes it as the validator does (TxHash, PacketHash), scores
// it, keeps the best in a fixed-capacity priority queue and paces them
// toward sigverify.
//
// Everything on the per-packet path is allocation-free: the View holds
// offsets into the caller's bytes, the Queue is a min-max heap of small
// pointer-free entries over a preallocated slab of records, and the Pacer
// is a token bucket driven by the caller's clock.
//
// The transaction layout the View reads (docs/solana-wire.md §2):
//
//	+------+---------------+-----+-----------+-------+------------------+-----------+--------------+------------------+
//	| nsig | nsig × 64 sig | v0? | req ro ru | nkeys | nkeys × 32 keys  | blockhash | nix, instrs  | v0: nlut, lookups|
//	|  u8  |               | 0x80|  3 × u8   |  u8   |                  |    32     | shortvec ... | u8, ...          |
//	+------+---------------+-----+-----------+-------+------------------+-----------+--------------+------------------+
//	                       ^ message starts here (what signatures sign)
//
//	instruction: program u8 | shortvec n | n account-index bytes | shortvec len | len data bytes
//	lookup:      table key 32 | shortvec w | w index bytes | shortvec r | r index bytes
//
// A v1 transaction (SIMD-0385) puts the message first and the signatures
// last:
//
//	+------+-----------+----------+----------+-----+-------+------------+--------------+--------------------+-----------+-----------+
//	| 0x81 | req ro ru | cfg mask | lifetime | nix | nkeys | nkeys × 32 | popcnt(mask) | nix × (prog u8,    | payloads: | nreq × 64 |
//	|      |  3 × u8   |  u32 LE  |    32    | u8  |  u8   | addresses  | × 4 values   | nacc u8, len u16)  | accs,data | sigs      |
//	+------+-----------+----------+----------+-----+-------+------------+--------------+--------------------+-----------+-----------+
//	^ message starts here and ends before the signatures
//
// Config mask bits: 0 and 1 the priority fee in lamports (u64, two
// words), 2 the compute-unit limit, 3 the loaded-accounts data size, 4
// the heap size.
//
// None of the types here is safe for concurrent use; the daemon's hot loop
// owns them.
package score
