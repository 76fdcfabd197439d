package score

import "encoding/binary"

// Limits of agave 2.1's TransactionView (spec/solana-wire.md §3).
const (
	// MaxTransactionSize is the largest transaction a packet carries
	// (PACKET_DATA_SIZE).
	MaxTransactionSize = 1232
	// MaxSignatures is the largest signature count (⌊1232 / (64+32)⌋).
	MaxSignatures = 12
	// MaxStaticKeys is the largest static account key count (⌊1232 / 32⌋).
	MaxStaticKeys = 38
	// MaxLookups is the largest address-table lookup count
	// (⌊(1232 − 136) / 35⌋).
	MaxLookups = 31
	// MaxAccounts is the largest number of accounts a transaction may
	// reference, static keys and lookup indexes together.
	MaxAccounts = 256

	signatureLen = 64
	keyLen       = 32
	minLookupLen = keyLen + 3 // key, two shortvec lengths, one index
	minInstrLen  = 3          // program index, two shortvec lengths
	versionV0    = 0x80
)

// View is a parsed and sanitized transaction: offsets into the bytes it
// was parsed from, never a copy and never a pointer to them, so a View can
// be reused for every packet without allocating. Accessors take the same
// bytes again; given bytes of another length they return zero values
// rather than reading out of bounds.
//
// The zero View, or one whose last Parse failed, has no transaction: its
// accessors return zero values and Budget returns the parse failure (a
// never-parsed View reports RejectSignatures, as empty bytes would).
type View struct {
	res     Reject // result of the last Parse
	ok      bool   // the last Parse succeeded
	v0      bool   // message is v0 (else legacy)
	nsig    uint8  // signature count
	nreq    uint8  // header: required signatures
	nros    uint8  // header: readonly signed accounts
	nrou    uint8  // header: readonly unsigned accounts
	nkeys   uint8  // static account keys
	nlut    uint8  // address-table lookups (v0)
	size    uint16 // length of the parsed bytes
	msgOff  uint16 // start of the message (the signed bytes)
	keysOff uint16 // first static key
	hashOff uint16 // recent blockhash
	nix     uint16 // instruction count
	ixOff   uint16 // first instruction
	lutOff  uint16 // first lookup (v0)
	nw      uint16 // writable lookup indexes, all lookups
	nr      uint16 // readonly lookup indexes, all lookups
	san     sanFacts
	cb      budgetFacts
}

// budgetFacts are what the compute-budget and precompile scan found, in
// raw form; Budget applies the FeeParams to them.
type budgetFacts struct {
	price      uint64 // SetComputeUnitPrice, micro-lamports per CU
	precompile uint64 // Σ data[0] over ed25519 and secp256k1 instructions
	limit      uint32 // SetComputeUnitLimit
	heap       uint32 // RequestHeapFrame
	loaded     uint32 // SetLoadedAccountsDataSizeLimit
	nonCB      uint32 // instructions that are not compute-budget ones
	err        Reject // first failure of the scan, which stops it
	errIx      uint16 // instruction index of err
	seen       uint8  // seenHeap | seenLimit | seenPrice | seenLoaded
}

const (
	seenHeap uint8 = 1 << iota
	seenLimit
	seenPrice
	seenLoaded
)

// Compute-budget instruction discriminants (borsh enum tags).
const (
	cbUnused          = 0
	cbRequestHeap     = 1
	cbSetLimit        = 2
	cbSetPrice        = 3
	cbSetLoadedAccnts = 4
)

// readShortvec decodes a compact-u16 the way TransactionView does: one
// byte when bit 7 is clear, else exactly two with the second in 0x01..0x7F
// (so at most 16383, minimal encoding only). It returns the value and the
// offset after it, or next < 0 when the encoding is bad or truncated.
func readShortvec(data []byte, off int) (val, next int) {
	if off >= len(data) {
		return 0, -1
	}
	b0 := data[off]
	if b0&0x80 == 0 {
		return int(b0), off + 1
	}
	if off+1 >= len(data) {
		return 0, -1
	}
	b1 := data[off+1]
	if b1 == 0 || b1&0x80 != 0 {
		return 0, -1
	}
	return int(b0&0x7f) | int(b1)<<7, off + 2
}

// Parse parses and sanitizes data as one legacy or v0 transaction,
// exactly as agave 2.1's TransactionView (try_new_sanitized) would, and
// returns OK or the first rule it breaks: a parse reason (P1–P7), a
// sanitize reason (S1–S9), or RejectSize for more than 1232 bytes. It also
// scans every instruction for compute-budget and precompile data, which
// Budget then uses. It never allocates and never keeps data.
func (v *View) Parse(data []byte) Reject {
	*v = View{}
	r := v.parse(data)
	if r == OK {
		r = v.sanitize()
	}
	v.res = r
	v.ok = r == OK
	return r
}

// parse applies P1–P7 and records what sanitize and Budget need.
func (v *View) parse(data []byte) Reject {
	n := len(data)
	if n > MaxTransactionSize {
		return RejectSize
	}
	v.size = uint16(n)

	// P1: signatures.
	if n < 1 {
		return RejectSignatures
	}
	nsig := int(data[0])
	if nsig == 0 || nsig > MaxSignatures || 1+nsig*signatureLen > n {
		return RejectSignatures
	}
	v.nsig = uint8(nsig)
	off := 1 + nsig*signatureLen

	// P2: version and header.
	v.msgOff = uint16(off)
	if off >= n {
		return RejectHeader
	}
	if b := data[off]; b&0x80 != 0 {
		if b != versionV0 {
			return RejectVersion
		}
		v.v0 = true
		off++
	}
	if off+3 > n {
		return RejectHeader
	}
	v.nreq, v.nros, v.nrou = data[off], data[off+1], data[off+2]
	off += 3

	// P3: static account keys.
	if off >= n {
		return RejectAccountKeys
	}
	nkeys := int(data[off])
	off++
	if nkeys == 0 || nkeys > MaxStaticKeys || nkeys*keyLen > n-off {
		return RejectAccountKeys
	}
	v.nkeys = uint8(nkeys)
	v.keysOff = uint16(off)
	off += nkeys * keyLen

	// P4: recent blockhash.
	if keyLen > n-off {
		return RejectBlockhash
	}
	v.hashOff = uint16(off)
	off += keyLen

	// P5: instructions.
	nix, off := readShortvec(data, off)
	if off < 0 || minInstrLen*nix > n-off {
		return RejectInstructions
	}
	v.nix = uint16(nix)
	v.ixOff = uint16(off)
	off = v.scanInstructions(data, off, nix)
	if off < 0 {
		return RejectInstructions
	}

	// P6: address-table lookups (v0 only).
	if v.v0 {
		if off >= n {
			return RejectLookups
		}
		nlut := int(data[off])
		off++
		if nlut > MaxLookups || minLookupLen*nlut > n-off {
			return RejectLookups
		}
		v.nlut = uint8(nlut)
		v.lutOff = uint16(off)
		var nw, nr, w, r int
		for range nlut {
			if keyLen > n-off {
				return RejectLookups
			}
			off += keyLen
			if w, off = readShortvec(data, off); off < 0 || w > n-off {
				return RejectLookups
			}
			off += w
			if r, off = readShortvec(data, off); off < 0 || r > n-off {
				return RejectLookups
			}
			off += r
			if w+r == 0 {
				v.san.empty = true
			}
			nw += w
			nr += r
		}
		// Each count is bounded by the packet size, so the u16 totals
		// cannot overflow (Agave's SanitizeError for that is unreachable).
		v.nw, v.nr = uint16(nw), uint16(nr)
	}

	// P7: nothing may follow.
	if off != n {
		return RejectTrailing
	}
	return OK
}

// sanFacts are the sanitize facts gathered while parsing: the first
// instruction breaking S6/S7 and which rule, the largest account index
// used before it, and whether a lookup is empty.
type sanFacts struct {
	badIx   uint16 // first instruction breaking S6 or S7, or noBad
	badRule Reject // RejectProgramIndex or RejectProgramFeePayer
	maxAcct uint8  // largest account index in instructions before badIx
	empty   bool   // some lookup has w = r = 0 (S9)
}

const noBad = 0xffff

// scanInstructions walks nix instructions from off, bounds-checking each
// field (P5) and recording, in one pass, the sanitize facts for S6–S8 and
// the compute-budget and precompile facts. It returns the offset after the
// last instruction, or -1 if one is malformed.
func (v *View) scanInstructions(data []byte, off, nix int) int {
	n := len(data)
	nkeys := int(v.nkeys)
	keys := int(v.keysOff)
	s := sanFacts{badIx: noBad}
	cb := &v.cb
	var known, cbKeys, pcKeys uint64 // by static key index (< 38 < 64)
	for i := range nix {
		if off >= n {
			return -1
		}
		prog := int(data[off])
		off++
		na, next := readShortvec(data, off)
		if next < 0 || na > n-next {
			return -1
		}
		accOff := next
		off = next + na
		dl, next := readShortvec(data, off)
		if next < 0 || dl > n-next {
			return -1
		}
		dataOff := next
		off = next + dl

		// S6/S7 facts: the first instruction whose program index is not a
		// static key, or is the fee payer. S8 is decided in sanitize, once
		// the lookups give the account total; only instructions before
		// the first S6/S7 failure count for it, as Agave checks each
		// instruction's program before its accounts, in order.
		if s.badIx == noBad {
			switch {
			case prog >= nkeys:
				s.badIx, s.badRule = uint16(i), RejectProgramIndex
			case prog == 0:
				s.badIx, s.badRule = uint16(i), RejectProgramFeePayer
			default:
				for _, a := range data[accOff : accOff+na] {
					s.maxAcct = max(s.maxAcct, a)
				}
			}
		}

		// Compute-budget and precompile facts. A program index that is
		// not a static key fails S6 anyway; skip it here. Each program key
		// is classified once per transaction (bit masks by key index).
		if prog >= nkeys {
			continue
		}
		bit := uint64(1) << prog
		if known&bit == 0 {
			known |= bit
			kOff := keys + prog*keyLen
			switch programOf(data[kOff : kOff+keyLen]) {
			case progComputeBudget:
				cbKeys |= bit
			case progEd25519, progSecp256k1:
				pcKeys |= bit
			}
		}
		switch {
		case cbKeys&bit != 0:
			if cb.err == OK {
				cb.process(i, data[dataOff:dataOff+dl])
			}
		case pcKeys&bit != 0:
			cb.nonCB++
			if dl > 0 {
				cb.precompile += uint64(data[dataOff])
			}
		default:
			cb.nonCB++
		}
	}
	v.san = s
	return off
}

// process records one compute-budget instruction (index i, data d) the
// way Agave's ComputeBudgetInstructionDetails does: borsh with trailing
// bytes ignored; an unknown tag, empty data or a short payload is invalid
// data; a kind seen before is a duplicate. The first failure stops the
// scan.
func (cb *budgetFacts) process(i int, d []byte) {
	var kind uint8
	switch {
	case len(d) == 0:
		cb.err = RejectBudgetData
	case d[0] == cbSetPrice:
		if len(d) < 9 {
			cb.err = RejectBudgetData
			break
		}
		kind = seenPrice
		if cb.seen&kind == 0 {
			cb.price = binary.LittleEndian.Uint64(d[1:9])
		}
	case d[0] == cbRequestHeap || d[0] == cbSetLimit || d[0] == cbSetLoadedAccnts:
		if len(d) < 5 {
			cb.err = RejectBudgetData
			break
		}
		u := binary.LittleEndian.Uint32(d[1:5])
		switch d[0] {
		case cbRequestHeap:
			kind = seenHeap
			if cb.seen&kind == 0 {
				cb.heap = u
			}
		case cbSetLimit:
			kind = seenLimit
			if cb.seen&kind == 0 {
				cb.limit = u
			}
		default:
			kind = seenLoaded
			if cb.seen&kind == 0 {
				cb.loaded = u
			}
		}
	default: // cbUnused and unknown tags
		cb.err = RejectBudgetData
	}
	if cb.err == OK && cb.seen&kind != 0 {
		cb.err = RejectBudgetDuplicate
	}
	if cb.err != OK {
		cb.errIx = uint16(i)
		return
	}
	cb.seen |= kind
}

// sanitize applies S1–S9 in Agave's order to a parsed view.
func (v *View) sanitize() Reject {
	nsig, nreq, nkeys := int(v.nsig), int(v.nreq), int(v.nkeys)
	switch {
	case nsig != nreq:
		return RejectSignatureCount // S1
	case nkeys < nsig:
		return RejectSignerKeys // S2
	case int(v.nrou) > nkeys-nreq:
		return RejectReadonlyUnsigned // S3
	case v.nros >= v.nreq:
		return RejectReadonlySigned // S4
	}
	total := nkeys + int(v.nw) + int(v.nr)
	if total > MaxAccounts {
		return RejectAccountCount // S5
	}
	// Instructions in order, program before accounts: an account index out
	// of range in an instruction before the first S6/S7 failure wins.
	if int(v.san.maxAcct) >= total {
		return RejectAccountIndex // S8
	}
	if v.san.badIx != noBad {
		return v.san.badRule // S6 or S7
	}
	if v.san.empty {
		return RejectEmptyLookup // S9
	}
	return OK
}

// valid reports whether the view holds a transaction parsed from bytes of
// data's length, so that every recorded offset is in bounds for data.
func (v *View) valid(data []byte) bool { return v.ok && len(data) == int(v.size) }

// Result returns what the last Parse returned; for a never-parsed View,
// RejectSignatures, as for empty bytes.
func (v *View) Result() Reject {
	if !v.ok && v.res == OK {
		return RejectSignatures
	}
	return v.res
}

// Size returns the length of the parsed transaction.
func (v *View) Size() int { return int(v.size) }

// V0 reports whether the message is v0 (false: legacy).
func (v *View) V0() bool { return v.v0 }

// NumSignatures returns the signature count (1..12).
func (v *View) NumSignatures() int { return int(v.nsig) }

// Signature returns signature i as a 64-byte subslice of data, or nil if
// i is out of range.
func (v *View) Signature(data []byte, i int) []byte {
	if !v.valid(data) || i < 0 || i >= int(v.nsig) {
		return nil
	}
	o := 1 + i*signatureLen
	return data[o : o+signatureLen : o+signatureLen]
}

// Message returns the signed message bytes, from the version or header
// byte to the end.
func (v *View) Message(data []byte) []byte {
	if !v.valid(data) {
		return nil
	}
	return data[v.msgOff:]
}

// NumRequiredSignatures, NumReadonlySigned and NumReadonlyUnsigned return
// the message header.
func (v *View) NumRequiredSignatures() int { return int(v.nreq) }

// NumReadonlySigned returns the header's readonly signed account count.
func (v *View) NumReadonlySigned() int { return int(v.nros) }

// NumReadonlyUnsigned returns the header's readonly unsigned account count.
func (v *View) NumReadonlyUnsigned() int { return int(v.nrou) }

// NumStaticKeys returns the static account key count (1..38).
func (v *View) NumStaticKeys() int { return int(v.nkeys) }

// StaticKey returns static key i as a 32-byte subslice of data, or nil if
// i is out of range.
func (v *View) StaticKey(data []byte, i int) []byte {
	if !v.valid(data) || i < 0 || i >= int(v.nkeys) {
		return nil
	}
	o := int(v.keysOff) + i*keyLen
	return data[o : o+keyLen : o+keyLen]
}

// FeePayer returns static key 0, the fee payer and the signer the model
// scores (zero if the view holds no transaction for data).
func (v *View) FeePayer(data []byte) [32]byte {
	if !v.valid(data) {
		return [32]byte{}
	}
	return [32]byte(data[v.keysOff : v.keysOff+keyLen])
}

// RecentBlockhash returns the 32-byte recent blockhash.
func (v *View) RecentBlockhash(data []byte) []byte {
	if !v.valid(data) {
		return nil
	}
	return data[v.hashOff : v.hashOff+keyLen : v.hashOff+keyLen]
}

// NumInstructions returns the instruction count.
func (v *View) NumInstructions() int { return int(v.nix) }

// NumLookups returns the address-table lookup count (0 for legacy).
func (v *View) NumLookups() int { return int(v.nlut) }

// NumLookupAccounts returns the writable and readonly lookup index counts
// over all lookups.
func (v *View) NumLookupAccounts() (writable, readonly int) { return int(v.nw), int(v.nr) }

// NumAccounts returns static keys plus lookup indexes (at most 256).
func (v *View) NumAccounts() int { return int(v.nkeys) + int(v.nw) + int(v.nr) }

// Instruction is one instruction of a parsed view, as offsets.
type Instruction struct {
	// ProgramIndex is the index of the program's static key.
	ProgramIndex uint8
	accOff       uint16
	accLen       uint16
	dataOff      uint16
	dataLen      uint16
}

// Accounts returns the instruction's account index bytes.
func (in *Instruction) Accounts(data []byte) []byte {
	return sub(data, int(in.accOff), int(in.accLen))
}

// Data returns the instruction data.
func (in *Instruction) Data(data []byte) []byte {
	return sub(data, int(in.dataOff), int(in.dataLen))
}

// sub returns data[off:off+n], or nil if that is out of bounds.
func sub(data []byte, off, n int) []byte {
	if off+n > len(data) {
		return nil
	}
	return data[off : off+n : off+n]
}

// InstructionIter walks the instructions of a parsed view:
//
//	it := v.Instructions()
//	var in Instruction
//	for it.Next(data, &in) { ... }
type InstructionIter struct {
	off, left, size uint16
}

// Instructions returns an iterator over the view's instructions.
func (v *View) Instructions() InstructionIter {
	if !v.ok {
		return InstructionIter{}
	}
	return InstructionIter{off: v.ixOff, left: v.nix, size: v.size}
}

// Next decodes the next instruction into in and reports whether there was
// one. It stops (false) if data is not the parsed bytes.
func (it *InstructionIter) Next(data []byte, in *Instruction) bool {
	if it.left == 0 || len(data) != int(it.size) {
		return false
	}
	off := int(it.off)
	if off >= len(data) {
		it.left = 0
		return false
	}
	prog := data[off]
	na, next := readShortvec(data, off+1)
	if next < 0 || na > len(data)-next {
		it.left = 0
		return false
	}
	acc := next
	dl, next := readShortvec(data, acc+na)
	if next < 0 || dl > len(data)-next {
		it.left = 0
		return false
	}
	*in = Instruction{ProgramIndex: prog, accOff: uint16(acc), accLen: uint16(na), dataOff: uint16(next), dataLen: uint16(dl)}
	it.off = uint16(next + dl)
	it.left--
	return true
}

// Lookup is one address-table lookup of a parsed v0 view, as offsets.
type Lookup struct {
	keyOff uint16
	wOff   uint16
	wLen   uint16
	rOff   uint16
	rLen   uint16
}

// Key returns the 32-byte address of the lookup table.
func (l *Lookup) Key(data []byte) []byte { return sub(data, int(l.keyOff), keyLen) }

// Writable returns the writable index bytes.
func (l *Lookup) Writable(data []byte) []byte { return sub(data, int(l.wOff), int(l.wLen)) }

// Readonly returns the readonly index bytes.
func (l *Lookup) Readonly(data []byte) []byte { return sub(data, int(l.rOff), int(l.rLen)) }

// LookupIter walks the address-table lookups of a parsed v0 view, like
// InstructionIter.
type LookupIter struct {
	off, size uint16
	left      uint8
}

// Lookups returns an iterator over the view's address-table lookups.
func (v *View) Lookups() LookupIter {
	if !v.ok {
		return LookupIter{}
	}
	return LookupIter{off: v.lutOff, left: v.nlut, size: v.size}
}

// Next decodes the next lookup into l and reports whether there was one.
func (it *LookupIter) Next(data []byte, l *Lookup) bool {
	if it.left == 0 || len(data) != int(it.size) {
		return false
	}
	key := int(it.off)
	if keyLen > len(data)-key {
		it.left = 0
		return false
	}
	w, next := readShortvec(data, key+keyLen)
	if next < 0 || w > len(data)-next {
		it.left = 0
		return false
	}
	wOff := next
	r, next := readShortvec(data, wOff+w)
	if next < 0 || r > len(data)-next {
		it.left = 0
		return false
	}
	*l = Lookup{keyOff: uint16(key), wOff: uint16(wOff), wLen: uint16(w), rOff: uint16(next), rLen: uint16(r)}
	it.off = uint16(next + r)
	it.left--
	return true
}
