package admit

import (
	"fmt"
	"net/netip"

	"github.com/solqos/qos/model"
	"github.com/solqos/qos/score"
	"github.com/solqos/qos/sigcache"
)

// Policy says how transactions are ranked in the priority queue.
type Policy uint8

const (
	// PolicyModel ranks by model(ip, signer) × fee / CUs and learns.
	PolicyModel Policy = iota
	// PolicyFeeOnly ranks by fee / CUs alone; the model is neither used nor
	// trained. A baseline.
	PolicyFeeOnly
	// PolicyFIFO gives every transaction the same score, so the queue sends
	// in arrival order and drops newcomers when full. A baseline.
	PolicyFIFO
)

// String returns the policy's flag spelling.
func (p Policy) String() string {
	switch p {
	case PolicyModel:
		return "model"
	case PolicyFeeOnly:
		return "fee-only"
	case PolicyFIFO:
		return "fifo"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// ParsePolicy reads a policy's flag spelling.
func ParsePolicy(s string) (Policy, error) {
	for _, p := range []Policy{PolicyModel, PolicyFeeOnly, PolicyFIFO} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown policy %q (want model, fee-only or fifo)", s)
}

// Learns reports whether the policy uses and trains the model.
func (p Policy) Learns() bool { return p == PolicyModel }

// Flags are a transaction's flags, with the bit values of Agave's
// PacketFlags (sdk/packet/src/lib.rs; the sidecar's packet records carry
// them as is). A caller with flags from another interface maps them.
type Flags uint8

// The flags. Only Discard changes the decision today; the others are
// carried for policies that use them.
const (
	Discard        Flags = 0x01 // the producer marked the packet discarded
	Forwarded      Flags = 0x02 // forwarded by another validator
	Repair         Flags = 0x04
	SimpleVote     Flags = 0x08 // a simple vote transaction
	FromStakedNode Flags = 0x80 // received over a staked connection
)

// Tx is what admission reads of one transaction. Data and Addr are only
// read, during the call they are passed to.
type Tx struct {
	// Data is the transaction's wire bytes. Longer than score.MaxTxSize:
	// rejected by size.
	Data []byte
	// Addr is the source address; not valid: rejected (bad address). An
	// IPv4 source is either form; the model keys both the same, and the
	// packet hash (score.TxHash) takes the form given.
	Addr  netip.Addr
	Flags Flags
	// Channel is the caller's index of the input the transaction came
	// from, kept with the admitted packet's partial meta.
	Channel uint8
}

// Verdict is what admission decided for a transaction.
type Verdict uint8

// The verdicts. After Judge a Decision is Rejected, Gated (to be confirmed
// by Admit) or Pending; after Admit it is final.
const (
	// Pending: accepted and scored; Admit decides.
	Pending Verdict = iota
	// Rejected by inspection; Decision.Reject says why.
	Rejected
	// Gated: refused before parsing by its sender's reputation.
	Gated
	// Low: the full queue holds only higher scores.
	Low
	// RecentlyConfirmed: its first signature landed recently.
	RecentlyConfirmed
	// Duplicate: a packet with the same hash was admitted recently.
	Duplicate
	// Queue: the caller pushes it into the queue with Decision.Score,
	// Info.Hash and SigKey, then reports the push with Counters.Pushed.
	Queue
)

// Penalty is what the caller applies to the model after a decision; the
// admission only reads the model.
type Penalty uint8

const (
	// NoPenalty: nothing to apply.
	NoPenalty Penalty = iota
	// PenalizeUnparsable: the transaction did not parse; penalise its
	// source IP (model.Penalize) before judging the next transaction.
	PenalizeUnparsable
)

// Decision is one transaction's way through admission. A caller keeps one
// per transaction of a batch, passes it to Judge and then Admit, and reads
// Verdict and Penalty after each.
type Decision struct {
	Verdict Verdict
	Reject  score.Reject // why, when Rejected
	Penalty Penalty      // to apply after the call that set it
	// Info is the parsed fee payer and budget; Info.Hash is set once the
	// queue would take the transaction.
	Info  score.Info
	Score float64
	// SigKey is the recently-confirmed key of signature 0 (never 0 once
	// set) and Info.Hash the packet hash, both computed once the queue
	// would take the transaction; until then 0.
	SigKey uint64
	// ipFactor is the sender's model.IPFactor when Judge read it (gated
	// transactions keep it for Admit); -1 when not read.
	ipFactor float64
}

// Event names one of admission's counters.
type Event int

// The events admission counts.
const (
	// EventDuplicates: transactions the queue would take, dropped because
	// one with the same hash was admitted recently.
	EventDuplicates Event = iota
	// EventRecentlyConfirmed: transactions the queue would take, dropped
	// because their first signature was recently confirmed.
	EventRecentlyConfirmed
	// EventAdmitted: transactions pushed into the priority queue.
	EventAdmitted
	// EventEvicted: queued transactions evicted by a higher-scoring
	// newcomer.
	EventEvicted
	// EventRejectedLow: transactions not queued because the full queue held
	// only higher scores (decided before the dedup and recently-confirmed
	// lookups).
	EventRejectedLow
	// EventGated: transactions refused before parsing: their sender IP's
	// factor, times the best signer factor and the highest fee per CU a
	// transaction can declare, could not beat the full queue's lowest
	// entry (no parse, no penalty).
	EventGated
	NumEvents
)

var eventNames = [NumEvents]string{
	EventDuplicates:        "duplicates",
	EventRecentlyConfirmed: "recently_confirmed",
	EventAdmitted:          "admitted",
	EventEvicted:           "evicted",
	EventRejectedLow:       "rejected_low",
	EventGated:             "gated",
}

// Name returns the event's stable metric and log name.
func (e Event) Name() string {
	if e < 0 || e >= NumEvents {
		return "unknown"
	}
	return eventNames[e]
}

// Counters are admission's counts. The caller owns the value and passes it
// to every call; it is a plain value, so publishing a copy allocates
// nothing.
type Counters struct {
	Events  [NumEvents]uint64
	Rejects [score.NumRejects]uint64
}

// Pushed counts the queue push the caller made for a Queue verdict.
func (c *Counters) Pushed(admitted, evicted bool) {
	switch {
	case !admitted: // not reached: the queue took the score and nothing changed since
		c.Events[EventRejectedLow]++
	case evicted:
		c.Events[EventAdmitted]++
		c.Events[EventEvicted]++
	default:
		c.Events[EventAdmitted]++
	}
}

// TotalRejected sums transactions rejected by inspection, for any reason.
func (c *Counters) TotalRejected() uint64 {
	var n uint64
	for _, v := range c.Rejects {
		n += v
	}
	return n
}

// Params are admission's settings.
type Params struct {
	// Seed is the operator's xxhash seed for Hash.
	Seed uint64
	// Fees are the fee constants; the zero value means score.DefaultFeeParams().
	Fees score.FeeParams
	// Limits are the operator's switches (account-lock limit, v1); the
	// zero value is mainnet's.
	Limits score.Limits
	Policy Policy
}

// Admitter decides on transactions. Its tables are the caller's (see the
// package doc); it keeps only a parse view. Not safe for concurrent use.
type Admitter struct {
	eval   score.Evaluator // the per-packet inspection and hash
	policy Policy

	queue   *score.Queue
	partial *PartialStore
	recent  *sigcache.Set
	model   *model.IPSigner
}

// New returns an admitter deciding with the caller's tables.
func New(p Params, queue *score.Queue, partial *PartialStore, recent *sigcache.Set, m *model.IPSigner) *Admitter {
	fees := p.Fees
	if fees == (score.FeeParams{}) {
		fees = score.DefaultFeeParams()
	}
	return &Admitter{
		eval:   score.Evaluator{Seed: p.Seed, Fees: fees, Limits: p.Limits},
		policy: p.Policy,
		queue:  queue, partial: partial, recent: recent, model: m,
	}
}

// Judge takes one transaction in arrival order: the sender gate (when
// gate, from GateOpen) may refuse it unparsed (Gated, to be confirmed by
// Admit); otherwise it is inspected — rejected (Rejected, and a penalty
// when it did not parse and the policy learns) or scored (Pending). It
// reports whether the queue would take the transaction as it stands now;
// then the keys for the lookups are set and Peek can load them.
//
// A caller applies d.Penalty before judging the next transaction, so that
// every score sees the model as a transaction-by-transaction loop would.
func (a *Admitter) Judge(tx *Tx, d *Decision, now int64, gate bool, c *Counters) bool {
	d.Verdict, d.Penalty, d.SigKey = Pending, NoPenalty, 0
	ipf := -1.0
	if gate && tx.Addr.IsValid() {
		ipf = a.model.IPFactor(model.IPOf(tx.Addr))
		if !a.queue.Admits(a.bound(ipf), now) {
			d.Verdict, d.ipFactor = Gated, ipf
			return false
		}
	}
	if !a.inspect(tx, d, ipf, c) || !a.queue.Admits(d.Score, now) {
		return false
	}
	a.keys(tx, d)
	return true
}

// Peek loads the dedup and recently-confirmed entries a Pending decision
// with keys will look up, and returns their sum; see PartialStore.Peek.
func (a *Admitter) Peek(d *Decision) uint64 {
	if d.SigKey == 0 {
		return 0
	}
	return a.recent.Peek(d.SigKey) + a.partial.Peek(d.Info.Hash)
}

// PeekEvictions loads the dedup entries the next k inserts would evict;
// see PartialStore.PeekEvictions.
func (a *Admitter) PeekEvictions(k int) uint64 { return a.partial.PeekEvictions(k) }

// Admit finishes a decision Judge left Gated or Pending, in arrival order:
// a gated transaction is gated again unless the queue became easier to
// enter; a pending one goes through the queue check, the
// recently-confirmed check and dedup (which remembers it). It returns the
// final verdict; on Queue the caller pushes the transaction and calls
// c.Pushed. A Rejected decision is returned as is.
func (a *Admitter) Admit(tx *Tx, d *Decision, now int64, c *Counters) Verdict {
	d.Penalty = NoPenalty
	switch d.Verdict {
	case Gated:
		if !a.queue.Admits(a.bound(d.ipFactor), now) {
			c.Events[EventGated]++
			return Gated
		}
		// The queue would now take the sender's bound: inspect and score
		// with the IP factor of its turn in Judge (signer factors do not
		// change within a batch), exactly as Judge would have.
		d.Verdict = Pending
		if !a.inspect(tx, d, d.ipFactor, c) {
			return Rejected
		}
	case Pending:
	default:
		return d.Verdict
	}
	return a.admit(tx, d, now, c)
}

// admit takes one accepted, scored transaction through the queue check,
// the recently-confirmed check and dedup.
func (a *Admitter) admit(tx *Tx, d *Decision, now int64, c *Counters) Verdict {
	if !a.queue.Admits(d.Score, now) {
		c.Events[EventRejectedLow]++
		d.Verdict = Low
		return Low
	}
	if d.SigKey == 0 { // the queue's bar moved down since Judge
		a.keys(tx, d)
	}
	if a.recent.ContainsKey(d.SigKey) {
		c.Events[EventRecentlyConfirmed]++
		d.Verdict = RecentlyConfirmed
		return RecentlyConfirmed
	}
	b := d.Info.Budget
	if a.partial.Insert(d.Info.Hash, Partial{
		ArrivedAt: now,
		Channel:   tx.Channel,
		IP:        tx.Addr.As16(),
		Signer:    d.Info.Payer,
		Fee:       b.Fee,
		CUs:       b.CUs,
		CUPrice:   b.CUPrice,
		Score:     d.Score,
	}) {
		c.Events[EventDuplicates]++
		d.Verdict = Duplicate
		return Duplicate
	}
	d.Verdict = Queue
	return Queue
}

// inspect checks, parses and prices tx into d and scores it under the
// policy, with ipf the sender's model.IPFactor when already read (else
// -1). A rejected transaction is counted, and given a penalty when it did
// not parse and the policy learns. It reports whether tx was accepted.
func (a *Admitter) inspect(tx *Tx, d *Decision, ipf float64, c *Counters) bool {
	d.Info, d.Reject = a.check(tx)
	if d.Reject != score.OK {
		d.Verdict = Rejected
		c.Rejects[d.Reject]++
		if d.Reject.Parse() && a.policy.Learns() && tx.Addr.IsValid() {
			d.Penalty = PenalizeUnparsable
		}
		return false
	}
	b := d.Info.Budget
	switch a.policy {
	case PolicyModel:
		if ipf < 0 {
			ipf = a.model.IPFactor(model.IPOf(tx.Addr))
		}
		// IPFactor × SignerFactor is Forward, bit for bit.
		d.Score = score.Score(ipf*a.model.SignerFactor(model.Signer(d.Info.Payer)), b.Fee, b.CUs)
	case PolicyFeeOnly:
		d.Score = score.Score(1 /*model: neutral*/, b.Fee, b.CUs)
	default: // FIFO: equal scores, the queue keeps arrival order
		d.Score = 0
	}
	return true
}

// check runs every per-transaction check on tx: score.Evaluator.InspectTx,
// the daemon's one inspection (the size, the address, the Discard flag,
// then parse, sanitize, compute budget, locks and fee). It returns the
// Info (without the hash) and OK, or a zero Info and the first reason it
// fails.
func (a *Admitter) check(tx *Tx) (score.Info, score.Reject) {
	// Flags have the bit values of the packet records' flags, which
	// InspectTx reads (a test keeps Discard equal to channels.FlagDiscard).
	return a.eval.InspectTx(tx.Data, tx.Addr, uint8(tx.Flags))
}

// keys computes the packet hash and the recently-confirmed key of an
// accepted transaction, which only the lookups after the queue check need.
func (a *Admitter) keys(tx *Tx, d *Decision) {
	d.Info.Hash = score.TxHash(a.eval.Seed, tx.Data, tx.Addr)
	// An accepted transaction has at least one signature, at SigOff (1,
	// or after the message for v1).
	o := int(d.Info.SigOff)
	d.SigKey = a.recent.Key(tx.Data[o : o+64])
}

// The sender gate. Under the model policy a transaction scores
// IPFactor(ip) × SignerFactor(payer) × fee / max(cus, score.MinScoreCUs), at most
// bound(IPFactor(ip)) whatever its signer and fee (float rounding is
// monotone). When the full queue would refuse even that, the transaction
// would end as rejected_low after parsing; Judge refuses it first and
// spares the parse, most of what a packet from a sunk spammer costs. The
// decision is taken in arrival order with the model as a one-by-one loop
// would see it, and confirmed by Admit, where the queue may have become
// easier to enter (an expired entry surfacing). An unparsable gated
// transaction is not parsed, so it does not penalise its already sunk IP
// again.

// bound is the highest score a transaction from an IP with factor ipf can
// reach.
func (a *Admitter) bound(ipf float64) float64 {
	return ipf * a.model.MaxSignerFactor() * score.MaxFeePerCU
}

// GateOpen reports whether the sender gate can refuse anything now: the
// policy uses the model and the queue refuses the bound of the lowest IP
// factor there is. When it cannot, a caller passes gate=false to Judge and
// the gate's lookups are skipped.
func (a *Admitter) GateOpen(now int64) bool {
	return a.policy == PolicyModel && !a.queue.Admits(a.bound(a.model.MinIPFactor()), now)
}
