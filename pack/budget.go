package pack

import (
	"errors"
	"hash/maphash"
)

// BudgetParams are the block-cost limits the scheduler keeps to.
type BudgetParams struct {
	// BlockLimit caps the block budget (BlockCostLimit); the progress
	// message's remaining_cost_units is what the scheduler actually has.
	BlockLimit uint64
	// AccountLimit is the most cost units the transactions writing one
	// account may take of one block (AccountCostLimit).
	AccountLimit uint64
	// VoteLimit is the most cost units votes may take of one block
	// (VoteCostLimit).
	VoteLimit uint64
	// VoteReserve is the block space kept for a slot's votes: a non-vote
	// transaction is scheduled only if it leaves free VoteReserve − (cost
	// of the votes already scheduled in the slot), but no more than the
	// share of VoteReserve the rest of the slot may still bring (it
	// shrinks with the progress message's current_slot_progress, to
	// nothing at the slot's end: votes arrive through the slot, and
	// space kept for ones that cannot come any more is wasted).
	VoteReserve uint64
	// Accounts is how many distinct writable accounts one block may
	// charge before further ones are deferred (the per-account table's
	// capacity).
	Accounts int
}

// DefaultBudgetParams returns Agave's limits, a vote reserve of 3 M
// (about 875 simple votes, more than a slot of a large cluster's votes)
// and room for 16 384 writable accounts per block (a full 60 M block
// holds a few thousand transactions).
func DefaultBudgetParams() BudgetParams {
	return BudgetParams{
		BlockLimit:   BlockCostLimit,
		AccountLimit: AccountCostLimit,
		VoteLimit:    VoteCostLimit,
		VoteReserve:  3_000_000,
		Accounts:     1 << 14,
	}
}

// acctEntry is one writable account's cost in the current slot (48
// bytes, pointer-free).
type acctEntry struct {
	key  Pubkey
	gen  uint64 // the slot the entry belongs to, plus one; another = empty
	used uint64 // reserved (in flight) plus executed cost units
}

// Budget tracks the block-cost budget of the current leader slot: the
// block's remaining units (from progress, minus what is reserved in
// flight and what executed since that progress message), the units votes
// used against their limit and reserve, and each writable account's units
// against the per-account limit. Reserve charges a transaction's
// estimate at dispatch; Settle replaces it by the actual cost the
// execution response reports (or drops it when the transaction was not
// included). A new slot starts from zero: the per-account table is
// cleared in O(1) by stamping entries with their slot.
//
// Agave's cost tracker charges a transaction's whole cost to every
// account it writes, and refuses a transaction whose cost would take an
// account past the limit (WOULD_EXCEED_MAX_ACCOUNT_COST_LIMIT) or the
// block past its limit (WOULD_EXCEED_MAX_BLOCK_COST_LIMIT); this budget
// applies the same rules beforehand so those refusals do not happen.
type Budget struct {
	p    BudgetParams
	seed maphash.Seed
	tab  []acctEntry
	mask uint64
	n    int // entries of the current slot

	// scratch of fits for reserve: each writable key's table index and
	// whether it was found there
	idx   [MaxTxLocks]uint32
	found [MaxTxLocks]bool

	gen       uint64 // current slot + 1; 0 before the first slot
	remaining uint64 // remaining_cost_units of the last progress message
	inflight  uint64 // reserved for this slot, not yet settled
	settled   uint64 // actual cost settled since the last progress message
	votes     uint64 // votes' units this slot (reserved + executed)
	progress  uint8  // current_slot_progress of the last progress message, 0..100
}

// ErrAccountTableFull: the per-account cost table of this slot has no
// room for another writable account.
var ErrAccountTableFull = errors.New("pack: per-account cost table full for this slot")

// NewBudget returns a budget with the given limits; nothing allocates
// after it.
func NewBudget(p BudgetParams) (*Budget, error) {
	if p.Accounts < 1 || p.Accounts > 1<<24 {
		return nil, errors.New("pack: budget accounts must be between 1 and 16777216")
	}
	size := 1
	for size < 2*p.Accounts {
		size <<= 1
	}
	return &Budget{p: p, seed: maphash.MakeSeed(), tab: make([]acctEntry, size), mask: uint64(size - 1)}, nil
}

// Params returns the limits.
func (b *Budget) Params() BudgetParams { return b.p }

// StartSlot begins slot s with remaining block units: every per-account
// charge, vote charge and reservation of another slot is forgotten (a
// batch dispatched for an earlier slot either executed there or comes
// back with MAX_WORKING_SLOT_EXCEEDED).
func (b *Budget) StartSlot(s, remaining uint64) {
	if s+1 != b.gen {
		b.gen, b.n = s+1, 0
		b.inflight, b.settled, b.votes, b.progress = 0, 0, 0, 0
	}
	b.SetRemaining(remaining)
}

// SetRemaining records a progress message's remaining_cost_units for the
// current slot. It already counts every transaction executed before the
// message was published, so the costs settled since the last message are
// dropped. Two approximations, both read from agave v4.0.0-rc.0
// (8e3bcf0c) core/src/banking_stage (progress_tracker.rs publishes the
// bank cost tracker's block limit minus its block cost; consumer.rs
// reserves a batch's estimated costs in that tracker before executing
// it):
//
//   - a batch executing while the message is published is counted twice,
//     in the message and in our in-flight reservations, until its
//     response arrives: the budget errs low by at most the batches then
//     executing, and never overcommits the block because of it;
//   - a response that arrives before a progress message published before
//     its execution is briefly not counted: the budget may then overshoot
//     by one tick's executions, and Agave answers
//     WOULD_EXCEED_MAX_BLOCK_COST_LIMIT, a scheduler miss that blames
//     nobody and is retried.
func (b *Budget) SetRemaining(remaining uint64) {
	b.remaining = min(remaining, b.p.BlockLimit)
	b.settled = 0
}

// SetProgress records how far through the current slot the validator is,
// in percent (current_slot_progress; above 100 counts as 100): the vote
// reserve shrinks with it.
func (b *Budget) SetProgress(percent uint8) { b.progress = min(percent, 100) }

// Slot returns the current slot (meaningless before StartSlot).
func (b *Budget) Slot() uint64 { return b.gen - 1 }

// Available returns the block units a non-vote (vote false) or vote
// transaction may still take.
func (b *Budget) Available(vote bool) uint64 {
	used := satAdd(b.inflight, b.settled)
	if used >= b.remaining {
		return 0
	}
	avail := b.remaining - used
	if vote {
		if b.votes >= b.p.VoteLimit {
			return 0
		}
		return min(avail, b.p.VoteLimit-b.votes)
	}
	if keep := b.voteKeep(); keep > 0 {
		if avail <= keep {
			return 0
		}
		avail -= keep
	}
	return avail
}

// voteKeep is the block space still kept for votes: the reserve less the
// votes already scheduled this slot, and no more than the reserve's share
// of the slot still to come.
func (b *Budget) voteKeep() uint64 {
	keep := satSub(b.p.VoteReserve, b.votes)
	if rest := b.p.VoteReserve / 100 * uint64(100-b.progress); rest < keep {
		keep = rest
	}
	return keep
}

// InFlight returns the units reserved and not yet settled this slot.
func (b *Budget) InFlight() uint64 { return b.inflight }

// VoteUnits returns the units votes took this slot.
func (b *Budget) VoteUnits() uint64 { return b.votes }

// findAcct returns the table index of key in the current slot, or the
// empty index where it would go (found false).
func (b *Budget) findAcct(key *Pubkey) (i uint64, found bool) {
	h := maphash.Bytes(b.seed, key[:])
	for i = h & b.mask; ; i = (i + 1) & b.mask {
		e := &b.tab[i]
		if e.gen != b.gen {
			return i, false
		}
		if e.key == *key {
			return i, true
		}
	}
}

// AccountUnits returns the units charged to key this slot.
func (b *Budget) AccountUnits(key *Pubkey) uint64 {
	if i, ok := b.findAcct(key); ok {
		return b.tab[i].used
	}
	return 0
}

// Fit reasons.
const (
	fitOK = iota
	fitBlock
	fitVote
	fitAccount
	fitTable
)

// fits reports whether a transaction of cost units writing keys'
// writable accounts fits now (fitOK) or which limit it breaks; on fitOK
// it leaves each key's table position for reserve.
func (b *Budget) fits(keys *Keys, cost uint64, vote bool) int {
	if cost > b.Available(vote) {
		if vote {
			return fitVote
		}
		return fitBlock
	}
	fresh := 0
	for i := range int(keys.nw) {
		idx, ok := b.findAcct(&keys.keys[i])
		b.idx[i], b.found[i] = uint32(idx), ok
		if ok {
			if satAdd(b.tab[idx].used, cost) > b.p.AccountLimit {
				return fitAccount
			}
		} else {
			if cost > b.p.AccountLimit {
				return fitAccount
			}
			fresh++
		}
	}
	if b.n+fresh > b.p.Accounts {
		return fitTable
	}
	return fitOK
}

// reserve charges cost to the block, to votes when vote, and to each
// writable key; acct receives each writable key's table index.
// REQUIRES: fits(keys, cost, vote) == fitOK just before, with nothing in
// between (reserve reuses the positions fits found).
func (b *Budget) reserve(keys *Keys, cost uint64, vote bool, acct []int32) {
	b.inflight = satAdd(b.inflight, cost)
	if vote {
		b.votes = satAdd(b.votes, cost)
	}
	for i := range int(keys.nw) {
		idx, ok := uint64(b.idx[i]), b.found[i]
		if !ok {
			// A key written twice in one transaction: the first
			// occurrence inserted it, so the position fits found for
			// the second may be taken; look again.
			idx, ok = b.findAcct(&keys.keys[i])
		}
		e := &b.tab[idx]
		if !ok {
			*e = acctEntry{key: keys.keys[i], gen: b.gen}
			b.n++
		}
		e.used = satAdd(e.used, cost)
		acct[i] = int32(idx)
	}
}

// settle replaces a reservation of cost units made while gen was current
// by actual (0 when the transaction was not included). Entries of the
// per-account table never move within a slot, so acct's indexes are
// still those of the reserved keys when gen is still current.
func (b *Budget) settle(gen uint64, cost, actual uint64, vote bool, acct []int32) {
	if gen != b.gen {
		return // another slot's budget: nothing of it is kept
	}
	b.inflight = satSub(b.inflight, cost)
	b.settled = satAdd(b.settled, actual)
	if vote {
		b.votes = satAdd(satSub(b.votes, cost), actual)
	}
	for _, idx := range acct {
		if idx < 0 || int(idx) >= len(b.tab) {
			continue
		}
		e := &b.tab[idx]
		if e.gen != gen {
			continue
		}
		e.used = satAdd(satSub(e.used, cost), actual)
	}
}

func satSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
