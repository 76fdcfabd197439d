package score

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Program ids the fee scan recognises (docs/solana-wire.md §4–5).
var (
	// ComputeBudgetProgram is ComputeBudget111111111111111111111111111111.
	ComputeBudgetProgram = [32]byte{
		0x03, 0x06, 0x46, 0x6f, 0xe5, 0x21, 0x17, 0x32, 0xff, 0xec, 0xad, 0xba, 0x72, 0xc3, 0x9b, 0xe7,
		0xbc, 0x8c, 0xe5, 0xbb, 0xc5, 0xf7, 0x12, 0x6b, 0x2c, 0x43, 0x9b, 0x3a, 0x40, 0x00, 0x00, 0x00,
	}
	// Ed25519Program is Ed25519SigVerify111111111111111111111111111.
	Ed25519Program = [32]byte{
		0x03, 0x7d, 0x46, 0xd6, 0x7c, 0x93, 0xfb, 0xbe, 0x12, 0xf9, 0x42, 0x8f, 0x83, 0x8d, 0x40, 0xff,
		0x05, 0x70, 0x74, 0x49, 0x27, 0xf4, 0x8a, 0x64, 0xfc, 0xca, 0x70, 0x44, 0x80, 0x00, 0x00, 0x00,
	}
	// Secp256k1Program is KeccakSecp256k11111111111111111111111111111.
	Secp256k1Program = [32]byte{
		0x04, 0xc6, 0xfc, 0x20, 0xf0, 0x50, 0xcc, 0xf0, 0x55, 0x84, 0xd7, 0x21, 0x1c, 0x9f, 0x8c, 0xf5,
		0x9e, 0xc1, 0x47, 0x85, 0xbb, 0x16, 0x6a, 0x1e, 0x28, 0x30, 0xe8, 0x12, 0x20, 0x00, 0x00, 0x00,
	}
)

// Secp256r1Program is Secp256r1SigVerify1111111111111111111111111. Its
// signatures count in the signature fee like ed25519 and secp256k1 ones
// (runtime-transaction signature_details.rs, fee calculate_signature_fee),
// but it is not in Agave's builtin cost table, so an instruction of it
// gets the default 200 000 compute units.
var Secp256r1Program = [32]byte{
	0x06, 0x92, 0x0d, 0xec, 0x2f, 0xea, 0x71, 0xb5, 0xb7, 0x23, 0x81, 0x4d, 0x74, 0x2d, 0xa9, 0x03,
	0x1c, 0x83, 0xe7, 0x5f, 0xdb, 0x79, 0x5d, 0x56, 0x8e, 0x75, 0x47, 0x80, 0x20, 0x00, 0x00, 0x00,
}

// BuiltinPrograms are the programs of Agave's builtin cost table
// (anza-xyz/agave builtins-default-costs/src/lib.rs,
// NON_MIGRATING_BUILTINS_COSTS; MIGRATING_BUILTINS_COSTS is empty, read at
// 003c671f): an instruction of one of them gets
// MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT (3 000) compute units when the
// transaction sets no limit (SIMD-0170). Builtins already migrated to
// BPF (stake, config, address-lookup-table) are not in it and get
// 200 000 like any program. In the table's order: vote, system, compute
// budget, BPF loader upgradeable, BPF loader deprecated (v1), BPF loader
// (v2), loader v4, secp256k1, ed25519.
var BuiltinPrograms = [9][32]byte{
	{ // Vote111111111111111111111111111111111111111
		0x07, 0x61, 0x48, 0x1d, 0x35, 0x74, 0x74, 0xbb, 0x7c, 0x4d, 0x76, 0x24, 0xeb, 0xd3, 0xbd, 0xb3,
		0xd8, 0x35, 0x5e, 0x73, 0xd1, 0x10, 0x43, 0xfc, 0x0d, 0xa3, 0x53, 0x80, 0x00, 0x00, 0x00, 0x00,
	},
	{}, // 11111111111111111111111111111111 (system)
	ComputeBudgetProgram,
	{ // BPFLoaderUpgradeab1e11111111111111111111111
		0x02, 0xa8, 0xf6, 0x91, 0x4e, 0x88, 0xa1, 0xb0, 0xe2, 0x10, 0x15, 0x3e, 0xf7, 0x63, 0xae, 0x2b,
		0x00, 0xc2, 0xb9, 0x3d, 0x16, 0xc1, 0x24, 0xd2, 0xc0, 0x53, 0x7a, 0x10, 0x04, 0x80, 0x00, 0x00,
	},
	{ // BPFLoader1111111111111111111111111111111111
		0x02, 0xa8, 0xf6, 0x91, 0x4e, 0x88, 0xa1, 0x6b, 0xbd, 0x23, 0x95, 0x85, 0x5f, 0x64, 0x04, 0xd9,
		0xb4, 0xf4, 0x56, 0xb7, 0x82, 0x1b, 0xb0, 0x14, 0x57, 0x49, 0x42, 0x8c, 0x00, 0x00, 0x00, 0x00,
	},
	{ // BPFLoader2111111111111111111111111111111111
		0x02, 0xa8, 0xf6, 0x91, 0x4e, 0x88, 0xa1, 0x6e, 0x39, 0x5a, 0xe1, 0x28, 0x94, 0x8f, 0xfa, 0x69,
		0x56, 0x93, 0x37, 0x68, 0x18, 0xdd, 0x47, 0x43, 0x52, 0x21, 0xf3, 0xc6, 0x00, 0x00, 0x00, 0x00,
	},
	{ // LoaderV411111111111111111111111111111111111
		0x05, 0x12, 0xb4, 0x11, 0x51, 0x51, 0xe3, 0x7a, 0xad, 0x0a, 0x8b, 0xc5, 0xd3, 0x88, 0x2e, 0x7b,
		0x7f, 0xda, 0x4c, 0xf3, 0xd2, 0xc0, 0x28, 0xc8, 0xcf, 0x83, 0x36, 0x18, 0x00, 0x00, 0x00, 0x00,
	},
	Secp256k1Program,
	Ed25519Program,
}

type program uint8

const (
	progOther program = iota
	progComputeBudget
	progEd25519
	progSecp256k1
	progSecp256r1
	progBuiltin // a builtin of the cost table other than the three above
)

// programOf classifies a 32-byte program key. The first byte filters as
// Agave's MAYBE_BUILTIN_KEY does (0x00 system, 0x02 the BPF loaders, 0x03
// compute budget and ed25519, 0x04 secp256k1, 0x05 loader v4, 0x06
// secp256r1, 0x07 vote); only then is the whole key compared.
func programOf(key []byte) program {
	if len(key) != 32 {
		return progOther
	}
	k := [32]byte(key)
	switch key[0] {
	case 0x00, 0x02, 0x05, 0x07:
		for i := range BuiltinPrograms {
			if k == BuiltinPrograms[i] {
				return progBuiltin
			}
		}
	case 0x03:
		if k == ComputeBudgetProgram {
			return progComputeBudget
		}
		if k == Ed25519Program {
			return progEd25519
		}
	case 0x04:
		if k == Secp256k1Program {
			return progSecp256k1
		}
	case 0x06:
		if k == Secp256r1Program {
			return progSecp256r1
		}
	}
	return progOther
}

// FeeParams are the constants of Agave's fee and compute-budget rules.
// DefaultFeeParams gives current Agave's values (anza-xyz/agave
// compute-budget compute_budget_limits.rs constants).
type FeeParams struct {
	// LamportsPerSignature is the fee per transaction or precompile
	// signature (5000).
	LamportsPerSignature uint64
	// MaxComputeUnitLimit caps the requested compute units (1 400 000).
	MaxComputeUnitLimit uint64
	// DefaultInstructionLimit is the compute units granted per
	// instruction of a program outside the builtin cost table when no
	// limit is set (DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT, 200 000).
	DefaultInstructionLimit uint64
	// BuiltinInstructionLimit is the compute units granted per
	// instruction of a non-migrated builtin (BuiltinPrograms) when no
	// limit is set (SIMD-0170, MAX_BUILTIN_ALLOCATION_COMPUTE_UNIT_LIMIT,
	// 3 000).
	BuiltinInstructionLimit uint64
	// MicroLamportsPerLamport is the unit of the compute-unit price
	// (1 000 000); the prioritization fee is rounded up to whole lamports.
	MicroLamportsPerLamport uint64
	// MinHeapFrameBytes, MaxHeapFrameBytes and HeapFrameGranularity bound
	// RequestHeapFrame: 32 KiB ≤ v ≤ 256 KiB, v a multiple of 1 KiB.
	MinHeapFrameBytes    uint32
	MaxHeapFrameBytes    uint32
	HeapFrameGranularity uint32
	// MaxLoadedAccountsDataSize caps SetLoadedAccountsDataSizeLimit and
	// is the default when it is absent (64 MiB).
	MaxLoadedAccountsDataSize uint32
}

// DefaultFeeParams returns current Agave's constants.
func DefaultFeeParams() FeeParams {
	return FeeParams{
		LamportsPerSignature:      5000,
		MaxComputeUnitLimit:       1_400_000,
		DefaultInstructionLimit:   200_000,
		BuiltinInstructionLimit:   3_000,
		MicroLamportsPerLamport:   1_000_000,
		MinHeapFrameBytes:         32 * 1024,
		MaxHeapFrameBytes:         256 * 1024,
		HeapFrameGranularity:      1024,
		MaxLoadedAccountsDataSize: 64 * 1024 * 1024,
	}
}

// Budget is what a transaction pays and asks for.
type Budget struct {
	// Fee is the total fee in lamports: SigFee + PrioFee, saturating.
	Fee uint64
	// PrioFee is ⌈CUPrice × CUs / 1e6⌉ lamports, saturating.
	PrioFee uint64
	// CUs is the requested compute-unit limit.
	CUs uint64
	// CUPrice is the compute-unit price in micro-lamports (0 if unset).
	// A v1 transaction states its priority fee in lamports instead; its
	// CUPrice is the effective price Agave derives from it,
	// ⌊PrioFee × 1e6 / CUs⌋ (0 when CUs is 0).
	CUPrice uint64
	// Signatures counts transaction signatures plus the signatures the
	// ed25519, secp256k1 and secp256r1 precompile instructions declare.
	Signatures uint64
	// PrecompileSignatures is the precompile part of Signatures: the sum
	// of the first data byte of every precompile instruction.
	PrecompileSignatures uint64
	// SigFee is Signatures × LamportsPerSignature, saturating.
	SigFee uint64
	// HeapBytes is the requested heap frame (the minimum if unset).
	HeapBytes uint32
	// LoadedAccountsBytes is the loaded-accounts data size limit.
	LoadedAccountsBytes uint32
}

// Budget computes the fee and compute units of the parsed transaction
// as current Agave does, from the facts Parse gathered while scanning
// every instruction; data is the slice given to Parse (it is not read
// again). It returns the first compute-budget failure in Agave's order:
// invalid data or a duplicate, in instruction order; then the heap size;
// then the loaded-accounts size. On a View whose last Parse failed it
// returns that failure. It does not check the account locks; Admit does.
//
// Legacy and v0 (anza-xyz/agave compute-budget-instruction
// compute_budget_instruction_details.rs at 064bd02f,
// sanitize_and_convert_to_compute_budget_limits and
// calculate_default_compute_unit_limit): without SetComputeUnitLimit the
// limit is 3 000 per instruction of a builtin (compute-budget ones
// included) plus 200 000 per other instruction, capped at 1 400 000; the
// priority fee is ⌈price × limit / 1e6⌉ (compute_budget_limits.rs
// get_prioritization_fee).
//
// v1 (runtime-transaction transaction_meta.rs try_into_config and
// runtime_transaction/transaction_view.rs): the limit is the config's
// (0 when absent) capped at 1 400 000; the priority fee is the config's
// lamports, not rounded; the loaded-accounts size is the config's (0
// when absent) capped at 64 MiB, with no zero check; the heap is checked
// as for legacy.
//
// The fee is (transaction signatures + precompile signatures) × 5 000 +
// the priority fee (fee/src/lib.rs calculate_fee_details and
// calculate_signature_fee at 14c2ee9c, before the SIMD-0553 resource-fee
// gates, which no cluster has activated).
//
// Zero divisors in p are taken as 1 rather than panicking.
func (v *View) Budget(data []byte, p FeeParams) (Budget, Reject) {
	_ = data
	if !v.ok {
		return Budget{}, v.Result()
	}
	if v.cb.err != OK {
		return Budget{}, v.cb.err
	}
	return v.budget(p)
}

// budget is Budget after the parse and compute-budget-instruction checks.
func (v *View) budget(p FeeParams) (Budget, Reject) {
	cb := &v.cb
	var b Budget

	b.HeapBytes = p.MinHeapFrameBytes
	if cb.seen&seenHeap != 0 {
		g := max(p.HeapFrameGranularity, 1)
		if cb.heap < p.MinHeapFrameBytes || cb.heap > p.MaxHeapFrameBytes || cb.heap%g != 0 {
			return Budget{}, RejectBudgetHeap
		}
		b.HeapBytes = cb.heap
	}
	b.HeapBytes = min(b.HeapBytes, p.MaxHeapFrameBytes)

	switch {
	case cb.seen&seenLimit != 0:
		b.CUs = uint64(cb.limit)
	case v.ver == V1:
		b.CUs = 0
	default:
		b.CUs = satAdd(satMul(uint64(cb.builtin), p.BuiltinInstructionLimit),
			satMul(uint64(cb.other), p.DefaultInstructionLimit))
	}
	b.CUs = min(b.CUs, p.MaxComputeUnitLimit)

	if v.ver == V1 {
		b.LoadedAccountsBytes = min(cb.loaded, p.MaxLoadedAccountsDataSize)
	} else {
		b.LoadedAccountsBytes = p.MaxLoadedAccountsDataSize
		if cb.seen&seenLoaded != 0 {
			if cb.loaded == 0 {
				return Budget{}, RejectBudgetLoadedSize
			}
			b.LoadedAccountsBytes = min(cb.loaded, p.MaxLoadedAccountsDataSize)
		}
	}

	b.PrecompileSignatures = cb.precompile
	b.Signatures = satAdd(uint64(v.nsig), cb.precompile)
	b.SigFee = satMul(b.Signatures, p.LamportsPerSignature)
	if v.ver == V1 {
		b.PrioFee = cb.prio
		b.CUPrice = EffectivePrice(b.PrioFee, b.CUs, p.MicroLamportsPerLamport)
	} else {
		b.CUPrice = cb.price
		b.PrioFee = PrioritizationFee(b.CUPrice, b.CUs, p.MicroLamportsPerLamport)
	}
	b.Fee = satAdd(b.SigFee, b.PrioFee)
	return b, OK
}

// Limits are the operator's admission switches, beyond the consensus
// constants. The zero value is mainnet's: an account-lock limit of 64 and
// v1 transactions accepted.
type Limits struct {
	// AccountLockLimit is the most accounts (static keys plus lookup
	// indexes) a transaction may lock: 64 on mainnet, 128 where
	// increase_tx_account_lock_limit is active (Bank
	// get_transaction_account_lock_limit). Zero or less means 64.
	AccountLockLimit int
	// NoTxV1 refuses v1 transactions (RejectV1Disabled).
	NoTxV1 bool
}

// DefaultAccountLockLimit is mainnet's account-lock limit
// (MAX_TX_ACCOUNT_LOCKS).
const DefaultAccountLockLimit = 64

func (l Limits) lockLimit() int {
	if l.AccountLockLimit <= 0 {
		return DefaultAccountLockLimit
	}
	return l.AccountLockLimit
}

// Admit is every check Agave's banking stage makes before it buys a
// transaction a place, in its order (anza-xyz/agave core
// banking_stage/transaction_scheduler/receive_and_buffer.rs
// translate_to_runtime_view, then try_handle_packet): the v1 switch
// (a well-formed v1 transaction while v1 is off); parse and sanitize
// (the last Parse); the compute-budget instructions (invalid data,
// duplicates); the account total against the lock limit
// (TooManyAccountLocks); a duplicate static key (AccountLoadedTwice,
// accounts-db account_locks.rs validate_account_locks; keys loaded from
// lookup tables are not known here); then the compute-budget limits and
// the fee (Budget). data must be the slice given to Parse (bytes of
// another length give RejectSize).
func (v *View) Admit(data []byte, p FeeParams, l Limits) (Budget, Reject) {
	if v.ver == V1 && l.NoTxV1 && !v.res.Parse() && v.res != RejectSize {
		return Budget{}, RejectV1Disabled
	}
	if !v.ok {
		return Budget{}, v.Result()
	}
	if !v.valid(data) { // not the parsed bytes: refuse rather than misread
		return Budget{}, RejectSize
	}
	if v.cb.err != OK {
		return Budget{}, v.cb.err
	}
	if v.NumAccounts() > l.lockLimit() {
		return Budget{}, RejectTooManyAccountLocks
	}
	if v.duplicateKey(data) {
		return Budget{}, RejectAccountLoadedTwice
	}
	return v.budget(p)
}

// duplicateKey reports whether two static keys are equal. Agave's
// has_duplicates compares pairs below 32 keys and hashes above; here the
// keys (at most 64 in a sanitized view) are loaded once as four words
// each and every pair is compared word by word, stopping at the first
// difference: at most 595 pairs in a 1232-byte packet (35 keys), about a
// microsecond even when an attacker makes the first 24 bytes of every key
// equal.
func (v *View) duplicateKey(data []byte) bool {
	var w [MaxAccountsV1][4]uint64
	n := min(int(v.nkeys), len(w))
	keys := data[v.keysOff:]
	if len(keys) < n*keyLen {
		return false
	}
	for i := range n {
		k := keys[i*keyLen : i*keyLen+keyLen]
		w[i] = [4]uint64{
			binary.LittleEndian.Uint64(k[0:]), binary.LittleEndian.Uint64(k[8:]),
			binary.LittleEndian.Uint64(k[16:]), binary.LittleEndian.Uint64(k[24:]),
		}
	}
	for i := 1; i < n; i++ {
		a := &w[i]
		for j := range i {
			if b := &w[j]; a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] {
				return true
			}
		}
	}
	return false
}

// PrioritizationFee returns ⌈price × limit / unit⌉ computed in 128 bits,
// saturating at the largest uint64 (Agave's get_prioritization_fee with
// unit = 1 000 000 micro-lamports per lamport). A zero unit is taken as 1.
func PrioritizationFee(price, limit, unit uint64) uint64 {
	unit = max(unit, 1)
	hi, lo := bits.Mul64(price, limit)
	lo, carry := bits.Add64(lo, unit-1, 0)
	hi += carry // hi ≤ 2^64−2 after Mul64, so this cannot wrap
	if hi >= unit {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, unit)
	return q
}

// EffectivePrice returns ⌊fee × unit / limit⌋ computed in 128 bits: the
// compute-unit price, in micro-lamports, that a priority fee stated in
// lamports amounts to (runtime-transaction transaction_meta.rs
// compute_unit_price_in_microlamports). It is 0 when limit is 0 or the
// result does not fit in 64 bits, as Agave's is.
func EffectivePrice(fee, limit, unit uint64) uint64 {
	if limit == 0 {
		return 0
	}
	hi, lo := bits.Mul64(fee, unit)
	if hi >= limit {
		return 0
	}
	q, _ := bits.Div64(hi, lo, limit)
	return q
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
