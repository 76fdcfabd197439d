package pack

import (
	"errors"
	"testing"

	"github.com/solqos/qos/score"
)

// Expected costs are worked out by hand from Agave 4.0's rules (see
// CostParams); the 64 MiB default loaded-accounts limit costs
// 2048 pages × 8 = 16 384 units.
func TestEstimateCost(t *testing.T) {
	const defLoaded = 16384
	custom := key(100)
	transfer := append([]byte{2, 0, 0, 0}, make([]byte, 8)...) // 12 bytes of data
	tests := []struct {
		name string
		tx   testTx
		vote bool
		want Cost
	}{
		{
			name: "system transfer without a compute-unit limit (SIMD-0170 builtin default)",
			tx:   testTx{nreq: 1, nrou: 1, keys: []Pubkey{key(1), key(2), systemProgram}, ixs: []testIx{{prog: 2, accs: []byte{0, 1}, data: transfer}}},
			want: Cost{Signature: 720, WriteLock: 600, DataBytes: 3, Programs: 3000, LoadedAccounts: defLoaded},
		},
		{
			name: "custom program without a limit: 200 000 per instruction, compute budget counts as builtin",
			tx: testTx{nreq: 1, nrou: 2, keys: []Pubkey{key(1), score.ComputeBudgetProgram, custom},
				ixs: []testIx{{prog: 1, data: cbPrice(5)}, {prog: 2, data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, {prog: 2}}},
			// data 9 + 8 = 17 bytes → 4; programs 3000 + 2 × 200 000
			want: Cost{Signature: 720, WriteLock: 300, DataBytes: 4, Programs: 403_000, LoadedAccounts: defLoaded},
		},
		{
			name: "requested limit and loaded-accounts size",
			tx: testTx{nreq: 2, nrou: 2, keys: []Pubkey{key(1), key(2), key(3), score.ComputeBudgetProgram, custom},
				ixs: []testIx{{prog: 3, data: cbLimit(50_000)}, {prog: 3, data: cbLoaded(100_000)}, {prog: 4, accs: []byte{2}}}},
			// 2 signatures; writable: 2 signers + key(3); data 5+5 = 10 → 2;
			// loaded ⌈100000/32768⌉ = 4 pages × 8
			want: Cost{Signature: 1440, WriteLock: 900, DataBytes: 2, Programs: 50_000, LoadedAccounts: 32},
		},
		{
			name: "precompile signatures: ed25519 ×2, secp256k1 ×1, secp256r1 ×3",
			tx: testTx{nreq: 1, nrou: 3, keys: []Pubkey{key(1), score.Ed25519Program, score.Secp256k1Program, secp256r1Program},
				ixs: []testIx{{prog: 1, data: []byte{2, 0}}, {prog: 2, data: []byte{1}}, {prog: 3, data: []byte{3, 0, 0, 0}}}},
			// 720 + 2×2400 + 6690 + 3×4800; data 7 → 1; programs 2×3000 + 200 000 (r1 is no builtin)
			want: Cost{Signature: 720 + 4800 + 6690 + 14400, WriteLock: 300, DataBytes: 1, Programs: 206_000, LoadedAccounts: defLoaded},
		},
		{
			name: "limit above 1.4 M is capped; v0 writable lookups count as write locks",
			tx: testTx{v0: true, nreq: 1, nrou: 2, keys: []Pubkey{key(1), score.ComputeBudgetProgram, custom},
				ixs:  []testIx{{prog: 1, data: cbLimit(2_000_000)}, {prog: 2, accs: []byte{3, 4, 5}}},
				luts: []testLookup{{table: key(9), writable: []byte{0, 1}, readonly: []byte{2}}}},
			want: Cost{Signature: 720, WriteLock: 900, DataBytes: 1, Programs: 1_400_000, LoadedAccounts: defLoaded},
		},
		{
			name: "simple vote: fixed 3428",
			tx:   testTx{nreq: 1, nrou: 1, keys: []Pubkey{key(1), key(2), voteProgram}, ixs: []testIx{{prog: 2, accs: []byte{1, 0}, data: make([]byte, 100)}}},
			vote: true,
			want: Cost{Vote: 3428},
		},
	}
	p := DefaultCostParams()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, data, b := tt.tx.parse(t)
			got, err := EstimateCost(v, data, b, tt.vote, p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("EstimateCost = %+v (sum %d)\nwant          %+v (sum %d)", got, got.Sum(), tt.want, tt.want.Sum())
			}
		})
	}
}

func TestEstimateCostErrorsAndSaturation(t *testing.T) {
	var v score.View
	if _, err := EstimateCost(&v, []byte{1}, score.Budget{}, false, DefaultCostParams()); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("unparsed view: %v, want ErrNoTransaction", err)
	}
	if s := (Cost{Signature: ^uint64(0), Programs: 5}).Sum(); s != ^uint64(0) {
		t.Errorf("Sum saturates: got %d", s)
	}
	// Zero divisors do not panic.
	tx := testTx{nreq: 1, nrou: 1, keys: []Pubkey{key(1), systemProgram}, ixs: []testIx{{prog: 1, data: []byte{1}}}}
	vw, data, b := tx.parse(t)
	if _, err := EstimateCost(vw, data, b, false, CostParams{}); err != nil {
		t.Errorf("zero params: %v", err)
	}
}
