package bindings

import (
	"errors"
	"math"
	"testing"
)

func TestRegionsInsideMapping(t *testing.T) {
	mem := make([]byte, 4096)
	batch := SharableTransactionBatchRegion{NumTransactions: 2, TransactionsOffset: 256}
	txs := []SharableTransactionRegion{{Offset: 1024, Length: 100}, {Offset: 2048, Length: 1232}}
	for i, r := range txs {
		if err := batch.Put(mem, i, r); err != nil {
			t.Fatal(err)
		}
		copy(mem[r.Offset:], []byte{byte(i + 1), 0xEE})
	}
	if err := batch.Validate(mem); err != nil {
		t.Fatal(err)
	}
	for i, want := range txs {
		got, err := batch.At(mem, i)
		if err != nil || got != want {
			t.Fatalf("At(%d) = %+v, %v", i, got, err)
		}
		b, err := got.Bytes(mem)
		if err != nil || len(b) != int(want.Length) || b[0] != byte(i+1) || cap(b) != len(b) {
			t.Fatalf("Bytes(%d): len %d cap %d err %v", i, len(b), cap(b), err)
		}
	}

	exec := TransactionResponseRegion{Tag: ExecutionResponseTag, NumTransactionResponses: 2, TransactionResponsesOffset: 512}
	want := ExecutionResponse{ExecutionSlot: 9, NotIncludedReason: ReasonAccountInUse, CostUnits: 1, FeePayerBalance: 2}
	if err := exec.PutExecutionResponse(mem, 1, want); err != nil {
		t.Fatal(err)
	}
	if got, err := exec.ExecutionResponse(mem, 1); err != nil || got != want {
		t.Fatalf("ExecutionResponse = %+v, %v", got, err)
	}
	if _, err := exec.CheckResponse(ABI41, mem, 0); !errors.Is(err, ErrBadTag) {
		t.Fatalf("check read of an execution region: %v", err)
	}
	if exec.ArraySize(ABI44) != 64 {
		t.Fatal("ArraySize")
	}
	for _, abi := range []ABI{ABI40, ABI44} {
		check := TransactionResponseRegion{Tag: CheckResponseTag, NumTransactionResponses: 3, TransactionResponsesOffset: 3000}
		cr := CheckResponse{StatusCheckFlags: StatusPerformed, ResolvedPubkeys: SharablePubkeys{Offset: 3900, NumPubkeys: 2}}
		if err := check.PutCheckResponse(abi, mem, 2, cr); err != nil {
			t.Fatal(err)
		}
		got, err := check.CheckResponse(abi, mem, 2)
		if err != nil || got != cr {
			t.Fatalf("%v CheckResponse = %+v, %v", abi, got, err)
		}
		mem[3900+32] = 0x42
		k, err := got.ResolvedPubkeys.Pubkey(mem, 1)
		if err != nil || k[0] != 0x42 {
			t.Fatalf("Pubkey = %x, %v", k, err)
		}
		if _, err := got.ResolvedPubkeys.Pubkey(mem, 2); !errors.Is(err, ErrIndex) {
			t.Fatalf("Pubkey(2): %v", err)
		}
	}
}

func TestHostileRegions(t *testing.T) {
	mem := make([]byte, 1000)
	for _, c := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"tx past end", ErrOutOfBounds, func() error {
			_, err := SharableTransactionRegion{Offset: 990, Length: 11}.Bytes(mem)
			return err
		}},
		{"tx offset overflow", ErrOutOfBounds, func() error {
			_, err := SharableTransactionRegion{Offset: math.MaxUint64 - 3, Length: 10}.Bytes(mem)
			return err
		}},
		{"tx length max", ErrOutOfBounds, func() error {
			_, err := SharableTransactionRegion{Offset: 1, Length: math.MaxUint32}.Bytes(mem)
			return err
		}},
		{"batch 0", ErrTooManyTransactions, func() error {
			return SharableTransactionBatchRegion{NumTransactions: 0}.Validate(mem)
		}},
		{"batch 65", ErrTooManyTransactions, func() error {
			return SharableTransactionBatchRegion{NumTransactions: 65}.Validate(mem)
		}},
		{"batch array past end", ErrOutOfBounds, func() error {
			return SharableTransactionBatchRegion{NumTransactions: 64, TransactionsOffset: 1}.Validate(mem)
		}},
		{"batch index", ErrIndex, func() error {
			_, err := SharableTransactionBatchRegion{NumTransactions: 2}.At(mem, 2)
			return err
		}},
		{"batch negative index", ErrIndex, func() error {
			_, err := SharableTransactionBatchRegion{NumTransactions: 2}.At(mem, -1)
			return err
		}},
		{"batch entry overflow", ErrOutOfBounds, func() error {
			_, err := SharableTransactionBatchRegion{NumTransactions: 64, TransactionsOffset: math.MaxUint64}.At(mem, 63)
			return err
		}},
		{"responses past end", ErrOutOfBounds, func() error {
			_, err := TransactionResponseRegion{NumTransactionResponses: 255, TransactionResponsesOffset: 900}.ExecutionResponse(mem, 10)
			return err
		}},
		{"check unknown abi", ErrNotInABI, func() error {
			_, err := TransactionResponseRegion{Tag: CheckResponseTag, NumTransactionResponses: 1}.CheckResponse(0, mem, 0)
			return err
		}},
		{"pubkeys overflow", ErrOutOfBounds, func() error {
			_, err := SharablePubkeys{Offset: math.MaxUint64 - 10, NumPubkeys: math.MaxUint32}.Bytes(mem)
			return err
		}},
	} {
		if err := c.run(); !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
		}
	}
}
