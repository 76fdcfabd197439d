package score

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Program ids the fee scan recognises (spec/solana-wire.md §4–5).
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

// First 8 bytes of each id, little-endian, for a one-compare filter.
var (
	prefixComputeBudget = binary.LittleEndian.Uint64(ComputeBudgetProgram[:8])
	prefixEd25519       = binary.LittleEndian.Uint64(Ed25519Program[:8])
	prefixSecp256k1     = binary.LittleEndian.Uint64(Secp256k1Program[:8])
)

type program uint8

const (
	progOther program = iota
	progComputeBudget
	progEd25519
	progSecp256k1
)

// programOf classifies a 32-byte program key.
func programOf(key []byte) program {
	if len(key) != 32 {
		return progOther
	}
	k := [32]byte(key)
	switch binary.LittleEndian.Uint64(key[:8]) {
	case prefixComputeBudget:
		if k == ComputeBudgetProgram {
			return progComputeBudget
		}
	case prefixEd25519:
		if k == Ed25519Program {
			return progEd25519
		}
	case prefixSecp256k1:
		if k == Secp256k1Program {
			return progSecp256k1
		}
	}
	return progOther
}

// FeeParams are the constants of Agave's fee and compute-budget rules.
// DefaultFeeParams gives agave 2.1's values.
type FeeParams struct {
	// LamportsPerSignature is the fee per transaction or precompile
	// signature (5000).
	LamportsPerSignature uint64
	// MaxComputeUnitLimit caps the requested compute units (1 400 000).
	MaxComputeUnitLimit uint64
	// DefaultInstructionLimit is the compute units granted per
	// non-compute-budget instruction when no limit is set (200 000).
	DefaultInstructionLimit uint64
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

// DefaultFeeParams returns agave 2.1's constants.
func DefaultFeeParams() FeeParams {
	return FeeParams{
		LamportsPerSignature:      5000,
		MaxComputeUnitLimit:       1_400_000,
		DefaultInstructionLimit:   200_000,
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
	CUPrice uint64
	// Signatures counts transaction signatures plus the signatures the
	// ed25519 and secp256k1 precompile instructions declare.
	Signatures uint64
	// SigFee is Signatures × LamportsPerSignature, saturating.
	SigFee uint64
	// HeapBytes is the requested heap frame (the minimum if unset).
	HeapBytes uint32
	// LoadedAccountsBytes is the loaded-accounts data size limit.
	LoadedAccountsBytes uint32
}

// Budget computes the fee and compute units of the parsed transaction
// as agave 2.1 does (spec §4–5), from the facts Parse gathered while
// scanning every instruction; data is the slice given to Parse (it is not
// read again). It returns the first compute-budget failure in Agave's
// order: invalid data or a duplicate, in instruction order; then the heap
// size; then the loaded-accounts size. On a View whose last Parse failed
// it returns that failure.
//
// Zero divisors in p are taken as 1 rather than panicking.
func (v *View) Budget(data []byte, p FeeParams) (Budget, Reject) {
	_ = data
	if !v.ok {
		return Budget{}, v.Result()
	}
	cb := &v.cb
	if cb.err != OK {
		return Budget{}, cb.err
	}
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

	if cb.seen&seenLimit != 0 {
		b.CUs = uint64(cb.limit)
	} else {
		b.CUs = satMul(uint64(cb.nonCB), p.DefaultInstructionLimit)
	}
	b.CUs = min(b.CUs, p.MaxComputeUnitLimit)
	b.CUPrice = cb.price

	b.LoadedAccountsBytes = p.MaxLoadedAccountsDataSize
	if cb.seen&seenLoaded != 0 {
		if cb.loaded == 0 {
			return Budget{}, RejectBudgetLoadedSize
		}
		b.LoadedAccountsBytes = min(cb.loaded, p.MaxLoadedAccountsDataSize)
	}

	b.Signatures = satAdd(uint64(v.nsig), cb.precompile)
	b.SigFee = satMul(b.Signatures, p.LamportsPerSignature)
	b.PrioFee = PrioritizationFee(b.CUPrice, b.CUs, p.MicroLamportsPerLamport)
	b.Fee = satAdd(b.SigFee, b.PrioFee)
	return b, OK
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
