package score

import (
	"encoding/binary"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/solqos/qos/channels"
)

// Info is everything the daemon needs about one accepted packet.
type Info struct {
	// SigOff is the offset of signature 0 in the packet data: 1 for
	// legacy and v0 (the signature count is one byte), the end of the
	// message for v1.
	SigOff uint16
	// Version is the transaction's format.
	Version Version
	// Hash is PacketHash of the record under the evaluator's seed.
	Hash uint64
	// Payer is the fee payer, static key 0: the signer the model scores.
	Payer [32]byte
	// Budget is the transaction's fee and compute units.
	Budget Budget
}

// Evaluator checks, parses, prices and hashes packet records, reusing one
// View. A zero Fees means DefaultFeeParams; zero Limits are mainnet's.
type Evaluator struct {
	// Seed is the operator's xxhash seed for PacketHash.
	Seed uint64
	// Fees are the fee constants; the zero value means DefaultFeeParams().
	Fees FeeParams
	// Limits are the operator's switches (account-lock limit, v1).
	Limits Limits
	view   View
}

// NewEvaluator returns an evaluator with the given seed, current Agave's
// fee constants and mainnet's limits.
func NewEvaluator(seed uint64) *Evaluator {
	return &Evaluator{Seed: seed, Fees: DefaultFeeParams()}
}

// Evaluate runs every per-packet check on p, in order: the record (size ≤
// 1232, address tag IPv4 or IPv6, DISCARD clear), then View.Admit (the v1
// switch, parse and sanitize, the compute-budget instructions, the
// account locks, the compute-budget limits and fee); then hashes the
// record. It returns the packet's Info and
// OK, or a zero Info and the first reason it fails. It never allocates and
// never modifies p.
func (e *Evaluator) Evaluate(p *channels.Packet) (Info, Reject) {
	info, r := e.Inspect(p)
	if r == OK {
		info.Hash = PacketHash(e.Seed, p)
	}
	return info, r
}

// Inspect is Evaluate without the hash (Info.Hash is 0), for a caller
// that may drop the packet on its score before it needs the hash.
func (e *Evaluator) Inspect(p *channels.Packet) (Info, Reject) {
	size := p.Size()
	if size > channels.PacketDataSize {
		return Info{}, RejectSize
	}
	if t := p.AddrTag(); t != channels.AddrTagIPv4 && t != channels.AddrTagIPv6 {
		return Info{}, RejectAddr
	}
	if p.Flags()&channels.FlagDiscard != 0 {
		return Info{}, RejectDiscard
	}
	data := p[:size:size]
	e.view.Parse(data) // Admit reports its result
	fees := e.Fees
	if fees == (FeeParams{}) {
		fees = DefaultFeeParams()
	}
	b, r := e.view.Admit(data, fees, e.Limits)
	if r != OK {
		return Info{}, r
	}
	return Info{
		SigOff:  e.view.sigOff,
		Version: e.view.ver,
		Payer:   e.view.FeePayer(data),
		Budget:  b,
	}, OK
}

// View returns the evaluator's view of the last packet evaluated, valid
// for that packet's data until the next Evaluate.
func (e *Evaluator) View() *View { return &e.view }

// PacketHash returns XXH64 with the given seed over data[0:size] ‖ size
// (u64 little-endian) ‖ the address bytes (4 for IPv4, 16 for IPv6): the
// hash the validator computes for the scheduler result. It reads the
// record in place, without copying the data or allocating. A malformed
// record does not panic: data is clamped to 1232 bytes and an invalid
// address tag contributes no address bytes.
func PacketHash(seed uint64, p *channels.Packet) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	size := p.Size()
	n := min(size, channels.PacketDataSize)
	_, _ = d.Write(p[:n])
	var tail [8 + 16]byte
	binary.LittleEndian.PutUint64(tail[:8], size)
	k := 8 + copy(tail[8:], p.AddrBytes())
	_, _ = d.Write(tail[:k])
	return d.Sum64()
}

// MinScoreCUs is the least compute units Score divides by. Every
// transaction costs the leader at least what one builtin instruction is
// allotted (SIMD-0170's 3 000), so one asking for fewer, or for none at
// all (no instructions; a v1 transaction without a limit), is ranked as
// if it asked for 3 000: an empty transaction ranks with a plain
// transfer of the same fee, below anything paying more per compute unit,
// never at the top of the queue.
const MinScoreCUs = 3000

// MaxFeePerCU bounds fee / max(cus, MinScoreCUs) in Score for any
// transaction, loosely: the fee is a saturating u64 and the divisor at
// least 1. With it, a caller can bound a packet's score before parsing it
// (model × MaxFeePerCU).
const MaxFeePerCU = float64(math.MaxUint64)

// Score is the packet's priority: model × fee / max(cus, MinScoreCUs),
// where model is the IP/signer model's forward value, fee the total fee
// in lamports and cus the requested compute units.
func Score(model float64, fee, cus uint64) float64 {
	return model * float64(fee) / float64(max(cus, MinScoreCUs))
}

// FeePerCU is Score with a model of 1: what the queue ranks by.
func FeePerCU(fee, cus uint64) float64 { return Score(1, fee, cus) }
