// Package model is the IP/signer reputation model: it scores a packet's
// source IP and fee payer, learns from completed transactions and from
// sigverify/parse feedback, keeps bounded tables and saves/loads itself.
//
// It knows nothing of where its inputs come from; the daemon and the
// offline replay feed it the same calls and get the same model.
//
// # What a score means
//
// The sidecar ranks a packet by score × fee / CU. The model's score is an
// estimate of the share of the fee per compute unit a packet from that
// source claims that will actually be paid if sigverify takes it: score ×
// fee/CU is then the expected value the packet brings, which is what the
// oracle maximises. An honest sender whose transactions are included
// scores about 1 and ranks by its fee, exactly as fee-only ranking would;
// a sender whose claims end in failed signatures, unparsable bytes or
// transactions that verify but are never paid scores near 0, whatever it
// claims. The model therefore changes fee-only ranking only where the
// evidence says a claim will not be paid.
//
// # Records
//
// Every outcome of a packet the sidecar handed on has a claim c (its fee
// per CU) and a paid value: c when the scheduler executed it (included:
// its fee was paid), 0 when it verified but was never included (it paid
// nothing, Observe with ExecNanos 0; unless it was outbid, see below), 0
// when it failed sigverify or did not parse (Penalize; an unparsable packet's claim is unknown and weighs
// the sender's usual claim). A record keeps the mean claim and the mean
// paid value of its key's latest outcomes — a running mean of the first
// Window (200) outcomes, then an exponential moving average of weight
// 1/Window per outcome — and its rate is mean paid / mean claim. So
// 1 % of failures at a sender's usual claims costs it 1 %, not
// everything, and a sender that turns from paying to failing claims sinks
// as fast as its failed claims outweigh its paid past (value-weighted: a
// farmed IP flooding bad signatures that claim 100 × its old fees drops
// below its own past traffic within about 140 failures).
//
// Records are kept per IP (IPv4 address, IPv6 /64), per /24 (IPv6 /48),
// per /16 (IPv6 /32), per fee payer, plus one newcomer record: the
// outcomes of IPs that had fewer than MinObservations outcomes themselves.
// Every outcome updates the IP's three records (and the newcomer record
// for a newcomer) at once, in O(1): there are no batches, so a crowd of
// senders each seen once or twice is learned through its neighbourhoods
// as its outcomes arrive, and the newcomer record says what unknown
// senders have been doing lately.
//
// # Outbid is not unpaid
//
// A verified transaction can go unpaid for two reasons: its fee per CU
// ranked below what the blocks took (it was outbid: another sender paid
// more, no fault of its own), or it could never pay. Counting the first
// as unpaid would make an honest sender whose cheap transactions miss the
// blocks look like one that does not pay: its rate falls, its expensive
// transactions then rank below other senders' cheaper ones, and near the
// bar the ranking follows the noisy rate instead of the fee (honest
// overload: the model lost up to a few points to plain fee ranking).
//
// So the model learns an inclusion bar from the stream of outcomes: the
// BarQuantile (5 %) quantile of the claims of paid transactions, tracked
// by one multiplicative step per paid outcome (down by BarStep, 1 %,
// when the paid claim is below the bar, up by BarStep·q/(1−q) when not:
// it rests where a share q of paid claims lies below it; the first paid
// claim sets it). An unpaid outcome that claimed less than the bar, not
// of the sender's fault (Observation.SenderFault), is neutral: it changes
// no record, neither the IP's, its neighbourhoods', the newcomer's nor
// its payer's. Unpaid outcomes at or above the bar count in full: a
// sender that claims high fees and never pays — the one that displaces
// honest traffic, which it can only do by claiming above the bar — sinks
// as before, and so does one whose transactions could never pay,
// whatever they claim. A sender that claims below the bar and never pays
// keeps its rate, but it ranks below every claim the blocks take, as
// under fee ranking: it costs nothing that fee ranking would not. Moving
// the bar up takes paid claims above it, that is fees actually paid; a
// bar that lags below the blocks' real bar (load rising) only counts more
// outcomes, as without a bar. The bar is a single number updated by a
// fixed sequence of float64 operations from Observe's calls, so replay
// rebuilds it exactly; it is saved with the model (file version 4).
// BarQuantile 0 disables it. Pack mode is not changed by it: the only
// unpaid outcomes it reports are of the sender's fault.
//
// # IP factor
//
// IPFactor(ip) shrinks each level's rate toward the level above it:
//
//	prior  = UnknownPrior (1)
//	p_new  = shrink(newcomer, prior)
//	p_16   = shrink(record of ip's /16, p_new)     (absent: p_new)
//	p_24   = shrink(record of ip's /24, p_16)
//	p_ip   = shrink(record of ip,       p_24)
//	shrink(r, q) = (rate·n + k'·q) / (n + k'),  k' = PriorWeight·(1 − n/Window)
//
// and then
//
//	IPFactor = max(MinScore, validity × max(p_ip, UnpaidFloor))
//
// where validity comes from the most specific record (IP, else /24, else
// /16) holding at least MinObservations outcomes: 1 while at most
// FailTolerance (10 %) of its claims failed, falling linearly to 0 when
// half of them fail (1 when no record qualifies, so a new IP's first
// garbled packet does not sink it). UnpaidFloor (1e-6) keeps a sender
// whose packets verify but are never paid (at claims above the learnt
// bar, or before one is learnt) above every sender whose claims fail, and within reach of the
// queue when there is room; without it such a sender would fall to
// MinScore and be refused unparsed for good.
//
// In shrink, n is how many outcomes the record averages. A record with few
// outcomes leans on its neighbourhood; one with a full window stands on
// its own rate (k' = 0); a sender whose claims fail half the time or more
// scores MinScore, and the daemon's sender gate refuses its packets before
// parsing them. A fresh IP of a flooded /24 or /16
// scores that neighbourhood's rate from its first packet: a sybil rotating
// 1 M addresses gains nothing from novelty. An IP in a neighbourhood the
// model has never seen scores p_new: high while newcomers pay, low while
// a wave of newcomers fails.
//
// # Pending claims
//
// Outcomes do not come back in the order their packets were sent: a failed
// signature is reported within milliseconds, a paid or unpaid outcome at
// the end of the scheduler's slot (about 400 ms). A young record — an IP
// or neighbourhood the model has just met — would hold only the failures
// of its first packets: one bad host behind a NAT address would sink the
// address (validity 0 from its fifth failure) and the sender gate would
// refuse the honest users behind it until their outcomes came. So the
// daemon tells the model what it sent: Pend records a pending claim (the
// packet's IP and fee per CU) when the packet goes to sigverify, and
// Settle takes it back when its outcome arrives, just before Observe or
// Penalize; ExpirePending takes back claims whose outcome has not come
// within PendingParams.TTL (1 s: the packet was dropped by sigverify, its
// result never reported, or its partial meta forgotten), and a claim is
// taken back early once PendingParams.Max (65 536) newer ones were made.
//
// IPFactor folds each level's pending claims (IP, /24, /16) into its
// record as outcomes not yet known: claiming their fee per CU, not failed,
// and paid at that level's prior as computed from the claims that did
// not fail (the same chain unknown → /16 → /24 with failed claims left
// out; the one bad host's failures, which sit at all three levels of a
// young address, are thus not counted once per level). They fill at most
// the room left in the record's window (Window − n outcomes), so they
// weigh only on young records: a record with a full window stands on its
// settled outcomes, and a sender that keeps many packets in flight (valid
// transactions that are never paid) gains nothing from them once it has
// been seen. Which record judges validity is still chosen by its settled
// outcomes (MinObservations).
//
// A sender whose packets all fail gains nothing either: each of its
// claims is settled by its failure within milliseconds, so at any moment
// it has only the few packets in flight pending, and it reaches validity 0
// after as many failures as without pending claims plus those in flight
// (exactly as many when each failure comes back before the next packet is
// sent). Rotation, sybils and impersonation are gated as fast as before.
//
// Pending claims are scoring state only: they are not learned (Observe
// predicts with settled records), not saved, not replayed, and a model
// keeps none until TrackPending. They live in a ring of Max claims and
// three tables of at most Max keys each, allocated once (about 210 bytes
// per claim of Max: 13 MiB by default), so a flood cannot make them grow;
// Pend, Settle and a pending lookup are O(1) and allocate nothing.
// Pack mode does not use them: its transactions arrive verified, and its
// outcomes come per batch of execution, not a slot after a failure.
//
// # Signer factor
//
// SignerFactor(s) compares what a fee payer's transactions paid with what
// their IPs' factors predicted at the time (exp, the mean of IPFactor ×
// claim over the same outcomes), shrunk toward 1 the same way and capped
// at 1: a payer whose transactions are never paid although its IPs
// usually are (an empty account used from good addresses) sinks; one
// paid as predicted stays at 1, so the IP's evidence is not counted
// twice. A signer can only lower a score: failed signatures are charged
// to the IP alone (the payer named by a packet with a bad signature
// proves nothing), and naming another sender's payer (impersonation)
// lifts nothing. An unknown payer — and a fresh payer for every
// transaction — scores 1 and leaves the judgement to its IP.
//
// Forward(ip, s) = IPFactor(ip) × SignerFactor(s), each at least
// MinScore; MaxSignerFactor is 1 and MinIPFactor is MinScore.
//
// # Memory that a flood cannot exhaust or make forget
//
// Each table holds at most its maximum (MaxIPs, MaxPrefixes per prefix
// level, MaxSigners; 65 536 by default, a few MiB each) in slots indexed
// by int32 with no pointers, and an open-addressing index keyed by a
// seeded hash. A new key in a full table takes the slot of the least
// recently updated entry (an intrusive recency list, O(1), no pruning
// pass, no stall). A flood of 1 M fresh IPs thus evicts IP records, but
// its /24 and /16 records — a few thousand for a 1 M flood of contiguous
// addresses, at most 65 536 /16s for all of IPv4 — stay, as do the
// records of every sender still active (each update makes it most
// recent): what the flood did is remembered per neighbourhood, and an
// evicted flood IP still scores its neighbourhood's rate. Tables start
// small and double to their maximum, so memory follows what the model
// holds; after that nothing allocates.
//
// # Determinism
//
// A model is a function of its parameters and the sequence of Observe and
// Penalize calls: every update is a fixed sequence of float64 operations
// (each rounded on its own, never fused into a multiply-add), eviction
// follows stamps (the number of the call that last updated an entry), and
// nothing depends on the hash seed, on map iteration or on where entries
// sit in memory. Save writes records sorted by key with their stamps, so
// equal models have byte-identical files, and a model saved, loaded and
// fed the rest of a sequence ends identical to one fed the whole
// sequence; qos-cli replay rebuilds the daemon's model exactly from the
// database's rows (a penalty row carries the claim the daemon used).
//
// # File versions
//
// The file format is version 4: version 3 plus the inclusion bar and its
// two parameters. A version 3 file loads with the bar's parameters at
// their defaults and no bar learnt (the next paid outcome sets it).
// Versions 1 and 2 held the value scores of
// the model before pay rates (an EMA of fee per execution time, the median
// of learned scores for unknown keys); they cannot be converted, and Load
// refuses them with ErrVersion and a message saying to move the file away
// (start fresh) or rebuild one from the database with qos-cli replay.
//
// # Concurrency
//
// An IPSigner is owned by one goroutine. Clone (or AppendBinary, then
// WriteFileAtomic elsewhere) lets another goroutine save a copy.
package model
