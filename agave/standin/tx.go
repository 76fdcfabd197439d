package standin

import (
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// Key is an account address.
type Key [32]byte

// Cost-model constants (anza-xyz/agave cost-model/src/block_cost_limits.rs,
// read from the search index's copies of the 4.x line: MAX_BLOCK_UNITS =
// MAX_BLOCK_UNITS_SIMD_0256 = 60 M, MAX_WRITABLE_ACCOUNT_UNITS = 24 M,
// SIGNATURE_COST = 30×24, WRITE_LOCK_UNITS = 30×10,
// INSTRUCTION_DATA_BYTES_COST = 140/30 bytes per unit). Not checked against
// a running validator.
const (
	MaxBlockUnits           = 60_000_000
	MaxWritableAccountUnits = 24_000_000
	SignatureCost           = 720
	WriteLockUnits          = 300
	InstructionDataBytesPer = 4
	// Loaded-accounts data is charged 8 units per started 32 KiB
	// (cost_model.rs calculate_loaded_accounts_data_size_cost, same
	// reading); the requested limit (64 MiB by default) is what the
	// estimate charges.
	loadedDataPage     = 32 * 1024
	loadedDataPageCost = 8
	// MaxProcessingAge is how many recent blockhashes a transaction may
	// name (solana-clock MAX_PROCESSING_AGE).
	MaxProcessingAge = 150
	// SimpleVoteUsageCost is the fixed cost of a simple vote
	// (cost-model/src/transaction_cost.rs SIMPLE_VOTE_USAGE_COST, same
	// reading; a later feature, remove_simple_vote_from_cost_model, drops
	// it and is not modelled).
	SimpleVoteUsageCost = 3428
	// TransactionAccountLockLimit is the most accounts a transaction may
	// lock (bank.get_transaction_account_lock_limit, 64 on mainnet).
	TransactionAccountLockLimit = 64
)

// txn is one transaction of a batch as a worker sees it: its bytes
// (copied out of shared memory), what parsing learned, and the verdict.
// A worker owns a fixed array of these; nothing in it points into shared
// memory.
type txn struct {
	buf  [score.MaxTransactionSize]byte
	n    int
	view score.View

	sig       [64]byte
	payer     Key
	blockhash Key
	fee       uint64
	prioFee   uint64
	cus       uint64
	cost      uint64 // estimated = charged cost units
	nacc      int
	acc       [TransactionAccountLockLimit]Key
	writable  [TransactionAccountLockLimit]bool
	nloaded   int    // looked-up addresses at acc[nacc-nloaded:]
	minDeact  uint64 // smallest deactivation slot of the tables used
	parsed    bool   // parse and sanitize passed
	resolved  bool   // lookups resolved
	reason    Reason // verdict so far (ReasonNone = still fine)
	costTaken bool   // cost was added to the tracker
	locked    bool   // holds account locks
}

func (t *txn) data() []byte { return t.buf[:t.n] }

// load copies b into the transaction and parses it: signatures, keys,
// blockhash, fee and compute units (score.View, Agave's rules), then
// resolves lookups against tables and computes the estimated cost. On
// failure reason says why (Agave's consume worker maps every
// translation failure to SANITIZE_FAILURE except a lookup failure, which
// is ADDRESS_LOOKUP_TABLE_NOT_FOUND: consume_worker.rs
// reason_from_packet_handling_error, karmaol/4.0.3salsa 16a4dce8).
func (t *txn) load(b []byte, tables map[Key]lookupTable, fp score.FeeParams) {
	t.n = copy(t.buf[:], b)
	t.parsed, t.resolved, t.costTaken, t.locked = false, false, false, false
	t.nacc, t.nloaded, t.minDeact = 0, 0, ^uint64(0)
	t.fee, t.prioFee, t.cus, t.cost = 0, 0, 0, 0
	t.reason = ReasonSanitizeFailure
	if len(b) > len(t.buf) {
		return
	}
	data := t.data()
	if t.view.Parse(data) != score.OK {
		return
	}
	bud, r := t.view.Budget(data, fp)
	if r != score.OK {
		return
	}
	t.parsed = true
	copy(t.sig[:], t.view.Signature(data, 0))
	t.payer = t.view.FeePayer(data)
	copy(t.blockhash[:], t.view.RecentBlockhash(data))
	t.fee, t.prioFee, t.cus = bud.Fee, bud.PrioFee, bud.CUs

	// Static keys with their header-derived writability.
	nkeys := t.view.NumStaticKeys()
	nw, nr := t.view.NumLookupAccounts()
	if nkeys+nw+nr > TransactionAccountLockLimit {
		return
	}
	// Agave demotes a writable key to a read lock when it is a reserved
	// account (a builtin program or sysvar) or is called as a program
	// while the upgradeable loader is not among the keys (SanitizedMessage
	// is_writable; read in the code index's copies of the 4.x line). The
	// reserved set is pack's (pack.ReservedKey), read from the same source.
	var progs uint64
	pi := t.view.Instructions()
	var ins score.Instruction
	for pi.Next(data, &ins) {
		if int(ins.ProgramIndex) < nkeys && ins.ProgramIndex < 64 {
			progs |= 1 << ins.ProgramIndex
		}
	}
	nreq, nros, nrou := t.view.NumRequiredSignatures(), t.view.NumReadonlySigned(), t.view.NumReadonlyUnsigned()
	for i := 0; i < nkeys; i++ {
		t.acc[i] = Key(t.view.StaticKey(data, i))
		if pack.IsUpgradeableLoader((*pack.Pubkey)(&t.acc[i])) {
			progs = 0
		}
	}
	requested := uint64(0) // write locks the message requests, before demotion
	for i := 0; i < nkeys; i++ {
		if i < nreq {
			t.writable[i] = i < nreq-nros
		} else {
			t.writable[i] = i < nkeys-nrou
		}
		if t.writable[i] {
			requested++
		}
		if t.writable[i] && (progs&(1<<i) != 0 || pack.ReservedKey((*pack.Pubkey)(&t.acc[i]))) {
			t.writable[i] = false
		}
	}
	t.nacc = nkeys
	// Lookups: every writable index of every table, then every readonly
	// one (Agave's LoadedAddresses order).
	it := t.view.Lookups()
	var l score.Lookup
	for pass := 0; pass < 2; pass++ {
		it = t.view.Lookups()
		for it.Next(data, &l) {
			tab, ok := tables[Key(l.Key(data))]
			if !ok {
				t.reason = ReasonAddressLookupTableNotFound
				return
			}
			idx := l.Writable(data)
			if pass == 1 {
				idx = l.Readonly(data)
			}
			for _, ix := range idx {
				if int(ix) >= len(tab.addrs) {
					t.reason = ReasonAddressLookupTableNotFound
					return
				}
				t.acc[t.nacc] = tab.addrs[ix]
				t.writable[t.nacc] = pass == 0 && !pack.ReservedKey((*pack.Pubkey)(&tab.addrs[ix]))
				if pass == 0 {
					requested++
				}
				t.nacc++
				t.nloaded++
			}
			t.minDeact = min(t.minDeact, tab.deactivation)
		}
	}
	t.resolved = true
	// Duplicate accounts fail lock validation (a translation failure).
	for i := 0; i < t.nacc; i++ {
		for j := i + 1; j < t.nacc; j++ {
			if t.acc[i] == t.acc[j] {
				return
			}
		}
	}
	// Estimated cost: signatures, write locks, instruction data, the
	// requested compute units and the loaded-accounts data limit.
	var dataBytes uint64
	ii := t.view.Instructions()
	var in score.Instruction
	for ii.Next(data, &in) {
		dataBytes += uint64(len(in.Data(data)))
	}
	// Write locks are charged as requested, before the demotions
	// (num_write_locks; pack.EstimateCost reads it the same way).
	writes := requested
	loaded := (uint64(bud.LoadedAccountsBytes) + loadedDataPage - 1) / loadedDataPage * loadedDataPageCost
	t.cost = bud.Signatures*SignatureCost + writes*WriteLockUnits + dataBytes/InstructionDataBytesPer + bud.CUs + loaded
	if t.simpleVote(data) {
		t.cost = SimpleVoteUsageCost
	}
	t.reason = ReasonNone
}

// simpleVote reports whether the transaction is a simple vote: a legacy
// message with at most two signatures and one instruction, of the vote
// program (the shape Agave's is_simple_vote_transaction checks).
func (t *txn) simpleVote(data []byte) bool {
	if t.view.V0() || t.view.NumSignatures() > 2 || t.view.NumInstructions() != 1 {
		return false
	}
	it := t.view.Instructions()
	var in score.Instruction
	if !it.Next(data, &in) {
		return false
	}
	return Key(t.view.StaticKey(data, int(in.ProgramIndex))) == voteProgram
}

// loaded returns the looked-up addresses (writable first).
func (t *txn) loadedKeys() []Key { return t.acc[t.nacc-t.nloaded : t.nacc] }
