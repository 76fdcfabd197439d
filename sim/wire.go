package sim

import (
	"encoding/binary"
	"math/bits"
)

// Program ids the simulated transactions use.
var (
	// computeBudgetID is ComputeBudget111111111111111111111111111111.
	computeBudgetID = [32]byte{
		0x03, 0x06, 0x46, 0x6f, 0xe5, 0x21, 0x17, 0x32, 0xff, 0xec, 0xad, 0xba, 0x72, 0xc3, 0x9b, 0xe7,
		0xbc, 0x8c, 0xe5, 0xbb, 0xc5, 0xf7, 0x12, 0x6b, 0x2c, 0x43, 0x9b, 0x3a, 0x40, 0x00, 0x00, 0x00,
	}
	// attributionID is the program of the memo-like last instruction. It
	// is not a real program; the scheduler here never executes anything.
	attributionID = [32]byte{
		'q', 'o', 's', '-', 's', 'i', 'm', ' ', 'a', 't', 't', 'r', 'i', 'b', 'u', 't',
		'i', 'o', 'n', ' ', 'p', 'r', 'o', 'g', 'r', 'a', 'm', ' ', 'v', '1', 0, 0,
	}
)

// Fee constants (agave 2.1, docs/solana-wire.md §4–5).
const (
	lamportsPerSignature = 5000
	maxComputeUnitLimit  = 1_400_000
)

// The attribution instruction's data (see the package doc).
const (
	memoLen   = 24
	memoMagic = 0x4d495351 // "QSIM" read as a little-endian u32
	// memoUnpaid, in the memo's flags (bytes 6..8), marks a transaction
	// whose fee payer cannot pay: it verifies but is never included.
	memoUnpaid = 1
)

// layout holds the offsets, within an encoded transaction, of the fields
// a packet patches: the message start, the CU limit (u32), the CU price
// (u64) and the attribution data.
type layout struct {
	n     int // encoded length
	msg   int
	payer int // the fee payer's key
	limit int
	price int
	memo  int
}

// appendTx appends a one-signature transaction paying from payer, legacy
// or v0, to dst and returns the extended slice and the offsets of its
// patchable fields. The signature, limit, price and attribution bytes are
// zero. A v0 transaction carries one address-table lookup (table lut, one
// writable index), referenced by the attribution instruction.
//
// Legacy message: header [1 0 2]; keys payer, ComputeBudget, attribution;
// blockhash; three instructions: SetComputeUnitLimit, SetComputeUnitPrice,
// attribution(accounts [0]).
func appendTx(dst []byte, payer, blockhash, lut *[32]byte, v0 bool) ([]byte, layout) {
	start := len(dst)
	var l layout
	dst = append(dst, 1) // nsig
	dst = append(dst, make([]byte, 64)...)
	l.msg = len(dst) - start
	if v0 {
		dst = append(dst, 0x80)
	}
	dst = append(dst, 1, 0, 2) // required, readonly signed, readonly unsigned
	dst = append(dst, 3)       // static keys
	l.payer = len(dst) - start
	dst = append(dst, payer[:]...)
	dst = append(dst, computeBudgetID[:]...)
	dst = append(dst, attributionID[:]...)
	dst = append(dst, blockhash[:]...)
	dst = append(dst, 3) // instructions

	dst = append(dst, 1, 0, 5, 2) // SetComputeUnitLimit
	l.limit = len(dst) - start
	dst = append(dst, 0, 0, 0, 0)

	dst = append(dst, 1, 0, 9, 3) // SetComputeUnitPrice
	l.price = len(dst) - start
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)

	if v0 {
		dst = append(dst, 2, 2, 0, 3, memoLen) // accounts: payer, the looked-up one
	} else {
		dst = append(dst, 2, 1, 0, memoLen)
	}
	l.memo = len(dst) - start
	dst = append(dst, make([]byte, memoLen)...)

	if v0 {
		dst = append(dst, 1) // one lookup
		dst = append(dst, lut[:]...)
		dst = append(dst, 1, 0, 0) // writable [0], readonly []
	}
	l.n = len(dst) - start
	return dst, l
}

// putMemo writes the attribution data at data[off:off+memoLen].
func putMemo(data []byte, off int, agent uint16, flags uint16, seq uint64, produced int64) {
	b := data[off : off+memoLen]
	binary.LittleEndian.PutUint32(b[0:], memoMagic)
	binary.LittleEndian.PutUint16(b[4:], agent)
	binary.LittleEndian.PutUint16(b[6:], flags)
	binary.LittleEndian.PutUint64(b[8:], seq)
	binary.LittleEndian.PutUint64(b[16:], uint64(produced))
}

// txFee returns the fee agave 2.1 charges a transaction with nsig
// signatures, CU limit limit and CU price price (micro-lamports per CU):
// nsig × 5000 + ⌈price × min(limit, 1.4M) / 10⁶⌉, saturating.
func txFee(nsig int, limit uint32, price uint64) uint64 {
	lim := uint64(limit)
	if lim > maxComputeUnitLimit {
		lim = maxComputeUnitLimit
	}
	hi, lo := bits.Mul64(price, lim)
	var prio uint64
	if hi >= 1_000_000 {
		prio = ^uint64(0)
	} else {
		q, r := bits.Div64(hi, lo, 1_000_000)
		prio = q
		if r != 0 {
			prio++
		}
	}
	base := uint64(nsig) * lamportsPerSignature
	if prio > ^uint64(0)-base {
		return ^uint64(0)
	}
	return base + prio
}

// decoded is what decodeTx learns from a transaction in the simulator's
// own format.
type decoded struct {
	nsig     int
	msg      int
	v0       bool
	limit    uint32
	price    uint64
	hasLimit bool
	hasPrice bool
	hasMemo  bool
	agent    uint16
	unpaid   bool // the fee payer cannot pay: the scheduler never includes it
	seq      uint64
	produced int64
}

// cus returns the compute units the transaction requested: its limit
// capped at 1.4 M. The simulator always sets a limit; a transaction
// without one counts as 200 000 (one non-budget instruction's default).
func (d *decoded) cus() uint32 {
	if !d.hasLimit {
		return 200_000
	}
	if d.limit > maxComputeUnitLimit {
		return maxComputeUnitLimit
	}
	return d.limit
}

// fee returns the transaction's fee (see txFee).
func (d *decoded) fee() uint64 { return txFee(d.nsig, d.cus(), d.price) }

// readShortvec reads a compact-u16 of at most two bytes (the
// TransactionView rule). It returns the value and the bytes used, or
// n = 0 when the encoding is truncated, too long or not minimal.
func readShortvec(b []byte, off int) (v int, n int) {
	if off >= len(b) {
		return 0, 0
	}
	b0 := b[off]
	if b0 < 0x80 {
		return int(b0), 1
	}
	if off+1 >= len(b) {
		return 0, 0
	}
	b1 := b[off+1]
	if b1 == 0 || b1 >= 0x80 {
		return 0, 0
	}
	return int(b0&0x7f) | int(b1)<<7, 2
}

// decodeTx walks data as a legacy or v0 transaction and fills d. It
// reports false for anything that is not a well-formed transaction
// (bounds, counts, trailing bytes); it does not sanitize. Compute-budget
// instructions and the attribution instruction are recognised by program
// id; the first of each kind wins. It never reads outside data and never
// allocates.
func decodeTx(data []byte, d *decoded) bool {
	*d = decoded{}
	if len(data) < 1 {
		return false
	}
	nsig := int(data[0])
	if nsig < 1 || nsig > 12 {
		return false
	}
	off := 1 + nsig*64
	d.nsig = nsig
	d.msg = off
	if off >= len(data) {
		return false
	}
	if data[off] >= 0x80 {
		if data[off] != 0x80 {
			return false
		}
		d.v0 = true
		off++
	}
	if off+4 > len(data) {
		return false
	}
	nkeys := int(data[off+3])
	off += 4
	if nkeys < 1 || nkeys > 38 || off+nkeys*32+32 > len(data) {
		return false
	}
	keys := off
	off += nkeys*32 + 32 // keys and blockhash
	nix, n := readShortvec(data, off)
	if n == 0 {
		return false
	}
	off += n
	for i := 0; i < nix; i++ {
		if off >= len(data) {
			return false
		}
		prog := int(data[off])
		off++
		nacc, n := readShortvec(data, off)
		if n == 0 || off+n+nacc > len(data) {
			return false
		}
		off += n + nacc
		dlen, n := readShortvec(data, off)
		if n == 0 || off+n+dlen > len(data) {
			return false
		}
		off += n
		ix := data[off : off+dlen]
		off += dlen
		if prog >= nkeys {
			continue
		}
		key := data[keys+prog*32 : keys+prog*32+32]
		switch {
		case [32]byte(key) == computeBudgetID && len(ix) > 0:
			switch ix[0] {
			case 2:
				if len(ix) >= 5 && !d.hasLimit {
					d.limit = binary.LittleEndian.Uint32(ix[1:])
					d.hasLimit = true
				}
			case 3:
				if len(ix) >= 9 && !d.hasPrice {
					d.price = binary.LittleEndian.Uint64(ix[1:])
					d.hasPrice = true
				}
			}
		case [32]byte(key) == attributionID && len(ix) == memoLen && !d.hasMemo:
			if binary.LittleEndian.Uint32(ix[0:]) == memoMagic {
				d.hasMemo = true
				d.agent = binary.LittleEndian.Uint16(ix[4:])
				d.unpaid = binary.LittleEndian.Uint16(ix[6:])&memoUnpaid != 0
				d.seq = binary.LittleEndian.Uint64(ix[8:])
				d.produced = int64(binary.LittleEndian.Uint64(ix[16:]))
			}
		}
	}
	if d.v0 {
		if off >= len(data) {
			return false
		}
		nlut := int(data[off])
		off++
		if nlut > 31 {
			return false
		}
		for i := 0; i < nlut; i++ {
			off += 32
			for k := 0; k < 2; k++ {
				c, n := readShortvec(data, off)
				if n == 0 || off+n+c > len(data) {
					return false
				}
				off += n + c
			}
		}
	}
	return off == len(data)
}
