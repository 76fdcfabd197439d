package standin

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/sim"
)

// BenchmarkBankExecute64 measures the bank alone: cost tracking, locks,
// status and fee checks and commit of a 64-transaction batch of distinct
// payers (parsing excluded).
func BenchmarkBankExecute64(b *testing.B) {
	bank := newTestBank(b, BankConfig{BlockCostLimit: 1 << 62, AccountCostLimit: 1 << 62})
	h := bank.LatestBlockhash()
	txs := make([]txn, 64)
	for i := range txs {
		var payer Key
		binary.LittleEndian.PutUint64(payer[:], uint64(i)+100)
		bank.Fund(payer, 1<<62)
		loadTx(b, bank, testTx{id: uint64(i), payer: payer, writable: []Key{keyOf(byte(i))}, blockhash: h, cuLimit: 10_000, cuPrice: 1000}, &txs[i])
	}
	out := make([]result, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range txs {
			t := &txs[i]
			binary.LittleEndian.PutUint64(t.sig[8:], uint64(n))
			t.reason, t.costTaken, t.locked = ReasonNone, false, false
		}
		bank.execute(txs, false, out)
		bank.release(txs)
		if out[63].reason != ReasonNone {
			b.Fatalf("tx 63: %v", out[63].reason)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/tx")
}

// BenchmarkWorkerExecute64 measures one worker answering EXECUTE messages
// of 64 transactions over real shaq queues and rts-alloc in this process:
// decode, copy and parse every transaction, execute, allocate and write
// the response array, publish; the client side reads the answer and
// frees the array.
func BenchmarkWorkerExecute64(b *testing.B) {
	rig := newRig(b, bindings.ABI41, 1, 0, false)
	rig.bank = newTestBank(b, BankConfig{BlockCostLimit: 1 << 62, AccountCostLimit: 1 << 62})
	w := rig.ws[0]
	w.bank = rig.bank
	h := rig.bank.LatestBlockhash()
	raw := make([][]byte, 64)
	for i := range raw {
		var payer Key
		binary.LittleEndian.PutUint64(payer[:], uint64(i)+100)
		rig.bank.Fund(payer, 1<<62)
		raw[i] = testTx{id: uint64(i), payer: payer, blockhash: h, cuLimit: 10_000, cuPrice: 1000}.bytes()
	}
	batch := rig.batch(raw...)
	regs := make([]bindings.SharableTransactionRegion, 64)
	for i := range regs {
		regs[i], _ = batch.At(rig.mem, i)
	}
	msg := make([]byte, bindings.PackToWorkerSize)
	_ = bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: batch}.Encode(msg)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for i := range regs { // a new signature per round: never already processed
			binary.LittleEndian.PutUint64(rig.mem[regs[i].Offset+9:], uint64(n))
		}
		w.out.Sync()
		if err := w.handle(msg); err != nil {
			b.Fatal(err)
		}
		w.out.Commit()
		rig.fromW[0].Sync()
		ab, ok := rig.fromW[0].TryRead()
		if !ok {
			b.Fatal("no answer")
		}
		ans, _ := bindings.DecodeWorkerToPack(rig.abi, bindings.ExecutionResponseTag, ab)
		rig.fromW[0].Finalize()
		if r, _ := ans.Responses.ExecutionResponse(rig.mem, 63); r.NotIncludedReason != ReasonNone {
			b.Fatalf("tx 63: %v", r.NotIncludedReason)
		}
		_ = rig.client.Free(ans.Responses.TransactionResponsesOffset)
		w.alloc.CleanRemoteFrees(w.visit)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkFeeder measures the tpu_to_pack thread: simulator traffic,
// mock sigverify, dedup, a block per transaction and a message per
// packet, with a consumer in this process freeing every payload.
func BenchmarkFeeder(b *testing.B) {
	rig := newFeedRig(b, 64<<20, rtsalloc.V4, shaq.V3, 4096)
	ar, feedA, prod, packA, cons := rig.mem, rig.feedA, rig.prod, rig.packA, rig.cons
	cfg := FeedConfig{Traffic: sim.DefaultConfig(), PayerBalance: 1 << 50}
	tr, err := sim.NewTraffic(cfg.Traffic)
	if err != nil {
		b.Fatal(err)
	}
	bank := NewBank(BankConfig{})
	fundBank(bank, tr, &cfg)
	var st counters
	f := newFeeder(tr, &cfg, feedA, ar.Bytes(), prod, prod.Capacity(), bank, NewAudit(), &st, newTruthTable(1<<30),
		time.Now().Add(-time.Hour)) // everything is due
	mem := ar.Bytes()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; {
		n += f.round()
		cons.Sync()
		for {
			m, ok := cons.TryRead()
			if !ok {
				break
			}
			tm, _ := bindings.DecodeTpuToPack(m)
			_ = mem[tm.Transaction.Offset]
			_ = packA.Free(tm.Transaction.Offset)
		}
		cons.Finalize()
	}
	s := st.snapshot()
	b.ReportMetric(float64(s.Generated)/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(s.Fed)/b.Elapsed().Seconds(), "fed/s")
}
