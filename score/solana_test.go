package score

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"

	solana "github.com/gagliardetto/solana-go"
	computebudget "github.com/gagliardetto/solana-go/programs/compute-budget"
	"github.com/gagliardetto/solana-go/programs/system"
)

// Transactions here are built and signed by an independent encoder,
// github.com/gagliardetto/solana-go, with real ed25519 keys.

// testKey returns a deterministic private key.
func testKey(name string) solana.PrivateKey {
	seed := sha256.Sum256([]byte("score test key " + name))
	return solana.PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
}

func testPub(name string) solana.PublicKey { return testKey(name).PublicKey() }

var testBlockhash = solana.HashFromBytes(bytes.Repeat([]byte{0x42}, 32))

// signAndEncode signs tx with the named keys and returns its wire bytes.
func signAndEncode(t testing.TB, tx *solana.Transaction, signers ...string) []byte {
	t.Helper()
	keys := map[solana.PublicKey]solana.PrivateKey{}
	for _, s := range signers {
		k := testKey(s)
		keys[k.PublicKey()] = k
	}
	if _, err := tx.Sign(func(p solana.PublicKey) *solana.PrivateKey {
		if k, ok := keys[p]; ok {
			return &k
		}
		return nil
	}); err != nil {
		t.Fatalf("sign: %v", err)
	}
	b, err := tx.MarshalBinary()
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	return b
}

func newTx(t testing.TB, payer string, ixs ...solana.Instruction) *solana.Transaction {
	t.Helper()
	tx, err := solana.NewTransaction(ixs, testBlockhash, solana.TransactionPayer(testPub(payer)))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return tx
}

func transfer(from, to string, lamports uint64) solana.Instruction {
	return system.NewTransferInstruction(lamports, testPub(from), testPub(to)).Build()
}

func setLimit(u uint32) solana.Instruction {
	return computebudget.NewSetComputeUnitLimitInstruction(u).Build()
}

func setPrice(p uint64) solana.Instruction {
	return computebudget.NewSetComputeUnitPriceInstruction(p).Build()
}

// typicalTx is a transfer with a compute-unit limit and price, as most
// fee-paying transactions look: 3 instructions, 1 signature.
func typicalTx(t testing.TB) []byte {
	return signAndEncode(t, newTx(t, "payer", setLimit(30_000), setPrice(250_000), transfer("payer", "bob", 1)), "payer")
}

// maxSizeTx is a legacy transaction of exactly 1232 bytes: a compute-unit
// price and one instruction whose data fills the rest.
func maxSizeTx(t testing.TB) []byte {
	build := func(n int) []byte {
		ix := solana.NewInstruction(testPub("program"), solana.AccountMetaSlice{
			solana.Meta(testPub("payer")).WRITE().SIGNER(),
			solana.Meta(testPub("acct")).WRITE(),
		}, bytes.Repeat([]byte{0x77}, n))
		return signAndEncode(t, newTx(t, "payer", setPrice(1000), ix), "payer")
	}
	small := len(build(200)) // two-byte data length in both
	b := build(200 + MaxTransactionSize - small)
	if len(b) != MaxTransactionSize {
		t.Fatalf("max-size tx is %d bytes", len(b))
	}
	return b
}

// v0Tx is a v0 transaction with two address-table lookups, two signers
// and instructions using lookup accounts.
func v0Tx(t testing.TB) []byte {
	msg := solana.Message{
		AccountKeys: solana.PublicKeySlice{
			testPub("payer"), testPub("cosigner"), testPub("acct"),
			solana.ComputeBudget, testPub("program"),
		},
		Header:          solana.MessageHeader{NumRequiredSignatures: 2, NumReadonlySignedAccounts: 1, NumReadonlyUnsignedAccounts: 2},
		RecentBlockhash: testBlockhash,
		Instructions: []solana.CompiledInstruction{
			{ProgramIDIndex: 3, Data: computebudgetData(t, setLimit(90_000))},
			{ProgramIDIndex: 4, Accounts: []uint16{0, 1, 2, 5, 6, 7, 8}, Data: []byte{1, 2, 3}},
			{ProgramIDIndex: 3, Data: computebudgetData(t, setPrice(3_000_000))},
		},
		AddressTableLookups: solana.MessageAddressTableLookupSlice{
			{AccountKey: testPub("table1"), WritableIndexes: []uint8{4, 9}, ReadonlyIndexes: []uint8{200}},
			{AccountKey: testPub("table2"), WritableIndexes: nil, ReadonlyIndexes: []uint8{0}},
		},
	}
	msg.SetVersion(solana.MessageVersionV0)
	return signAndEncode(t, &solana.Transaction{Message: msg}, "payer", "cosigner")
}

func computebudgetData(t testing.TB, ix solana.Instruction) []byte {
	t.Helper()
	d, err := ix.Data()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// manyTx has n instructions to one program, each with one account and one
// data byte.
func manyTx(t testing.TB, n int) []byte {
	ixs := make([]solana.Instruction, n)
	for i := range ixs {
		ixs[i] = solana.NewInstruction(testPub("program"), solana.AccountMetaSlice{
			solana.Meta(testPub("acct")).WRITE(),
		}, []byte{byte(i)})
	}
	return signAndEncode(t, newTx(t, "payer", ixs...), "payer")
}

// compareWithDecoder checks a parsed view field by field against
// solana-go's decoding of the same bytes.
func compareWithDecoder(t testing.TB, v *View, data []byte, tx *solana.Transaction) {
	t.Helper()
	m := &tx.Message
	if len(tx.Signatures) != v.NumSignatures() {
		t.Fatalf("signatures: %d vs %d", v.NumSignatures(), len(tx.Signatures))
	}
	for i, s := range tx.Signatures {
		if !bytes.Equal(v.Signature(data, i), s[:]) {
			t.Fatalf("signature %d differs", i)
		}
	}
	if v.V0() != m.IsVersioned() {
		t.Fatalf("version: v0=%v, solana-go versioned=%v", v.V0(), m.IsVersioned())
	}
	h := m.Header
	if int(h.NumRequiredSignatures) != v.NumRequiredSignatures() || int(h.NumReadonlySignedAccounts) != v.NumReadonlySigned() ||
		int(h.NumReadonlyUnsignedAccounts) != v.NumReadonlyUnsigned() {
		t.Fatalf("header differs: %+v", h)
	}
	if len(m.AccountKeys) != v.NumStaticKeys() {
		t.Fatalf("static keys: %d vs %d", v.NumStaticKeys(), len(m.AccountKeys))
	}
	for i, k := range m.AccountKeys {
		if !bytes.Equal(v.StaticKey(data, i), k[:]) {
			t.Fatalf("key %d differs", i)
		}
	}
	if p := v.FeePayer(data); p != [32]byte(m.AccountKeys[0]) {
		t.Fatal("fee payer differs")
	}
	if !bytes.Equal(v.RecentBlockhash(data), m.RecentBlockhash[:]) {
		t.Fatal("blockhash differs")
	}
	if len(m.Instructions) != v.NumInstructions() {
		t.Fatalf("instructions: %d vs %d", v.NumInstructions(), len(m.Instructions))
	}
	it := v.Instructions()
	var in Instruction
	for i, ci := range m.Instructions {
		if !it.Next(data, &in) {
			t.Fatalf("iterator ended at %d", i)
		}
		if uint16(in.ProgramIndex) != ci.ProgramIDIndex {
			t.Fatalf("instruction %d program %d vs %d", i, in.ProgramIndex, ci.ProgramIDIndex)
		}
		acc := in.Accounts(data)
		if len(acc) != len(ci.Accounts) {
			t.Fatalf("instruction %d accounts", i)
		}
		for j, a := range ci.Accounts {
			if uint16(acc[j]) != a {
				t.Fatalf("instruction %d account %d", i, j)
			}
		}
		if !bytes.Equal(in.Data(data), ci.Data) {
			t.Fatalf("instruction %d data", i)
		}
	}
	if len(m.AddressTableLookups) != v.NumLookups() {
		t.Fatalf("lookups: %d vs %d", v.NumLookups(), len(m.AddressTableLookups))
	}
	lt := v.Lookups()
	var l Lookup
	for i, al := range m.AddressTableLookups {
		if !lt.Next(data, &l) {
			t.Fatalf("lookup iterator ended at %d", i)
		}
		if !bytes.Equal(l.Key(data), al.AccountKey[:]) || !bytes.Equal(l.Writable(data), al.WritableIndexes) ||
			!bytes.Equal(l.Readonly(data), al.ReadonlyIndexes) {
			t.Fatalf("lookup %d differs", i)
		}
	}
}

// verifySignatures checks every signature against its static key over the
// message bytes the view delimits, as sigverify does.
func verifySignatures(t testing.TB, v *View, data []byte) {
	t.Helper()
	for i := range v.NumSignatures() {
		if !ed25519.Verify(v.StaticKey(data, i), v.Message(data), v.Signature(data, i)) {
			t.Fatalf("signature %d does not verify over the view's message", i)
		}
	}
}

func TestSolanaGoTransactions(t *testing.T) {
	cases := []struct {
		name   string
		data   []byte
		budget Budget
	}{
		{"legacy typical", typicalTx(t), Budget{CUs: 30_000, CUPrice: 250_000, PrioFee: 7500, Signatures: 1, SigFee: 5000, Fee: 12_500}},
		{"legacy two signers", signAndEncode(t, newTx(t, "payer", transfer("payer", "bob", 5), transfer("carol", "bob", 6)), "payer", "carol"),
			Budget{CUs: 6_000, Signatures: 2, SigFee: 10_000, Fee: 10_000}}, // two system transfers, 3 000 each
		{"v0 with lookups", v0Tx(t), Budget{CUs: 90_000, CUPrice: 3_000_000, PrioFee: 270_000, Signatures: 2, SigFee: 10_000, Fee: 280_000}},
		// a price (3 000) and one ordinary instruction (200 000); ⌈1000 × 203 000 / 1e6⌉ = 203
		{"max size", maxSizeTx(t), Budget{CUs: 203_000, CUPrice: 1000, PrioFee: 203, Signatures: 1, SigFee: 5000, Fee: 5203}},
		{"64 instructions", manyTx(t, 64), Budget{CUs: 1_400_000, Signatures: 1, SigFee: 5000, Fee: 5000}},
		{"ed25519 precompile", signAndEncode(t, newTx(t, "payer",
			solana.NewInstruction(solana.MustPublicKeyFromBase58("Ed25519SigVerify111111111111111111111111111"), nil, []byte{2, 0}),
			transfer("payer", "bob", 1)), "payer"),
			Budget{CUs: 6_000, Signatures: 3, PrecompileSignatures: 2, SigFee: 15_000, Fee: 15_000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v View
			if r := v.Parse(c.data); r != OK {
				t.Fatalf("Parse = %v", r)
			}
			checkView(t, &v, c.data)
			verifySignatures(t, &v, c.data)
			tx, err := solana.TransactionFromBytes(c.data)
			if err != nil {
				t.Fatalf("solana-go decode: %v", err)
			}
			compareWithDecoder(t, &v, c.data, tx)
			b, r := v.Budget(c.data, DefaultFeeParams())
			c.budget.HeapBytes, c.budget.LoadedAccountsBytes = 32<<10, 64<<20
			if r != OK || b != c.budget {
				t.Fatalf("Budget = %+v, %v\nwant %+v", b, r, c.budget)
			}
			// Through a record, and once more with a byte too many.
			e := NewEvaluator(7)
			info, r := e.Evaluate(packetOf(t, c.data))
			if r != OK || info.Budget != b || info.Payer != [32]byte(tx.Message.AccountKeys[0]) {
				t.Fatalf("Evaluate = %+v, %v", info, r)
			}
			if len(c.data) < MaxTransactionSize {
				if r := v.Parse(append(bytes.Clone(c.data), 0)); r != RejectTrailing {
					t.Fatalf("with a trailing byte: %v", r)
				}
			}
			// Any flipped signature byte still parses (signatures are not
			// checked here) but no longer verifies.
			bad := bytes.Clone(c.data)
			bad[1] ^= 1
			if r := v.Parse(bad); r != OK {
				t.Fatal(r)
			}
			if ed25519.Verify(v.StaticKey(bad, 0), v.Message(bad), v.Signature(bad, 0)) {
				t.Fatal("corrupted signature verifies")
			}
		})
	}
	// A 1233-byte transaction is refused before parsing.
	big := append(maxSizeTx(t), 0)
	var v View
	if r := v.Parse(big); r != RejectSize {
		t.Fatalf("1233 bytes: %v", r)
	}
}

// TestSolanaGoIDs checks the program ids against their base58 names and
// the compute-budget encoding against solana-go's.
func TestSolanaGoIDs(t *testing.T) {
	for _, c := range []struct {
		id   [32]byte
		name string
	}{
		{ComputeBudgetProgram, "ComputeBudget111111111111111111111111111111"},
		{Ed25519Program, "Ed25519SigVerify111111111111111111111111111"},
		{Secp256k1Program, "KeccakSecp256k11111111111111111111111111111"},
	} {
		if got := solana.PublicKeyFromBytes(c.id[:]).String(); got != c.name {
			t.Fatalf("%x is %s, want %s", c.id, got, c.name)
		}
	}
	for _, c := range []struct {
		ix   solana.Instruction
		want []byte
	}{
		{setLimit(300_000), cbLimit(300_000)},
		{setPrice(12345), cbPrice(12345)},
		{computebudget.NewRequestHeapFrameInstruction(64 << 10).Build(), cbHeap(64 << 10)},
	} {
		if got := computebudgetData(t, c.ix); !bytes.Equal(got, c.want) {
			t.Fatalf("solana-go encodes % x, fixtures % x", got, c.want)
		}
	}
}

func ExampleView() {
	data := fixLegacy.bytes()
	var v View
	if r := v.Parse(data); r != OK {
		fmt.Println("rejected:", r)
		return
	}
	b, r := v.Budget(data, DefaultFeeParams())
	fmt.Println(r, v.NumSignatures(), v.NumInstructions(), b.CUs, b.Fee)
	r = v.Parse(data[:100])
	fmt.Println(r, r.Parse())
	// Output:
	// ok 1 1 200000 5000
	// parse_account_keys true
}
