// Package standin is a stand-in Agave validator: it serves the server side
// of Agave's scheduler-bindings interface (the one `agave-validator
// --enable-scheduler-bindings` opens) so that a scheduler such as qos's
// pack mode can be run, tested and measured without a validator.
//
// It behaves as the research note (shared/research/agave-external-scheduler.md)
// and the Agave sources it cites describe Agave 4.0–4.4 doing it:
//
//	client ──logon──► <ledger>/scheduler_bindings.ipc ──memfds──► client
//
//	             allocator (rts-alloc, 2 MiB slabs)
//	 slot 0      tpu_to_pack feeder ──TpuToPack──────────────► pack
//	                 ▲ sim traffic → mock sigverify → dedup
//	             progress tracker ───Progress (every tick)───► pack
//	 slot 1+i    worker i  ◄──pack_to_worker i── pack
//	                       ──worker_to_pack i──► pack   (responses in slot 1+i)
//	 1+W+j       check worker j (4.3, 4.4) on the MPMC check queues
//
// The parts:
//
//   - Session setup (session.go) creates every object as a memfd (2 MiB
//     huge pages when available, else 4 KiB pages; progress never huge),
//     initialises the allocator with 1 + workers (+ check workers) +
//     handles slots and the shaq queues in the profile's formats, and joins
//     its own threads: the feeder on slot 0, worker i on slot 1+i.
//   - The feeder (feed.go) copies each due packet of the traffic simulator
//     that passes the mock sigverify and dedup into a block of slot 0 and
//     publishes it with its source address (IPv4 as ::ffff:a.b.c.d) and
//     flags (vote, forwarded, staked); an exhausted allocator or a full
//     queue drops the packet and ends the batch, as Agave's tpu_to_pack does.
//     On request a share of the traffic names a blockhash the bank does not
//     know (StaleShare) and a share is sent again once the dedup window has
//     passed (ReplayShare, DedupWindow), so the bank answers
//     BLOCKHASH_NOT_FOUND and ALREADY_PROCESSED.
//   - The progress tracker (session.go) publishes leader state, slot,
//     progress through the slot, the leader window, and while a leader bank
//     is ready the remaining block cost and the latest blockhash, on every
//     tick change; a full queue ends the session, as in Agave.
//   - Workers (worker.go) validate each message as Agave's consume worker
//     does (1..64 transactions, flags), answer EXECUTE only with a leader
//     bank (BANK_NOT_AVAILABLE after 50 ms, MAX_WORKING_SLOT_EXCEEDED past
//     max_working_slot) and CHECK against the working bank, and allocate
//     every response array (and resolved-pubkeys array) from their own slot.
//   - The bank (bank.go, tx.go) charges real fees (score.View's Agave fee
//     rules), tracks account locks across in-flight batches
//     (ACCOUNT_IN_USE; held while a batch executes and released before
//     its response, as Agave's consumer does; conflicts within a batch
//     allowed as with SIMD-0083, or refused with BankConfig.
//     StrictBatchLocks), the block and per-writable-account cost limits
//     (reasons 81 and 84), recent blockhashes (BLOCKHASH_NOT_FOUND),
//     processed signatures (ALREADY_PROCESSED), fee-payer balances (68, 66)
//     and address lookup tables (87).
//   - The audit (audit.go) follows every block handed to the client until it
//     comes back through the allocator's remote-free lists: a block freed
//     twice, an offset never handed out, or a payload freed before its
//     message was read fails the session naming the offset; blocks never
//     freed are reported as leaks (payloads still unread in tpu_to_pack at
//     the end are not the client's and are reported apart).
//
// Counters (Stats) and per-transaction ground truth (Truth: fee, compute
// units, whether the payer was funded, whether its blockhash was stale)
// are exposed for tests and for measuring a scheduler against an oracle.
//
// The stand-in is not Agave: it executes no programs (every transaction
// that passes the bank's checks succeeds and pays its fee), charges the
// estimated cost as the executed cost, and its rules rest on reading the
// sources cited next to the code, not on a test against a validator.
package standin
