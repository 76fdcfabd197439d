package score

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// pcTx returns a valid legacy transaction whose keys are: 0 payer, 1
// compute budget, 2 an ordinary program, 3 ed25519, 4 secp256k1.
func pcTx(ixs ...fixIx) fixTx {
	t := fixTx{nsig: 1, hdr: [3]byte{1, 0, 4}, nkeys: 5, ixs: ixs}
	return t.withKey(1, ComputeBudgetProgram).withKey(3, Ed25519Program).withKey(4, Secp256k1Program)
}

func ed(data ...byte) fixIx   { return fixIx{prog: 3, data: data} }
func secp(data ...byte) fixIx { return fixIx{prog: 4, data: data} }

func withTail(b []byte, extra ...byte) []byte { return append(append([]byte{}, b...), extra...) }

// TestBudget covers each compute-budget combination and the edge cases
// 12–15 of docs/solana-wire.md §6, with current Agave's results: the
// default limit is SIMD-0170's (3 000 per builtin instruction, the
// compute-budget, ed25519 and secp256k1 programs included; 200 000 per
// other instruction; compute_budget_instruction_details.rs
// calculate_default_compute_unit_limit), the priority fee
// ⌈price × limit / 1e6⌉ (compute_budget_limits.rs get_prioritization_fee)
// and the fee 5 000 × signatures + priority fee (fee/src/lib.rs).
func TestBudget(t *testing.T) {
	const max64 = math.MaxUint64
	type want struct {
		cus, price, prio, fee, sigs uint64
		heap, loaded                uint32
	}
	def := func(cus uint64) want {
		return want{cus: cus, fee: 5000, sigs: 1, heap: 32 << 10, loaded: 64 << 20}
	}
	with := func(w want, f func(*want)) want { f(&w); return w }
	cases := []struct {
		name string
		tx   fixTx
		want want
		r    Reject
	}{
		// Default limit: 200 000 per instruction of an ordinary program,
		// 3 000 per builtin one, capped at 1 400 000.
		{"no instructions", cbTx(), def(0), OK},
		{"one instruction", cbTx(other()), def(200_000), OK},
		{"seven instructions", cbTx(repeat(7)...), def(1_400_000), OK},
		{"eight instructions capped", cbTx(repeat(8)...), def(1_400_000), OK},
		{"compute-budget instructions count 3 000 each", cbTx(cb(cbPrice(0)), other(), cb(cbHeap(64<<10))),
			with(def(2*3_000+200_000), func(w *want) { w.heap = 64 << 10 }), OK},
		{"only a price: 3 000, not 0", cbTx(cb(cbPrice(1_000_000))),
			want{cus: 3_000, price: 1_000_000, prio: 3_000, fee: 8_000, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},

		// SetComputeUnitLimit.
		{"limit", cbTx(cb(cbLimit(300_000)), other()), def(300_000), OK},
		{"limit above max capped", cbTx(cb(cbLimit(2_000_000)), other()), def(1_400_000), OK},
		{"limit max u32 capped", cbTx(cb(cbLimit(math.MaxUint32))), def(1_400_000), OK},
		{"limit zero", cbTx(other(), cb(cbLimit(0))), def(0), OK},
		{"case 14: limit with 6-byte data, trailing byte ignored", cbTx(cb(withTail(cbLimit(300_000), 0xEE)), other()), def(300_000), OK},

		// SetComputeUnitPrice and the prioritization fee (rounded up).
		// 3 000 + 2 × 200 000 = 403 000; ⌈1000 × 403 000 / 1e6⌉ = 403.
		{"price with default limit", cbTx(cb(cbPrice(1000)), other(), other()),
			want{cus: 403_000, price: 1000, prio: 403, fee: 5403, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"case 13: price 1 limit 200000 rounds up", cbTx(cb(cbPrice(1)), cb(cbLimit(200_000))),
			want{cus: 200_000, price: 1, prio: 1, fee: 5001, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"prio exact", cbTx(cb(cbLimit(200_000)), cb(cbPrice(5))),
			want{cus: 200_000, price: 5, prio: 1, fee: 5001, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"prio just below a lamport", cbTx(cb(cbLimit(333_333)), cb(cbPrice(3))),
			want{cus: 333_333, price: 3, prio: 1, fee: 5001, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"prio just above a lamport", cbTx(cb(cbLimit(333_334)), cb(cbPrice(3))),
			want{cus: 333_334, price: 3, prio: 2, fee: 5002, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"price zero", cbTx(cb(cbPrice(0)), other()), def(203_000), OK},
		{"price with limit zero", cbTx(cb(cbPrice(1_000_000)), cb(cbLimit(0)), other()),
			want{cus: 0, price: 1_000_000, fee: 5000, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"big price", cbTx(cb(cbPrice(1_000_000)), cb(cbLimit(1_400_000))),
			want{cus: 1_400_000, price: 1_000_000, prio: 1_400_000, fee: 1_405_000, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"max price saturates", cbTx(cb(cbPrice(max64)), cb(cbLimit(1_400_000))),
			want{cus: 1_400_000, price: max64, prio: max64, fee: max64, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"price with 10-byte data", cbTx(cb(withTail(cbPrice(7), 1)), cb(cbLimit(1_000_000))),
			want{cus: 1_000_000, price: 7, prio: 7, fee: 5007, sigs: 1, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"all four", cbTx(cb(cbHeap(256<<10)), cb(cbLimit(100_000)), cb(cbPrice(20)), cb(cbLoaded(1<<20)), other()),
			want{cus: 100_000, price: 20, prio: 2, fee: 5002, sigs: 1, heap: 256 << 10, loaded: 1 << 20}, OK},

		// RequestHeapFrame: 32 KiB ≤ v ≤ 256 KiB, multiple of 1 KiB.
		{"heap min", cbTx(cb(cbHeap(32 << 10))), def(3_000), OK},
		{"heap max", cbTx(cb(cbHeap(256 << 10))), with(def(3_000), func(w *want) { w.heap = 256 << 10 }), OK},
		{"case 15: heap 33000", cbTx(cb(cbHeap(33000))), want{}, RejectBudgetHeap},
		{"heap 31 KiB", cbTx(cb(cbHeap(31 << 10))), want{}, RejectBudgetHeap},
		{"heap 257 KiB", cbTx(cb(cbHeap(257 << 10))), want{}, RejectBudgetHeap},
		{"heap zero", cbTx(cb(cbHeap(0))), want{}, RejectBudgetHeap},

		// SetLoadedAccountsDataSizeLimit.
		{"loaded 1", cbTx(cb(cbLoaded(1))), with(def(3_000), func(w *want) { w.loaded = 1 }), OK},
		{"loaded above max capped", cbTx(cb(cbLoaded(100 << 20))), def(3_000), OK},
		{"loaded zero", cbTx(cb(cbLoaded(0)), other()), want{}, RejectBudgetLoadedSize},

		// Duplicates.
		{"case 12: two prices", cbTx(cb(cbPrice(1)), cb(cbPrice(2))), want{}, RejectBudgetDuplicate},
		{"two limits", cbTx(cb(cbLimit(1)), other(), cb(cbLimit(1))), want{}, RejectBudgetDuplicate},
		{"two heaps", cbTx(cb(cbHeap(32<<10)), cb(cbHeap(32<<10))), want{}, RejectBudgetDuplicate},
		{"two loaded", cbTx(cb(cbLoaded(1)), cb(cbLoaded(2))), want{}, RejectBudgetDuplicate},

		// Invalid data.
		{"empty data", cbTx(cb(nil)), want{}, RejectBudgetData},
		{"unused discriminant 0", cbTx(cb([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0})), want{}, RejectBudgetData},
		{"unknown discriminant 5", cbTx(cb([]byte{5, 1, 0, 0, 0})), want{}, RejectBudgetData},
		{"unknown discriminant 255", cbTx(cb([]byte{255})), want{}, RejectBudgetData},
		{"short limit", cbTx(cb(cbLimit(1)[:4])), want{}, RejectBudgetData},
		{"short price", cbTx(cb(cbPrice(1)[:8])), want{}, RejectBudgetData},
		{"short heap", cbTx(cb(cbHeap(32 << 10)[:1])), want{}, RejectBudgetData},
		{"short loaded", cbTx(cb(cbLoaded(1)[:3])), want{}, RejectBudgetData},

		// Order: the scan stops at its first failure; heap, then loaded
		// size, are checked after it.
		{"invalid before duplicate", cbTx(cb(cbPrice(1)), cb([]byte{9}), cb(cbPrice(1))), want{}, RejectBudgetData},
		{"duplicate before invalid", cbTx(cb(cbPrice(1)), cb(cbPrice(1)), cb([]byte{9})), want{}, RejectBudgetDuplicate},
		{"short repeat is invalid, not duplicate", cbTx(cb(cbPrice(1)), cb(cbPrice(1)[:3])), want{}, RejectBudgetData},
		{"duplicate before bad heap", cbTx(cb(cbHeap(1)), cb(cbLimit(1)), cb(cbLimit(1))), want{}, RejectBudgetDuplicate},
		{"bad heap before loaded zero", cbTx(cb(cbLoaded(0)), cb(cbHeap(1))), want{}, RejectBudgetHeap},
		{"sanitize before budget", func() fixTx { x := cbTx(cb(nil)); x.hdr[1] = 1; return x }(), want{}, RejectReadonlySigned},

		// Precompile signatures (data[0] of ed25519 and secp256k1
		// instructions) count toward the signature fee; both programs are
		// builtins, 3 000 CUs per instruction.
		{"ed25519 two", pcTx(ed(2, 0)), want{cus: 3_000, fee: 15000, sigs: 3, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"secp256k1 five", pcTx(secp(5)), want{cus: 3_000, fee: 30000, sigs: 6, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"both and empty", pcTx(ed(1), secp(1), ed(), secp()),
			want{cus: 12_000, fee: 15000, sigs: 3, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"precompile 255 with price", pcTx(ed(255), cb(cbPrice(1_000_000)), cb(cbLimit(1000))),
			want{cus: 1000, price: 1_000_000, prio: 1000, fee: 256*5000 + 1000, sigs: 256, heap: 32 << 10, loaded: 64 << 20}, OK},
		{"two signers", fixTx{nsig: 2, hdr: [3]byte{2, 0, 1}, nkeys: 3, ixs: []fixIx{{prog: 2}}},
			want{cus: 200_000, fee: 10000, sigs: 2, heap: 32 << 10, loaded: 64 << 20}, OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := c.tx.bytes()
			var v View
			r := v.Parse(data)
			var b Budget
			if r == OK {
				b, r = v.Budget(data, DefaultFeeParams())
			}
			if r != c.r {
				t.Fatalf("reject = %v, want %v", r, c.r)
			}
			if r != OK {
				if b != (Budget{}) {
					t.Fatalf("budget %+v with reject %v", b, r)
				}
				return
			}
			w := c.want
			got := want{b.CUs, b.CUPrice, b.PrioFee, b.Fee, b.Signatures, b.HeapBytes, b.LoadedAccountsBytes}
			if got != w {
				t.Fatalf("got  %+v\nwant %+v", got, w)
			}
			if b.SigFee != satMul(w.sigs, 5000) {
				t.Fatalf("sig fee %d", b.SigFee)
			}
			// Through Evaluate too.
			var p = packetOf(t, data)
			e := NewEvaluator(1)
			info, r := e.Evaluate(p)
			if r != OK || info.Budget != b {
				t.Fatalf("Evaluate = %+v, %v", info.Budget, r)
			}
		})
	}
}

func TestBudgetParams(t *testing.T) {
	p := FeeParams{
		LamportsPerSignature:      10,
		MaxComputeUnitLimit:       1000,
		DefaultInstructionLimit:   300,
		MicroLamportsPerLamport:   100,
		MinHeapFrameBytes:         10,
		MaxHeapFrameBytes:         20,
		HeapFrameGranularity:      5,
		MaxLoadedAccountsDataSize: 7,
	}
	f := func(tx fixTx, wantCUs, wantFee uint64, wantR Reject) {
		t.Helper()
		data := tx.bytes()
		var v View
		if r := v.Parse(data); r != OK {
			t.Fatal(r)
		}
		b, r := v.Budget(data, p)
		if r != wantR || (r == OK && (b.CUs != wantCUs || b.Fee != wantFee)) {
			t.Fatalf("got %d CUs, fee %d, %v; want %d, %d, %v", b.CUs, b.Fee, r, wantCUs, wantFee, wantR)
		}
	}
	f(cbTx(other(), other()), 600, 10, OK)
	f(cbTx(repeat(4)...), 1000, 10, OK)
	f(cbTx(cb(cbLimit(999)), cb(cbPrice(1))), 999, 10+10, OK) // ⌈999/100⌉
	f(cbTx(cb(cbHeap(15))), 0, 10, OK)
	f(cbTx(cb(cbHeap(16))), 0, 0, RejectBudgetHeap)
	f(cbTx(cb(cbHeap(25))), 0, 0, RejectBudgetHeap)
	// Zero divisors do not panic.
	p.HeapFrameGranularity, p.MicroLamportsPerLamport = 0, 0
	f(cbTx(cb(cbHeap(11)), cb(cbLimit(3)), cb(cbPrice(2))), 3, 10+6, OK)
}

func TestPrioritizationFee(t *testing.T) {
	const m = math.MaxUint64
	f := func(price, limit, want uint64) {
		t.Helper()
		if got := PrioritizationFee(price, limit, 1_000_000); got != want {
			t.Fatalf("PrioritizationFee(%d, %d) = %d, want %d", price, limit, got, want)
		}
	}
	f(0, 1_400_000, 0)
	f(1, 0, 0)
	f(1, 1, 1)
	f(1, 1_000_000, 1)
	f(1, 1_000_001, 2)
	f(m, 1_000_000, m) // exactly fits
	f(m, 1_000_001, m) // saturates
	f(m, m, m)         // saturates
	f(m/1_000_000, 1_000_000, m/1_000_000)
	// Against math/big on random values.
	rng := rand.New(rand.NewPCG(1, 2))
	mil := big.NewInt(1_000_000)
	for range 100_000 {
		price, limit := rng.Uint64()>>rng.IntN(64), rng.Uint64()>>rng.IntN(64)
		x := new(big.Int).Mul(new(big.Int).SetUint64(price), new(big.Int).SetUint64(limit))
		x.Add(x, big.NewInt(999_999)).Div(x, mil)
		want := uint64(m)
		if x.IsUint64() {
			want = x.Uint64()
		}
		if got := PrioritizationFee(price, limit, 1_000_000); got != want {
			t.Fatalf("PrioritizationFee(%d, %d) = %d, want %d", price, limit, got, want)
		}
	}
}

func TestProgramIDs(t *testing.T) {
	// The ids' bytes are checked against the base58 names in
	// solana_test.go; here, that classification needs the whole key.
	ids := append([][32]byte{Secp256r1Program}, BuiltinPrograms[:]...)
	for _, id := range ids {
		if programOf(id[:]) == progOther {
			t.Fatalf("%x not recognised", id)
		}
		k := id
		k[31] ^= 1
		if programOf(k[:]) != progOther {
			t.Fatalf("%x recognised", k)
		}
		if programOf(id[:31]) != progOther {
			t.Fatal("short key recognised")
		}
	}
}
