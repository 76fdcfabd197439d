package score

import (
	"bytes"
	"math"
	"testing"

	solana "github.com/gagliardetto/solana-go"
)

// The expected values in this file are worked out by hand from Agave's
// source, read at the commits cited next to the code they test:
// transaction-view (agave-sdk 711c4df) for the layout and the sanitize
// limits; compute-budget-instruction compute_budget_instruction_details.rs
// and builtins-default-costs for the default limit (SIMD-0170);
// compute_budget_limits.rs for the priority fee; fee/src/lib.rs for the
// total; runtime-transaction transaction_meta.rs for v1; accounts-db
// account_locks.rs for the lock checks.

// admitted runs data through the daemon's path (a packet record and the
// Evaluator) when it fits a record, else through View.Parse and Admit,
// checks the plain reference agrees, and returns the verdict.
func admitted(t *testing.T, data []byte, lim Limits) (Budget, Reject) {
	t.Helper()
	var b Budget
	var r Reject
	if len(data) <= MaxTransactionSize {
		e := Evaluator{Fees: DefaultFeeParams(), Limits: lim}
		var info Info
		info, r = e.Evaluate(packetOf(t, data))
		b = info.Budget
	} else {
		var v View
		v.Parse(data)
		b, r = v.Admit(data, DefaultFeeParams(), lim)
	}
	if wb, wr := refParse(data, lim); wb != b || wr != r {
		t.Fatalf("View %v %+v, reference %v %+v", r, b, wr, wb)
	}
	return b, r
}

// sizedLegacy returns a valid legacy transaction of exactly n bytes
// (n ≥ 200): payer, one ordinary program, one instruction whose data
// fills the rest.
func sizedLegacy(t *testing.T, n int) []byte {
	t.Helper()
	base := fixTx{nsig: 1, hdr: [3]byte{1, 0, 1}, nkeys: 2}
	for dl := n; dl >= 0; dl-- {
		b := base.withIxs(fixIx{prog: 1, data: make([]byte, dl)}).bytes()
		if len(b) == n {
			return b
		}
	}
	t.Fatalf("no legacy transaction of %d bytes", n)
	return nil
}

// sizedV1 returns a valid v1 transaction of exactly n bytes.
func sizedV1(t *testing.T, n int) []byte {
	t.Helper()
	b := v1Tx(2, fixIx{prog: 1}).bytes()
	d := n - len(b)
	if d < 0 {
		t.Fatalf("no v1 transaction of %d bytes", n)
	}
	return v1Tx(2, fixIx{prog: 1, data: make([]byte, d)}).bytes()
}

// manyIxs returns a legacy transaction with n instructions of an
// ordinary program, each with one account.
func manyIxs(n int) fixTx { return cbTx(repeat(n)...) }

// lookupTx returns a v0 transaction with 2 static keys and one lookup
// of w writable and r readonly indexes: 2 + w + r accounts.
func lookupTx(w, r int) fixTx {
	return fixTx{nsig: 1, v0: true, hdr: [3]byte{1, 0, 1}, nkeys: 2,
		ixs:  []fixIx{{prog: 1, accs: []byte{0}}},
		luts: []fixLut{{key: 0xCC, w: seq(0, w), r: seq(0, r)}}}
}

// manyKeysTx returns a valid legacy transaction with n distinct static
// keys sharing their first 8 bytes (the duplicate check's worst case).
func manyKeysTx(n int) fixTx {
	t := fixTx{nsig: 1, hdr: [3]byte{1, 0, byte(n - 1)}, nkeys: n, ixs: []fixIx{{prog: 1}}}
	for i := range n {
		var k [32]byte
		k[31] = byte(i)
		t = t.withKey(i, k)
	}
	return t
}

// TestAgaveBoundaries has, for each limit Agave enforces before
// execution, a transaction at the limit that is accepted and one past it
// that is refused, with its own reason.
func TestAgaveBoundaries(t *testing.T) {
	def := func(cus uint64) Budget {
		return Budget{CUs: cus, Signatures: 1, SigFee: 5000, Fee: 5000, HeapBytes: 32 << 10, LoadedAccountsBytes: 64 << 20}
	}
	oneIx := fixTx{nsig: 1, hdr: [3]byte{1, 0, 1}, nkeys: 2}
	v1ix := func(n int) fixTx {
		ixs := make([]fixIx, n)
		for i := range ixs {
			ixs[i] = fixIx{prog: 1}
		}
		return v1Tx(2, ixs...)
	}
	dupKeys := fixTx{nsig: 1, hdr: [3]byte{1, 0, 2}, nkeys: 3, ixs: []fixIx{{prog: 1}}}
	// 35 keys (as many as fit in 1232 bytes) sharing their first 8
	// bytes, differing in the last.
	sharedPrefix := manyKeysTx(35)
	cases := []struct {
		name string
		data []byte
		lim  Limits
		want Budget // checked when r is OK
		r    Reject
	}{
		// SIMD-0160: at most 64 instructions (sanitize_instructions).
		// 64 ordinary instructions: 64 × 200 000 capped at 1 400 000.
		{"64 instructions", manyIxs(64).bytes(), Limits{}, def(1_400_000), OK},
		{"65 instructions", manyIxs(65).bytes(), Limits{}, Budget{}, RejectInstructionCount},
		{"v1 64 instructions", v1ix(64).bytes(), Limits{}, def(0), OK},
		{"v1 65 instructions", v1ix(65).bytes(), Limits{}, Budget{}, RejectInstructionCount},

		// SIMD-0406: at most 255 accounts in one instruction.
		{"255 accounts in an instruction", oneIx.withIxs(fixIx{prog: 1, accs: make([]byte, 255)}).bytes(), Limits{}, def(200_000), OK},
		{"256 accounts in an instruction", oneIx.withIxs(fixIx{prog: 1, accs: make([]byte, 256)}).bytes(), Limits{}, Budget{}, RejectInstructionAccounts},
		{"256 accounts, one out of range: S8 first", oneIx.withIxs(fixIx{prog: 1, accs: append(make([]byte, 255), 9)}).bytes(), Limits{}, Budget{}, RejectAccountIndex},
		{"256 accounts after a bad program: S6 first", oneIx.withIxs(fixIx{prog: 7}, fixIx{prog: 1, accs: make([]byte, 256)}).bytes(), Limits{}, Budget{}, RejectProgramIndex},
		{"bad account before 256 accounts: S8 first", oneIx.withIxs(fixIx{prog: 1, accs: []byte{9}}, fixIx{prog: 1, accs: make([]byte, 256)}).bytes(), Limits{}, Budget{}, RejectAccountIndex},

		// Account locks: static keys plus lookup indexes within the limit.
		{"64 accounts, limit 64", lookupTx(31, 31).bytes(), Limits{}, def(200_000), OK},
		{"65 accounts, limit 64", lookupTx(31, 32).bytes(), Limits{}, Budget{}, RejectTooManyAccountLocks},
		{"65 accounts, limit 128", lookupTx(31, 32).bytes(), Limits{AccountLockLimit: 128}, def(200_000), OK},
		{"128 accounts, limit 128", lookupTx(63, 63).bytes(), Limits{AccountLockLimit: 128}, def(200_000), OK},
		{"129 accounts, limit 128", lookupTx(63, 64).bytes(), Limits{AccountLockLimit: 128}, Budget{}, RejectTooManyAccountLocks},
		{"257 accounts: sanitize before locks", lookupTx(127, 128).bytes(), Limits{AccountLockLimit: 256}, Budget{}, RejectAccountCount},
		{"budget instruction before locks", lookupTx(31, 32).withIxs(fixIx{prog: 1, accs: []byte{0}}, fixIx{prog: 1}).withKey(1, ComputeBudgetProgram).bytes(), Limits{}, Budget{}, RejectBudgetData},

		// AccountLoadedTwice: a static key listed twice.
		{"distinct keys", dupKeys.bytes(), Limits{}, def(200_000), OK},
		{"key 2 repeats key 1", dupKeys.withKey(2, dupKeys.key(1)).bytes(), Limits{}, Budget{}, RejectAccountLoadedTwice},
		{"key 2 repeats the payer", dupKeys.withKey(2, dupKeys.key(0)).bytes(), Limits{}, Budget{}, RejectAccountLoadedTwice},
		{"35 keys with one prefix, distinct", sharedPrefix.bytes(), Limits{}, def(200_000), OK},
		{"35 keys with one prefix, last two equal", sharedPrefix.withKey(34, sharedPrefix.key(33)).bytes(), Limits{}, Budget{}, RejectAccountLoadedTwice},
		{"too many locks before duplicates", lookupTx(31, 32).withKey(1, lookupTx(0, 0).key(0)).bytes(), Limits{}, Budget{}, RejectTooManyAccountLocks},
		{"v1 duplicate address", v1Tx(3, fixIx{prog: 1}).withKey(2, v1Tx(3).key(1)).bytes(), Limits{}, Budget{}, RejectAccountLoadedTwice},

		// Size: 1232 bytes for legacy and v0 (PACKET_DATA_SIZE).
		// 1232 bytes: one ordinary instruction, 200 000 CUs.
		{"1232 bytes", sizedLegacy(t, 1232), Limits{}, def(200_000), OK},
		{"1233 bytes", sizedLegacy(t, 1233), Limits{}, Budget{}, RejectSize},
		{"v1 1232 bytes", sizedV1(t, 1232), Limits{}, def(0), OK},
		{"v1 4096 bytes (raw, not in a record)", sizedV1(t, 4096), Limits{}, def(0), OK},
		{"v1 4097 bytes", sizedV1(t, 4097), Limits{}, Budget{}, RejectSize},

		// v1 switch.
		{"v1 on", v1Tx(2, fixIx{prog: 1}).bytes(), Limits{}, def(0), OK},
		{"v1 off", v1Tx(2, fixIx{prog: 1}).bytes(), Limits{NoTxV1: true}, Budget{}, RejectV1Disabled},
		{"v1 off wins over sanitize", v1Tx(2, fixIx{prog: 0}).bytes(), Limits{NoTxV1: true}, Budget{}, RejectV1Disabled},
		{"v1 off, garbage stays garbage", v1Tx(2, fixIx{prog: 1}).bytes()[:100], Limits{NoTxV1: true}, Budget{}, RejectAccountKeys},
		{"legacy with v1 off", oneIx.withIxs(fixIx{prog: 1}).bytes(), Limits{NoTxV1: true}, def(200_000), OK},

		// v1 sanitize: at most 12 signatures, 64 addresses.
		{"v1 12 signatures", fixTx{v1: true, nsig: 12, hdr: [3]byte{12, 0, 0}, nkeys: 13, ixs: []fixIx{{prog: 12}}}.bytes(), Limits{},
			Budget{Signatures: 12, SigFee: 60_000, Fee: 60_000, HeapBytes: 32 << 10}, OK},
		{"v1 13 signatures", fixTx{v1: true, nsig: 13, hdr: [3]byte{13, 0, 0}, nkeys: 14, ixs: []fixIx{{prog: 13}}}.bytes(), Limits{}, Budget{}, RejectSignatureLimit},
		{"v1 64 addresses", v1Tx(64, fixIx{prog: 1}).bytes(), Limits{}, def(0), OK},
		{"v1 65 addresses", v1Tx(65, fixIx{prog: 1}).bytes(), Limits{AccountLockLimit: 128}, Budget{}, RejectAccountCount},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.r == OK && (bytes.HasPrefix(c.data, []byte{0x81})) {
				c.want.LoadedAccountsBytes = 0 // v1 without a loaded-size word: 0
			}
			b, r := admitted(t, c.data, c.lim)
			if r != c.r {
				t.Fatalf("%d bytes: reject = %v, want %v", len(c.data), r, c.r)
			}
			if r == OK && b != c.want {
				t.Fatalf("got  %+v\nwant %+v", b, c.want)
			}
			if r != OK && r.Parse() && c.r != RejectAccountKeys {
				t.Fatalf("%v counted as unparsable", r)
			}
		})
	}

	// A packet record announcing 1233 bytes is refused before parsing.
	p := packetOf(t, sizedLegacy(t, 1232))
	p.SetSize(1233)
	if _, r := NewEvaluator(1).Evaluate(p); r != RejectSize {
		t.Fatalf("record of 1233 bytes: %v", r)
	}
}

// TestDefaultLimitByProgram checks SIMD-0170's default compute-unit
// limit for each program class, with no SetComputeUnitLimit: the
// instruction of the program under test plus a SetComputeUnitPrice of
// 1 000 000 micro-lamports (1 lamport per CU; the compute-budget
// instruction is itself a builtin: 3 000). So CUs = class + 3 000, the
// priority fee ⌈1e6 × CUs / 1e6⌉ = CUs lamports, the fee 5 000 + CUs.
// The ids are decoded from their base58 names by solana-go, independently
// of the byte tables in budget.go.
func TestDefaultLimitByProgram(t *testing.T) {
	const builtin, other = 3_000, 200_000
	cases := []struct {
		name, id string
		class    uint64
	}{
		// builtins-default-costs NON_MIGRATING_BUILTINS_COSTS
		{"vote", "Vote111111111111111111111111111111111111111", builtin},
		{"system", "11111111111111111111111111111111", builtin},
		{"compute budget", "ComputeBudget111111111111111111111111111111", builtin},
		{"bpf loader upgradeable", "BPFLoaderUpgradeab1e11111111111111111111111", builtin},
		{"bpf loader deprecated", "BPFLoader1111111111111111111111111111111111", builtin},
		{"bpf loader", "BPFLoader2111111111111111111111111111111111", builtin},
		{"loader v4", "LoaderV411111111111111111111111111111111111", builtin},
		{"secp256k1", "KeccakSecp256k11111111111111111111111111111", builtin},
		{"ed25519", "Ed25519SigVerify111111111111111111111111111", builtin},
		// migrated to BPF or never builtins: DEFAULT_INSTRUCTION_COMPUTE_UNIT_LIMIT
		{"stake (migrated)", "Stake11111111111111111111111111111111111111", other},
		{"config (migrated)", "Config1111111111111111111111111111111111111", other},
		{"address lookup table (migrated)", "AddressLookupTab1e1111111111111111111111111", other},
		{"secp256r1", "Secp256r1SigVerify1111111111111111111111111", other},
		{"token", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", other},
		{"memo", "MemoSq4gqABAXKb96qnH1TysNcWxMyWCqXgDLGmfcHr", other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := [32]byte(solana.MustPublicKeyFromBase58(c.id))
			tx := fixTx{nsig: 1, hdr: [3]byte{1, 0, 2}, nkeys: 3,
				ixs: []fixIx{{prog: 1, data: []byte{0}}, {prog: 2, data: cbPrice(1_000_000)}}}.
				withKey(1, id).withKey(2, ComputeBudgetProgram)
			if id == ComputeBudgetProgram { // the instruction under test is the price itself
				tx = fixTx{nsig: 1, hdr: [3]byte{1, 0, 1}, nkeys: 2, ixs: []fixIx{cb(cbPrice(1_000_000))}}.
					withKey(1, ComputeBudgetProgram)
			}
			b, r := admitted(t, tx.bytes(), Limits{})
			if r != OK {
				t.Fatal(r)
			}
			want := c.class + builtin
			if id == ComputeBudgetProgram {
				want = builtin
			}
			if b.CUs != want || b.PrioFee != want || b.Fee != 5000+want || b.CUPrice != 1_000_000 {
				t.Fatalf("CUs %d prio %d fee %d price %d, want CUs %d prio %d fee %d", b.CUs, b.PrioFee, b.Fee, b.CUPrice, want, want, 5000+want)
			}
		})
	}

	// Mixed, and the cap: 7 ordinary + 2 builtin instructions would be
	// 1 406 000, capped at 1 400 000.
	mixed := fixTx{nsig: 1, hdr: [3]byte{1, 0, 2}, nkeys: 3}.withKey(2, [32]byte{}) // key 2: system
	for range 7 {
		mixed.ixs = append(mixed.ixs, fixIx{prog: 1})
	}
	mixed.ixs = append(mixed.ixs, fixIx{prog: 2}, fixIx{prog: 2})
	if b, r := admitted(t, mixed.bytes(), Limits{}); r != OK || b.CUs != 1_400_000 {
		t.Fatalf("7 ordinary + 2 system: %v %d, want 1 400 000", r, b.CUs)
	}
	mixed.ixs = mixed.ixs[1:] // 6 × 200 000 + 2 × 3 000
	if b, r := admitted(t, mixed.bytes(), Limits{}); r != OK || b.CUs != 1_206_000 {
		t.Fatalf("6 ordinary + 2 system: %v %d, want 1 206 000", r, b.CUs)
	}
	// A plain SOL transfer: one system instruction, 3 000 CUs, 5 000
	// lamports. With a price of 10 000 micro-lamports: ⌈10 000 × 3 000 /
	// 1e6⌉ = 30.
	transfer := fixTx{nsig: 1, hdr: [3]byte{1, 0, 2}, nkeys: 4,
		ixs: []fixIx{{prog: 2, accs: []byte{0, 1}, data: []byte{2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}}, cb(cbPrice(10_000))}}.
		withKey(2, [32]byte{}).withKey(3, ComputeBudgetProgram)
	transfer.ixs[1].prog = 3
	if b, r := admitted(t, transfer.bytes(), Limits{}); r != OK || b.CUs != 6_000 || b.PrioFee != 60 || b.Fee != 5060 {
		t.Fatalf("transfer with price: %v %+v", r, b)
	}
	transfer.ixs = transfer.ixs[:1]
	if b, r := admitted(t, transfer.bytes(), Limits{}); r != OK || b.CUs != 3_000 || b.Fee != 5000 {
		t.Fatalf("plain transfer: %v %+v", r, b)
	}
}

// TestSecp256r1Signatures checks that secp256r1 precompile signatures
// count in the signature fee (fee/src/lib.rs calculate_signature_fee adds
// num_secp256r1_signatures; signature_details.rs counts data[0]), and
// that its instructions get 200 000 CUs (it is not in the builtin table).
func TestSecp256r1Signatures(t *testing.T) {
	tx := fixTx{nsig: 1, hdr: [3]byte{1, 0, 3}, nkeys: 4,
		ixs: []fixIx{{prog: 1, data: []byte{3, 0}}, {prog: 2, data: []byte{2}}, {prog: 3, data: []byte{1}}, {prog: 1}}}.
		withKey(1, Secp256r1Program).withKey(2, Ed25519Program).withKey(3, Secp256k1Program)
	b, r := admitted(t, tx.bytes(), Limits{})
	if r != OK {
		t.Fatal(r)
	}
	// 1 + 3 + 2 + 1 = 7 signatures; 2 × 200 000 + 2 × 3 000 CUs.
	want := Budget{CUs: 406_000, Signatures: 7, PrecompileSignatures: 6, SigFee: 35_000, Fee: 35_000, HeapBytes: 32 << 10, LoadedAccountsBytes: 64 << 20}
	if b != want {
		t.Fatalf("got  %+v\nwant %+v", b, want)
	}
	// The same in v1.
	tx.v1, tx.hdr = true, [3]byte{1, 0, 3}
	b, r = admitted(t, tx.withConfig(nil, u32p(406_000), u32p(1<<20), nil).bytes(), Limits{})
	if r != OK || b.Signatures != 7 || b.Fee != 35_000 || b.CUs != 406_000 {
		t.Fatalf("v1: %v %+v", r, b)
	}
}

// TestV1Budget checks how v1 transactions are priced
// (runtime-transaction transaction_meta.rs try_into_config and
// compute_unit_price_in_microlamports): the config, not instructions.
func TestV1Budget(t *testing.T) {
	base := v1Tx(3, fixIx{prog: 1, accs: []byte{0, 2}, data: []byte{1}})
	cases := []struct {
		name string
		tx   fixTx
		want Budget
		r    Reject
	}{
		// No config: limit 0, no priority fee, loaded size 0, heap 32 KiB.
		{"no config", base, Budget{Signatures: 1, SigFee: 5000, Fee: 5000, HeapBytes: 32 << 10}, OK},
		// 12 345 lamports over 100 000 CUs: ⌊12 345 × 1e6 / 100 000⌋ =
		// 123 450 micro-lamports per CU; fee 5 000 + 12 345.
		{"priority fee and limit", base.withConfig(u64p(12_345), u32p(100_000), u32p(1<<20), u32p(64<<10)),
			Budget{CUs: 100_000, CUPrice: 123_450, PrioFee: 12_345, Signatures: 1, SigFee: 5000, Fee: 17_345, HeapBytes: 64 << 10, LoadedAccountsBytes: 1 << 20}, OK},
		// A priority fee without a limit: price 0 (division by 0 is 0).
		{"priority fee, no limit", base.withConfig(u64p(7), nil, nil, nil),
			Budget{PrioFee: 7, Signatures: 1, SigFee: 5000, Fee: 5007, HeapBytes: 32 << 10}, OK},
		{"limit capped", base.withConfig(nil, u32p(2_000_000), nil, nil),
			Budget{CUs: 1_400_000, Signatures: 1, SigFee: 5000, Fee: 5000, HeapBytes: 32 << 10}, OK},
		{"loaded size capped", base.withConfig(nil, nil, u32p(math.MaxUint32), nil),
			Budget{Signatures: 1, SigFee: 5000, Fee: 5000, HeapBytes: 32 << 10, LoadedAccountsBytes: 64 << 20}, OK},
		// u64::MAX lamports × 1e6 / 1 does not fit: price 0, as Agave's.
		{"huge priority fee", base.withConfig(u64p(math.MaxUint64), u32p(1), nil, nil),
			Budget{CUs: 1, PrioFee: math.MaxUint64, Signatures: 1, SigFee: 5000, Fee: math.MaxUint64, HeapBytes: 32 << 10}, OK},
		// Compute-budget instructions do not set a v1 transaction's limits.
		{"budget instruction ignored", v1Tx(3, fixIx{prog: 1, data: cbLimit(500_000)}, fixIx{prog: 1, data: cbLimit(1)}).withKey(1, ComputeBudgetProgram),
			Budget{Signatures: 1, SigFee: 5000, Fee: 5000, HeapBytes: 32 << 10}, OK},
		{"heap 33 000", base.withConfig(nil, nil, nil, u32p(33_000)), Budget{}, RejectBudgetHeap},
		{"heap 31 KiB", base.withConfig(nil, nil, nil, u32p(31<<10)), Budget{}, RejectBudgetHeap},
		{"mask bit 5", func() fixTx { x := base; x.mask, x.cfg = 1<<5, []uint32{0}; return x }(), Budget{}, RejectV1Config},
		{"half a priority fee", func() fixTx { x := base; x.mask, x.cfg = 1, []uint32{9}; return x }(), Budget{}, RejectV1Config},
		{"mask before header", func() fixTx { x := base; x.mask, x.cfg, x.hdr = 2, []uint32{9}, [3]byte{1, 1, 0}; return x }(), Budget{}, RejectV1Config},
		{"no signer", func() fixTx { x := base; x.hdr, x.nsig = [3]byte{0, 0, 0}, 0; return x }(), Budget{}, RejectReadonlySigned},
		{"program is the payer", v1Tx(2, fixIx{prog: 0}), Budget{}, RejectProgramFeePayer},
		{"program beyond the addresses", v1Tx(2, fixIx{prog: 2}), Budget{}, RejectProgramIndex},
		{"account beyond the addresses", v1Tx(2, fixIx{prog: 1, accs: []byte{2}}), Budget{}, RejectAccountIndex},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.tx.bytes()
			b, r := admitted(t, data, Limits{})
			if r != c.r {
				t.Fatalf("reject = %v, want %v", r, c.r)
			}
			if r == OK && b != c.want {
				t.Fatalf("got  %+v\nwant %+v", b, c.want)
			}
			if r != OK && r.Parse() {
				t.Fatalf("%v counted as unparsable", r)
			}
			if r == OK {
				var v View
				v.Parse(data)
				if !v.V1() || v.Version().String() != "v1" || v.SignatureOffset() != len(data)-64 ||
					!bytes.Equal(v.Message(data), data[:len(data)-64]) || v.NumInstructions() != len(c.tx.ixs) {
					t.Fatalf("v1 view: %+v", v)
				}
				if re := reencode(&v, data); !bytes.Equal(re, data) {
					t.Fatalf("re-encoding differs")
				}
			}
		})
	}
}

// TestGarbageVersusRefusal checks which reasons mean "no transaction at
// all" (Reject.Parse, penalised) and which refuse a well-formed
// transaction (no penalty).
func TestGarbageVersusRefusal(t *testing.T) {
	v1 := v1Tx(2, fixIx{prog: 1, data: []byte{1, 2}}).withConfig(u64p(5), u32p(1000), nil, nil).bytes()
	cases := []struct {
		name    string
		data    []byte
		lim     Limits
		want    Reject
		garbage bool
	}{
		{"v1 truncated prefix", v1[:41], Limits{}, RejectHeader, true},
		{"v1 version 2", splice(v1, 0, 1, 0x82), Limits{}, RejectVersion, true},
		{"v1 addresses truncated", v1Tx(30).bytes()[:200], Limits{}, RejectAccountKeys, true},
		{"v1 config words truncated", v1[:42+64+4], Limits{}, RejectHeader, true},
		{"v1 payload truncated", v1[:len(v1)-64-1], Limits{}, RejectInstructions, true},
		{"v1 signature truncated", v1[:len(v1)-1], Limits{}, RejectSignatures, true},
		{"v1 trailing byte", append(bytes.Clone(v1), 0), Limits{}, RejectTrailing, true},
		{"v1 instruction header past the end", splice(v1, 40, 41, 200), Limits{}, RejectInstructions, true},
		{"random bytes", bytes.Repeat([]byte{0x37}, 300), Limits{}, RejectSignatures, true},
		{"legacy with prefix 0x81", splice(fixLegacy.bytes(), 65, 65, 0x81), Limits{}, RejectVersion, true},

		{"v1 with no config", v1Tx(2, fixIx{prog: 1}).bytes(), Limits{}, OK, false},
		{"v1 switched off", v1, Limits{NoTxV1: true}, RejectV1Disabled, false},
		{"65 instructions", manyIxs(65).bytes(), Limits{}, RejectInstructionCount, false},
		{"too many locks", lookupTx(40, 40).bytes(), Limits{}, RejectTooManyAccountLocks, false},
		{"invalid budget instruction", cbTx(cb([]byte{9})).bytes(), Limits{}, RejectBudgetData, false},
		{"sanitize failure", fixLegacy.withIxs(fixIx{prog: 0}).bytes(), Limits{}, RejectProgramFeePayer, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, r := admitted(t, c.data, c.lim)
			if r != c.want {
				t.Fatalf("reject = %v, want %v", r, c.want)
			}
			if r.Parse() != c.garbage {
				t.Fatalf("%v: Parse() = %v", r, r.Parse())
			}
		})
	}
	// A mask with unknown bits is refused, not garbage, when the rest of
	// the bytes hold together.
	bad := v1Tx(2, fixIx{prog: 1})
	bad.mask, bad.cfg = 1<<9, []uint32{0}
	if _, r := admitted(t, bad.bytes(), Limits{}); r != RejectV1Config || r.Parse() {
		t.Fatalf("unknown config bit: %v", r)
	}
}

// TestEmptyTransactionRank checks that a transaction with no
// instructions (0 CUs), and a v1 one without a limit, rank as a plain
// transfer of the same fee, not above everything.
func TestEmptyTransactionRank(t *testing.T) {
	txs := map[string][]byte{
		"empty legacy":     legacy1(1).bytes(),
		"only a price 0":   cbTx(cb(cbPrice(0))).bytes(),
		"v1 without limit": v1Tx(2, fixIx{prog: 1}).bytes(),
	}
	transfer := Score(1, 5000, 3000)
	for name, data := range txs {
		b, r := admitted(t, data, Limits{})
		if r != OK {
			t.Fatal(name, r)
		}
		if s := FeePerCU(b.Fee, b.CUs); s > transfer {
			t.Fatalf("%s (%d CUs) scores %v above a plain transfer's %v", name, b.CUs, s, transfer)
		}
	}
}

// TestV1Record checks a v1 transaction through a packet record: the
// record hash covers it, and Info points at its first signature, which is
// where the recently-confirmed check must read it.
func TestV1Record(t *testing.T) {
	data := v1Tx(2, fixIx{prog: 1}).withConfig(u64p(100), u32p(10_000), u32p(1<<20), nil).bytes()
	e := NewEvaluator(3)
	p := packetOf(t, data)
	info, r := e.Evaluate(p)
	if r != OK {
		t.Fatal(r)
	}
	sig := p[info.SigOff : info.SigOff+64]
	if info.Version != V1 || int(info.SigOff) != len(data)-64 || !bytes.Equal(sig, bytes.Repeat([]byte{0xA0}, 64)) {
		t.Fatalf("info %+v", info)
	}
	if info.Budget.Fee != 5100 || info.Budget.CUPrice != 10_000 {
		t.Fatalf("budget %+v", info.Budget)
	}
	if info.Hash != PacketHash(3, p) {
		t.Fatal("hash")
	}
}
