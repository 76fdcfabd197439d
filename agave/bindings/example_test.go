package bindings_test

import (
	"fmt"

	"github.com/solqos/qos/agave/bindings"
)

// A pack's round trip over one worker, on a plain byte slice standing in for
// the allocator mapping: read a TpuToPack, send its transaction in a batch,
// read the answer. (Real code gets slots from channels/shaq and offsets
// from channels/rtsalloc; see agave/session.)
func Example() {
	abi := bindings.Profile44.ABI
	mem := make([]byte, 8192) // the allocator mapping

	// Agave → pack: a transaction at offset 4096.
	slot := make([]byte, bindings.TpuToPackSize)
	_ = bindings.TpuToPack{Transaction: bindings.SharableTransactionRegion{Offset: 4096, Length: 3}, Flags: bindings.TpuFromStakedNode}.Encode(slot)
	copy(mem[4096:], "abc")

	m, err := bindings.DecodeTpuToPack(slot)
	if err != nil {
		panic(err)
	}
	tx, err := m.Transaction.Bytes(mem) // bounds-checked view
	fmt.Printf("tx %q staked=%v\n", tx, m.Flags&bindings.TpuFromStakedNode != 0)

	// Pack → worker: a batch array at 256 holding that region.
	batch := bindings.SharableTransactionBatchRegion{NumTransactions: 1, TransactionsOffset: 256}
	_ = batch.Put(mem, 0, m.Transaction)
	flags, _ := bindings.ExecuteFlags(abi, true, false)
	req := make([]byte, bindings.PackToWorkerSize)
	_ = bindings.PackToWorker{Flags: flags, MaxWorkingSlot: 100, Batch: batch}.Encode(req)

	// Worker → pack: one execution response at 512.
	resp := bindings.TransactionResponseRegion{Tag: bindings.ExecutionResponseTag, NumTransactionResponses: 1, TransactionResponsesOffset: 512}
	_ = resp.PutExecutionResponse(mem, 0, bindings.ExecutionResponse{ExecutionSlot: 100, NotIncludedReason: bindings.ReasonAccountInUse})
	ans := make([]byte, bindings.WorkerToPackSize)
	_ = bindings.WorkerToPack{Batch: batch, ProcessedCode: bindings.Processed, Responses: resp}.Encode(abi, ans)

	w, _ := bindings.DecodeWorkerToPack(abi, bindings.ExecutionResponseTag, ans)
	r, _ := w.Responses.ExecutionResponse(mem, 0)
	fmt.Println(w.ProcessedCode, r.NotIncludedReason, err)
	// Output:
	// tx "abc" staked=true
	// PROCESSED ACCOUNT_IN_USE <nil>
}
