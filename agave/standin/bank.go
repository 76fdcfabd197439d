package standin

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/solqos/qos/score"
)

// lookupTable is an address lookup table the bank knows.
type lookupTable struct {
	addrs        []Key
	deactivation uint64 // slot; ^0 = active
}

// BankConfig holds the bank's limits. Zero fields take Agave's values.
type BankConfig struct {
	// BlockCostLimit and AccountCostLimit are the cost tracker's block
	// and per-writable-account limits in cost units.
	BlockCostLimit   uint64
	AccountCostLimit uint64
	// MaxAge is how many recent blockhashes stay valid.
	MaxAge int
	// Seed makes the blockhashes.
	Seed uint64
	// StrictBatchLocks models a bank without relax_intrabatch_account_locks
	// (SIMD-0083): a transaction that conflicts with an earlier one of its
	// own batch fails with ACCOUNT_IN_USE, as on clusters before the
	// feature. The zero value is Agave 4.x on every cluster: the feature
	// is active everywhere and later releases removed the gate (anza-xyz/
	// agave #11989, merged 2026-04; accounts-db/src/accounts.rs
	// lock_accounts then always calls AccountLocks::
	// try_lock_transaction_batch, which judges each transaction against
	// the locks held before the batch only, read at commit 00c7a217).
	StrictBatchLocks bool
}

func (c *BankConfig) defaults() {
	if c.BlockCostLimit == 0 {
		c.BlockCostLimit = MaxBlockUnits
	}
	if c.AccountCostLimit == 0 {
		c.AccountCostLimit = MaxWritableAccountUnits
	}
	if c.MaxAge <= 0 {
		c.MaxAge = MaxProcessingAge
	}
}

// lockCount is the locks held on one account by in-flight batches.
type lockCount struct {
	readers int32
	writers int32
}

// Bank is the stand-in validator's small bank: lamport balances, address
// lookup tables, the recent-blockhash queue, the status cache of
// processed signatures, the per-slot cost tracker and the account locks
// of in-flight batches. It executes nothing: a transaction that passes
// every check pays its fee and is included. All methods are safe for
// concurrent use; lookup tables are fixed before the first batch.
type Bank struct {
	cfg BankConfig
	fp  score.FeeParams

	mu       sync.Mutex
	slot     uint64
	active   bool // a leader bank is ready for execution
	hashes   []Key
	hashSlot map[Key]uint64 // blockhash → its index in the queue (ever-growing)
	nhash    uint64
	accounts map[Key]uint64
	status   map[[64]byte]uint64 // first signature → slot it was included in
	tables   map[Key]lookupTable
	block    uint64         // cost units used in this slot
	acct     map[Key]uint64 // per writable account, this slot
	locks    map[Key]lockCount
	fees     uint64 // lamports collected
}

// NewBank returns a bank at slot 0 with one blockhash registered.
func NewBank(cfg BankConfig) *Bank {
	cfg.defaults()
	b := &Bank{
		cfg:      cfg,
		fp:       score.DefaultFeeParams(),
		hashes:   make([]Key, cfg.MaxAge),
		hashSlot: make(map[Key]uint64, 2*cfg.MaxAge),
		accounts: make(map[Key]uint64),
		status:   make(map[[64]byte]uint64),
		tables:   make(map[Key]lookupTable),
		acct:     make(map[Key]uint64),
		locks:    make(map[Key]lockCount),
	}
	b.registerHash(0)
	return b
}

// Config returns the bank's configuration with defaults applied.
func (b *Bank) Config() BankConfig { return b.cfg }

// Fund sets the balance of account k (creating it).
func (b *Bank) Fund(k Key, lamports uint64) {
	b.mu.Lock()
	b.accounts[k] = lamports
	b.mu.Unlock()
}

// Balance returns the balance of k and whether the account exists.
func (b *Bank) Balance(k Key) (uint64, bool) {
	b.mu.Lock()
	v, ok := b.accounts[k]
	b.mu.Unlock()
	return v, ok
}

// AddLookupTable registers table k with its addresses. REQUIRES: no batch
// has run yet (tables are read without the lock afterwards).
func (b *Bank) AddLookupTable(k Key, addrs []Key, deactivation uint64) {
	b.mu.Lock()
	b.tables[k] = lookupTable{addrs: append([]Key(nil), addrs...), deactivation: deactivation}
	b.mu.Unlock()
}

// blockhashOf is the deterministic blockhash of a slot.
func (b *Bank) blockhashOf(slot uint64) Key {
	var in [24]byte
	copy(in[:8], "qos-bank")
	binary.LittleEndian.PutUint64(in[8:], b.cfg.Seed)
	binary.LittleEndian.PutUint64(in[16:], slot)
	return sha256.Sum256(in[:])
}

// registerHash appends slot's blockhash to the queue. REQUIRES: b.mu held
// or b not yet shared.
func (b *Bank) registerHash(slot uint64) {
	h := b.blockhashOf(slot)
	i := b.nhash % uint64(len(b.hashes))
	if b.nhash >= uint64(len(b.hashes)) {
		delete(b.hashSlot, b.hashes[i])
	}
	b.hashes[i] = h
	b.hashSlot[h] = b.nhash
	b.nhash++
}

// SetSlot moves the bank to slot: a new blockhash is registered (one per
// slot, as each frozen bank adds its last blockhash), the cost tracker is
// reset, and status entries older than twice the maximum age are
// forgotten (their blockhashes can no longer be named). active says
// whether a leader bank is ready for execution in it.
func (b *Bank) SetSlot(slot uint64, active bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if slot != b.slot {
		b.slot = slot
		b.registerHash(slot)
		b.block = 0
		clear(b.acct)
		if len(b.status) > 0 && slot%16 == 0 {
			horizon := uint64(2 * b.cfg.MaxAge)
			for s, at := range b.status {
				if at+horizon < slot {
					delete(b.status, s)
				}
			}
		}
	}
	b.active = active
}

// SetActive says whether a leader bank is ready in the current slot.
func (b *Bank) SetActive(active bool) {
	b.mu.Lock()
	b.active = active
	b.mu.Unlock()
}

// Working returns the current slot and whether a leader bank is ready.
func (b *Bank) Working() (slot uint64, active bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.slot, b.active
}

// LatestBlockhash returns the newest blockhash.
func (b *Bank) LatestBlockhash() Key {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hashes[(b.nhash-1)%uint64(len(b.hashes))]
}

// RemainingCost returns the block cost units left in this slot.
func (b *Bank) RemainingCost() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.BlockCostLimit - min(b.block, b.cfg.BlockCostLimit)
}

// FeesCollected returns the lamports paid by included transactions.
func (b *Bank) FeesCollected() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fees
}

// hashValid reports whether h is among the last MaxAge blockhashes.
// REQUIRES: b.mu held.
func (b *Bank) hashValid(h Key) bool {
	i, ok := b.hashSlot[h]
	return ok && b.nhash-i <= uint64(b.cfg.MaxAge)
}

// conflicts reports whether t's accounts are locked against it by
// in-flight batches. REQUIRES: b.mu held.
func (b *Bank) conflicts(t *txn) bool {
	for i := 0; i < t.nacc; i++ {
		c := b.locks[t.acc[i]]
		if c.writers > 0 || (t.writable[i] && c.readers > 0) {
			return true
		}
	}
	return false
}

// lock and unlock take and drop t's account locks. REQUIRES: b.mu held.
func (b *Bank) lock(t *txn) {
	for i := 0; i < t.nacc; i++ {
		c := b.locks[t.acc[i]]
		if t.writable[i] {
			c.writers++
		} else {
			c.readers++
		}
		b.locks[t.acc[i]] = c
	}
	t.locked = true
}

func (b *Bank) unlock(t *txn) {
	if !t.locked {
		return
	}
	for i := 0; i < t.nacc; i++ {
		k := t.acc[i]
		c := b.locks[k]
		if t.writable[i] {
			c.writers--
		} else {
			c.readers--
		}
		if c.readers <= 0 && c.writers <= 0 {
			delete(b.locks, k)
		} else {
			b.locks[k] = c
		}
	}
	t.locked = false
}

// dropCost takes back a transaction's reserved cost. REQUIRES: b.mu held.
func (b *Bank) dropCost(t *txn) {
	if !t.costTaken {
		return
	}
	b.block -= t.cost
	for i := 0; i < t.nacc; i++ {
		if t.writable[i] {
			b.acct[t.acc[i]] -= t.cost
		}
	}
	t.costTaken = false
}

// result is the outcome of one transaction of an executed batch.
type result struct {
	reason  Reason
	cost    uint64 // cost units charged (included only)
	balance uint64 // fee payer's balance after (included only)
}

// execute runs txs (already loaded) in slot's bank in Agave's order:
// cost tracking for the whole batch (block limit → 81, per writable
// account → 84), then account locks against other in-flight batches
// (→ ACCOUNT_IN_USE; conflicts inside the batch are allowed, as with
// SIMD-0083's relaxed intra-batch locks, unless StrictBatchLocks), then
// age and status checks (BLOCKHASH_NOT_FOUND, ALREADY_PROCESSED, also for
// a repeat within the batch), then the fee payer (ACCOUNT_NOT_FOUND,
// INSUFFICIENT_FUNDS_FOR_FEE), then commit: the fee is charged and the
// signature recorded. With allOrNothing one failure fails every
// transaction (the others with ALL_OR_NOTHING_BATCH_FAILURE) and nothing
// is committed. Included and still-pending transactions keep their locks
// until release, which the worker calls before it answers.
//
// The order, and the locks held only while the batch executes, records
// and commits, are Agave's consumer: process_and_record_transactions_
// with_pre_results runs QosService::select_and_accumulate_transaction_
// costs, then bank.prepare_sanitized_batch_with_results (the locks),
// executes and records, and drops the batch (unlocking) before it
// returns; the external worker writes its ExecutionResponse after that
// (anza-xyz/agave core/src/banking_stage/consumer.rs at commit 00c7a217;
// consume_worker.rs external::ExternalWorker::execute_batch at
// karmaol/4.0.3salsa 089be60e, an Agave 4.0 fork). So a scheduler that
// holds its own locks until the response never sees ACCOUNT_IN_USE from
// another worker's batch. It fills out[i] for every txs[i] and returns
// the slot executed in.
func (b *Bank) execute(txs []txn, allOrNothing bool, out []result) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range txs {
		t := &txs[i]
		if t.reason != ReasonNone {
			continue
		}
		if b.block+t.cost > b.cfg.BlockCostLimit {
			t.reason = ReasonWouldExceedMaxBlockCostLimit
			continue
		}
		over := false
		for j := 0; j < t.nacc; j++ {
			if t.writable[j] && b.acct[t.acc[j]]+t.cost > b.cfg.AccountCostLimit {
				over = true
				break
			}
		}
		if over {
			t.reason = ReasonWouldExceedMaxAccountCostLimit
			continue
		}
		b.block += t.cost
		for j := 0; j < t.nacc; j++ {
			if t.writable[j] {
				b.acct[t.acc[j]] += t.cost
			}
		}
		t.costTaken = true
	}
	// Locks. Relaxed (SIMD-0083): judge every transaction against the
	// locks held before this batch, then take them together. Strict:
	// take them one transaction at a time, so a later one that conflicts
	// with an earlier one of the batch fails (the old per-transaction
	// AccountLocks::try_lock_accounts).
	for i := range txs {
		t := &txs[i]
		if t.reason == ReasonNone && b.conflicts(t) {
			t.reason = ReasonAccountInUse
		}
		if b.cfg.StrictBatchLocks && t.reason == ReasonNone {
			b.lock(t)
		}
	}
	for i := range txs {
		if txs[i].reason == ReasonNone && !txs[i].locked {
			b.lock(&txs[i])
		}
	}
	// Age, status and fee payer, in order, with balances moving as the
	// batch goes.
	var spent [64]uint64 // fee charged so far to txs[i].payer by earlier ones
	failed := false
	for i := range txs {
		t := &txs[i]
		if t.reason != ReasonNone {
			failed = true
			continue
		}
		switch {
		case !b.hashValid(t.blockhash):
			t.reason = ReasonBlockhashNotFound
		case b.processed(t.sig) || dupEarlier(txs[:i], t):
			t.reason = ReasonAlreadyProcessed
		default:
			bal, ok := b.accounts[t.payer]
			for j := 0; j < i; j++ {
				if txs[j].reason == ReasonNone && txs[j].payer == t.payer {
					bal -= min(bal, spent[j])
				}
			}
			switch {
			case !ok:
				t.reason = ReasonAccountNotFound
			case bal < t.fee:
				t.reason = ReasonInsufficientFundsForFee
			default:
				if i < len(spent) {
					spent[i] = t.fee
				}
			}
		}
		if t.reason != ReasonNone {
			failed = true
		}
	}
	if allOrNothing && failed {
		for i := range txs {
			t := &txs[i]
			if t.reason == ReasonNone {
				t.reason = ReasonAllOrNothingBatchFailure
			}
		}
	}
	for i := range txs {
		t := &txs[i]
		if t.reason != ReasonNone {
			b.dropCost(t)
			b.unlock(t)
			out[i] = result{reason: t.reason}
			continue
		}
		bal := b.accounts[t.payer] - t.fee
		b.accounts[t.payer] = bal
		b.fees += t.fee
		b.status[t.sig] = b.slot
		out[i] = result{reason: ReasonNone, cost: t.cost, balance: bal}
	}
	return b.slot
}

// processed reports whether sig is in the status cache. REQUIRES: b.mu.
func (b *Bank) processed(sig [64]byte) bool {
	_, ok := b.status[sig]
	return ok
}

// dupEarlier reports whether an earlier still-good transaction of the
// batch has t's signature.
func dupEarlier(prev []txn, t *txn) bool {
	for i := range prev {
		if prev[i].reason == ReasonNone && prev[i].sig == t.sig {
			return true
		}
	}
	return false
}

// release drops the locks of an executed batch.
func (b *Bank) release(txs []txn) {
	b.mu.Lock()
	for i := range txs {
		b.unlock(&txs[i])
	}
	b.mu.Unlock()
}

// checkResult is what a CHECK learns about one transaction.
type checkResult struct {
	parseFailed  bool
	tooOld       bool
	processed    bool
	includedSlot uint64
	balance      uint64
	slot         uint64
}

// check runs the status checks and loads the fee payer's balance of a
// loaded transaction against the working bank (Agave's check_batch uses
// the working bank for both).
func (b *Bank) check(t *txn) checkResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := checkResult{slot: b.slot}
	if !t.parsed {
		r.parseFailed = true
		return r
	}
	r.tooOld = !b.hashValid(t.blockhash)
	if at, ok := b.status[t.sig]; ok {
		r.processed = true
		r.includedSlot = at
	}
	r.balance = b.accounts[t.payer]
	return r
}
