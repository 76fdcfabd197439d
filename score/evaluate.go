package score

import (
	"encoding/binary"
	"math"
	"net/netip"

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
	// Hash is TxHash (PacketHash of a record) under the evaluator's seed.
	Hash uint64
	// Payer is the fee payer, static key 0: the signer the model scores.
	Payer [32]byte
	// Budget is the transaction's fee and compute units.
	Budget Budget
}

// Evaluator checks, parses, prices and hashes transactions, as wire bytes
// with their source address and flags (InspectTx, EvaluateTx) or as
// packet records (Inspect, Evaluate: thin wrappers), reusing one View. A
// zero Fees means DefaultFeeParams; zero Limits are mainnet's.
type Evaluator struct {
	// Seed is the operator's xxhash seed for TxHash (PacketHash).
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

// MaxTxSize is the largest transaction, in bytes: the packet data size
// (1280-byte IPv6 minimum MTU less 48 bytes of headers).
const MaxTxSize = channels.PacketDataSize

// EvaluateTx runs every per-packet check on one transaction's wire bytes,
// source address and flags (Agave's PacketFlags bits), in order: the size
// (≤ MaxTxSize), the address (valid), DISCARD clear, then View.Admit (the
// v1 switch, parse and sanitize, the compute-budget instructions, the
// account locks, the compute-budget limits and fee); then hashes it
// (TxHash). It returns the transaction's Info and OK, or a zero Info and
// the first reason it fails. It never allocates and never modifies data.
func (e *Evaluator) EvaluateTx(data []byte, addr netip.Addr, flags uint8) (Info, Reject) {
	info, r := e.InspectTx(data, addr, flags)
	if r == OK {
		info.Hash = TxHash(e.Seed, data, addr)
	}
	return info, r
}

// InspectTx is EvaluateTx without the hash (Info.Hash is 0), for a caller
// that may drop the transaction on its score before it needs the hash.
// It is the one implementation of the per-packet inspection: Inspect and
// Evaluate on packet records, the admission of every mode and qos-cli
// explain all come here.
func (e *Evaluator) InspectTx(data []byte, addr netip.Addr, flags uint8) (Info, Reject) {
	if len(data) > MaxTxSize {
		return Info{}, RejectSize
	}
	if !addr.IsValid() {
		return Info{}, RejectAddr
	}
	if flags&channels.FlagDiscard != 0 {
		return Info{}, RejectDiscard
	}
	data = data[:len(data):len(data)]
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

// Evaluate is EvaluateTx on a packet record: its data, address and
// flags (TxOf). Info.Hash equals PacketHash of the record. It never
// allocates and never modifies p.
func (e *Evaluator) Evaluate(p *channels.Packet) (Info, Reject) {
	data, addr, flags := TxOf(p)
	return e.EvaluateTx(data, addr, flags)
}

// Inspect is InspectTx on a packet record (TxOf).
func (e *Evaluator) Inspect(p *channels.Packet) (Info, Reject) {
	data, addr, flags := TxOf(p)
	return e.InspectTx(data, addr, flags)
}

// TxOf is what inspection reads of a packet record: its data, pointing
// into the record (no copy), its source address and its flags. A size
// field beyond the data area yields MaxTxSize+1 bytes, which inspection
// rejects by size; an invalid address tag yields the zero Addr, which it
// rejects as a bad address. The address is IPv4 (As4) for the IPv4 tag
// and 16 bytes for the IPv6 tag, so that TxHash of the result is
// PacketHash of a well-formed record.
func TxOf(p *channels.Packet) (data []byte, addr netip.Addr, flags uint8) {
	n := min(p.Size(), channels.PacketDataSize+1)
	addr, _ = p.Addr()
	return p[:n:n], addr, p.Flags()
}

// View returns the evaluator's view of the last packet evaluated, valid
// for that packet's data until the next inspection.
func (e *Evaluator) View() *View { return &e.view }

// TxHash is the packet hash the validator computes for the scheduler's
// result: XXH64 with seed over data ‖ len(data) (u64 little-endian) ‖ the
// address bytes (4 for an IPv4 address, 16 for any other valid one,
// IPv4-mapped included; none for the zero Addr). For the data, address
// and flags TxOf reads of a well-formed record (size ≤ MaxTxSize, IPv4 or
// IPv6 tag) it equals PacketHash of the record, bit for bit (a fuzz test
// keeps them equal). It does not allocate.
func TxHash(seed uint64, data []byte, addr netip.Addr) uint64 {
	var a [16]byte
	k := 0
	if addr.Is4() {
		a4 := addr.As4()
		k = copy(a[:], a4[:])
	} else if addr.IsValid() {
		a = addr.As16()
		k = 16
	}
	return hash(seed, data, uint64(len(data)), a[:k])
}

// PacketHash returns XXH64 with the given seed over data[0:size] ‖ size
// (u64 little-endian) ‖ the address bytes (4 for IPv4, 16 for IPv6): the
// hash the validator computes for the scheduler result. It reads the
// record in place, without copying the data or allocating. A malformed
// record does not panic: data is clamped to 1232 bytes (the size field
// is hashed as is) and an invalid address tag contributes no address
// bytes.
func PacketHash(seed uint64, p *channels.Packet) uint64 {
	size := p.Size()
	n := min(size, channels.PacketDataSize)
	return hash(seed, p[:n:n], size, p.AddrBytes())
}

// hash is XXH64 with seed over data ‖ size (u64 little-endian) ‖ addr,
// the one computation behind TxHash and PacketHash.
func hash(seed uint64, data []byte, size uint64, addr []byte) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	_, _ = d.Write(data)
	var tail [8 + 16]byte
	binary.LittleEndian.PutUint64(tail[:8], size)
	k := 8 + copy(tail[8:], addr)
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
