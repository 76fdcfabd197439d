package pack

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/solqos/qos/agave/bindings"
)

// MaxBatch is the most transactions one batch may carry
// (MAX_TRANSACTIONS_PER_MESSAGE).
const MaxBatch = 64

// Params configure a Scheduler.
type Params struct {
	// Workers is the number of execution workers (1..64).
	Workers int
	// Depth is how many batches a worker may have at once, counting the
	// one being built (1..16). A worker executes its batches in order, so
	// more depth hides the round trip but makes later batches wait. A vote
	// may open one batch more (votes must land even when every worker is
	// full of other work).
	Depth int
	// BatchSize is the most transactions per batch (1..64).
	BatchSize int
	// LockAccounts is how many distinct accounts may be locked at once
	// (0: Workers × (Depth+1) × BatchSize × 32, at least 4096; a
	// transaction locks 128 at most, typically under 16).
	LockAccounts int
	// IntraBatchConflicts lets one batch hold transactions that conflict
	// with each other (they then run in order within it). Agave accepts
	// that only when relax_intrabatch_account_locks is active; otherwise
	// the second gets ACCOUNT_IN_USE. Off by default: a conflicting
	// transaction starts a new batch for the same worker instead.
	IntraBatchConflicts bool
	// Budget are the block-cost limits.
	Budget BudgetParams
	// Slack is Leader.Slack (slots past the current one a batch may run in).
	Slack uint64
	// EndCutoff is Leader.EndCutoff (no EXECUTE from this percent of the
	// leader window's last slot on; 0: none).
	EndCutoff uint8
}

// DefaultParams returns a scheduler for workers workers: depth 2, full
// batches of 64, Agave's cost limits.
func DefaultParams(workers int) Params {
	return Params{Workers: workers, Depth: 2, BatchSize: MaxBatch, Budget: DefaultBudgetParams()}
}

// Outcome is what Try decided for one transaction.
type Outcome uint8

// Outcomes. Scheduled means the transaction is in a batch; the Defer
// outcomes mean it cannot go now but may later (put it back in the
// queue); the Refuse outcomes mean it can never be scheduled (drop it).
const (
	Scheduled          Outcome = iota
	DeferNotLeader             // not LEADER_READY: no execution now
	DeferBlockCost             // the block (less the vote reserve) has no room for its cost now
	DeferVoteCost              // votes reached their limit this block
	DeferAccountCost           // a writable account would pass its per-block limit
	DeferAccountTable          // the per-account cost table of this slot is full
	DeferConflict              // its locks conflict with batches on different workers
	DeferBusy                  // every worker it could go to has Depth batches (Depth+1 for a vote)
	DeferLockTable             // the lock table is full
	RefuseTooManyLocks         // more than 128 accounts: Agave would refuse it
	RefuseTooCostly            // its cost exceeds a whole block's or account's limit
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"scheduled", "defer_not_leader", "defer_block_cost", "defer_vote_cost",
	"defer_account_cost", "defer_account_table", "defer_conflict", "defer_busy",
	"defer_lock_table", "refuse_too_many_locks", "refuse_too_costly",
}

// String returns a snake_case name for counters.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome_%d", uint8(o))
}

// Deferred reports whether the transaction may be tried again later.
func (o Outcome) Deferred() bool { return o >= DeferNotLeader && o <= DeferLockTable }

// Decision is Try's answer: the outcome and, when Scheduled, the worker.
type Decision struct {
	Outcome Outcome
	Worker  int8 // −1 unless Scheduled
}

// BatchRef names a batch handed out by Flush until Finish returns it.
type BatchRef struct {
	Index  int32
	Serial uint32
}

// BatchInfo describes a flushed batch.
type BatchInfo struct {
	Worker         int
	MaxWorkingSlot uint64
	Len            int
}

// batch states
const (
	batchFree uint8 = iota
	batchOpen
	batchReady
	batchInFlight
)

// txRec is one scheduled transaction in a batch.
type txRec struct {
	cost uint64
	off  uint32 // first of its lock ids (and acct indexes) in the arena
	n    uint16 // lock ids
	nw   uint16 // of which write locks (the first nw); also acct indexes
	vote bool
}

// batchState is one batch slot of the pool; its transactions' ids, lock
// ids and account indexes live in the scheduler's arenas at fixed
// offsets per slot.
type batchState struct {
	serial  uint32
	worker  int8
	state   uint8
	n       uint16 // transactions
	nids    uint32 // arena entries used
	gen     uint64 // budget generation the reservations belong to
	maxSlot uint64
}

// workerState is a worker's share of the pool.
type workerState struct {
	open    int32  // batch being built, or −1
	serial  uint32 // serial of the open batch (0 when none)
	batches int    // batches open, ready or in flight
	queued  int    // transactions in them
}

// Scheduler forms execution batches: for each candidate the caller
// offers (highest priority first) it decides at once whether the
// transaction goes into a batch now — its account locks conflict with no
// other worker's in-flight batch, its cost fits the block, the vote
// reserve and each writable account's limit — and on which worker
// (among those it may go to, the one with the fewest queued
// transactions). Flush hands out the batches built; Finish takes back a
// batch with its execution results, settles its cost reservations and
// releases its locks. Progress messages feed the leader state and the
// block budget.
//
// The caller's loop, with no callback or interface in it:
//
//	s.OnProgress(p) // for every progress message
//	for s.CanExecute() && <queue not empty> {
//		pop the best candidate; fill keys (Keys.FromView), cost (EstimateCost)
//		d := s.Try(id, &keys, cost.Sum(), isVote)
//		if d.Outcome.Deferred() { keep it to push back } else if d.Outcome != Scheduled { drop it }
//	}
//	for _, b := range s.Flush() { send b (s.Batch, s.TxIDs) to its worker }
//	on a worker's response: s.Finish(ref, results)
//
// Votes must land, so they get three things: offer them before other
// transactions each round (from their own queue); the budget's vote
// reserve keeps block space for them even when non-votes arrived first;
// and a vote may open one batch beyond Depth on a worker, so a worker
// full of other work still takes it.
//
// All memory is allocated by NewScheduler; Try, Flush and Finish do not
// allocate and never panic. A Scheduler is not safe for concurrent use.
type Scheduler struct {
	p      Params
	locks  *Locks
	budget *Budget
	leader Leader

	batches []batchState
	workers []workerState
	free    []int32 // free batch slots, a stack
	ready   []int32 // batches sealed since the last Flush
	out     []BatchRef
	txIDs   []uint64 // batch slot × BatchSize + i
	recs    []txRec  // batch slot × BatchSize + i
	lockIDs []int32  // batch slot × per + …
	acct    []int32  // same offsets as lockIDs (writable prefix used)
	per     int      // arena entries per batch slot

	counter uint32 // batch serial counter (serial = counter<<6 | worker)
	ids     [MaxTxLocks]int32
	acctTmp [MaxTxLocks]int32

	stats Stats
}

// Stats counts the scheduler's decisions and batches.
type Stats struct {
	Outcomes        [numOutcomes]uint64
	Batches         uint64 // flushed
	BatchTxs        uint64 // transactions in flushed batches
	Finished        uint64 // batches finished
	SealedConflict  uint64 // batches sealed early to keep a conflict out
	StaleSlotSealed uint64 // batches sealed because the slot changed
}

// Errors of Finish and Batch.
var (
	ErrBadBatch     = errors.New("pack: unknown or already finished batch")
	ErrResultCount  = errors.New("pack: execution results do not match the batch's transaction count")
	errParamsBounds = errors.New("pack: scheduler params out of range")
)

// NewScheduler returns a scheduler with all its memory allocated.
func NewScheduler(p Params) (*Scheduler, error) {
	if p.Workers < 1 || p.Workers > MaxWorkers || p.Depth < 1 || p.Depth > 16 ||
		p.BatchSize < 1 || p.BatchSize > MaxBatch {
		return nil, fmt.Errorf("%w: workers %d (1..64), depth %d (1..16), batch size %d (1..64)",
			errParamsBounds, p.Workers, p.Depth, p.BatchSize)
	}
	if p.LockAccounts <= 0 {
		p.LockAccounts = max(p.Workers*(p.Depth+1)*p.BatchSize*32, 4096)
	}
	locks, err := NewLocks(p.Workers, p.LockAccounts)
	if err != nil {
		return nil, err
	}
	budget, err := NewBudget(p.Budget)
	if err != nil {
		return nil, err
	}
	nb := p.Workers * (p.Depth + 1) // + 1: the vote lane
	per := p.BatchSize * MaxTxLocks
	s := &Scheduler{
		p:       p,
		locks:   locks,
		budget:  budget,
		leader:  Leader{Slack: p.Slack, EndCutoff: p.EndCutoff},
		batches: make([]batchState, nb),
		workers: make([]workerState, p.Workers),
		free:    make([]int32, nb),
		ready:   make([]int32, 0, nb),
		out:     make([]BatchRef, 0, nb),
		txIDs:   make([]uint64, nb*p.BatchSize),
		recs:    make([]txRec, nb*p.BatchSize),
		lockIDs: make([]int32, nb*per),
		acct:    make([]int32, nb*per),
		per:     per,
	}
	for i := range s.free {
		s.free[i] = int32(nb - 1 - i)
	}
	for w := range s.workers {
		s.workers[w].open = -1
	}
	return s, nil
}

// Params returns the scheduler's parameters.
func (s *Scheduler) Params() Params { return s.p }

// Stats returns the counters.
func (s *Scheduler) Stats() Stats { return s.stats }

// Locks returns the lock table (read it, do not lock through it).
func (s *Scheduler) Locks() *Locks { return s.locks }

// Budget returns the block budget (read it; it changes through the
// scheduler).
func (s *Scheduler) Budget() *Budget { return s.budget }

// Leader returns the leader state.
func (s *Scheduler) Leader() *Leader { return &s.leader }

// CanExecute reports whether EXECUTE batches may be sent now.
func (s *Scheduler) CanExecute() bool { return s.leader.CanExecute() }

// OnProgress feeds one progress message: leader state, slot, remaining
// block units. A new slot starts a new block budget and seals the
// batches being built (their reservations and max_working_slot belong to
// the old slot).
func (s *Scheduler) OnProgress(p Progress) {
	if s.leader.Update(p) {
		for w := range s.workers {
			if s.workers[w].open >= 0 {
				s.seal(w)
				s.stats.StaleSlotSealed++
			}
		}
		s.budget.StartSlot(p.CurrentSlot, p.RemainingCostUnits)
		s.budget.SetProgress(p.CurrentSlotProgress)
		return
	}
	s.budget.SetRemaining(p.RemainingCostUnits)
	s.budget.SetProgress(p.CurrentSlotProgress)
}

// seal moves worker w's open batch to the ready list (an empty one back
// to the free stack).
func (s *Scheduler) seal(w int) {
	ws := &s.workers[w]
	b := ws.open
	if b < 0 {
		return
	}
	ws.open, ws.serial = -1, 0
	if s.batches[b].n == 0 {
		s.batches[b].state = batchFree
		s.free = append(s.free, b) // within capacity: every slot has a place
		ws.batches--
		return
	}
	s.batches[b].state = batchReady
	s.ready = append(s.ready, b)
}

// openBatch starts a new batch for worker w. REQUIRES: a free slot and
// ws.batches < Depth (+1 for a vote).
func (s *Scheduler) openBatch(w int) int32 {
	b := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.counter++
	if s.counter >= 1<<26 {
		s.counter = 1
	}
	serial := s.counter<<6 | uint32(w)
	s.batches[b] = batchState{
		serial:  serial,
		worker:  int8(w),
		state:   batchOpen,
		gen:     s.budget.gen,
		maxSlot: s.leader.MaxWorkingSlot(),
	}
	ws := &s.workers[w]
	ws.open, ws.serial = b, serial
	ws.batches++
	return b
}

// intraConflicts returns the workers whose open batch already holds a
// transaction conflicting with keys (ids from Schedulable).
func (s *Scheduler) intraConflicts(keys *Keys) WorkerSet {
	if s.p.IntraBatchConflicts {
		return 0
	}
	var set WorkerSet
	for i := range int(keys.n) {
		id := s.ids[i]
		if id < 0 {
			continue
		}
		e := &s.locks.ents[id]
		if st := e.wStamp; st != 0 {
			if w := int(st & 63); w < len(s.workers) && s.workers[w].serial == st {
				set |= only(w)
			}
		}
		if st := e.rStamp; st != 0 && i < int(keys.nw) {
			if w := int(st & 63); w < len(s.workers) && s.workers[w].serial == st {
				set |= only(w)
			}
		}
	}
	return set
}

// Try decides one candidate: id is the caller's handle (returned by
// TxIDs), keys its lock set, cost its estimated cost units, vote whether
// it is a simple vote. On Scheduled its locks are held and its cost
// reserved until Finish.
func (s *Scheduler) Try(id uint64, keys *Keys, cost uint64, vote bool) Decision {
	d := s.try(id, keys, cost, vote)
	s.stats.Outcomes[d.Outcome]++
	return d
}

func (s *Scheduler) try(id uint64, keys *Keys, cost uint64, vote bool) Decision {
	if !s.leader.CanExecute() {
		return Decision{DeferNotLeader, -1}
	}
	if keys.over || keys.n > MaxTxLocks {
		return Decision{RefuseTooManyLocks, -1}
	}
	bp := &s.budget.p
	if cost > bp.BlockLimit || (keys.nw > 0 && cost > bp.AccountLimit) || (vote && cost > bp.VoteLimit) {
		return Decision{RefuseTooCostly, -1}
	}
	switch s.budget.fits(keys, cost, vote) {
	case fitBlock:
		return Decision{DeferBlockCost, -1}
	case fitVote:
		return Decision{DeferVoteCost, -1}
	case fitAccount:
		return Decision{DeferAccountCost, -1}
	case fitTable:
		return Decision{DeferAccountTable, -1}
	}
	set := s.locks.Schedulable(keys, s.ids[:])
	if set == 0 {
		return Decision{DeferConflict, -1}
	}
	intra := s.intraConflicts(keys)
	depth := s.p.Depth
	if vote {
		depth++
	}

	// Pick the least-loaded worker that can take it: into its open batch
	// (not full, no conflict inside it) or into a new batch.
	best, bestLoad, bestNew := -1, int(^uint(0)>>1), false
	for rest := set; rest != 0; rest &= rest - 1 {
		w := trailing(rest)
		ws := &s.workers[w]
		fitsOpen := ws.open >= 0 && int(s.batches[ws.open].n) < s.p.BatchSize && !intra.Has(w)
		canNew := len(s.free) > 0 && (ws.batches < depth || (ws.open >= 0 && s.batches[ws.open].n == 0))
		if !fitsOpen && !canNew {
			continue
		}
		if ws.queued < bestLoad {
			best, bestLoad, bestNew = w, ws.queued, !fitsOpen
		}
	}
	if best < 0 {
		return Decision{DeferBusy, -1}
	}
	ws := &s.workers[best]
	if bestNew {
		if ws.open >= 0 && s.batches[ws.open].n > 0 {
			s.stats.SealedConflict++
		}
		s.seal(best)
		s.openBatch(best)
	}
	b := ws.open
	bs := &s.batches[b]
	switch err := s.locks.Lock(keys, s.ids[:keys.n], best, bs.serial); err {
	case nil:
	case ErrLocksFull:
		return Decision{DeferLockTable, -1}
	default: // cannot happen: the set came from Schedulable just now
		return Decision{DeferConflict, -1}
	}
	s.budget.reserve(keys, cost, vote, s.acctTmp[:keys.nw])

	slot := int(b)*s.p.BatchSize + int(bs.n)
	off := uint32(int(b)*s.per) + bs.nids
	n := uint32(keys.n)
	copy(s.lockIDs[off:off+n], s.ids[:n])
	copy(s.acct[off:off+uint32(keys.nw)], s.acctTmp[:keys.nw])
	s.recs[slot] = txRec{cost: cost, off: off, n: keys.n, nw: keys.nw, vote: vote}
	s.txIDs[slot] = id
	bs.n++
	bs.nids += n
	ws.queued++
	if int(bs.n) >= s.p.BatchSize {
		s.seal(best)
	}
	return Decision{Scheduled, int8(best)}
}

// trailing returns the lowest worker in a non-empty set.
func trailing(s WorkerSet) int { return bits.TrailingZeros64(uint64(s)) }

// Flush seals the batches being built and returns every batch sealed
// since the last Flush, now in flight: send each to its worker. The
// slice is reused by the next Flush.
func (s *Scheduler) Flush() []BatchRef {
	for w := range s.workers {
		s.seal(w)
	}
	s.out = s.out[:0]
	for _, b := range s.ready {
		bs := &s.batches[b]
		bs.state = batchInFlight
		s.out = append(s.out, BatchRef{Index: b, Serial: bs.serial})
		s.stats.Batches++
		s.stats.BatchTxs += uint64(bs.n)
	}
	s.ready = s.ready[:0]
	return s.out
}

// get returns the batch ref names when it is in the wanted state.
func (s *Scheduler) get(ref BatchRef, state uint8) (*batchState, bool) {
	if ref.Index < 0 || int(ref.Index) >= len(s.batches) {
		return nil, false
	}
	bs := &s.batches[ref.Index]
	if bs.serial != ref.Serial || bs.state != state {
		return nil, false
	}
	return bs, true
}

// Batch describes a flushed batch.
func (s *Scheduler) Batch(ref BatchRef) (BatchInfo, error) {
	bs, ok := s.get(ref, batchInFlight)
	if !ok {
		return BatchInfo{}, ErrBadBatch
	}
	return BatchInfo{Worker: int(bs.worker), MaxWorkingSlot: bs.maxSlot, Len: int(bs.n)}, nil
}

// TxIDs returns the ids of a flushed batch's transactions, in batch
// order (valid until the batch is finished), or nil for an unknown batch.
func (s *Scheduler) TxIDs(ref BatchRef) []uint64 {
	bs, ok := s.get(ref, batchInFlight)
	if !ok {
		return nil
	}
	o := int(ref.Index) * s.p.BatchSize
	return s.txIDs[o : o+int(bs.n)]
}

// Finish takes back a flushed batch: results are the per-transaction
// execution results in batch order, or empty when the worker did not
// process the batch (processed_code INVALID or MAX_WORKING_SLOT_EXCEEDED:
// nothing was included). Each reservation is replaced by the reported
// cost of an included transaction, or dropped; then the batch's locks are
// released and its slot freed. Results of the wrong length are treated
// as empty and reported with ErrResultCount (the batch is still
// released: its locks must not leak).
func (s *Scheduler) Finish(ref BatchRef, results []ExecResult) error {
	bs, ok := s.get(ref, batchInFlight)
	if !ok {
		return ErrBadBatch
	}
	var err error
	if len(results) != 0 && len(results) != int(bs.n) {
		err = fmt.Errorf("%w: %d results for %d transactions", ErrResultCount, len(results), bs.n)
		results = results[:0]
	}
	w := int(bs.worker)
	base := int(ref.Index) * s.p.BatchSize
	for i := range int(bs.n) {
		r := &s.recs[base+i]
		var actual uint64
		if len(results) != 0 && results[i].Reason == bindings.ReasonNone {
			actual = results[i].CostUnits
		}
		s.budget.settle(bs.gen, r.cost, actual, r.vote, s.acct[r.off:r.off+uint32(r.nw)])
		if uerr := s.locks.Unlock(s.lockIDs[r.off:r.off+uint32(r.n)], int(r.nw), w); uerr != nil && err == nil {
			err = fmt.Errorf("pack: finish batch on worker %d: %w", w, uerr)
		}
	}
	s.workers[w].queued -= int(bs.n)
	s.workers[w].batches--
	bs.state = batchFree
	bs.serial = 0
	s.free = append(s.free, ref.Index)
	s.stats.Finished++
	return err
}

// Queued returns the number of transactions worker w has in batches
// (being built, ready or in flight).
func (s *Scheduler) Queued(w int) int {
	if w < 0 || w >= len(s.workers) {
		return 0
	}
	return s.workers[w].queued
}

// Candidate is one transaction offered to TryAll: the caller's id, its
// lock set as an index into the caller's []Keys, its estimated cost and
// whether it is a simple vote.
type Candidate struct {
	ID   uint64
	Cost uint64
	Keys int32
	Vote bool
}

// TryAll offers the candidates in order (the caller fills cands highest
// priority first, votes ahead of the rest) and writes each decision to
// the same index of out; a candidate whose Keys index is out of range is
// refused (RefuseTooManyLocks stands for "no usable lock set"). It
// returns how many were scheduled. Put the ones whose outcome is
// Deferred back in the queue, drop the refused ones, then Flush.
// REQUIRES: len(out) ≥ len(cands).
func (s *Scheduler) TryAll(cands []Candidate, keys []Keys, out []Decision) (scheduled int) {
	out = out[:len(cands)]
	for i := range cands {
		c := &cands[i]
		if c.Keys < 0 || int(c.Keys) >= len(keys) {
			out[i] = Decision{RefuseTooManyLocks, -1}
			s.stats.Outcomes[RefuseTooManyLocks]++
			continue
		}
		out[i] = s.Try(c.ID, &keys[c.Keys], c.Cost, c.Vote)
		if out[i].Outcome == Scheduled {
			scheduled++
		}
	}
	return scheduled
}
