package score

import (
	"bytes"
	"encoding/binary"
	"testing"

	bin "github.com/gagliardetto/binary"
	solana "github.com/gagliardetto/solana-go"
)

// addSeeds adds the corpus both fuzz targets start from.
func addSeeds(f *testing.F) {
	for _, b := range [][]byte{
		// spec §6 case 1: minimal legacy transaction, 134 bytes.
		legacy1(1).bytes(),
		// legacy: one instruction, program 1, accounts [0 1].
		fixLegacy.bytes(),
		// v0: one lookup, instruction using lookup accounts.
		fixV0.bytes(),
		// compute budget: limit, price, heap, loaded size, one transfer.
		cbTx(cb(cbLimit(300_000)), cb(cbPrice(5)), cb(cbHeap(64<<10)), cb(cbLoaded(1<<20)), other()).bytes(),
		// compute budget: duplicate price (DuplicateInstruction).
		cbTx(cb(cbPrice(1)), cb(cbPrice(2))).bytes(),
		// precompiles: ed25519 and secp256k1 signature counts.
		pcTx(ed(2, 0), secp(1)).bytes(),
		// v0 at 256 accounts exactly.
		fixTx{nsig: 1, v0: true, hdr: [3]byte{1, 0, 1}, nkeys: 2, ixs: []fixIx{{prog: 1, accs: []byte{255}}},
			luts: []fixLut{{key: 1, w: seq(0, 200), r: seq(0, 54)}}}.bytes(),
		// two-byte shortvec (128-byte instruction data).
		fixLegacy.withIxs(fixIx{prog: 1, data: seq(0, 128)}).bytes(),
		// malformed: zero signatures, v1 prefix, alias shortvec, trailing byte.
		{0x00},
		splice(fixV0.bytes(), 65, 66, 0x81),
		splice(fixLegacy.bytes(), fixLegacy.nixOff(), fixLegacy.nixOff()+1, 0x80, 0x00),
		append(fixLegacy.bytes(), 0),
		// v1: no config; full config with a precompile and a budget
		// instruction; refused mask; truncated signature; duplicate key.
		v1Tx(2, fixIx{prog: 1, accs: []byte{0, 1}, data: []byte{7}}).bytes(),
		v1Tx(4, fixIx{prog: 1, data: []byte{2, 0}}, fixIx{prog: 2, data: cbLimit(1)}, fixIx{prog: 3, accs: []byte{0, 1, 2, 3}}).
			withKey(1, Secp256r1Program).withKey(2, ComputeBudgetProgram).
			withConfig(u64p(1<<40), u32p(300_000), u32p(1<<20), u32p(64<<10)).bytes(),
		func() []byte { x := v1Tx(2, fixIx{prog: 1}); x.mask, x.cfg = 1<<7|1, []uint32{1, 2}; return x.bytes() }(),
		v1Tx(2, fixIx{prog: 1}).bytes()[:120],
		v1Tx(3, fixIx{prog: 1}).withKey(2, v1Tx(3).key(1)).bytes(),
		// limits: 65 instructions, 256 accounts in one, 65 locks.
		manyIxs(65).bytes(),
		fixLegacy.withIxs(fixIx{prog: 1, accs: make([]byte, 256)}).bytes(),
		lookupTx(31, 32).bytes(),
	} {
		f.Add(b)
	}
	// Built and signed by solana-go.
	f.Add(typicalTx(f))
	f.Add(v0Tx(f))
	f.Add(maxSizeTx(f))
	f.Add(manyTx(f, 64))
}

// fuzzLimits picks the operator limits a fuzz input is checked under
// from its length, so that every combination is exercised.
func fuzzLimits(data []byte) Limits {
	return Limits{AccountLockLimit: []int{0, 64, 128, 256}[len(data)%4], NoTxV1: len(data)%3 == 0}
}

// FuzzParse checks, for any bytes: no panic; the fused single-pass View
// (Parse, then Admit) agrees with the plain reference (refParse) on the
// reason and the budget, legacy, v0 and v1 alike; an accepted view has
// every offset and accessor in bounds and re-encodes to the same bytes; a
// rejected one yields nothing; and Evaluate returns either Info or a
// Reject, never both, and the same as Admit.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	e := NewEvaluator(0x5eed)
	pkt := packetOf(f, nil) // reused: the fuzz function runs sequentially
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits(data)
		var v View
		r := v.Parse(data)
		if r.Parse() && v.Result() != r {
			t.Fatalf("Result %v, Parse %v", v.Result(), r)
		}
		b, br := v.Admit(data, DefaultFeeParams(), lim)
		if r != OK && br != r && br != RejectV1Disabled {
			t.Fatalf("Admit after rejected Parse: %v, want %v", br, r)
		}
		if br != OK && b != (Budget{}) {
			t.Fatalf("Budget %+v with reject %v", b, br)
		}
		wb, wr := refParse(data, lim)
		if br != wr || b != wb {
			t.Fatalf("View: %v %+v\nref:  %v %+v", br, b, wr, wb)
		}
		checkView(t, &v, data)
		if r == OK {
			checkOffsets(t, &v, data)
			if re := reencode(&v, data); !bytes.Equal(re, data) {
				t.Fatalf("re-encoding differs:\n% x\n% x", re, data)
			}
		}
		if len(data) <= MaxTransactionSize {
			pkt.SetData(data)
			e.Limits = lim
			info, er := e.Evaluate(pkt)
			if er != br {
				t.Fatalf("Evaluate: %v, Parse+Admit: %v", er, br)
			}
			if (er == OK) == (info == Info{}) {
				t.Fatalf("Evaluate returned %+v with %v", info, er)
			}
			if er == OK && (info.Budget != b || info.Payer != v.FeePayer(data) ||
				int(info.SigOff) != v.SignatureOffset() || info.Version != v.Version()) {
				t.Fatal("Evaluate disagrees with the view")
			}
		}
	})
}

// checkOffsets checks a parsed view's recorded offsets directly.
func checkOffsets(t *testing.T, v *View, data []byte) {
	t.Helper()
	n := len(data)
	ok := int(v.size) == n &&
		int(v.keysOff)+32*int(v.nkeys) <= n &&
		int(v.hashOff)+32 <= n &&
		int(v.ixOff) <= n &&
		int(v.lutOff) <= n &&
		int(v.sigOff)+64*int(v.nsig) <= n &&
		v.nsig >= 1 && v.nsig <= MaxSignatures && v.nkeys >= 1 &&
		v.nlut <= MaxLookups && v.NumInstructions() <= MaxInstructions
	if v.V1() {
		ok = ok && v.msgOff == 0 && v.msgEnd == v.sigOff && int(v.sigOff)+64*int(v.nsig) == n &&
			v.hashOff == v1HashOff && v.NumAccounts() <= MaxAccountsV1
	} else {
		ok = ok && v.sigOff == 1 && int(v.msgOff) == 1+64*int(v.nsig) && int(v.msgEnd) == n &&
			int(v.hashOff) == int(v.keysOff)+32*int(v.nkeys) && v.nkeys <= MaxStaticKeys &&
			v.NumAccounts() <= MaxAccounts
	}
	if !ok {
		t.Fatalf("offsets out of bounds: %+v for %d bytes", *v, n)
	}
}

// reencode writes a parsed view back out from its accessors alone.
func reencode(v *View, data []byte) []byte {
	if v.V1() {
		return reencodeV1(v, data)
	}
	b := []byte{byte(v.NumSignatures())}
	for i := range v.NumSignatures() {
		b = append(b, v.Signature(data, i)...)
	}
	if v.V0() {
		b = append(b, 0x80)
	}
	b = append(b, byte(v.NumRequiredSignatures()), byte(v.NumReadonlySigned()), byte(v.NumReadonlyUnsigned()), byte(v.NumStaticKeys()))
	for i := range v.NumStaticKeys() {
		b = append(b, v.StaticKey(data, i)...)
	}
	b = append(b, v.RecentBlockhash(data)...)
	b = shortvec(b, v.NumInstructions())
	it := v.Instructions()
	var in Instruction
	for it.Next(data, &in) {
		b = append(b, in.ProgramIndex)
		b = shortvec(b, len(in.Accounts(data)))
		b = append(b, in.Accounts(data)...)
		b = shortvec(b, len(in.Data(data)))
		b = append(b, in.Data(data)...)
	}
	if v.V0() {
		b = append(b, byte(v.NumLookups()))
		lt := v.Lookups()
		var l Lookup
		for lt.Next(data, &l) {
			b = append(b, l.Key(data)...)
			b = shortvec(b, len(l.Writable(data)))
			b = append(b, l.Writable(data)...)
			b = shortvec(b, len(l.Readonly(data)))
			b = append(b, l.Readonly(data)...)
		}
	}
	return b
}

// reencodeV1 writes a parsed v1 view back out: the message (whose config
// section the accessors do not expose is copied from data between the
// addresses and the instruction headers) and the signatures.
func reencodeV1(v *View, data []byte) []byte {
	b := []byte{0x81, byte(v.NumRequiredSignatures()), byte(v.NumReadonlySigned()), byte(v.NumReadonlyUnsigned())}
	b = append(b, data[4:8]...) // config mask
	b = append(b, v.RecentBlockhash(data)...)
	b = append(b, byte(v.NumInstructions()), byte(v.NumStaticKeys()))
	for i := range v.NumStaticKeys() {
		b = append(b, v.StaticKey(data, i)...)
	}
	b = append(b, data[len(b):v.ixOff]...) // config values
	var payload []byte
	it := v.Instructions()
	var in Instruction
	for it.Next(data, &in) {
		b = append(b, in.ProgramIndex, byte(len(in.Accounts(data))))
		b = binary.LittleEndian.AppendUint16(b, uint16(len(in.Data(data))))
		payload = append(payload, in.Accounts(data)...)
		payload = append(payload, in.Data(data)...)
	}
	b = append(b, payload...)
	if !bytes.Equal(b, v.Message(data)) {
		return nil
	}
	for i := range v.NumSignatures() {
		b = append(b, v.Signature(data, i)...)
	}
	return b
}

// solanaDecode decodes data with solana-go, reporting whether it accepted
// all of it (a decoder panic counts as refusal).
func solanaDecode(data []byte) (tx *solana.Transaction, ok bool) {
	defer func() {
		if recover() != nil {
			tx, ok = nil, false
		}
	}()
	dec := bin.NewBinDecoder(data)
	tx = new(solana.Transaction)
	if err := tx.UnmarshalWithDecoder(dec); err != nil {
		return nil, false
	}
	return tx, dec.Remaining() == 0
}

// FuzzDifferential compares the View with solana-go's decoder.
//
// Whatever the View accepts, solana-go must decode completely, to the
// same signatures, header, static keys, blockhash, instructions (program
// index, accounts, data) and lookups. The converse does not hold, and
// legitimately so; solana-go accepts what agave 2.1 refuses:
//   - any sanitize failure (S1–S9): solana-go does not sanitize;
//   - three-byte shortvecs and two-byte values above 16383
//     (TransactionView reads at most two bytes);
//   - signature and static-key counts above 12 and 38 or written as
//     two-byte shortvecs (TransactionView reads one byte, with limits);
//   - message prefixes 0x7F and ≥ 0x81 (it treats every byte ≥ 127 as a
//     versioned prefix of some version);
//   - lookup sections shorter than 35 bytes per lookup, and lookup counts
//     above 31;
//   - more than 1232 bytes.
//
// solana-go (v1.14) has no v1 decoder, so v1 transactions are checked by
// FuzzParse against the plain reference only.
func FuzzDifferential(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var v View
		r := v.Parse(data)
		if r != OK || v.V1() {
			return
		}
		tx, ok := solanaDecode(data)
		if !ok {
			t.Fatalf("View accepts what solana-go refuses: % x", data)
		}
		compareWithDecoder(t, &v, data, tx)
	})
}
