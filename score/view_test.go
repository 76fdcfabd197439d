package score

import (
	"bytes"
	"slices"
	"testing"
)

// splice returns b[:i] ‖ mid ‖ b[j:].
func splice(b []byte, i, j int, mid ...byte) []byte {
	out := append([]byte{}, b[:i]...)
	out = append(out, mid...)
	return append(out, b[j:]...)
}

// nixOff returns the offset of the instruction count of a fixture.
func (t fixTx) nixOff() int {
	off := 1 + 64*t.nsig + 3 + 1 + 32*t.nkeys + 32
	if t.v0 {
		off++
	}
	return off
}

// valid fixtures used by several cases.
var (
	// one instruction: program 1, accounts [0 1], data [7]
	fixLegacy = fixTx{nsig: 1, hdr: [3]byte{1, 0, 1}, nkeys: 2,
		ixs: []fixIx{{prog: 1, accs: []byte{0, 1}, data: []byte{7}}}}
	// v0, one instruction using lookup accounts 2..4 (total 5)
	fixV0 = fixTx{nsig: 1, v0: true, hdr: [3]byte{1, 0, 1}, nkeys: 2,
		ixs:  []fixIx{{prog: 1, accs: []byte{0, 2, 3, 4}, data: []byte{7}}},
		luts: []fixLut{{key: 0xCC, w: []byte{5, 6}, r: []byte{9}}}}
)

// withIxs returns t with its instructions replaced.
func (t fixTx) withIxs(ixs ...fixIx) fixTx { t.ixs = ixs; return t }

// withLuts returns t with its lookups replaced.
func (t fixTx) withLuts(luts ...fixLut) fixTx { t.luts = luts; return t }

func seq(from, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(from + i)
	}
	return b
}

// TestParseRules has, for each rule P1–P7 and S1–S9 of
// docs/solana-wire.md §3, at least one transaction that passes it and one
// that breaks only it.
func TestParseRules(t *testing.T) {
	type tc struct {
		rule string
		name string
		data []byte
		want Reject
	}
	legacy := fixLegacy.bytes()
	lix := fixLegacy.nixOff()
	v0 := fixV0.bytes()
	v0lut := len(v0) - (1 + 32 + 1 + 2 + 1 + 1) // offset of nlut

	twelve := fixTx{nsig: 12, hdr: [3]byte{12, 0, 1}, nkeys: 13,
		ixs: []fixIx{{prog: 12, accs: []byte{0}}}}
	many := legacy1(35).withIxs(fixIx{prog: 34}) // 35 keys: the most that fit with one signature
	ix128 := fixLegacy.withIxs(fixIx{prog: 1, accs: []byte{0}, data: seq(0, 128)})
	// 31 lookups of 35 bytes fit only beside a single static key.
	lut31 := fixTx{nsig: 1, v0: true, hdr: [3]byte{1, 0, 0}, nkeys: 1,
		luts: slices.Repeat([]fixLut{{key: 1, w: []byte{1}}}, 31)}.bytes()
	lut31n := len(lut31) - 31*35 - 1 // the lookup count

	cases := []tc{
		// P1: 1 ≤ nsig ≤ 12, signatures present.
		{"P1", "one signature", legacy, OK},
		{"P1", "twelve signatures", twelve.bytes(), OK},
		{"P1", "zero signatures", splice(legacy, 0, 1, 0), RejectSignatures},
		{"P1", "thirteen signatures", splice(legacy, 0, 1, 13), RejectSignatures},
		// A first byte with bit 7 set announces v1; 0x80 is no version
		// (transaction_frame.rs try_new_as_v1: version & 0x7F must be 1).
		{"P1", "0x80 signatures", splice(legacy, 0, 1, 0x80), RejectVersion},
		{"P1", "signatures truncated", legacy[:64], RejectSignatures},
		{"P1", "second signature missing", splice(legacy, 0, 1, 2)[:100], RejectSignatures},
		{"P1", "empty", []byte{}, RejectSignatures},

		// P2: version prefix and three header bytes.
		{"P2", "legacy", legacy, OK},
		{"P2", "v0 prefix", v0, OK},
		{"P2", "v1 prefix 0x81", splice(v0, 65, 66, 0x81), RejectVersion},
		{"P2", "prefix 0xff", splice(v0, 65, 66, 0xff), RejectVersion},
		{"P2", "no message", legacy[:65], RejectHeader},
		{"P2", "legacy header cut", legacy[:67], RejectHeader},
		{"P2", "v0 header cut", v0[:68], RejectHeader},
		{"P2", "v0 prefix only", v0[:66], RejectHeader},

		// P3: 1 ≤ nkeys ≤ 38, keys present.
		{"P3", "35 keys", many.bytes(), OK},
		{"P3", "zero keys", splice(legacy, 68, 69, 0), RejectAccountKeys},
		{"P3", "39 keys", splice(legacy, 68, 69, 39), RejectAccountKeys},
		{"P3", "count missing", legacy[:68], RejectAccountKeys},
		{"P3", "keys truncated", legacy[:69+63], RejectAccountKeys},

		// P4: blockhash present.
		{"P4", "blockhash then zero instructions", fixLegacy.withIxs().bytes(), OK},
		{"P4", "blockhash truncated", legacy[:lix-1], RejectBlockhash},
		{"P4", "blockhash absent", legacy[:lix-32], RejectBlockhash},

		// P5: instructions well-formed (shortvec ≤ 2 bytes, minimal, in bounds).
		{"P5", "128-byte data (two-byte shortvec)", ix128.bytes(), OK},
		{"P5", "count missing", legacy[:lix], RejectInstructions},
		{"P5", "count alias 80 00", splice(legacy, lix, lix+1, 0x80, 0x00), RejectInstructions},
		{"P5", "count alias 81 00", splice(legacy, lix, lix+1, 0x81, 0x00), RejectInstructions},
		{"P5", "count three-byte 80 80 01", splice(legacy, lix, lix+1, 0x80, 0x80, 0x01), RejectInstructions},
		{"P5", "count above bytes/3", splice(legacy, lix, lix+1, 3), RejectInstructions},
		{"P5", "count 2 with 6 bytes left", splice(legacy, lix, lix+1, 2)[:lix+7], RejectInstructions},
		{"P5", "accounts past end", splice(legacy, lix+2, lix+3, 0x7f), RejectInstructions},
		{"P5", "data past end", splice(legacy, lix+5, lix+6, 2), RejectInstructions},
		{"P5", "data length 80 80 01", splice(legacy, lix+5, lix+6, 0x80, 0x80, 0x01), RejectInstructions},
		{"P5", "data length 80 00", splice(legacy, lix+5, lix+6, 0x80, 0x00), RejectInstructions},
		{"P5", "second instruction cut", fixLegacy.withIxs(fixLegacy.ixs[0], fixIx{prog: 1, data: seq(0, 5)}).bytes()[:lix+6+3+3], RejectInstructions},

		// P6: v0 lookups well-formed.
		{"P6", "one lookup", v0, OK},
		{"P6", "no lookups", fixV0.withIxs(fixIx{prog: 1, accs: []byte{0, 1}}).withLuts().bytes(), OK},
		{"P6", "31 lookups", lut31, OK},
		{"P6", "32 lookups", splice(lut31, lut31n, lut31n+1, 32), RejectLookups},
		{"P6", "0x80 lookups", splice(lut31, lut31n, lut31n+1, 0x80), RejectLookups},
		{"P6", "count missing", v0[:v0lut], RejectLookups},
		{"P6", "count above bytes/35", splice(v0, v0lut, v0lut+1, 2), RejectLookups},
		{"P6", "key truncated", v0[:v0lut+1+31], RejectLookups},
		{"P6", "writable past end", splice(v0, v0lut+33, v0lut+34, 9), RejectLookups},
		{"P6", "readonly past end", splice(v0, v0lut+36, v0lut+37, 2), RejectLookups},
		{"P6", "writable alias 80 00", splice(v0, v0lut+33, v0lut+34, 0x80, 0x00), RejectLookups},
		{"P6", "lone empty lookup (34 < 35 bytes)", fixV0.withIxs().withLuts(fixLut{key: 1}).bytes(), RejectLookups},
		{"P6", "legacy has no lookup section", append(bytes.Clone(legacy), 0), RejectTrailing},

		// P7: no trailing bytes.
		{"P7", "exact", legacy, OK},
		{"P7", "one trailing byte", append(bytes.Clone(legacy), 0), RejectTrailing},
		{"P7", "v0 trailing byte", append(bytes.Clone(v0), 0), RejectTrailing},

		// S1: nsig == required signatures.
		{"S1", "two and two", fixTx{nsig: 2, hdr: [3]byte{2, 0, 1}, nkeys: 3, ixs: []fixIx{{prog: 2}}}.bytes(), OK},
		{"S1", "two signatures, header one", fixTx{nsig: 2, hdr: [3]byte{1, 0, 1}, nkeys: 3, ixs: []fixIx{{prog: 2}}}.bytes(), RejectSignatureCount},
		{"S1", "one signature, header two", fixTx{nsig: 1, hdr: [3]byte{2, 0, 1}, nkeys: 3, ixs: []fixIx{{prog: 2}}}.bytes(), RejectSignatureCount},

		// S2: nkeys ≥ nsig.
		{"S2", "keys = signatures", fixTx{nsig: 2, hdr: [3]byte{2, 0, 0}, nkeys: 2}.bytes(), OK},
		{"S2", "keys < signatures", fixTx{nsig: 2, hdr: [3]byte{2, 0, 0}, nkeys: 1}.bytes(), RejectSignerKeys},
		{"S2", "keys < signatures, lookups do not count", fixTx{nsig: 2, v0: true, hdr: [3]byte{2, 0, 0}, nkeys: 1,
			luts: []fixLut{{key: 1, w: seq(0, 6), r: seq(6, 3)}}}.bytes(), RejectSignerKeys},

		// S3: readonly unsigned ≤ nkeys − required.
		{"S3", "all unsigned readonly", fixTx{nsig: 1, hdr: [3]byte{1, 0, 2}, nkeys: 3}.bytes(), OK},
		{"S3", "one too many", fixTx{nsig: 1, hdr: [3]byte{1, 0, 3}, nkeys: 3}.bytes(), RejectReadonlyUnsigned},

		// S4: readonly signed < required.
		{"S4", "one of two signers readonly", fixTx{nsig: 2, hdr: [3]byte{2, 1, 0}, nkeys: 2}.bytes(), OK},
		{"S4", "only signer readonly", fixTx{nsig: 1, hdr: [3]byte{1, 1, 0}, nkeys: 2}.bytes(), RejectReadonlySigned},

		// S5: nkeys + lookup indexes ≤ 256.
		{"S5", "exactly 256, index 255 allowed", fixTx{nsig: 1, v0: true, hdr: [3]byte{1, 0, 1}, nkeys: 2,
			ixs:  []fixIx{{prog: 1, accs: []byte{255}}},
			luts: []fixLut{{key: 1, w: seq(0, 200), r: seq(0, 54)}}}.bytes(), OK},
		{"S5", "257", fixTx{nsig: 1, v0: true, hdr: [3]byte{1, 0, 1}, nkeys: 2,
			luts: []fixLut{{key: 1, w: seq(0, 200), r: seq(0, 55)}}}.bytes(), RejectAccountCount},

		// S6: program index < nkeys.
		{"S6", "last static key", fixLegacy.withIxs(fixIx{prog: 1}).bytes(), OK},
		{"S6", "program = nkeys", fixLegacy.withIxs(fixIx{prog: 2}).bytes(), RejectProgramIndex},
		{"S6", "program is a lookup account", fixV0.withIxs(fixIx{prog: 3}).bytes(), RejectProgramIndex},
		{"S6", "second instruction", fixLegacy.withIxs(fixIx{prog: 1}, fixIx{prog: 200}).bytes(), RejectProgramIndex},

		// S7: program index ≠ 0.
		{"S7", "program 1", fixLegacy.withIxs(fixIx{prog: 1}).bytes(), OK},
		{"S7", "program 0", fixLegacy.withIxs(fixIx{prog: 0}).bytes(), RejectProgramFeePayer},

		// S8: account index < total.
		{"S8", "last static", fixLegacy.withIxs(fixIx{prog: 1, accs: []byte{1, 0}}).bytes(), OK},
		{"S8", "last lookup", fixV0.withIxs(fixIx{prog: 1, accs: []byte{4}}).bytes(), OK},
		{"S8", "static total", fixLegacy.withIxs(fixIx{prog: 1, accs: []byte{0, 2}}).bytes(), RejectAccountIndex},
		{"S8", "lookup total", fixV0.withIxs(fixIx{prog: 1, accs: []byte{5}}).bytes(), RejectAccountIndex},
		{"S8", "255 of 2", fixLegacy.withIxs(fixIx{prog: 1, accs: []byte{255}}).bytes(), RejectAccountIndex},

		// S9: each lookup has w + r ≥ 1.
		{"S9", "readonly only", fixV0.withIxs().withLuts(fixLut{key: 1, r: []byte{0}}).bytes(), OK},
		{"S9", "empty lookup with bytes to spare", fixV0.withIxs().withLuts(fixLut{key: 1}, fixLut{key: 2, w: []byte{1, 2}}).bytes(), RejectEmptyLookup},

		// Order of the sanitize checks across instructions (Agave checks
		// each instruction's program, then its accounts, in order).
		{"order", "S8 before a later S6", fixLegacy.withIxs(fixIx{prog: 1, accs: []byte{9}}, fixIx{prog: 5}).bytes(), RejectAccountIndex},
		{"order", "S6 before a later S8", fixLegacy.withIxs(fixIx{prog: 5}, fixIx{prog: 1, accs: []byte{9}}).bytes(), RejectProgramIndex},
		{"order", "S7 before its own S8", fixLegacy.withIxs(fixIx{prog: 0, accs: []byte{9}}).bytes(), RejectProgramFeePayer},
		{"order", "S6 before S9", fixV0.withIxs(fixIx{prog: 7}).withLuts(fixLut{key: 1}, fixLut{key: 2, w: []byte{1, 2}}).bytes(), RejectProgramIndex},
		// sanitize.rs checks the header before the signatures.
		{"order", "S4 before S1", fixTx{nsig: 2, hdr: [3]byte{1, 1, 0}, nkeys: 2}.bytes(), RejectReadonlySigned},
		{"order", "S3 before S1", fixTx{nsig: 2, hdr: [3]byte{1, 0, 2}, nkeys: 2}.bytes(), RejectReadonlyUnsigned},
		// Agave compares readonly unsigned with nkeys − nreq in u8, wrapping
		// when there are fewer keys than signers: 1 − 3 = 254 < 255 fails S3
		// before S2 is reached (testdata/fuzz/FuzzParse/s3-u8-wrap).
		{"order", "S3 with u8 wrap before S2", fixTx{nsig: 3, hdr: [3]byte{3, 0, 255}, nkeys: 1}.bytes(), RejectReadonlyUnsigned},
		{"order", "S2 when the wrap leaves room", fixTx{nsig: 3, hdr: [3]byte{3, 0, 254}, nkeys: 1}.bytes(), RejectSignerKeys},
		{"order", "parse before sanitize", append(fixLegacy.withIxs(fixIx{prog: 0}).bytes(), 0), RejectTrailing},

		// Size.
		{"size", "1233 bytes", make([]byte, 1233), RejectSize},
	}
	for _, c := range cases {
		t.Run(c.rule+"/"+c.name, func(t *testing.T) {
			var v View
			got := v.Parse(c.data)
			if got != c.want {
				t.Fatalf("Parse = %v, want %v", got, c.want)
			}
			if got.Parse() != c.want.Parse() {
				t.Fatalf("%v.Parse() = %v", got, got.Parse())
			}
			checkView(t, &v, c.data)
		})
	}
}

// checkView checks every accessor of a view against data: in bounds when
// the parse succeeded, zero values when it did not.
func checkView(t *testing.T, v *View, data []byte) {
	t.Helper()
	if v.Result() != OK {
		if v.Signature(data, 0) != nil || v.StaticKey(data, 0) != nil || v.Message(data) != nil ||
			v.FeePayer(data) != ([32]byte{}) || v.RecentBlockhash(data) != nil {
			t.Fatalf("rejected view (%v) returns data", v.Result())
		}
		it := v.Instructions()
		var in Instruction
		if it.Next(data, &in) {
			t.Fatal("rejected view iterates instructions")
		}
		if _, r := v.Budget(data, DefaultFeeParams()); r != v.Result() {
			t.Fatalf("Budget of a rejected view = %v, want %v", r, v.Result())
		}
		return
	}
	if v.Size() != len(data) {
		t.Fatalf("Size = %d, want %d", v.Size(), len(data))
	}
	for i := range v.NumSignatures() {
		s := v.Signature(data, i)
		if len(s) != 64 || !bytes.Equal(s, data[v.SignatureOffset()+64*i:v.SignatureOffset()+64+64*i]) {
			t.Fatalf("signature %d wrong", i)
		}
	}
	if v.Signature(data, v.NumSignatures()) != nil || v.Signature(data, -1) != nil {
		t.Fatal("signature out of range returned")
	}
	for i := range v.NumStaticKeys() {
		if len(v.StaticKey(data, i)) != 32 {
			t.Fatalf("key %d wrong", i)
		}
	}
	p := v.FeePayer(data)
	if !bytes.Equal(p[:], v.StaticKey(data, 0)) {
		t.Fatal("fee payer is not key 0")
	}
	if len(v.RecentBlockhash(data)) != 32 {
		t.Fatal("blockhash")
	}
	m := v.Message(data)
	end := len(data) // legacy, v0: the message ends the data; v1: the signatures do
	if v.V1() {
		end = v.SignatureOffset()
	}
	if len(m) == 0 || &m[len(m)-1] != &data[end-1] {
		t.Fatal("message does not end where it should")
	}
	total := v.NumAccounts()
	it := v.Instructions()
	var in Instruction
	k := 0
	for it.Next(data, &in) {
		k++
		if int(in.ProgramIndex) >= v.NumStaticKeys() || in.ProgramIndex == 0 {
			t.Fatalf("instruction %d program %d accepted", k, in.ProgramIndex)
		}
		for _, a := range in.Accounts(data) {
			if int(a) >= total {
				t.Fatalf("instruction %d account %d ≥ %d accepted", k, a, total)
			}
		}
		_ = in.Data(data)
	}
	if k != v.NumInstructions() {
		t.Fatalf("iterated %d instructions of %d", k, v.NumInstructions())
	}
	lt := v.Lookups()
	var l Lookup
	k = 0
	nw, nr := 0, 0
	for lt.Next(data, &l) {
		k++
		if len(l.Key(data)) != 32 || len(l.Writable(data))+len(l.Readonly(data)) == 0 {
			t.Fatalf("lookup %d malformed", k)
		}
		nw += len(l.Writable(data))
		nr += len(l.Readonly(data))
	}
	if k != v.NumLookups() {
		t.Fatalf("iterated %d lookups of %d", k, v.NumLookups())
	}
	if w, r := v.NumLookupAccounts(); w != nw || r != nr {
		t.Fatalf("lookup accounts %d/%d, iterated %d/%d", w, r, nw, nr)
	}
	// Other bytes: accessors must refuse rather than read out of bounds.
	short := data[:len(data)-1]
	if v.Signature(short, 0) != nil || v.StaticKey(short, 0) != nil || v.FeePayer(short) != ([32]byte{}) {
		t.Fatal("accessor accepted bytes of another length")
	}
	it = v.Instructions()
	if it.Next(short, &in) {
		t.Fatal("iterator accepted bytes of another length")
	}
}

func TestShortvec(t *testing.T) {
	f := func(in []byte, want, wantNext int) {
		t.Helper()
		got, next := readShortvec(in, 0)
		if next != wantNext || (next >= 0 && got != want) {
			t.Fatalf("readShortvec(% x) = %d, %d; want %d, %d", in, got, next, want, wantNext)
		}
	}
	f([]byte{0x00}, 0, 1)
	f([]byte{0x7f}, 127, 1)
	f([]byte{0x80, 0x01}, 128, 2)
	f([]byte{0xff, 0x7f}, 16383, 2)
	f([]byte{0x80, 0x00}, 0, -1)       // alias of 0
	f([]byte{0x81, 0x00}, 0, -1)       // alias of 1
	f([]byte{0x80, 0x80, 0x01}, 0, -1) // 16384: three bytes, refused
	f([]byte{0xff, 0xff, 0x03}, 0, -1) // 65535: three bytes, refused
	f([]byte{0x80}, 0, -1)             // truncated
	f([]byte{}, 0, -1)
	// Every value a 1232-byte packet can hold round-trips.
	for n := range 1233 {
		b := shortvec(nil, n)
		got, next := readShortvec(b, 0)
		if got != n || next != len(b) {
			t.Fatalf("%d: got %d, %d", n, got, next)
		}
	}
}

func TestRejectNames(t *testing.T) {
	seen := map[string]bool{}
	for r := range Reject(NumRejects) {
		s := r.String()
		if s == "" || s == "unknown" || seen[s] {
			t.Fatalf("Reject(%d) name %q", r, s)
		}
		seen[s] = true
		for _, c := range s {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				t.Fatalf("Reject(%d) name %q not snake_case", r, s)
			}
		}
		groups := 0
		for _, g := range []bool{r.Record(), r.Parse(), r.Sanitize(), r.Budget(), r.Locks(), r.Format()} {
			if g {
				groups++
			}
		}
		if (r == OK) != (groups == 0) || groups > 1 {
			t.Fatalf("Reject %v in %d groups", r, groups)
		}
	}
	if Reject(NumRejects).String() != "unknown" {
		t.Fatal("out-of-range name")
	}
	for _, r := range []Reject{RejectSignatures, RejectVersion, RejectHeader, RejectAccountKeys,
		RejectBlockhash, RejectInstructions, RejectLookups, RejectTrailing} {
		if !r.Parse() {
			t.Fatalf("%v.Parse() false", r)
		}
	}
	for _, r := range []Reject{OK, RejectSize, RejectAddr, RejectDiscard, RejectSignatureCount,
		RejectEmptyLookup, RejectBudgetData, RejectBudgetLoadedSize} {
		if r.Parse() {
			t.Fatalf("%v.Parse() true", r)
		}
	}
}

func TestViewZero(t *testing.T) {
	var v View
	if _, r := v.Budget(nil, DefaultFeeParams()); r != RejectSignatures {
		t.Fatalf("never-parsed Budget = %v", r)
	}
	checkView(t, &v, nil)
	// A failed parse after a good one leaves nothing behind.
	data := fixLegacy.bytes()
	if r := v.Parse(data); r != OK {
		t.Fatal(r)
	}
	if r := v.Parse(data[:len(data)-1]); r == OK {
		t.Fatal("truncated accepted")
	}
	checkView(t, &v, data)
}
