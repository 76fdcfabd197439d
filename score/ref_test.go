package score

import (
	"bytes"
	"encoding/binary"
	"math/big"
)

// refTx is a transaction decoded into plain slices.
type refTx struct {
	v0, v1           bool
	nsig             int
	nreq, nros, nrou int
	keys             [][]byte
	ixs              []refIx
	luts             []refLut
	nw, nr           int
	// v1 config: mask and the words it selects, bit by bit
	mask   uint32
	cfg    map[uint][]byte
	maskOK bool
}

type refIx struct {
	prog       int
	accs, data []byte
}

type refLut struct{ w, r []byte }

// refParse is a second, deliberately plain implementation of the same
// rules as View.Parse followed by View.Admit, written the way Agave
// structures them: decode everything into slices, then sanitize in
// sanitize.rs order, then run the compute-budget scan over the decoded
// instructions, then the account locks, then the limits and the fee. The
// fused single-pass View is checked against it by FuzzParse.
func refParse(data []byte, lim Limits) (Budget, Reject) {
	if len(data) > 0 && data[0] >= 0x80 {
		tx, r := refDecodeV1(data)
		if r == OK || r.class() == classSanitize {
			if lim.NoTxV1 {
				return Budget{}, RejectV1Disabled
			}
		}
		if r != OK {
			return Budget{}, r
		}
		return refRules(tx, lim)
	}
	tx, r := refDecode(data)
	if r != OK {
		return Budget{}, r
	}
	return refRules(tx, lim)
}

// refDecodeV1 decodes a v1 transaction field by field (SIMD-0385 as
// transaction_frame.rs lays it out).
func refDecodeV1(data []byte) (refTx, Reject) {
	var tx refTx
	if len(data) > 4096 {
		return tx, RejectSize
	}
	if len(data) < 42 {
		return tx, RejectHeader
	}
	if data[0] != 0x81 {
		return tx, RejectVersion
	}
	tx.v1 = true
	tx.nreq, tx.nros, tx.nrou = int(data[1]), int(data[2]), int(data[3])
	tx.mask = binary.LittleEndian.Uint32(data[4:8])
	nix, nkeys := int(data[40]), int(data[41])
	rest := data[42:]
	cut := func(n int) ([]byte, bool) {
		if n > len(rest) {
			return nil, false
		}
		b := rest[:n]
		rest = rest[n:]
		return b, true
	}
	for range nkeys {
		k, ok := cut(32)
		if !ok {
			return tx, RejectAccountKeys
		}
		tx.keys = append(tx.keys, k)
	}
	tx.cfg = map[uint][]byte{}
	for bit := range uint(32) {
		if tx.mask&(1<<bit) == 0 {
			continue
		}
		w, ok := cut(4)
		if !ok {
			return tx, RejectHeader
		}
		tx.cfg[bit] = w
	}
	hdrs, ok := cut(4 * nix)
	if !ok {
		return tx, RejectInstructions
	}
	total := 0
	for i := range nix {
		total += int(hdrs[4*i+1]) + int(binary.LittleEndian.Uint16(hdrs[4*i+2:]))
	}
	if total > len(rest) {
		return tx, RejectInstructions
	}
	for i := range nix {
		accs, _ := cut(int(hdrs[4*i+1]))
		d, _ := cut(int(binary.LittleEndian.Uint16(hdrs[4*i+2:])))
		tx.ixs = append(tx.ixs, refIx{int(hdrs[4*i]), accs, d})
	}
	if _, ok := cut(64 * tx.nreq); !ok {
		return tx, RejectSignatures
	}
	if len(rest) != 0 {
		return tx, RejectTrailing
	}
	tx.nsig = tx.nreq
	lo, hi := tx.mask&1 != 0, tx.mask&2 != 0
	tx.maskOK = tx.mask < 32 && lo == hi
	if !tx.maskOK {
		return tx, RejectV1Config
	}
	return tx, OK
}

// refDecode decodes a legacy or v0 transaction (P1–P7).
func refDecode(data []byte) (refTx, Reject) {
	var tx refTx
	if len(data) > MaxTransactionSize {
		return tx, RejectSize
	}
	p := 0
	rd := func() (int, bool) {
		if p >= len(data) {
			return 0, false
		}
		p++
		return int(data[p-1]), true
	}
	sv := func() (int, bool) {
		b0, ok := rd()
		if !ok {
			return 0, false
		}
		if b0 < 0x80 {
			return b0, true
		}
		b1, ok := rd()
		if !ok || b1 == 0 || b1 >= 0x80 {
			return 0, false
		}
		return b0&0x7f | b1<<7, true
	}
	take := func(n int) ([]byte, bool) {
		if n > len(data)-p {
			return nil, false
		}
		p += n
		return data[p-n : p], true
	}

	// P1
	nsig, ok := rd()
	if !ok || nsig < 1 || nsig > 12 {
		return tx, RejectSignatures
	}
	if _, ok := take(64 * nsig); !ok {
		return tx, RejectSignatures
	}
	// P2
	b, ok := rd()
	if !ok {
		return tx, RejectHeader
	}
	v0 := false
	if b >= 0x80 {
		if b != 0x80 {
			return tx, RejectVersion
		}
		v0 = true
		if b, ok = rd(); !ok {
			return tx, RejectHeader
		}
	}
	nreq := b
	nros, ok1 := rd()
	nrou, ok2 := rd()
	if !ok1 || !ok2 {
		return tx, RejectHeader
	}
	// P3
	nkeys, ok := rd()
	if !ok || nkeys < 1 || nkeys > 38 {
		return tx, RejectAccountKeys
	}
	var keys [][]byte
	for range nkeys {
		k, ok := take(32)
		if !ok {
			return tx, RejectAccountKeys
		}
		keys = append(keys, k)
	}
	// P4
	if _, ok := take(32); !ok {
		return tx, RejectBlockhash
	}
	// P5
	nix, ok := sv()
	if !ok || 3*nix > len(data)-p {
		return tx, RejectInstructions
	}
	var ixs []refIx
	for range nix {
		prog, ok := rd()
		if !ok {
			return tx, RejectInstructions
		}
		na, ok := sv()
		if !ok {
			return tx, RejectInstructions
		}
		accs, ok := take(na)
		if !ok {
			return tx, RejectInstructions
		}
		dl, ok := sv()
		if !ok {
			return tx, RejectInstructions
		}
		d, ok := take(dl)
		if !ok {
			return tx, RejectInstructions
		}
		ixs = append(ixs, refIx{prog, accs, d})
	}
	// P6
	var luts []refLut
	nw, nr := 0, 0
	if v0 {
		nl, ok := rd()
		if !ok || nl > 31 || 35*nl > len(data)-p {
			return tx, RejectLookups
		}
		for range nl {
			if _, ok := take(32); !ok {
				return tx, RejectLookups
			}
			wn, ok := sv()
			if !ok {
				return tx, RejectLookups
			}
			w, ok := take(wn)
			if !ok {
				return tx, RejectLookups
			}
			rn, ok := sv()
			if !ok {
				return tx, RejectLookups
			}
			r, ok := take(rn)
			if !ok {
				return tx, RejectLookups
			}
			luts = append(luts, refLut{w, r})
			nw += wn
			nr += rn
		}
	}
	// P7
	if p != len(data) {
		return tx, RejectTrailing
	}
	tx.v0, tx.nsig, tx.nreq, tx.nros, tx.nrou = v0, nsig, nreq, nros, nrou
	tx.keys, tx.ixs, tx.luts, tx.nw, tx.nr = keys, ixs, luts, nw, nr
	return tx, OK
}

// refRules applies sanitize (sanitize.rs order), the compute-budget
// instruction scan, the account locks and the compute-budget limits and
// fee to a decoded transaction.
func refRules(tx refTx, lim Limits) (Budget, Reject) {
	nsig, nreq, keys := tx.nsig, tx.nreq, tx.keys
	// Header.
	if nreq < 1 || tx.nros >= nreq {
		return Budget{}, RejectReadonlySigned
	}
	if uint8(tx.nrou) > uint8(len(keys))-uint8(nreq) { // Agave's u8 wrap
		return Budget{}, RejectReadonlyUnsigned
	}
	// v1 heap.
	heapOf := func(h uint32) bool { return h >= 32<<10 && h <= 256<<10 && h%1024 == 0 }
	if w, ok := tx.cfg[4]; tx.v1 && ok && !heapOf(binary.LittleEndian.Uint32(w)) {
		return Budget{}, RejectBudgetHeap
	}
	// Signatures.
	if nsig != nreq {
		return Budget{}, RejectSignatureCount
	}
	if nsig > 12 {
		return Budget{}, RejectSignatureLimit
	}
	if len(keys) < nsig {
		return Budget{}, RejectSignerKeys
	}
	// Accounts.
	total := len(keys) + tx.nw + tx.nr
	if (!tx.v1 && total > 256) || (tx.v1 && total > 64) {
		return Budget{}, RejectAccountCount
	}
	// Instructions.
	if len(tx.ixs) > 64 {
		return Budget{}, RejectInstructionCount
	}
	for _, in := range tx.ixs {
		if in.prog > len(keys)-1 {
			return Budget{}, RejectProgramIndex
		}
		if in.prog == 0 {
			return Budget{}, RejectProgramFeePayer
		}
		for _, a := range in.accs {
			if int(a) > total-1 {
				return Budget{}, RejectAccountIndex
			}
		}
		if len(in.accs) > 255 {
			return Budget{}, RejectInstructionAccounts
		}
	}
	for _, l := range tx.luts {
		if len(l.w)+len(l.r) == 0 {
			return Budget{}, RejectEmptyLookup
		}
	}

	// Compute-budget instructions (legacy and v0 only) and precompiles.
	var (
		heap, limit, loaded *uint32
		price               *uint64
		builtin, other      uint64
		precompile          uint64
		u32                 = func(d []byte) *uint32 { v := binary.LittleEndian.Uint32(d[1:5]); return &v }
		u64                 = func(d []byte) *uint64 { v := binary.LittleEndian.Uint64(d[1:9]); return &v }
		isBuiltin           = func(k []byte) bool {
			for _, b := range BuiltinPrograms {
				if bytes.Equal(k, b[:]) {
					return true
				}
			}
			return false
		}
	)
	for _, in := range tx.ixs {
		key, d := keys[in.prog], in.data
		if isBuiltin(key) {
			builtin++
		} else {
			other++
		}
		if (bytes.Equal(key, Ed25519Program[:]) || bytes.Equal(key, Secp256k1Program[:]) ||
			bytes.Equal(key, Secp256r1Program[:])) && len(d) > 0 {
			precompile += uint64(d[0])
		}
		if tx.v1 || !bytes.Equal(key, ComputeBudgetProgram[:]) {
			continue
		}
		switch {
		case len(d) == 0:
			return Budget{}, RejectBudgetData
		case d[0] == 1 && len(d) >= 5:
			if heap != nil {
				return Budget{}, RejectBudgetDuplicate
			}
			heap = u32(d)
		case d[0] == 2 && len(d) >= 5:
			if limit != nil {
				return Budget{}, RejectBudgetDuplicate
			}
			limit = u32(d)
		case d[0] == 3 && len(d) >= 9:
			if price != nil {
				return Budget{}, RejectBudgetDuplicate
			}
			price = u64(d)
		case d[0] == 4 && len(d) >= 5:
			if loaded != nil {
				return Budget{}, RejectBudgetDuplicate
			}
			loaded = u32(d)
		default:
			return Budget{}, RejectBudgetData
		}
	}

	// Account locks.
	lockLimit := lim.AccountLockLimit
	if lockLimit <= 0 {
		lockLimit = 64
	}
	if total > lockLimit {
		return Budget{}, RejectTooManyAccountLocks
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[string(k)] {
			return Budget{}, RejectAccountLoadedTwice
		}
		seen[string(k)] = true
	}

	// Limits and fee.
	const maxCU, unit, lamps = uint64(1_400_000), uint64(1_000_000), uint64(5000)
	out := Budget{HeapBytes: 32 << 10, LoadedAccountsBytes: 64 << 20}
	if tx.v1 {
		word := func(bit uint) (uint32, bool) {
			w, ok := tx.cfg[bit]
			if !ok {
				return 0, false
			}
			return binary.LittleEndian.Uint32(w), true
		}
		if h, ok := word(4); ok {
			out.HeapBytes = h
		}
		c, _ := word(2)
		out.CUs = min(uint64(c), maxCU)
		l, _ := word(3)
		out.LoadedAccountsBytes = min(l, 64<<20)
		lo, _ := word(0)
		hi, _ := word(1)
		out.PrioFee = uint64(hi)<<32 | uint64(lo)
		if out.CUs > 0 {
			q := new(big.Int).Mul(new(big.Int).SetUint64(out.PrioFee), big.NewInt(1_000_000))
			q.Div(q, new(big.Int).SetUint64(out.CUs))
			if q.IsUint64() {
				out.CUPrice = q.Uint64()
			}
		}
	} else {
		if heap != nil {
			if *heap < 32<<10 || *heap > 256<<10 || *heap%1024 != 0 {
				return Budget{}, RejectBudgetHeap
			}
			out.HeapBytes = *heap
		}
		if loaded != nil {
			if *loaded == 0 {
				return Budget{}, RejectBudgetLoadedSize
			}
			out.LoadedAccountsBytes = min(*loaded, 64<<20)
		}
		out.CUs = min(builtin*3_000+other*200_000, maxCU)
		if limit != nil {
			out.CUs = min(uint64(*limit), maxCU)
		}
		if price != nil {
			out.CUPrice = *price
		}
		out.PrioFee = PrioritizationFee(out.CUPrice, out.CUs, unit)
	}
	out.PrecompileSignatures = precompile
	out.Signatures = uint64(nsig) + precompile
	out.SigFee = out.Signatures * lamps
	out.Fee = satAdd(out.SigFee, out.PrioFee)
	return out, OK
}
