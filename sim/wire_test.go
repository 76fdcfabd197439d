package sim

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	solana "github.com/gagliardetto/solana-go"

	"github.com/solqos/qos/channels"
	"github.com/solqos/qos/score"
)

// testTx encodes one transaction with the given fields and returns its
// bytes and layout.
func testTx(t testing.TB, v0 bool, limit uint32, price uint64, agent uint16, seq uint64, produced int64) ([]byte, layout, uint64) {
	t.Helper()
	var payer, bh, lut [32]byte
	for i := range payer {
		payer[i], bh[i], lut[i] = byte(i+1), byte(2*i+3), byte(3*i+5)
	}
	data, l := appendTx(nil, &payer, &bh, &lut, v0)
	binary.LittleEndian.PutUint32(data[l.limit:], limit)
	binary.LittleEndian.PutUint64(data[l.price:], price)
	putMemo(data, l.memo, agent, 0, seq, produced)
	secret := secretOf(payer[:])
	var sg signer
	sg.sign(secret, data[l.msg:], data[1:65])
	return data, l, secret
}

// TestEncodeSolanaGo decodes our encoding with gagliardetto/solana-go,
// checks every field and re-encodes it to the same bytes: our bytes are
// valid Solana wire format.
func TestEncodeSolanaGo(t *testing.T) {
	for _, v0 := range []bool{false, true} {
		data, _, _ := testTx(t, v0, 123_456, 7_890_123, 3, 42, 1_000_000)
		tx, err := solana.TransactionFromBytes(data)
		if err != nil {
			t.Fatalf("v0=%v: solana-go rejects our transaction: %v", v0, err)
		}
		m := &tx.Message
		if got := m.IsVersioned(); got != v0 {
			t.Errorf("v0=%v: IsVersioned = %v", v0, got)
		}
		if len(tx.Signatures) != 1 || !bytes.Equal(tx.Signatures[0][:], data[1:65]) {
			t.Errorf("v0=%v: signatures %v", v0, tx.Signatures)
		}
		if m.Header.NumRequiredSignatures != 1 || m.Header.NumReadonlySignedAccounts != 0 || m.Header.NumReadonlyUnsignedAccounts != 2 {
			t.Errorf("v0=%v: header %+v", v0, m.Header)
		}
		if len(m.AccountKeys) != 3 || m.AccountKeys[1] != solana.ComputeBudget || [32]byte(m.AccountKeys[2]) != attributionID {
			t.Errorf("v0=%v: keys %v", v0, m.AccountKeys)
		}
		if len(m.Instructions) != 3 {
			t.Fatalf("v0=%v: %d instructions", v0, len(m.Instructions))
		}
		lim := m.Instructions[0].Data
		if lim[0] != 2 || binary.LittleEndian.Uint32(lim[1:]) != 123_456 {
			t.Errorf("v0=%v: limit instruction %x", v0, []byte(lim))
		}
		pr := m.Instructions[1].Data
		if pr[0] != 3 || binary.LittleEndian.Uint64(pr[1:]) != 7_890_123 {
			t.Errorf("v0=%v: price instruction %x", v0, []byte(pr))
		}
		memo := m.Instructions[2].Data
		if len(memo) != memoLen || binary.LittleEndian.Uint16(memo[4:]) != 3 || binary.LittleEndian.Uint64(memo[8:]) != 42 ||
			binary.LittleEndian.Uint64(memo[16:]) != 1_000_000 {
			t.Errorf("v0=%v: attribution data %x", v0, []byte(memo))
		}
		if v0 {
			lk := m.GetAddressTableLookups()
			if len(lk) != 1 || len(lk[0].WritableIndexes) != 1 || len(lk[0].ReadonlyIndexes) != 0 {
				t.Errorf("lookups %+v", lk)
			}
			if acc := m.Instructions[2].Accounts; len(acc) != 2 || acc[1] != 3 {
				t.Errorf("attribution accounts %v", acc)
			}
		}
		again, err := tx.MarshalBinary()
		if err != nil {
			t.Fatalf("v0=%v: re-encode: %v", v0, err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("v0=%v: re-encoded bytes differ:\n ours %x\n them %x", v0, data, again)
		}
	}
}

// TestEncodeScore checks that the sidecar's own parser accepts our
// transactions and computes the same fee and CUs as we do.
func TestEncodeScore(t *testing.T) {
	f := func(v0 bool, limit uint32, price uint64) {
		t.Helper()
		data, _, _ := testTx(t, v0, limit, price, 1, 2, 3)
		var p channels.Packet
		p.SetData(data)
		p.SetAddr(netip.MustParseAddr("10.0.0.1"))
		ev := score.NewEvaluator(7)
		info, rej := ev.Evaluate(&p)
		if rej != score.OK {
			t.Fatalf("v0=%v limit=%d price=%d: score rejects: %v", v0, limit, price, rej)
		}
		var d decoded
		if !decodeTx(data, &d) {
			t.Fatalf("decodeTx rejects our own encoding")
		}
		if info.Budget.Fee != d.fee() || info.Budget.CUs != uint64(d.cus()) || info.Budget.CUPrice != price {
			t.Errorf("v0=%v limit=%d price=%d: score budget %+v, ours fee %d cus %d", v0, limit, price, info.Budget, d.fee(), d.cus())
		}
	}
	f(false, 200_000, 1) // prio ⌈0.2⌉ = 1
	f(true, 1_400_000, 1_000_000)
	f(false, 5_000_000, 10) // limit capped at 1.4M
	f(true, 0, 123)         // zero limit
	f(false, 77_777, 9_999_999_999)
}

func TestTxFee(t *testing.T) {
	f := func(nsig int, limit uint32, price, want uint64) {
		t.Helper()
		if got := txFee(nsig, limit, price); got != want {
			t.Errorf("txFee(%d, %d, %d) = %d, want %d", nsig, limit, price, got, want)
		}
	}
	f(1, 0, 0, 5000)
	f(1, 200_000, 1, 5001) // ceiling
	f(2, 1_000_000, 1_000_000, 10_000+1_000_000)
	f(1, 2_000_000, 1_000_000, 5000+1_400_000) // limit capped
	f(1, 1_400_000, ^uint64(0), ^uint64(0))    // saturates
}

// TestDecodeTx checks the fields decodeTx reads and that it rejects every
// unparsable variant the generator makes, and a few more.
func TestDecodeTx(t *testing.T) {
	for _, v0 := range []bool{false, true} {
		data, l, _ := testTx(t, v0, 50_000, 1234, 9, 77, -5)
		var d decoded
		if !decodeTx(data, &d) {
			t.Fatalf("v0=%v: rejected", v0)
		}
		want := decoded{nsig: 1, msg: 65, v0: v0, limit: 50_000, price: 1234, hasLimit: true, hasPrice: true, hasMemo: true, agent: 9, seq: 77, produced: -5}
		if d != want {
			t.Errorf("v0=%v: decoded %+v, want %+v", v0, d, want)
		}
		if l.n != len(data) {
			t.Errorf("layout n %d, len %d", l.n, len(data))
		}
		bad := map[string][]byte{
			"empty":        {},
			"no sigs":      append([]byte{0}, data[1:]...),
			"13 sigs":      append([]byte{13}, data[1:]...),
			"trailing":     append(append([]byte{}, data...), 0),
			"truncated 1":  data[:len(data)-1],
			"truncated 7":  data[:len(data)-7],
			"version 0x81": func() []byte { b := append([]byte{}, data...); b[65] = 0x81; return b }(),
		}
		for name, b := range bad {
			if decodeTx(b, &d) {
				t.Errorf("v0=%v: %s accepted", v0, name)
			}
		}
	}
}

// TestVerify checks the mock sigverify: good signatures pass, and any
// change to the message, the signature or the key fails, as does the
// bad-signature agents' secret.
func TestVerify(t *testing.T) {
	data, l, secret := testTx(t, true, 1, 2, 3, 4, 5)
	var sg signer
	if !sg.verify(data) {
		t.Fatal("good signature rejected")
	}
	flip := func(name string, i int) {
		t.Helper()
		b := append([]byte{}, data...)
		b[i] ^= 0x10
		if sg.verify(b) {
			t.Errorf("%s (byte %d flipped) accepted", name, i)
		}
	}
	flip("signature", 1)
	flip("signature end", 64)
	flip("payer key", l.msg+5)
	flip("price", l.price)
	flip("attribution", l.memo+10)
	flip("last byte", len(data)-1)
	b := append([]byte{}, data...)
	sg.sign(secret^badSecret, b[l.msg:], b[1:65])
	if sg.verify(b) {
		t.Error("bad secret accepted")
	}
	for _, n := range []int{0, 1, 64, 65, 66, 69, 100} {
		if sg.verify(data[:n]) {
			t.Errorf("truncated to %d accepted", n)
		}
	}
	// Two signatures, header claims one.
	two := append([]byte{2}, data[1:65]...)
	two = append(two, data[1:]...)
	if sg.verify(two) {
		t.Error("signature count mismatch accepted")
	}
}

// FuzzDecodeTx: decodeTx and verify never panic; an accepted transaction
// ends exactly at the data's end and has its message inside the data.
func FuzzDecodeTx(f *testing.F) {
	legacy, _, _ := testTx(f, false, 1, 2, 3, 4, 5)
	v0, _, _ := testTx(f, true, 1, 2, 3, 4, 5)
	f.Add(legacy)                                // our legacy encoding
	f.Add(v0)                                    // our v0 encoding with one lookup
	f.Add([]byte{})                              // empty
	f.Add([]byte{0})                             // no signatures
	f.Add(append([]byte{}, legacy[:100]...))     // truncated inside the keys
	f.Add(append(append([]byte{}, v0...), 1, 2)) // trailing bytes
	f.Add([]byte{1, 0xff, 0x81, 0x80})           // bad version byte after a short signature
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoded
		ok := decodeTx(b, &d)
		var sg signer
		_ = sg.verify(b)
		if ok && (d.msg >= len(b) || d.nsig < 1) {
			t.Fatalf("accepted with msg %d of %d, nsig %d", d.msg, len(b), d.nsig)
		}
	})
}

func TestEncodeAllocs(t *testing.T) {
	data, l, secret := testTx(t, false, 1, 2, 3, 4, 5)
	var sg signer
	var d decoded
	n := testing.AllocsPerRun(1000, func() {
		sg.sign(secret, data[l.msg:], data[1:65])
		if !sg.verify(data) || !decodeTx(data, &d) {
			t.Fatal("round trip failed")
		}
	})
	if n != 0 {
		t.Errorf("sign+verify+decode: %v allocs per run", n)
	}
}
