// Package model is the IP/signer reputation model: it scores a packet's
// source IP and fee payer, learns from completed transactions and from
// sigverify/parse feedback, prunes its tables and saves/loads itself.
//
// It knows nothing of where its inputs come from; the daemon and the
// offline replay feed it the same calls and get the same model.
//
// # Semantics
//
//   - Forward(ip, signer) = ipScore × signerScore. An unknown key scores the
//     exact median of its table's learned scores (the middle score, or the
//     mean of the two middle scores for an even count; 1 when nothing is
//     learned).
//   - Learned and penalty-only entries. A key is learned when Learn entered
//     it from completed transactions. An IP penalised while unknown is
//     penalty-only: it carries a multiplier (the product of its penalty
//     factors) and scores the learned median × multiplier, but it never
//     counts in the median. Only what the model has learned from completed
//     transactions says what "an unknown key" is worth.
//   - Observe buffers completed transactions; every BatchSize (400) it runs
//     Learn. Value = fee / execution ns (AssumedExecNanos, 100 µs, when not
//     executed), × ExecutedMultiplier (10) when executed.
//   - Learn, per table (IPs and signers separately): keys with at least
//     MinObservations (5) observations in the batch have new = mean value.
//     Every learned key moves: score ← (1-α)·score + α·target, α = 0.05,
//     where target is new, or the learned median before the batch when the
//     key has no new value. Other keys with a new value become learned at
//     it; a penalty-only IP becomes learned at new × its multiplier — the
//     conservative choice: it keeps the penalties it earned, exactly as if
//     it had been learned first and penalised after, so a spammer cannot
//     launder its penalties by completing five transactions. Other
//     penalty-only entries keep their multipliers: with nothing learned
//     about them there is nothing to average toward, so they leave only by
//     being learned or pruned. (Moving them toward the median as learned
//     keys move would forget a penalty within a few batches — 5 % of the
//     median comes back per batch, about 12 batches a second under load —
//     and a sybil IP claiming a high fee would get a bad packet through
//     every second or so.) The price: an honest IP penalised once (one
//     garbled packet) stays at median × 0.01 until it completes
//     MinObservations transactions in one batch or is pruned. Then the
//     learned entries are pruned to MaxIPs/MaxSigners (10 000) by removing
//     those whose scores are closest to the learned median after the
//     update (ties: lower key bytes go first), which keeps the most and
//     least valuable sources.
//   - Penalize(ip) (a failed sigverify or an unparsable packet) multiplies
//     the IP's score by PenaltyFactor (0.01): a learned IP stays learned and
//     keeps counting in the median; a penalty-only IP's multiplier is
//     multiplied; an unknown IP becomes penalty-only with multiplier
//     PenaltyFactor (score median × 0.01).
//   - Penalty-only entries are bounded apart from the learned ones: when
//     there are 2·MaxIPs of them, the next new one first prunes them to
//     MaxIPs, removing those closest to the median — the largest
//     multipliers, since their scores are median × mult ≤ median (ties:
//     lower key bytes go first). The least penalised go; an IP penalised
//     again and again survives a flood of IPs penalised once.
//   - MinScore (1e-30) floors every score: learned scores after each EMA,
//     entry and penalty, and penalty-only scores (median × mult). So no
//     score, and no product of an IP and a signer score (≥ MinScore², and
//     MinScore ≥ 1e-150), underflows to 0, and fee/CU still ranks the
//     worst senders among themselves.
//   - IP keys: IPv4 as ::ffff:a.b.c.d, IPv6 by its /64 prefix.
//
// # Determinism
//
// A model is a function of its parameters and the sequence of
// Observe/Learn/Penalize calls: per-key sums are taken in batch order, every
// choice that could depend on order (selections, pruning ties) is made in a
// total order on (value, key bytes), and no result depends on Go's map
// iteration order or on where entries sit in memory. Save writes tables
// sorted by key, so equal models have byte-identical files; a model that is
// saved, loaded and fed the rest of a sequence ends identical to one fed
// the whole sequence (buffered observations and penalty-only entries are
// saved too). The EMA is written so that no architecture fuses it into a
// multiply-add.
//
// # The median, and what it costs
//
// Each table keeps its median exact at every moment with two heaps of
// (score, slot) pairs: a max-heap of the lower half, a min-heap of the upper
// half. Forward reads the cached median in O(1). Penalize re-files one
// entry and rebalances the heaps in O(log n) (a few sifts of about 14
// levels on a 10 000-entry table), so a burst of penalties never costs an
// O(n) recomputation each. Learn, which changes every score anyway, works
// in O(n): one quickselect for the new median, one to choose what pruning
// removes, one to split the heaps again, then a heapify (quickselect with
// median-of-three pivots falls back to a sort after 2·log2(n) rounds, so
// O(n log n) at worst).
//
// Penalty-only IPs sit outside the heaps: a penalty on one is a multiply,
// and a new one an append. When there are 2·MaxIPs of them the next new
// one first prunes them to MaxIPs with one quickselect, so their memory
// stays bounded (preallocated by New) and the prune costs O(1) amortised
// per penalty. Learn touches only the penalty-only IPs it learns.
//
// # The reference (temporalxyz/solana-qos, model/src/models/ip_signer.rs)
//
// What the reference does, and where we differ:
//
//   - Median. The reference's "approximate median" is the score at the root
//     of a red-black tree ordered by (score, key): only roughly central. We
//     use the exact median.
//   - Batch. The reference learns when more than 400 completed transactions
//     are buffered (401); we learn at exactly BatchSize.
//   - Learning. Same rule: sums per key over the batch, the count ≥ 5 filter,
//     the EMA (old·(1-α) + new·α) of every known key toward its mean or
//     toward the median taken before the update, new keys entering at their
//     mean. The reference updates all known keys every batch, as we do.
//   - Pruning. The reference removes the tree root repeatedly (a block of
//     ranks around the approximate median, the root changing after each
//     removal); we remove the entries nearest the exact median by score
//     distance, ties by key bytes, so the result is exact and reproducible.
//     Its QoSModel trait method prunes to 5 IPs and 5 signers; the daemon
//     calls the inherent method with its max-ips/max-signers flags (10 000).
//   - Feedback. The reference penalises only IPs it already knows, so a fresh
//     spammer keeps the median; we enter unknown IPs at median × 0.01, as
//     penalty-only entries. Had they counted in the median, a sybil flood
//     rotating thousands of IPs would collapse it: penalised entries become
//     the majority, the median falls, the next IP enters at the new median
//     × 0.01, and so on geometrically (an end-to-end run of 7 s took it to
//     about 2e-61; a longer one underflows to 0). Every honest newcomer
//     then scores that median, and the EMA toward it drags learned keys
//     down too. The median is therefore taken over learned entries only,
//     and a flood cannot move it.
//   - Floor. The reference has none; we floor every score at MinScore.
//   - Keys. The reference keys IPv4 addresses as a u32 built in two byte
//     orders (big-endian for parse-failure feedback, little-endian
//     everywhere else, so that penalty lands on another IP) and drops IPv6;
//     we use one 16-byte key everywhere and key IPv6 by /64.
//   - Constants. The reference hard-codes α, the threshold, the multiplier,
//     the assumed 100 µs and the factor; here each is a Params field with the
//     reference's value as default.
//   - Persistence. The reference writes IP scores as text (never signer
//     scores) and never reads them back; we save and load the whole model.
//
// # Concurrency
//
// An IPSigner is owned by one goroutine. Clone (or AppendBinary, then
// WriteFileAtomic elsewhere) lets another goroutine save a copy.
package model
