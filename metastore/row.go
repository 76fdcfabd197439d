package metastore

import (
	"encoding/binary"
	"math"
	"net/netip"

	"github.com/solqos/qos/admit"
)

// RowKind says which input of the model a row records.
type RowKind uint8

// The row kinds. The daemon's model changes on exactly these events, so a
// run's rows, in (observed_at, seq) order, are the whole of its model's
// inputs.
const (
	// RowCompleted is a completed transaction: a packet the sidecar
	// admitted, joined with the scheduler's result. The model observes it.
	RowCompleted RowKind = iota
	// RowSigverifyFailed is a packet sigverify rejected: the model
	// penalises its source IP. Channel is SigverifyChannel.
	RowSigverifyFailed
	// RowUnparsable is a packet that failed to parse: the model penalises
	// its source IP. Channel is the packet's source channel.
	RowUnparsable
	// RowPackResult is one ExecutionResponse of pack mode joined with what
	// admission recorded: Slot, Reason (0 = included), CostUnits and
	// FeePayerBalance as the validator reported them, CUs the estimated
	// cost units, Scheduled whether it was included. The model learns
	// from it through pack.Judge and pack.ModelObservation (Apply);
	// reasons that blame nobody change nothing. Channel is PackChannel.
	RowPackResult
	numRowKinds
)

// SigverifyChannel is the Channel of RowSigverifyFailed rows: sig_to_qos
// does not say which channel the packet came in on.
const SigverifyChannel uint8 = 255

// PackChannel is the Channel of pack mode's rows (tpu_to_pack: pack mode
// has one source of transactions).
const PackChannel uint8 = 254

// PackForwardedChannel is the Channel of a pack-mode result whose
// transaction came FORWARDED by a staked node: its IP is the forwarder's,
// not the sender's, so the model keys it by its fee payer instead
// (ForwardedKey; Row.PackObservation).
const PackForwardedChannel uint8 = 253

// String returns the kind's stable name.
func (k RowKind) String() string {
	switch k {
	case RowCompleted:
		return "completed"
	case RowSigverifyFailed:
		return "sigverify_failed"
	case RowUnparsable:
		return "unparsable"
	case RowPackResult:
		return "pack_result"
	}
	return "unknown"
}

// Valid reports whether k is a kind this binary knows.
func (k RowKind) Valid() bool { return k < numRowKinds }

// Penalty reports whether k is a penalty (a failed sigverify or an
// unparsable packet).
func (k RowKind) Penalty() bool { return k == RowSigverifyFailed || k == RowUnparsable }

// Row is one input of the model, as the database stores it and replay
// reads it: a completed transaction (the partial meta joined with the
// scheduler's result) or a feedback event (a failed sigverify or an
// unparsable packet), whose fields besides ObservedAt, Seq, Kind, Channel,
// IP and Seed are zero.
type Row struct {
	ObservedAt int64    // unix ns at completion (or penalty); non-decreasing within a run
	Seq        uint64   // per-daemon-run sequence over all kinds, for one total order
	Kind       RowKind  // RowCompleted for a transaction
	Channel    uint8    // source channel index; SigverifyChannel for sigverify failures
	IP         [16]byte // IPv4 as ::ffff:a.b.c.d
	Signer     [32]byte
	Fee        uint64
	CUs        uint64
	CUPrice    uint64
	ExecNanos  uint64 // 0 = not executed
	Scheduled  bool
	Value      float64
	Score      float64 // admission score
	Hash       uint64  // packet hash
	Seed       uint64  // the xxhash seed the hash was computed with

	// Pack mode's execution result (RowPackResult only; zero otherwise).
	Slot            uint64 // execution_slot
	Reason          uint8  // not_included_reason; 0 = included
	CostUnits       uint64 // block cost charged, 0 when not included
	FeePayerBalance uint64 // the fee payer's balance after execution
}

// CompletedRow builds the row of an admitted packet the scheduler reported
// on: its partial meta p and packet hash, completed with the report's
// time and execution. The caller numbers it (Seq) and values it (Value)
// when it hands the row on.
func CompletedRow(p *admit.Partial, hash, seed uint64, observedAt int64, execNanos uint64) Row {
	return Row{
		ObservedAt: observedAt,
		Channel:    p.Channel,
		IP:         p.IP,
		Signer:     p.Signer,
		Fee:        p.Fee,
		CUs:        p.CUs,
		CUPrice:    p.CUPrice,
		ExecNanos:  execNanos,
		Scheduled:  execNanos != 0,
		Score:      p.Score,
		Hash:       hash,
		Seed:       seed,
	}
}

// PenaltyRow builds the row of a penalty of the given kind on the source
// address ip (16-byte form, IPv4 as ::ffff:a.b.c.d).
// Its Fee and CUs are zero; a caller that knows what the packet claimed
// (a failed sigverify of a packet the daemon had parsed) sets them, and
// replay penalises with that claim (Row.Claim).
func PenaltyRow(kind RowKind, seq uint64, observedAt int64, channel uint8, ip [16]byte, seed uint64) Row {
	return Row{ObservedAt: observedAt, Seq: seq, Kind: kind, Channel: channel, IP: ip, Seed: seed}
}

// Addr returns the row's IP address, IPv4 unmapped.
func (r *Row) Addr() netip.Addr { return netip.AddrFrom16(r.IP).Unmap() }

// RowSize is the size of a row in the spool's fixed little-endian encoding
// (spool version 3):
//
//	0 observed_at i64 | 8 seq u64 | 16 channel u8 | 17 ip [16] | 33 signer [32] |
//	65 fee u64 | 73 cus u64 | 81 cu_price u64 | 89 exec_ns u64 | 97 scheduled u8 |
//	98 value f64 | 106 score f64 | 114 hash u64 | 122 seed u64 | 130 kind u8 |
//	131 reason u8 | 132 slot u64 | 140 cost_units u64 | 148 fee_payer_balance u64 |
//	156 reserved [4]
//
// Versions 1 and 2 wrote the first 131 bytes and 7 reserved ones
// (legacyRowSize); their pack fields read as zero. The kind byte was
// reserved (zero) in version 1, so version 1 rows read as RowCompleted,
// which is all they held.
const RowSize = 160

// legacyRowSize is the row size of spool versions 1 and 2.
const legacyRowSize = 138

// putRow encodes r into b. REQUIRES: len(b) ≥ RowSize.
func putRow(b []byte, r *Row) {
	_ = b[RowSize-1]
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(r.ObservedAt))
	le.PutUint64(b[8:], r.Seq)
	b[16] = r.Channel
	copy(b[17:33], r.IP[:])
	copy(b[33:65], r.Signer[:])
	le.PutUint64(b[65:], r.Fee)
	le.PutUint64(b[73:], r.CUs)
	le.PutUint64(b[81:], r.CUPrice)
	le.PutUint64(b[89:], r.ExecNanos)
	b[97] = 0
	if r.Scheduled {
		b[97] = 1
	}
	le.PutUint64(b[98:], math.Float64bits(r.Value))
	le.PutUint64(b[106:], math.Float64bits(r.Score))
	le.PutUint64(b[114:], r.Hash)
	le.PutUint64(b[122:], r.Seed)
	b[130] = uint8(r.Kind)
	b[131] = r.Reason
	le.PutUint64(b[132:], r.Slot)
	le.PutUint64(b[140:], r.CostUnits)
	le.PutUint64(b[148:], r.FeePayerBalance)
	le.PutUint32(b[156:], 0)
}

// getRow decodes a row of size rowSize (RowSize, or legacyRowSize for
// spool versions 1 and 2). REQUIRES: len(b) ≥ rowSize.
func getRow(b []byte, r *Row, rowSize int) {
	_ = b[legacyRowSize-1]
	le := binary.LittleEndian
	r.ObservedAt = int64(le.Uint64(b[0:]))
	r.Seq = le.Uint64(b[8:])
	r.Channel = b[16]
	copy(r.IP[:], b[17:33])
	copy(r.Signer[:], b[33:65])
	r.Fee = le.Uint64(b[65:])
	r.CUs = le.Uint64(b[73:])
	r.CUPrice = le.Uint64(b[81:])
	r.ExecNanos = le.Uint64(b[89:])
	r.Scheduled = b[97] != 0
	r.Value = math.Float64frombits(le.Uint64(b[98:]))
	r.Score = math.Float64frombits(le.Uint64(b[106:]))
	r.Hash = le.Uint64(b[114:])
	r.Seed = le.Uint64(b[122:])
	r.Kind = RowKind(b[130])
	r.Reason, r.Slot, r.CostUnits, r.FeePayerBalance = 0, 0, 0, 0
	if rowSize >= RowSize {
		_ = b[RowSize-1]
		r.Reason = b[131]
		r.Slot = le.Uint64(b[132:])
		r.CostUnits = le.Uint64(b[140:])
		r.FeePayerBalance = le.Uint64(b[148:])
	}
}
