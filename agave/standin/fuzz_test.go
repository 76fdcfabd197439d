package standin

import (
	"encoding/binary"
	"testing"

	"github.com/solqos/qos/agave/bindings"
)

// FuzzWorkerMessage drives a worker with hostile pack messages: any flags,
// slot, transaction count and batch offset, and a batch array and
// transaction bytes from the fuzzer inside a client block. The worker must
// never panic or read outside the allocator mapping, must answer every
// message (echoing the batch), must answer PROCESSED with one response per
// transaction, and its audit must stay clean when the client frees what
// it gets.
func FuzzWorkerMessage(f *testing.F) {
	h := Key{}
	tx := testTx{id: 1, payer: keyOf(1), blockhash: h, cuLimit: 1000}.bytes()
	seed := func(flags uint16, maxSlot uint64, n uint8, off uint64, block []byte) {
		msg := make([]byte, 32)
		binary.LittleEndian.PutUint16(msg, flags)
		binary.LittleEndian.PutUint64(msg[8:], maxSlot)
		msg[16] = n
		binary.LittleEndian.PutUint64(msg[24:], off)
		f.Add(msg, block, false)
	}
	arr := make([]byte, 16)
	binary.LittleEndian.PutUint32(arr[8:], uint32(len(tx)))
	seed(bindings.PackExecute, ^uint64(0), 1, 0, append(arr, tx...))                   // offset 0: patched to the block
	seed(bindings.PackStatusChecks|bindings.PackLoadAddressLookupTables, 5, 1, 0, arr) // past max slot
	seed(bindings.PackExecute, ^uint64(0), 64, 1<<40, nil)                             // batch outside the mapping
	seed(bindings.PackLoadFeePayerBalance, ^uint64(0), 3, 0, []byte{0xff, 0xff, 0xff})
	seed(0xffff, 0, 0, 0, nil)

	rig := newRig(f, bindings.ABI41, 1, 0, false)
	w := rig.ws[0]
	blockOff, ok := rig.client.Allocate(4096)
	if !ok {
		f.Fatal("allocate fuzz block")
	}
	f.Fuzz(func(t *testing.T, msg, block []byte, relative bool) {
		if len(msg) < bindings.PackToWorkerSize {
			return
		}
		msg = append([]byte(nil), msg[:bindings.PackToWorkerSize]...)
		blk := rig.mem[blockOff : blockOff+4096]
		clear(blk)
		copy(blk, block)
		// Offsets inside the block are relative to it when asked (or when
		// zero), so the fuzzer reaches real transactions easily.
		off := binary.LittleEndian.Uint64(msg[24:])
		if relative || off == 0 {
			binary.LittleEndian.PutUint64(msg[24:], blockOff+off%4096)
			for i := 0; i+16 <= len(block) && i < 64*16; i += 16 {
				o := binary.LittleEndian.Uint64(blk[i:])
				binary.LittleEndian.PutUint64(blk[i:], blockOff+16*uint64(min(len(block)/16, 64))+o%4096)
			}
		}
		w.out.Sync()
		if err := w.handle(msg); err != nil {
			t.Fatalf("handle: %v", err)
		}
		w.out.Commit()
		rig.fromW[0].Sync()
		b, ok := rig.fromW[0].TryRead()
		if !ok {
			t.Fatal("no answer")
		}
		ans, err := bindings.DecodeWorkerToPack(rig.abi, bindings.ExecutionResponseTag, b)
		rig.fromW[0].Finalize()
		if err != nil {
			t.Fatal(err)
		}
		sent, _ := bindings.DecodePackToWorker(msg)
		if ans.Batch != sent.Batch {
			t.Fatalf("batch not echoed: %+v vs %+v", ans.Batch, sent.Batch)
		}
		if ans.ProcessedCode == bindings.Processed {
			if ans.Responses.NumTransactionResponses != sent.Batch.NumTransactions {
				t.Fatalf("%d responses for %d transactions", ans.Responses.NumTransactionResponses, sent.Batch.NumTransactions)
			}
			if ans.Responses.Tag == bindings.CheckResponseTag {
				for i := 0; i < int(ans.Responses.NumTransactionResponses); i++ {
					cr, err := ans.Responses.CheckResponse(rig.abi, rig.mem, i)
					if err != nil {
						t.Fatal(err)
					}
					if cr.ResolvedPubkeys.NumPubkeys > 0 {
						if err := rig.client.Free(cr.ResolvedPubkeys.Offset); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if err := rig.client.Free(ans.Responses.TransactionResponsesOffset); err != nil {
				t.Fatal(err)
			}
		} else if ans.Responses != (bindings.TransactionResponseRegion{}) {
			t.Fatalf("%v answer with responses %+v", ans.ProcessedCode, ans.Responses)
		}
		w.alloc.CleanRemoteFrees(w.visit)
		if err := rig.audit.Err(); err != nil {
			t.Fatal(err)
		}
		if n := len(rig.audit.Outstanding()); n != 0 {
			t.Fatalf("%d blocks outstanding after the client freed everything", n)
		}
	})
}
