package pack

import (
	"math"
	"math/bits"

	"github.com/solqos/qos/score"
)

// CostParams are the constants of Agave's cost model (the block-cost
// units a transaction is charged when the leader packs it). Every value
// was read from agave v4.0.0-rc.0 (8e3bcf0c): cost-model/src/
// block_cost_limits.rs, cost_model.rs (calculate_cost,
// get_signature_cost, get_write_lock_cost, get_estimated_execution_cost,
// get_instructions_data_cost), transaction_cost.rs
// (SIMPLE_VOTE_USAGE_COST), compute-budget-instruction/src/
// compute_budget_instruction_details.rs (calculate_default_compute_unit_limit)
// and builtins-default-costs/src/lib.rs (which programs are builtins).
type CostParams struct {
	// SignatureCost per transaction signature: 30 × 24 = 720.
	SignatureCost uint64
	// Secp256k1VerifyCost per secp256k1 precompile signature: 30 × 223.
	Secp256k1VerifyCost uint64
	// Ed25519VerifyCost per ed25519 precompile signature (the strict
	// verification cost, the only one left in 4.0): 30 × 80.
	Ed25519VerifyCost uint64
	// Secp256r1VerifyCost per secp256r1 precompile signature: 30 × 160
	// (0 while enable_secp256r1_precompile is inactive).
	Secp256r1VerifyCost uint64
	// WriteLockCost per requested write lock: 30 × 10.
	WriteLockCost uint64
	// InstructionDataBytesPerUnit: the data-bytes cost is the total
	// instruction data length divided by 140 / 30 = 4 (integer division).
	InstructionDataBytesPerUnit uint64
	// BuiltinInstructionUnits is the default compute-unit allocation of a
	// builtin-program instruction when no limit is requested (SIMD-0170's
	// MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT, 3 000).
	BuiltinInstructionUnits uint64
	// DefaultInstructionUnits is that of any other instruction (200 000).
	DefaultInstructionUnits uint64
	// MaxComputeUnitLimit caps the compute-unit limit (1 400 000).
	MaxComputeUnitLimit uint64
	// HeapCostPerPage and AccountDataPageSize price the loaded-accounts
	// data size limit: ⌈bytes / 32 KiB⌉ × 8 (FeeStructure::
	// calculate_memory_usage_cost with DEFAULT_HEAP_COST).
	HeapCostPerPage     uint64
	AccountDataPageSize uint64
	// SimpleVoteCost is the fixed cost of a simple vote transaction while
	// remove_simple_vote_from_cost_model is inactive: 2100 (vote program)
	// + 720 (one signature) + 2 × 300 (two write locks) + 8 (one page of
	// loaded data) = 3428. Zero prices simple votes like any transaction.
	SimpleVoteCost uint64
}

// DefaultCostParams returns Agave 4.0's cost-model constants.
func DefaultCostParams() CostParams {
	return CostParams{
		SignatureCost:               720,
		Secp256k1VerifyCost:         6690,
		Ed25519VerifyCost:           2400,
		Secp256r1VerifyCost:         4800,
		WriteLockCost:               300,
		InstructionDataBytesPerUnit: 4,
		BuiltinInstructionUnits:     3_000,
		DefaultInstructionUnits:     200_000,
		MaxComputeUnitLimit:         1_400_000,
		HeapCostPerPage:             8,
		AccountDataPageSize:         32 * 1024,
		SimpleVoteCost:              3428,
	}
}

// Block limits of Agave's cost tracker, from agave v4.0.0-rc.0 (8e3bcf0c)
// cost-model/src/block_cost_limits.rs and runtime/src/bank.rs
// (apply_simd_0306_cost_tracker_changes). The leader's remaining block
// budget arrives in every progress message, so BlockCostLimit is only a
// ceiling; the per-account and vote limits are not reported and must be
// tracked here.
const (
	// BlockCostLimit is MAX_BLOCK_UNITS (SIMD-0256: 60 M; SIMD-0286 would
	// raise it to 100 M).
	BlockCostLimit = 60_000_000
	// AccountCostLimit is the per-writable-account limit once SIMD-0306
	// (raise_account_cu_limit) is active: 40 % of the block limit, 24 M.
	// Agave 4.1 removed that feature gate (it is active everywhere); 4.0
	// code still starts from MAX_WRITABLE_ACCOUNT_UNITS = 12 M and raises
	// it when the feature is active.
	AccountCostLimit = BlockCostLimit * 40 / 100
	// AccountCostLimitPreSIMD0306 is MAX_WRITABLE_ACCOUNT_UNITS (12 M).
	AccountCostLimitPreSIMD0306 = 12_000_000
	// VoteCostLimit is MAX_VOTE_UNITS (36 M), the most vote transactions
	// may take of one block.
	VoteCostLimit = 36_000_000
)

// Cost is a transaction's estimated block cost, by component, as Agave's
// CostModel::calculate_cost computes it before execution (the scheduler's
// estimate; the execution response later reports the actual cost, with
// the program and loaded-accounts parts replaced by what was used).
type Cost struct {
	Signature      uint64 // transaction and precompile signatures
	WriteLock      uint64 // requested write locks
	DataBytes      uint64 // instruction data
	Programs       uint64 // the compute-unit limit
	LoadedAccounts uint64 // the loaded-accounts data size limit
	// Vote is set for a simple vote priced at SimpleVoteCost (then every
	// other field is zero and Sum is that fixed cost).
	Vote uint64
}

// Sum returns the total cost units, saturating.
func (c Cost) Sum() uint64 {
	s := satAdd(c.Signature, c.WriteLock)
	s = satAdd(s, c.DataBytes)
	s = satAdd(s, c.Programs)
	s = satAdd(s, c.LoadedAccounts)
	return satAdd(s, c.Vote)
}

// EstimateCost prices the parsed transaction v (data the bytes it
// parsed, b its score.Budget) the way Agave's cost model does when the
// scheduler reserves block space:
//
//   - signatures: 720 per transaction signature, plus per precompile
//     signature (first data byte of each secp256k1, ed25519 and secp256r1
//     instruction) 6690, 2400 and 4800;
//   - write locks: 300 per write lock the message requests (header
//     writable static keys plus writable lookup indexes, before Agave's
//     demotions, as num_write_locks counts them);
//   - data bytes: the total instruction data length / 4;
//   - programs: the requested compute-unit limit when the transaction sets
//     one (b.CUs), else SIMD-0170's default: 3000 per builtin-program
//     instruction (compute budget included) and 200 000 per other one,
//     capped at 1.4 M;
//   - loaded accounts: ⌈b.LoadedAccountsBytes / 32 KiB⌉ × 8.
//
// A simple vote (simpleVote, the TPU message's IS_SIMPLE_VOTE flag)
// costs SimpleVoteCost when that is non-zero. It returns ErrNoTransaction
// when v holds no transaction parsed from data. It never allocates.
//
// Differences from Agave: score.Budget applies agave 2.1's compute-budget
// rules, so a transaction whose compute-budget instructions Agave 4.0
// would refuse is priced here from what score accepted (the caller drops
// such transactions before scheduling anyway); and the programs part of a
// transaction without a requested limit counts the vote program as a
// builtin (it is, until its core-BPF migration feature activates).
func EstimateCost(v *score.View, data []byte, b score.Budget, simpleVote bool, p CostParams) (Cost, error) {
	if v.Result() != score.OK || v.Size() != len(data) {
		return Cost{}, ErrNoTransaction
	}
	if simpleVote && p.SimpleVoteCost != 0 {
		return Cost{Vote: p.SimpleVoteCost}, nil
	}
	var c Cost
	var k1, ed, r1, dataLen, builtins, others uint64
	limitSet := false
	nkeys := v.NumStaticKeys()
	it := v.Instructions()
	var in score.Instruction
	for it.Next(data, &in) {
		d := in.Data(data)
		dataLen += uint64(len(d))
		prog := int(in.ProgramIndex)
		if prog >= nkeys { // not sanitized; cannot happen on a parsed view
			others++
			continue
		}
		key := (*Pubkey)(v.StaticKey(data, prog))
		var first uint64
		if len(d) > 0 {
			first = uint64(d[0])
		}
		switch *key {
		case score.ComputeBudgetProgram:
			builtins++
			if len(d) > 0 && d[0] == 2 { // SetComputeUnitLimit
				limitSet = true
			}
		case score.Secp256k1Program:
			builtins++
			k1 += first
		case score.Ed25519Program:
			builtins++
			ed += first
		case secp256r1Program:
			others++ // not a builtin: a precompile without a builtin cost entry
			r1 += first
		case systemProgram, voteProgram, bpfLoader, bpfLoaderDeprecated, bpfLoaderUpgradeable, loaderV4:
			builtins++
		default:
			others++
		}
	}
	c.Signature = satMul(uint64(v.NumSignatures()), p.SignatureCost)
	c.Signature = satAdd(c.Signature, satMul(k1, p.Secp256k1VerifyCost))
	c.Signature = satAdd(c.Signature, satMul(ed, p.Ed25519VerifyCost))
	c.Signature = satAdd(c.Signature, satMul(r1, p.Secp256r1VerifyCost))

	nw, _ := v.NumLookupAccounts()
	writable := (v.NumRequiredSignatures() - v.NumReadonlySigned()) +
		(nkeys - v.NumRequiredSignatures() - v.NumReadonlyUnsigned()) + nw
	c.WriteLock = satMul(uint64(max(writable, 0)), p.WriteLockCost)

	if p.InstructionDataBytesPerUnit > 0 {
		c.DataBytes = min(dataLen, math.MaxUint16) / p.InstructionDataBytesPerUnit
	}

	if limitSet {
		c.Programs = b.CUs
	} else {
		c.Programs = satAdd(satMul(builtins, p.BuiltinInstructionUnits), satMul(others, p.DefaultInstructionUnits))
	}
	c.Programs = min(c.Programs, p.MaxComputeUnitLimit)

	if page := p.AccountDataPageSize; page > 0 {
		c.LoadedAccounts = satMul((uint64(b.LoadedAccountsBytes)+page-1)/page, p.HeapCostPerPage)
	}
	return c, nil
}

func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
