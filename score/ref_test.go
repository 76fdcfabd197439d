package score

import (
	"bytes"
	"encoding/binary"
)

// refParse is a second, deliberately plain implementation of the same
// rules, written the way Agave structures them: decode everything into
// slices, then sanitize in sanitize.rs order, then run the compute-budget
// scan over the decoded instructions. The fused single-pass View is
// checked against it by FuzzParse.
func refParse(data []byte) (Budget, Reject) {
	if len(data) > MaxTransactionSize {
		return Budget{}, RejectSize
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
	type ix struct {
		prog       int
		accs, data []byte
	}
	type lut struct{ w, r []byte }

	// P1
	nsig, ok := rd()
	if !ok || nsig < 1 || nsig > 12 {
		return Budget{}, RejectSignatures
	}
	if _, ok := take(64 * nsig); !ok {
		return Budget{}, RejectSignatures
	}
	// P2
	b, ok := rd()
	if !ok {
		return Budget{}, RejectHeader
	}
	v0 := false
	if b >= 0x80 {
		if b != 0x80 {
			return Budget{}, RejectVersion
		}
		v0 = true
		if b, ok = rd(); !ok {
			return Budget{}, RejectHeader
		}
	}
	nreq := b
	nros, ok1 := rd()
	nrou, ok2 := rd()
	if !ok1 || !ok2 {
		return Budget{}, RejectHeader
	}
	// P3
	nkeys, ok := rd()
	if !ok || nkeys < 1 || nkeys > 38 {
		return Budget{}, RejectAccountKeys
	}
	var keys [][]byte
	for range nkeys {
		k, ok := take(32)
		if !ok {
			return Budget{}, RejectAccountKeys
		}
		keys = append(keys, k)
	}
	// P4
	if _, ok := take(32); !ok {
		return Budget{}, RejectBlockhash
	}
	// P5
	nix, ok := sv()
	if !ok || 3*nix > len(data)-p {
		return Budget{}, RejectInstructions
	}
	var ixs []ix
	for range nix {
		prog, ok := rd()
		if !ok {
			return Budget{}, RejectInstructions
		}
		na, ok := sv()
		if !ok {
			return Budget{}, RejectInstructions
		}
		accs, ok := take(na)
		if !ok {
			return Budget{}, RejectInstructions
		}
		dl, ok := sv()
		if !ok {
			return Budget{}, RejectInstructions
		}
		d, ok := take(dl)
		if !ok {
			return Budget{}, RejectInstructions
		}
		ixs = append(ixs, ix{prog, accs, d})
	}
	// P6
	var luts []lut
	nw, nr := 0, 0
	if v0 {
		nl, ok := rd()
		if !ok || nl > 31 || 35*nl > len(data)-p {
			return Budget{}, RejectLookups
		}
		for range nl {
			if _, ok := take(32); !ok {
				return Budget{}, RejectLookups
			}
			wn, ok := sv()
			if !ok {
				return Budget{}, RejectLookups
			}
			w, ok := take(wn)
			if !ok {
				return Budget{}, RejectLookups
			}
			rn, ok := sv()
			if !ok {
				return Budget{}, RejectLookups
			}
			r, ok := take(rn)
			if !ok {
				return Budget{}, RejectLookups
			}
			luts = append(luts, lut{w, r})
			nw += wn
			nr += rn
		}
	}
	// P7
	if p != len(data) {
		return Budget{}, RejectTrailing
	}

	// Sanitize.
	if nsig != nreq {
		return Budget{}, RejectSignatureCount
	}
	if len(keys) < nsig {
		return Budget{}, RejectSignerKeys
	}
	if nrou > len(keys)-nreq {
		return Budget{}, RejectReadonlyUnsigned
	}
	if nros >= nreq {
		return Budget{}, RejectReadonlySigned
	}
	total := len(keys) + nw + nr
	if total > 256 {
		return Budget{}, RejectAccountCount
	}
	for _, in := range ixs {
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
	}
	for _, l := range luts {
		if len(l.w)+len(l.r) == 0 {
			return Budget{}, RejectEmptyLookup
		}
	}

	// Compute budget (ComputeBudgetInstructionDetails) and precompiles.
	var (
		heap, limit, loaded       *uint32
		price                     *uint64
		nonCB, precompile         uint64
		cbID, edID, secpID        = ComputeBudgetProgram, Ed25519Program, Secp256k1Program
		u32                       = func(d []byte) *uint32 { v := binary.LittleEndian.Uint32(d[1:5]); return &v }
		u64                       = func(d []byte) *uint64 { v := binary.LittleEndian.Uint64(d[1:9]); return &v }
		maxCU, perIx, unit, lamps = uint64(1_400_000), uint64(200_000), uint64(1_000_000), uint64(5000)
	)
	for _, in := range ixs {
		key, d := keys[in.prog], in.data
		switch {
		case bytes.Equal(key, cbID[:]):
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
		case bytes.Equal(key, edID[:]) || bytes.Equal(key, secpID[:]):
			nonCB++
			if len(d) > 0 {
				precompile += uint64(d[0])
			}
		default:
			nonCB++
		}
	}
	out := Budget{HeapBytes: 32 << 10, LoadedAccountsBytes: 64 << 20}
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
	out.CUs = min(nonCB*perIx, maxCU)
	if limit != nil {
		out.CUs = min(uint64(*limit), maxCU)
	}
	if price != nil {
		out.CUPrice = *price
	}
	out.Signatures = uint64(nsig) + precompile
	out.SigFee = out.Signatures * lamps
	out.PrioFee = PrioritizationFee(out.CUPrice, out.CUs, unit)
	out.Fee = satAdd(out.SigFee, out.PrioFee)
	return out, OK
}
