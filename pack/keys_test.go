package pack

import (
	"errors"
	"testing"

	"github.com/solqos/qos/score"
)

func TestDecodeBase58Key(t *testing.T) {
	tests := []struct {
		in   string
		want Pubkey
		ok   bool
	}{
		{"ComputeBudget111111111111111111111111111111", score.ComputeBudgetProgram, true},
		{"Ed25519SigVerify111111111111111111111111111", score.Ed25519Program, true},
		{"KeccakSecp256k11111111111111111111111111111", score.Secp256k1Program, true},
		{"11111111111111111111111111111111", Pubkey{}, true},
		{"0OIl", Pubkey{}, false}, // not in the alphabet
		{"1111", Pubkey{}, false}, // 4 bytes, not 32
		{"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", Pubkey{}, false}, // > 32 bytes
	}
	for _, tt := range tests {
		got, ok := decodeBase58Key(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("decodeBase58Key(%q) = %x, %v; want %x, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if len(reservedKeys) != 30 {
		t.Errorf("reserved keys: %d, want 30 (agave 4.0's active list less secp256r1)", len(reservedKeys))
	}
}

// keysOf returns the writable and readonly keys of k.
func keysOf(k *Keys) (w, r []Pubkey) {
	for i := range k.Len() {
		if k.Writable(i) {
			w = append(w, *k.Key(i))
		} else {
			r = append(r, *k.Key(i))
		}
	}
	return w, r
}

func equalKeys(a, b []Pubkey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestKeysFromView(t *testing.T) {
	prog := key(100)
	k := func(n uint64) Pubkey { return key(n) }
	tests := []struct {
		name      string
		tx        testTx
		resW      []Pubkey
		resR      []Pubkey
		wantW     []Pubkey
		wantR     []Pubkey
		wantError error
	}{
		{
			name: "header rules: signed writable, signed readonly, unsigned writable, unsigned readonly",
			// keys: 0 payer (s,w), 1 (s,w), 2 (s,ro), 3 (w), 4 (w), 5 prog (ro)
			tx:    testTx{nreq: 3, nros: 1, nrou: 1, keys: []Pubkey{k(1), k(2), k(3), k(4), k(5), prog}, ixs: []testIx{{prog: 5, accs: []byte{1, 3}}}},
			wantW: []Pubkey{k(1), k(2), k(4), k(5)},
			wantR: []Pubkey{k(3), prog},
		},
		{
			name: "a writable key called as a program is demoted",
			// prog is at index 1, marked writable (nrou 0)
			tx:    testTx{nreq: 1, keys: []Pubkey{k(1), prog, k(3)}, ixs: []testIx{{prog: 1, accs: []byte{2}}}},
			wantW: []Pubkey{k(1), k(3)},
			wantR: []Pubkey{prog},
		},
		{
			name:  "no demotion of programs when the upgradeable loader is present",
			tx:    testTx{nreq: 1, nrou: 1, keys: []Pubkey{k(1), prog, bpfLoaderUpgradeable}, ixs: []testIx{{prog: 1}}},
			wantW: []Pubkey{k(1), prog},
			wantR: []Pubkey{bpfLoaderUpgradeable},
		},
		{
			name:  "reserved keys are demoted (system program and a sysvar marked writable)",
			tx:    testTx{nreq: 1, nrou: 1, keys: []Pubkey{k(1), systemProgram, mustKey("SysvarC1ock11111111111111111111111111111111"), prog}, ixs: []testIx{{prog: 3}}},
			wantW: []Pubkey{k(1)},
			wantR: []Pubkey{systemProgram, mustKey("SysvarC1ock11111111111111111111111111111111"), prog},
		},
		{
			name: "resolved lookup keys: writable then readonly; reserved ones demoted",
			tx: testTx{v0: true, nreq: 1, nrou: 1, keys: []Pubkey{k(1), prog}, ixs: []testIx{{prog: 1, accs: []byte{2, 3, 4}}},
				luts: []testLookup{{table: k(50), writable: []byte{0, 1}, readonly: []byte{2}}}},
			resW:  []Pubkey{k(7), systemProgram},
			resR:  []Pubkey{k(8)},
			wantW: []Pubkey{k(1), k(7)},
			wantR: []Pubkey{prog, systemProgram, k(8)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, data, _ := tt.tx.parse(t)
			var ks Keys
			err := ks.FromView(v, data, flat(tt.resW), flat(tt.resR))
			if !errors.Is(err, tt.wantError) {
				t.Fatalf("FromView error %v, want %v", err, tt.wantError)
			}
			w, r := keysOf(&ks)
			if !equalKeys(w, tt.wantW) || !equalKeys(r, tt.wantR) {
				t.Errorf("writable %x\nreadonly %x\nwant writable %x\nreadonly %x", w, r, tt.wantW, tt.wantR)
			}
		})
	}
}

func TestKeysFromViewErrors(t *testing.T) {
	tx := testTx{nreq: 1, nrou: 1, keys: []Pubkey{key(1), key(2)}, ixs: []testIx{{prog: 1}}}
	v, data, _ := tx.parse(t)
	var ks Keys
	// 2 static + 127 looked up > 128, whether resolved or not.
	idx := make([]byte, 127)
	for i := range idx {
		idx[i] = byte(i)
	}
	big := testTx{v0: true, nreq: 1, nrou: 1, keys: []Pubkey{key(1), key(2)}, ixs: []testIx{{prog: 1}},
		luts: []testLookup{{table: key(50), writable: idx}}}
	bv, bdata, _ := big.parse(t)
	res := make([]byte, 127*32)
	for _, r := range [][]byte{res, nil} {
		if err := ks.FromView(bv, bdata, r, nil); !errors.Is(err, ErrTooManyLocks) || !ks.Overflow() {
			t.Errorf("FromView with 129 keys (%d resolved): %v, overflow %v; want ErrTooManyLocks", len(r)/32, err, ks.Overflow())
		}
	}
	// Resolved keys that do not match the lookups: the lock set is unknown.
	lut := testTx{v0: true, nreq: 1, nrou: 1, keys: []Pubkey{key(1), key(2)}, ixs: []testIx{{prog: 1, accs: []byte{2, 3}}},
		luts: []testLookup{{table: key(50), writable: []byte{0}, readonly: []byte{1}}}}
	lv, ldata, _ := lut.parse(t)
	k7, k8 := key(7), key(8)
	for _, tc := range []struct {
		name string
		w, r []byte
	}{
		{"none", nil, nil},
		{"writable only", k7[:], nil},
		{"readonly only", nil, k8[:]},
		{"swapped counts", append(k7[:], k8[:]...), nil},
		{"a partial key", k7[:31], k8[:]},
	} {
		if err := ks.FromView(lv, ldata, tc.w, tc.r); !errors.Is(err, ErrUnresolvedLookups) || ks.Len() != 0 {
			t.Errorf("FromView with %s resolved: %v, %d keys; want ErrUnresolvedLookups and none", tc.name, err, ks.Len())
		}
	}
	if err := ks.FromView(lv, ldata, k7[:], k8[:]); err != nil || ks.Len() != 4 {
		t.Errorf("FromView with both resolved: %v, %d keys; want 4", err, ks.Len())
	}
	// Resolved keys for a transaction without lookups are refused too.
	if err := ks.FromView(v, data, k7[:], nil); !errors.Is(err, ErrUnresolvedLookups) {
		t.Errorf("FromView of a legacy transaction with a resolved key: %v, want ErrUnresolvedLookups", err)
	}
	if err := ks.FromView(v, data[:len(data)-1], nil, nil); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("FromView on other bytes: %v, want ErrNoTransaction", err)
	}
	var empty score.View
	if err := ks.FromView(&empty, data, nil, nil); !errors.Is(err, ErrNoTransaction) {
		t.Errorf("FromView on a never-parsed view: %v, want ErrNoTransaction", err)
	}
	// AddWritable after AddReadonly keeps writable keys first.
	ks.Reset()
	a, b, c := key(1), key(2), key(3)
	ks.AddReadonly(&a)
	ks.AddWritable(&b)
	ks.AddWritable(&c)
	w, r := keysOf(&ks)
	if !equalKeys(w, []Pubkey{b, c}) || !equalKeys(r, []Pubkey{a}) {
		t.Errorf("mixed adds: writable %x readonly %x", w, r)
	}
}

func flat(keys []Pubkey) []byte {
	var b []byte
	for _, k := range keys {
		b = append(b, k[:]...)
	}
	return b
}
