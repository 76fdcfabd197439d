package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	solana "github.com/gagliardetto/solana-go"
	"github.com/mr-tron/base58"

	"github.com/solqos/qos/model"
)

// runExplain runs `qos-cli explain args...` with stdin, and returns the
// decoded output lines and the error.
func runExplain(t *testing.T, stdin string, args ...string) ([]map[string]any, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := newApp(&out, &errb)
	app.Reader = strings.NewReader(stdin)
	err := app.RunContext(context.Background(), append([]string{"qos-cli", "explain"}, args...))
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	return rows, err
}

// transferTx is a plain SOL transfer built and signed by solana-go, with
// an optional compute-unit price.
func transferTx(t *testing.T, price uint64) []byte {
	t.Helper()
	payer := solana.NewWallet().PrivateKey
	to := solana.NewWallet().PublicKey()
	data := binary.LittleEndian.AppendUint64([]byte{2, 0, 0, 0}, 1000)
	ixs := []solana.Instruction{solana.NewInstruction(solana.SystemProgramID,
		solana.AccountMetaSlice{solana.Meta(payer.PublicKey()).WRITE().SIGNER(), solana.Meta(to).WRITE()}, data)}
	if price > 0 {
		ixs = append(ixs, solana.NewInstruction(solana.MustPublicKeyFromBase58("ComputeBudget111111111111111111111111111111"),
			nil, binary.LittleEndian.AppendUint64([]byte{3}, price)))
	}
	tx, err := solana.NewTransaction(ixs, solana.Hash{1}, solana.TransactionPayer(payer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Sign(func(k solana.PublicKey) *solana.PrivateKey { return &payer }); err != nil {
		t.Fatal(err)
	}
	b, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v1Transfer is a v1 transaction (SIMD-0385) with a priority fee of 300
// lamports and a limit of 3 000 CUs, one system instruction, signed.
func v1Transfer(t *testing.T) []byte {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte{0x81, 1, 0, 1}
	msg = binary.LittleEndian.AppendUint32(msg, 0b111) // priority fee, CU limit
	msg = append(msg, make([]byte, 32)...)             // lifetime
	msg = append(msg, 1, 3)                            // 1 instruction, 3 addresses
	msg = append(msg, pub...)
	msg = append(msg, bytes.Repeat([]byte{9}, 32)...)
	msg = append(msg, make([]byte, 32)...) // system program
	msg = binary.LittleEndian.AppendUint64(msg, 300)
	msg = binary.LittleEndian.AppendUint32(msg, 3000)
	data := binary.LittleEndian.AppendUint64([]byte{2, 0, 0, 0}, 1)
	msg = append(msg, 2, 2)
	msg = binary.LittleEndian.AppendUint16(msg, uint16(len(data)))
	msg = append(msg, 0, 1)
	msg = append(msg, data...)
	return append(msg, ed25519.Sign(priv, msg)...)
}

func TestExplain(t *testing.T) {
	plain, priced, v1 := transferTx(t, 0), transferTx(t, 10_000), v1Transfer(t)
	b64 := base64.StdEncoding.EncodeToString

	rows, err := runExplain(t, "", b64(plain), b64(priced), b64(v1), "AAAA", "not base64!")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows", len(rows))
	}
	check := func(row map[string]any, want map[string]any) {
		t.Helper()
		for k, v := range want {
			if row[k] != v {
				t.Errorf("%s = %v, want %v (row %v)", k, row[k], v, row)
			}
		}
	}
	// A plain transfer: one system instruction, 3 000 CUs (SIMD-0170),
	// 5 000 lamports; fee per CU 5 000 / 3 000.
	check(rows[0], map[string]any{"ok": true, "reject": "", "version": "legacy", "signatures": 1.0,
		"precompile_signatures": 0.0, "cu_limit": 3000.0, "cu_price": 0.0, "prio_fee": 0.0, "fee": 5000.0,
		"fee_per_cu": 5000.0 / 3000})
	// With a price of 10 000 micro-lamports: 6 000 CUs, ⌈10 000 × 6 000 /
	// 1e6⌉ = 60 lamports.
	check(rows[1], map[string]any{"ok": true, "cu_limit": 6000.0, "cu_price": 10000.0, "prio_fee": 60.0, "fee": 5060.0})
	// v1: 300 lamports over 3 000 CUs = 100 000 micro-lamports per CU.
	check(rows[2], map[string]any{"ok": true, "version": "v1", "cu_limit": 3000.0, "cu_price": 100000.0,
		"prio_fee": 300.0, "fee": 5300.0, "fee_per_cu": 5300.0 / 3000})
	check(rows[3], map[string]any{"ok": false, "reject": "parse_signatures", "version": ""})
	check(rows[4], map[string]any{"ok": false, "reject": "input_decode"})
	if rows[4]["error"] == "" || rows[0]["model_score"] != nil {
		t.Errorf("rows %v %v", rows[4], rows[0])
	}

	// Standard input, one per line, hex; v1 switched off; a lock limit.
	in := hex.EncodeToString(plain) + "\n\n  " + hex.EncodeToString(v1) + "\n"
	rows, err = runExplain(t, in, "--hex", "--tx-v1=false")
	if err != nil || len(rows) != 2 {
		t.Fatalf("%v %v", rows, err)
	}
	check(rows[0], map[string]any{"ok": true, "fee": 5000.0})
	check(rows[1], map[string]any{"ok": false, "reject": "format_v1_disabled", "version": "v1"})

	// base58, as explorers show transactions.
	rows, err = runExplain(t, "", "--base58", base58.Encode(priced))
	if err != nil || len(rows) != 1 {
		t.Fatalf("%v %v", rows, err)
	}
	check(rows[0], map[string]any{"ok": true, "fee": 5060.0})

	// More than a packet holds.
	rows, _ = runExplain(t, "", b64(make([]byte, 1233)))
	check(rows[0], map[string]any{"ok": false, "reject": "record_size", "size": 1233.0})

	// With a model: a fresh model scores unknown keys 1, so the admission
	// score is the fee per CU.
	path := filepath.Join(t.TempDir(), "model.bin")
	if err := model.New(model.DefaultParams()).Save(path); err != nil {
		t.Fatal(err)
	}
	rows, err = runExplain(t, "", "--model-file", path, "--ip", "192.0.2.7", b64(priced))
	if err != nil {
		t.Fatal(err)
	}
	check(rows[0], map[string]any{"ok": true, "model_score": 1.0, "score": 5060.0 / 6000})
}

func TestExplainErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.bin")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--hex", "--base58", "00"}, "exclude each other"},
		{[]string{"--model-file", path, "00"}, "needs --ip"},
		{[]string{"--model-file", path, "--ip", "10.0.0.1", "00"}, path},
		{[]string{"--ip", "nope", "00"}, "--ip"},
		{[]string{"--account-lock-limit", "0", "00"}, "--account-lock-limit"},
	} {
		_, err := runExplain(t, "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error mentioning %q", c.args, err, c.want)
		}
	}
}
