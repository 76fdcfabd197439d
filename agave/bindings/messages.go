package bindings

import "encoding/binary"

var le = binary.LittleEndian

// Sizes of the messages whose layout is the same in every ABI.
const (
	RegionSize            = 16 // every Sharable*/response region
	TpuToPackSize         = 40
	PackToWorkerSize      = 32 // also ABI44's PackToExecutionWorkerMessage
	PackToCheckWorkerSize = 24 // ABI44 only
	WorkerToPackSize      = 40 // also ABI44's Execution/CheckWorkerToPackMessage
	ExecutionResponseSize = 32
	PubkeySize            = 32
)

// ProgressSize is the size of ProgressMessage in abi (0 for an unknown ABI).
func ProgressSize(abi ABI) int {
	switch abi {
	case ABI40:
		return 48
	case ABI41:
		return 80
	case ABI44:
		return 96
	}
	return 0
}

// CheckResponseSize is the size of CheckResponse in abi (0 for an unknown ABI).
func CheckResponseSize(abi ABI) int {
	switch abi {
	case ABI40, ABI41:
		return 64
	case ABI44:
		return 96
	}
	return 0
}

// SharableTransactionRegion is a transaction's bytes inside the allocator
// mapping: Offset from the start of the mapping, Length bytes.
type SharableTransactionRegion struct {
	Offset uint64 // @0
	Length uint32 // @8
}

// SharablePubkeys is an array of NumPubkeys 32-byte keys inside the allocator
// mapping; NumPubkeys == 0 means nothing was allocated.
type SharablePubkeys struct {
	Offset     uint64 // @0
	NumPubkeys uint32 // @8
}

// SharableTransactionBatchRegion is an array of NumTransactions
// SharableTransactionRegion (16 bytes each) at TransactionsOffset.
type SharableTransactionBatchRegion struct {
	NumTransactions    uint8  // @0
	TransactionsOffset uint64 // @8
}

// TransactionResponseRegion is an array of NumTransactionResponses responses
// (ExecutionResponse or CheckResponse, by Tag) at TransactionResponsesOffset.
// ABI44 has no tag byte (Execution/CheckResponseRegion); Tag then comes from
// the queue the message was read from.
type TransactionResponseRegion struct {
	Tag                        ResponseTag // @0 (ABI40/41 only)
	NumTransactionResponses    uint8       // @1 (ABI44: @0)
	TransactionResponsesOffset uint64      // @8
}

func getRegion(b []byte) (uint64, uint32) {
	_ = b[15]
	return le.Uint64(b[0:8]), le.Uint32(b[8:12])
}

func putRegion(b []byte, off uint64, n uint32) {
	_ = b[15]
	le.PutUint64(b[0:8], off)
	le.PutUint32(b[8:12], n)
	le.PutUint32(b[12:16], 0)
}

func getBatch(b []byte) SharableTransactionBatchRegion {
	_ = b[15]
	return SharableTransactionBatchRegion{NumTransactions: b[0], TransactionsOffset: le.Uint64(b[8:16])}
}

func putBatch(b []byte, r SharableTransactionBatchRegion) {
	_ = b[15]
	le.PutUint64(b[0:8], uint64(r.NumTransactions))
	le.PutUint64(b[8:16], r.TransactionsOffset)
}

// DecodeSharableTransactionRegion reads the 16-byte region at b.
func DecodeSharableTransactionRegion(b []byte) (SharableTransactionRegion, error) {
	if len(b) < RegionSize {
		return SharableTransactionRegion{}, ErrShortBuffer
	}
	off, n := getRegion(b)
	return SharableTransactionRegion{Offset: off, Length: n}, nil
}

// Encode writes r into b[:16].
func (r SharableTransactionRegion) Encode(b []byte) error {
	if len(b) < RegionSize {
		return ErrShortBuffer
	}
	putRegion(b, r.Offset, r.Length)
	return nil
}

// DecodeSharablePubkeys reads the 16-byte region at b.
func DecodeSharablePubkeys(b []byte) (SharablePubkeys, error) {
	if len(b) < RegionSize {
		return SharablePubkeys{}, ErrShortBuffer
	}
	off, n := getRegion(b)
	return SharablePubkeys{Offset: off, NumPubkeys: n}, nil
}

// Encode writes p into b[:16].
func (p SharablePubkeys) Encode(b []byte) error {
	if len(b) < RegionSize {
		return ErrShortBuffer
	}
	putRegion(b, p.Offset, p.NumPubkeys)
	return nil
}

// DecodeSharableTransactionBatchRegion reads the 16-byte region at b.
func DecodeSharableTransactionBatchRegion(b []byte) (SharableTransactionBatchRegion, error) {
	if len(b) < RegionSize {
		return SharableTransactionBatchRegion{}, ErrShortBuffer
	}
	return getBatch(b), nil
}

// Encode writes r into b[:16].
func (r SharableTransactionBatchRegion) Encode(b []byte) error {
	if len(b) < RegionSize {
		return ErrShortBuffer
	}
	putBatch(b, r)
	return nil
}

// DecodeTransactionResponseRegion reads a response region of abi. For ABI44
// the caller names the tag (the queue it came from); for ABI40/41 tag is
// ignored and the byte at @0 must be a known tag.
func DecodeTransactionResponseRegion(abi ABI, tag ResponseTag, b []byte) (TransactionResponseRegion, error) {
	if len(b) < RegionSize {
		return TransactionResponseRegion{}, ErrShortBuffer
	}
	b = b[:RegionSize]
	switch abi {
	case ABI40, ABI41:
		t := ResponseTag(b[0])
		if t != ExecutionResponseTag && t != CheckResponseTag {
			return TransactionResponseRegion{}, ErrBadTag
		}
		return TransactionResponseRegion{Tag: t, NumTransactionResponses: b[1], TransactionResponsesOffset: le.Uint64(b[8:16])}, nil
	case ABI44:
		if tag != ExecutionResponseTag && tag != CheckResponseTag {
			return TransactionResponseRegion{}, ErrBadTag
		}
		return TransactionResponseRegion{Tag: tag, NumTransactionResponses: b[0], TransactionResponsesOffset: le.Uint64(b[8:16])}, nil
	}
	return TransactionResponseRegion{}, ErrNotInABI
}

// Encode writes r into b[:16] in abi's layout (ABI44 drops the tag).
func (r TransactionResponseRegion) Encode(abi ABI, b []byte) error {
	if len(b) < RegionSize {
		return ErrShortBuffer
	}
	b = b[:RegionSize]
	switch abi {
	case ABI40, ABI41:
		le.PutUint64(b[0:8], uint64(r.Tag)|uint64(r.NumTransactionResponses)<<8)
	case ABI44:
		le.PutUint64(b[0:8], uint64(r.NumTransactionResponses))
	default:
		return ErrNotInABI
	}
	le.PutUint64(b[8:16], r.TransactionResponsesOffset)
	return nil
}

// TpuToPack is TpuToPackMessage: one received, sigverified and deduplicated
// transaction. Its block now belongs to pack, which must free it.
type TpuToPack struct {
	Transaction SharableTransactionRegion // @0
	Flags       TpuFlags                  // @16
	// SrcAddr is the sender's IP as IPv6 (IPv4 as ::ffff:a.b.c.d), no port.
	SrcAddr [16]byte // @17
}

// DecodeTpuToPack reads a TpuToPackMessage (same in every ABI).
func DecodeTpuToPack(b []byte) (TpuToPack, error) {
	if len(b) < TpuToPackSize {
		return TpuToPack{}, ErrShortBuffer
	}
	b = b[:TpuToPackSize]
	var m TpuToPack
	m.Transaction.Offset, m.Transaction.Length = getRegion(b[0:16])
	m.Flags = TpuFlags(b[16])
	copy(m.SrcAddr[:], b[17:33])
	return m, nil
}

// Encode writes m into b[:40].
func (m TpuToPack) Encode(b []byte) error {
	if len(b) < TpuToPackSize {
		return ErrShortBuffer
	}
	b = b[:TpuToPackSize]
	putRegion(b[0:16], m.Transaction.Offset, m.Transaction.Length)
	b[16] = byte(m.Flags)
	copy(b[17:33], m.SrcAddr[:])
	clear(b[33:40])
	return nil
}

// Progress is ProgressMessage, published by Agave on every tick change.
// Fields absent from an ABI decode as zero and are not written.
type Progress struct {
	LeaderState         LeaderState
	CurrentSlotProgress uint8  // percent through the current slot
	Epoch               uint64 // ABI41+
	CurrentSlot         uint64
	NextLeaderSlot      uint64
	LeaderRangeEnd      uint64
	RemainingCostUnits  uint64
	// RemainingAllocatedAccountsDataSize: ABI44 only.
	RemainingAllocatedAccountsDataSize uint64
	LatestBlockhash                    [32]byte // ABI41+
	TargetBankTimeMs                   uint16   // ABI44 only
}

// DecodeProgress reads a ProgressMessage of abi.
func DecodeProgress(abi ABI, b []byte) (Progress, error) {
	var m Progress
	switch abi {
	case ABI40:
		if len(b) < 48 {
			return m, ErrShortBuffer
		}
		b = b[:48]
		m.LeaderState = LeaderState(b[0])
		m.CurrentSlot = le.Uint64(b[8:16])
		m.NextLeaderSlot = le.Uint64(b[16:24])
		m.LeaderRangeEnd = le.Uint64(b[24:32])
		m.RemainingCostUnits = le.Uint64(b[32:40])
		m.CurrentSlotProgress = b[40]
	case ABI41, ABI44:
		n := ProgressSize(abi)
		if len(b) < n {
			return m, ErrShortBuffer
		}
		b = b[:n]
		_ = b[79]
		m.LeaderState = LeaderState(b[0])
		m.CurrentSlotProgress = b[1]
		m.Epoch = le.Uint64(b[8:16])
		m.CurrentSlot = le.Uint64(b[16:24])
		m.NextLeaderSlot = le.Uint64(b[24:32])
		m.LeaderRangeEnd = le.Uint64(b[32:40])
		m.RemainingCostUnits = le.Uint64(b[40:48])
		if abi == ABI41 {
			copy(m.LatestBlockhash[:], b[48:80])
		} else {
			_ = b[95]
			m.RemainingAllocatedAccountsDataSize = le.Uint64(b[48:56])
			copy(m.LatestBlockhash[:], b[56:88])
			m.TargetBankTimeMs = le.Uint16(b[88:90])
		}
	default:
		return m, ErrNotInABI
	}
	return m, nil
}

// Encode writes m into b[:ProgressSize(abi)], padding zeroed.
func (m Progress) Encode(abi ABI, b []byte) error {
	n := ProgressSize(abi)
	if n == 0 {
		return ErrNotInABI
	}
	if len(b) < n {
		return ErrShortBuffer
	}
	b = b[:n]
	clear(b)
	switch abi {
	case ABI40:
		_ = b[47]
		b[0] = byte(m.LeaderState)
		le.PutUint64(b[8:16], m.CurrentSlot)
		le.PutUint64(b[16:24], m.NextLeaderSlot)
		le.PutUint64(b[24:32], m.LeaderRangeEnd)
		le.PutUint64(b[32:40], m.RemainingCostUnits)
		b[40] = m.CurrentSlotProgress
	default:
		_ = b[79]
		b[0] = byte(m.LeaderState)
		b[1] = m.CurrentSlotProgress
		le.PutUint64(b[8:16], m.Epoch)
		le.PutUint64(b[16:24], m.CurrentSlot)
		le.PutUint64(b[24:32], m.NextLeaderSlot)
		le.PutUint64(b[32:40], m.LeaderRangeEnd)
		le.PutUint64(b[40:48], m.RemainingCostUnits)
		if abi == ABI41 {
			copy(b[48:80], m.LatestBlockhash[:])
		} else {
			_ = b[95]
			le.PutUint64(b[48:56], m.RemainingAllocatedAccountsDataSize)
			copy(b[56:88], m.LatestBlockhash[:])
			le.PutUint16(b[88:90], m.TargetBankTimeMs)
		}
	}
	return nil
}

// PackToWorker is PackToWorkerMessage (ABI40/41: check or execute, by flag
// bit 0) and ABI44's PackToExecutionWorkerMessage: same 32-byte layout.
// Flags use the Pack* constants in ABI40/41 and Exec* in ABI44 (see
// ExecuteFlags and CheckFlags). Pack keeps ownership of the batch.
type PackToWorker struct {
	Flags          uint16                         // @0
	MaxWorkingSlot uint64                         // @8
	Batch          SharableTransactionBatchRegion // @16
}

// DecodePackToWorker reads a PackToWorkerMessage (or ABI44
// PackToExecutionWorkerMessage); the layout is the same in every ABI.
func DecodePackToWorker(b []byte) (PackToWorker, error) {
	if len(b) < PackToWorkerSize {
		return PackToWorker{}, ErrShortBuffer
	}
	b = b[:PackToWorkerSize]
	return PackToWorker{Flags: le.Uint16(b[0:2]), MaxWorkingSlot: le.Uint64(b[8:16]), Batch: getBatch(b[16:32])}, nil
}

// Encode writes m into b[:32].
func (m PackToWorker) Encode(b []byte) error {
	if len(b) < PackToWorkerSize {
		return ErrShortBuffer
	}
	b = b[:PackToWorkerSize]
	le.PutUint64(b[0:8], uint64(m.Flags))
	le.PutUint64(b[8:16], m.MaxWorkingSlot)
	putBatch(b[16:32], m.Batch)
	return nil
}

// PackToCheckWorker is ABI44's PackToCheckWorkerMessage (Check* flags).
type PackToCheckWorker struct {
	Flags uint16                         // @0
	Batch SharableTransactionBatchRegion // @8
}

// DecodePackToCheckWorker reads a PackToCheckWorkerMessage of abi (ABI44).
func DecodePackToCheckWorker(abi ABI, b []byte) (PackToCheckWorker, error) {
	if abi != ABI44 {
		return PackToCheckWorker{}, ErrNotInABI
	}
	if len(b) < PackToCheckWorkerSize {
		return PackToCheckWorker{}, ErrShortBuffer
	}
	b = b[:PackToCheckWorkerSize]
	return PackToCheckWorker{Flags: le.Uint16(b[0:2]), Batch: getBatch(b[8:24])}, nil
}

// Encode writes m into b[:24] (ABI44 only).
func (m PackToCheckWorker) Encode(abi ABI, b []byte) error {
	if abi != ABI44 {
		return ErrNotInABI
	}
	if len(b) < PackToCheckWorkerSize {
		return ErrShortBuffer
	}
	b = b[:PackToCheckWorkerSize]
	le.PutUint64(b[0:8], uint64(m.Flags))
	putBatch(b[8:24], m.Batch)
	return nil
}

// WorkerToPack is WorkerToPackMessage (ABI40/41) and ABI44's
// Execution/CheckWorkerToPackMessage: the answer to one PackToWorker, echoing
// its batch. Responses (an array owned by pack from now on) is meaningful
// only when ProcessedCode is Processed.
type WorkerToPack struct {
	Batch         SharableTransactionBatchRegion // @0
	ProcessedCode ProcessedCode                  // @16
	Responses     TransactionResponseRegion      // @24
}

// DecodeWorkerToPack reads a worker answer of abi. In ABI44 tag names the
// queue (ExecutionResponseTag for worker_to_pack, CheckResponseTag for
// check_worker_to_pack); in ABI40/41 the message carries its own tag and
// the argument is ignored.
func DecodeWorkerToPack(abi ABI, tag ResponseTag, b []byte) (WorkerToPack, error) {
	if len(b) < WorkerToPackSize {
		return WorkerToPack{}, ErrShortBuffer
	}
	b = b[:WorkerToPackSize]
	r, err := DecodeTransactionResponseRegion(abi, tag, b[24:40])
	if err != nil {
		return WorkerToPack{}, err
	}
	return WorkerToPack{Batch: getBatch(b[0:16]), ProcessedCode: ProcessedCode(b[16]), Responses: r}, nil
}

// Encode writes m into b[:40] in abi's layout.
func (m WorkerToPack) Encode(abi ABI, b []byte) error {
	if len(b) < WorkerToPackSize {
		return ErrShortBuffer
	}
	b = b[:WorkerToPackSize]
	if err := m.Responses.Encode(abi, b[24:40]); err != nil {
		return err
	}
	putBatch(b[0:16], m.Batch)
	le.PutUint64(b[16:24], uint64(m.ProcessedCode))
	return nil
}

// ExecutionResponse is one transaction's execution result (same in every ABI).
type ExecutionResponse struct {
	ExecutionSlot     uint64            // @0
	NotIncludedReason NotIncludedReason // @8
	// CostUnits is the block-cost of the executed transaction (signatures,
	// locks, data, actual CUs, loaded accounts), not raw CUs.
	CostUnits       uint64 // @16
	FeePayerBalance uint64 // @24
}

// DecodeExecutionResponse reads a 32-byte ExecutionResponse.
func DecodeExecutionResponse(b []byte) (ExecutionResponse, error) {
	if len(b) < ExecutionResponseSize {
		return ExecutionResponse{}, ErrShortBuffer
	}
	b = b[:ExecutionResponseSize]
	return ExecutionResponse{
		ExecutionSlot:     le.Uint64(b[0:8]),
		NotIncludedReason: NotIncludedReason(b[8]),
		CostUnits:         le.Uint64(b[16:24]),
		FeePayerBalance:   le.Uint64(b[24:32]),
	}, nil
}

// Encode writes r into b[:32].
func (r ExecutionResponse) Encode(b []byte) error {
	if len(b) < ExecutionResponseSize {
		return ErrShortBuffer
	}
	b = b[:ExecutionResponseSize]
	le.PutUint64(b[0:8], r.ExecutionSlot)
	le.PutUint64(b[8:16], uint64(r.NotIncludedReason))
	le.PutUint64(b[16:24], r.CostUnits)
	le.PutUint64(b[24:32], r.FeePayerBalance)
	return nil
}

// CheckResponse is one transaction's check result. Fields absent from an ABI
// decode as zero and are not written. ResolvedPubkeys (when NumPubkeys > 0)
// is owned by pack, which must free it.
type CheckResponse struct {
	ParsingAndSanitizationFlags uint8
	StatusCheckFlags            uint8
	FeePayerBalanceFlags        uint8
	ResolveFlags                uint8
	SchedulingDetailsFlags      uint8 // ABI44
	IncludedSlot                uint64
	TransactionFee              uint64 // ABI44
	PrioritizationFee           uint64 // ABI44
	EstimatedCostUnits          uint64 // ABI44
	AllocatedAccountsDataSize   uint64 // ABI44
	BalanceSlot                 uint64
	FeePayerBalance             uint64
	ResolutionSlot              uint64
	MinAltDeactivationSlot      uint64
	ResolvedPubkeys             SharablePubkeys
}

// DecodeCheckResponse reads a CheckResponse of abi.
func DecodeCheckResponse(abi ABI, b []byte) (CheckResponse, error) {
	var r CheckResponse
	switch abi {
	case ABI40, ABI41:
		if len(b) < 64 {
			return r, ErrShortBuffer
		}
		b = b[:64]
		r.ParsingAndSanitizationFlags, r.StatusCheckFlags, r.FeePayerBalanceFlags, r.ResolveFlags = b[0], b[1], b[2], b[3]
		r.IncludedSlot = le.Uint64(b[8:16])
		r.BalanceSlot = le.Uint64(b[16:24])
		r.FeePayerBalance = le.Uint64(b[24:32])
		r.ResolutionSlot = le.Uint64(b[32:40])
		r.MinAltDeactivationSlot = le.Uint64(b[40:48])
		r.ResolvedPubkeys.Offset, r.ResolvedPubkeys.NumPubkeys = getRegion(b[48:64])
	case ABI44:
		if len(b) < 96 {
			return r, ErrShortBuffer
		}
		b = b[:96]
		r.ParsingAndSanitizationFlags, r.StatusCheckFlags, r.FeePayerBalanceFlags, r.ResolveFlags = b[0], b[1], b[2], b[3]
		r.SchedulingDetailsFlags = b[4]
		r.IncludedSlot = le.Uint64(b[8:16])
		r.TransactionFee = le.Uint64(b[16:24])
		r.PrioritizationFee = le.Uint64(b[24:32])
		r.EstimatedCostUnits = le.Uint64(b[32:40])
		r.AllocatedAccountsDataSize = le.Uint64(b[40:48])
		r.BalanceSlot = le.Uint64(b[48:56])
		r.FeePayerBalance = le.Uint64(b[56:64])
		r.ResolutionSlot = le.Uint64(b[64:72])
		r.MinAltDeactivationSlot = le.Uint64(b[72:80])
		r.ResolvedPubkeys.Offset, r.ResolvedPubkeys.NumPubkeys = getRegion(b[80:96])
	default:
		return r, ErrNotInABI
	}
	return r, nil
}

// Encode writes r into b[:CheckResponseSize(abi)], padding zeroed.
func (r CheckResponse) Encode(abi ABI, b []byte) error {
	switch abi {
	case ABI40, ABI41:
		if len(b) < 64 {
			return ErrShortBuffer
		}
		b = b[:64]
		le.PutUint64(b[0:8], uint64(r.ParsingAndSanitizationFlags)|uint64(r.StatusCheckFlags)<<8|
			uint64(r.FeePayerBalanceFlags)<<16|uint64(r.ResolveFlags)<<24)
		le.PutUint64(b[8:16], r.IncludedSlot)
		le.PutUint64(b[16:24], r.BalanceSlot)
		le.PutUint64(b[24:32], r.FeePayerBalance)
		le.PutUint64(b[32:40], r.ResolutionSlot)
		le.PutUint64(b[40:48], r.MinAltDeactivationSlot)
		putRegion(b[48:64], r.ResolvedPubkeys.Offset, r.ResolvedPubkeys.NumPubkeys)
	case ABI44:
		if len(b) < 96 {
			return ErrShortBuffer
		}
		b = b[:96]
		le.PutUint64(b[0:8], uint64(r.ParsingAndSanitizationFlags)|uint64(r.StatusCheckFlags)<<8|
			uint64(r.FeePayerBalanceFlags)<<16|uint64(r.ResolveFlags)<<24|uint64(r.SchedulingDetailsFlags)<<32)
		le.PutUint64(b[8:16], r.IncludedSlot)
		le.PutUint64(b[16:24], r.TransactionFee)
		le.PutUint64(b[24:32], r.PrioritizationFee)
		le.PutUint64(b[32:40], r.EstimatedCostUnits)
		le.PutUint64(b[40:48], r.AllocatedAccountsDataSize)
		le.PutUint64(b[48:56], r.BalanceSlot)
		le.PutUint64(b[56:64], r.FeePayerBalance)
		le.PutUint64(b[64:72], r.ResolutionSlot)
		le.PutUint64(b[72:80], r.MinAltDeactivationSlot)
		putRegion(b[80:96], r.ResolvedPubkeys.Offset, r.ResolvedPubkeys.NumPubkeys)
	default:
		return ErrNotInABI
	}
	return nil
}
