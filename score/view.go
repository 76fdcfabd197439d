package score

import "encoding/binary"

// Limits of Agave's TransactionView and of its sanitize step, read from
// anza-xyz/agave-sdk transaction-view at 711c4df (2026-08-18; the crate
// moved there from anza-xyz/agave): signature_frame.rs,
// static_account_keys_frame.rs, transaction_frame.rs (try_new_as_v1),
// sanitize.rs (sanitize and the functions it calls, in that order), and
// anza-xyz/agave runtime-transaction's sanitize_config (the consensus
// values it passes: MAX_INSTRUCTION_TRACE_LENGTH = 64,
// MAX_ACCOUNTS_PER_INSTRUCTION = 255, heap 32 KiB..256 KiB).
const (
	// MaxTransactionSize is the largest legacy or v0 transaction, and the
	// largest a packet record carries (PACKET_DATA_SIZE).
	MaxTransactionSize = 1232
	// MaxTransactionSizeV1 is the largest v1 transaction Agave sanitizes
	// (sanitize_transaction_size: "size <= 4096 bytes"). Only Parse on
	// raw bytes sees one above 1232: a packet record cannot hold it.
	MaxTransactionSizeV1 = 4096
	// MaxSignatures is the largest signature count (⌊1232 / (64+32)⌋).
	MaxSignatures = 12
	// MaxStaticKeys is the largest static account key count of a legacy
	// or v0 transaction (⌊1232 / 32⌋).
	MaxStaticKeys = 38
	// MaxLookups is the largest address-table lookup count
	// (⌊(1232 − 136) / 35⌋).
	MaxLookups = 31
	// MaxAccounts is the largest number of accounts a legacy or v0
	// transaction may reference, static keys and lookup indexes together.
	MaxAccounts = 256
	// MaxAccountsV1 is the largest number of addresses of a v1
	// transaction (sanitize_account_access).
	MaxAccountsV1 = 64
	// MaxInstructions is the largest instruction count (SIMD-0160,
	// MAX_INSTRUCTION_TRACE_LENGTH).
	MaxInstructions = 64
	// MaxInstructionAccounts is the largest account count of one
	// instruction (SIMD-0406, MAX_ACCOUNTS_PER_INSTRUCTION).
	MaxInstructionAccounts = 255

	signatureLen = 64
	keyLen       = 32
	minLookupLen = keyLen + 3 // key, two shortvec lengths, one index
	minInstrLen  = 3          // program index, two shortvec lengths
	versionV0    = 0x80

	minHeapBytes = 32 << 10
	maxHeapBytes = 256 << 10
)

// Version is a transaction's format.
type Version uint8

// The formats the View reads.
const (
	Legacy Version = iota
	V0
	V1
)

// String returns "legacy", "v0" or "v1".
func (ver Version) String() string {
	switch ver {
	case V0:
		return "v0"
	case V1:
		return "v1"
	}
	return "legacy"
}

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
	res     Reject  // result of the last Parse
	ok      bool    // the last Parse succeeded
	ver     Version // format, known once the version byte was read
	nsig    uint8   // signature count
	nreq    uint8   // header: required signatures
	nros    uint8   // header: readonly signed accounts
	nrou    uint8   // header: readonly unsigned accounts
	nkeys   uint8   // static account keys (v1: all addresses)
	nlut    uint8   // address-table lookups (v0)
	size    uint16  // length of the parsed bytes
	sigOff  uint16  // first signature (1; v1: after the instructions)
	msgOff  uint16  // start of the message (the signed bytes)
	msgEnd  uint16  // end of the message (size; v1: sigOff)
	keysOff uint16  // first static key
	hashOff uint16  // recent blockhash
	nix     uint16  // instruction count
	ixOff   uint16  // first instruction (v1: first instruction header)
	payOff  uint16  // v1: first instruction payload
	lutOff  uint16  // first lookup (v0)
	nw      uint16  // writable lookup indexes, all lookups
	nr      uint16  // readonly lookup indexes, all lookups
	san     sanFacts
	cb      budgetFacts
}

// budgetFacts are what the compute-budget and precompile scan found, in
// raw form; Budget applies the FeeParams to them. For v1 the limits come
// from the transaction config instead of instructions.
type budgetFacts struct {
	price      uint64 // SetComputeUnitPrice, micro-lamports per CU
	prio       uint64 // v1: priority fee in lamports
	precompile uint64 // Σ data[0] over ed25519, secp256k1, secp256r1 instructions
	limit      uint32 // SetComputeUnitLimit (v1: config word 2)
	heap       uint32 // RequestHeapFrame (v1: config word 4)
	loaded     uint32 // SetLoadedAccountsDataSizeLimit (v1: config word 3)
	builtin    uint32 // instructions of a non-migrated builtin (SIMD-0170: 3 000 CUs)
	other      uint32 // instructions of any other program (200 000 CUs)
	err        Reject // first failure of the scan, which stops it
	errIx      uint16 // instruction index of err
	seen       uint8  // seenHeap | seenLimit | seenPrice | seenLoaded | seenPrio
}

const (
	seenHeap uint8 = 1 << iota
	seenLimit
	seenPrice
	seenLoaded
	seenPrio
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

// Parse parses and sanitizes data as one legacy, v0 or v1 transaction,
// exactly as Agave's TransactionView (try_new_sanitized) would, and
// returns OK or the first rule it breaks: a parse reason (P1–P7, bytes
// that are no transaction), a sanitize reason, or RejectSize for more
// than 1232 bytes (4096 for v1). A first byte with bit 7 set announces
// v1 (SIMD-0385); anything else is a legacy or v0 signature count. It
// also scans every instruction for compute-budget and precompile data,
// which Budget then uses. It never allocates and never keeps data.
func (v *View) Parse(data []byte) Reject {
	*v = View{}
	var r Reject
	if len(data) > 0 && data[0]&0x80 != 0 {
		r = v.parseV1(data)
	} else {
		r = v.parse(data)
	}
	if r == OK {
		r = v.sanitize()
	}
	v.res = r
	v.ok = r == OK
	return r
}

// parse applies P1–P7 to a legacy or v0 transaction and records what
// sanitize and Budget need.
func (v *View) parse(data []byte) Reject {
	n := len(data)
	if n > MaxTransactionSize {
		return RejectSize
	}
	v.size = uint16(n)
	v.msgEnd = uint16(n)

	// P1: signatures.
	if n < 1 {
		return RejectSignatures
	}
	nsig := int(data[0])
	if nsig == 0 || nsig > MaxSignatures || 1+nsig*signatureLen > n {
		return RejectSignatures
	}
	v.nsig = uint8(nsig)
	v.sigOff = 1
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
		v.ver = V0
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
	if v.ver == V0 {
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
// instruction failing a per-instruction rule and which rule, the largest
// account index used up to it, whether a lookup is empty, and whether a
// v1 config mask is refused.
type sanFacts struct {
	badIx     uint16 // first instruction breaking S6, S7 or the 255-account limit, or noBad
	badRule   Reject // RejectProgramIndex, RejectProgramFeePayer or RejectInstructionAccounts
	maxAcct   uint8  // largest account index of the instructions checked (see fact)
	empty     bool   // some lookup has w = r = 0 (S9)
	badConfig bool   // v1 config mask refused
}

const noBad = 0xffff

// keyClass caches, per static key index, how a program key was
// classified. A legacy or v0 transaction has at most 38 keys and a v1
// one of at most 4096 bytes fewer than 128, so two words suffice.
type keyClass struct {
	known, cb, pc, builtin [2]uint64
}

func bitOf(i int) (w int, b uint64) { return (i >> 6) & 1, 1 << (uint(i) & 63) }

// scanInstructions walks nix legacy/v0 instructions from off,
// bounds-checking each field (P5) and recording, in one pass, the
// sanitize and compute-budget facts (fact). It returns the offset after
// the last instruction, or -1 if one is malformed.
func (v *View) scanInstructions(data []byte, off, nix int) int {
	n := len(data)
	v.san.badIx = noBad
	var kc keyClass
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
		v.fact(data, &kc, i, prog, data[accOff:accOff+na], data[dataOff:dataOff+dl])
	}
	return off
}

// fact records instruction i (program index prog, account indexes accs,
// data d) for sanitize and Budget.
//
// Sanitize (sanitize.rs sanitize_instructions) checks instructions in
// order and, in each, the program index (S6, S7), then the account
// indexes (S8), then the account count (SIMD-0406). So the facts are the
// first instruction failing S6, S7 or the account count, and the largest
// account index over the instructions before it and, for an account-count
// failure, in it; S8 is decided in sanitize once the lookups give the
// account total.
//
// Budget: each program key is classified once per transaction (bit sets
// by key index, as Agave's BuiltinProgramsFilter caches by index); a
// program index that is not a static key fails S6 anyway and is skipped.
func (v *View) fact(data []byte, kc *keyClass, i, prog int, accs, d []byte) {
	s := &v.san
	if s.badIx == noBad {
		switch {
		case prog >= int(v.nkeys):
			s.badIx, s.badRule = uint16(i), RejectProgramIndex
		case prog == 0:
			s.badIx, s.badRule = uint16(i), RejectProgramFeePayer
		default:
			for _, a := range accs {
				s.maxAcct = max(s.maxAcct, a)
			}
			if len(accs) > MaxInstructionAccounts {
				s.badIx, s.badRule = uint16(i), RejectInstructionAccounts
			}
		}
	}
	if prog >= int(v.nkeys) {
		return
	}
	w, bit := bitOf(prog)
	if kc.known[w]&bit == 0 {
		kc.known[w] |= bit
		kOff := int(v.keysOff) + prog*keyLen
		switch pr := programOf(data[kOff : kOff+keyLen]); pr {
		case progComputeBudget:
			kc.cb[w] |= bit
			kc.builtin[w] |= bit
		case progEd25519, progSecp256k1:
			kc.pc[w] |= bit
			kc.builtin[w] |= bit
		case progSecp256r1:
			kc.pc[w] |= bit
		case progBuiltin:
			kc.builtin[w] |= bit
		}
	}
	cb := &v.cb
	if kc.builtin[w]&bit != 0 {
		cb.builtin++
	} else {
		cb.other++
	}
	if kc.pc[w]&bit != 0 && len(d) > 0 {
		cb.precompile += uint64(d[0])
	}
	// v1 carries its limits in the config; its compute-budget
	// instructions are not read for them (runtime-transaction
	// transaction_view.rs from_sanitized_transaction_view).
	if kc.cb[w]&bit != 0 && v.ver != V1 && cb.err == OK {
		cb.process(i, d)
	}
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

// sanitize applies Agave's sanitize checks in sanitize.rs order
// (agave-sdk 711c4df): the v1 config mask (refused while framing);
// header (a payer that is a writable signer: at least one required
// signature, fewer readonly signed; readonly unsigned within the unsigned
// keys, Agave's u8 wrap included); v1 heap size; signatures (count equals
// the header's, at most 12, no more than the static keys); account total
// (256, v1 64); instruction count (64); per instruction: program index
// (S6, S7), account indexes (S8), account count (255); empty lookups.
func (v *View) sanitize() Reject {
	nsig, nreq, nkeys := int(v.nsig), int(v.nreq), int(v.nkeys)
	if v.san.badConfig {
		return RejectV1Config
	}
	if nreq < 1 || v.nros >= v.nreq {
		return RejectReadonlySigned // S4 (nreq = 0 also fails it)
	}
	if v.nrou > v.nkeys-v.nreq { // u8 arithmetic, wrapping as Agave's
		return RejectReadonlyUnsigned // S3
	}
	if v.ver == V1 && v.cb.seen&seenHeap != 0 && !heapOK(v.cb.heap) {
		return RejectBudgetHeap
	}
	switch {
	case nsig != nreq:
		return RejectSignatureCount // S1
	case nsig > MaxSignatures:
		return RejectSignatureLimit
	case nkeys < nsig:
		return RejectSignerKeys // S2
	}
	total, limit := v.NumAccounts(), MaxAccounts
	if v.ver == V1 {
		limit = MaxAccountsV1
	}
	if total > limit {
		return RejectAccountCount // S5
	}
	if int(v.nix) > MaxInstructions {
		return RejectInstructionCount
	}
	// Instructions in order, program before accounts before the account
	// count: an account index out of range in an instruction before the
	// first failure (or in it, for the account count) wins.
	if int(v.san.maxAcct) >= total {
		return RejectAccountIndex // S8
	}
	if v.san.badIx != noBad {
		return v.san.badRule // S6, S7 or the account count
	}
	if v.san.empty {
		return RejectEmptyLookup // S9
	}
	return OK
}

// heapOK reports whether a requested heap frame is one Agave accepts:
// 32 KiB..256 KiB, a multiple of 1 KiB.
func heapOK(h uint32) bool { return h >= minHeapBytes && h <= maxHeapBytes && h%1024 == 0 }

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

// V0 reports whether the message is v0.
func (v *View) V0() bool { return v.ver == V0 }

// V1 reports whether the transaction is v1 (SIMD-0385).
func (v *View) V1() bool { return v.ver == V1 }

// Version returns the transaction's format, known once Parse has read
// its version byte (so also for a transaction refused by sanitize).
func (v *View) Version() Version { return v.ver }

// SignatureOffset returns the offset of signature 0 in the parsed bytes:
// 1, or for v1 the end of the message.
func (v *View) SignatureOffset() int { return int(v.sigOff) }

// NumSignatures returns the signature count (1..12).
func (v *View) NumSignatures() int { return int(v.nsig) }

// Signature returns signature i as a 64-byte subslice of data, or nil if
// i is out of range.
func (v *View) Signature(data []byte, i int) []byte {
	if !v.valid(data) || i < 0 || i >= int(v.nsig) {
		return nil
	}
	o := int(v.sigOff) + i*signatureLen
	return data[o : o+signatureLen : o+signatureLen]
}

// Message returns the signed message bytes: from the version or header
// byte to the end (v1: to the first signature).
func (v *View) Message(data []byte) []byte {
	if !v.valid(data) {
		return nil
	}
	return data[v.msgOff:v.msgEnd:v.msgEnd]
}

// NumRequiredSignatures, NumReadonlySigned and NumReadonlyUnsigned return
// the message header.
func (v *View) NumRequiredSignatures() int { return int(v.nreq) }

// NumReadonlySigned returns the header's readonly signed account count.
func (v *View) NumReadonlySigned() int { return int(v.nros) }

// NumReadonlyUnsigned returns the header's readonly unsigned account count.
func (v *View) NumReadonlyUnsigned() int { return int(v.nrou) }

// NumStaticKeys returns the static account key count (1..38; v1: the
// address count, 1..64).
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

// NumAccounts returns static keys plus lookup indexes (at most 256; v1:
// the addresses, at most 64).
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
	pay             uint16 // v1: next payload
	v1              bool
}

// Instructions returns an iterator over the view's instructions.
func (v *View) Instructions() InstructionIter {
	if !v.ok {
		return InstructionIter{}
	}
	return InstructionIter{off: v.ixOff, left: v.nix, size: v.size, pay: v.payOff, v1: v.ver == V1}
}

// Next decodes the next instruction into in and reports whether there was
// one. It stops (false) if data is not the parsed bytes.
func (it *InstructionIter) Next(data []byte, in *Instruction) bool {
	if it.left == 0 || len(data) != int(it.size) {
		return false
	}
	if it.v1 {
		return it.nextV1(data, in)
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
