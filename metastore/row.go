package metastore

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// Row is one completed transaction: the partial meta joined with the
// scheduler's result. It is what the database stores and replay reads.
type Row struct {
	ObservedAt int64  // unix ns at completion; non-decreasing within a run
	Seq        uint64 // per-daemon-run sequence, for stable ordering
	Channel    uint8
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
}

// Join builds the row for a partial that the scheduler reported on.
func Join(p *Partial, hash, seed uint64, seq uint64, observedAt int64, execNanos uint64, value float64) Row {
	return Row{
		ObservedAt: observedAt,
		Seq:        seq,
		Channel:    p.Channel,
		IP:         p.IP,
		Signer:     p.Signer,
		Fee:        p.Fee,
		CUs:        p.CUs,
		CUPrice:    p.CUPrice,
		ExecNanos:  execNanos,
		Scheduled:  execNanos != 0,
		Value:      value,
		Score:      p.Score,
		Hash:       hash,
		Seed:       seed,
	}
}

// Addr returns the row's IP address, IPv4 unmapped.
func (r *Row) Addr() netip.Addr { return netip.AddrFrom16(r.IP).Unmap() }

// RowSize is the size of a row in the spool's fixed little-endian encoding:
//
//	0 observed_at i64 | 8 seq u64 | 16 channel u8 | 17 ip [16] | 33 signer [32] |
//	65 fee u64 | 73 cus u64 | 81 cu_price u64 | 89 exec_ns u64 | 97 scheduled u8 |
//	98 value f64 | 106 score f64 | 114 hash u64 | 122 seed u64 | 130 reserved u64
const RowSize = 138

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
	le.PutUint64(b[130:], 0)
}

// getRow decodes a row encoded by putRow. REQUIRES: len(b) ≥ RowSize.
func getRow(b []byte, r *Row) {
	_ = b[RowSize-1]
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
}
