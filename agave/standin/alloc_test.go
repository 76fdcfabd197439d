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

// TestWorkerExecuteZeroAlloc: in steady state (the status cache pruned to
// a stable size) a worker answers an EXECUTE of 64 transactions, and the
// client reads and frees the answer, without allocating.
func TestWorkerExecuteZeroAlloc(t *testing.T) {
	rig := newRig(t, bindings.ABI41, 1, 0, false)
	rig.bank = newTestBank(t, BankConfig{BlockCostLimit: 1 << 62, AccountCostLimit: 1 << 62})
	w := rig.ws[0]
	w.bank = rig.bank
	raw := make([][]byte, 64)
	for i := range raw {
		var payer Key
		binary.LittleEndian.PutUint64(payer[:], uint64(i)+100)
		rig.bank.Fund(payer, 1<<62)
		raw[i] = testTx{id: uint64(i), payer: payer, blockhash: rig.bank.LatestBlockhash(), cuLimit: 10_000}.bytes()
	}
	batch := rig.batch(raw...)
	regs := make([]bindings.SharableTransactionRegion, 64)
	for i := range regs {
		regs[i], _ = batch.At(rig.mem, i)
	}
	msg := make([]byte, bindings.PackToWorkerSize)
	_ = bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: batch}.Encode(msg)
	round := uint64(0)
	once := func() {
		round++
		for i := range regs {
			binary.LittleEndian.PutUint64(rig.mem[regs[i].Offset+9:], round)
		}
		w.out.Sync()
		if err := w.handle(msg); err != nil {
			t.Fatal(err)
		}
		w.out.Commit()
		rig.fromW[0].Sync()
		ab, ok := rig.fromW[0].TryRead()
		if !ok {
			t.Fatal("no answer")
		}
		ans, _ := bindings.DecodeWorkerToPack(rig.abi, bindings.ExecutionResponseTag, ab)
		rig.fromW[0].Finalize()
		if r, _ := ans.Responses.ExecutionResponse(rig.mem, 63); r.NotIncludedReason != ReasonNone {
			t.Fatalf("round %d: %v", round, r.NotIncludedReason)
		}
		_ = rig.client.Free(ans.Responses.TransactionResponsesOffset)
		w.alloc.CleanRemoteFrees(w.visit)
	}
	// Grow the status cache, move far enough for it to be pruned, and
	// name the new blockhash.
	for i := 0; i < 200; i++ {
		once()
	}
	rig.bank.SetSlot(10+16*40, true)
	h := rig.bank.LatestBlockhash()
	for i := range regs {
		copy(rig.mem[regs[i].Offset+165:], h[:]) // signature, header, 3 keys
	}
	if n := testing.AllocsPerRun(100, once); n != 0 {
		t.Fatalf("%v allocations per EXECUTE round trip, want 0", n)
	}
}

// TestFeederZeroAlloc: with the ground-truth table full, a feeder round
// (traffic, sigverify, dedup, block, message) allocates nothing.
func TestFeederZeroAlloc(t *testing.T) {
	rig := newFeedRig(t, 32<<20, rtsalloc.V4, shaq.V3, 4096)
	ar, feedA, prod, packA, cons := rig.mem, rig.feedA, rig.prod, rig.packA, rig.cons
	cfg := FeedConfig{Traffic: sim.DefaultConfig(), VotePPS: 1000, PayerBalance: 1 << 50,
		StaleShare: 0.05, ReplayShare: 0.1, DedupWindow: time.Millisecond}
	tr, err := sim.NewTraffic(cfg.Traffic)
	if err != nil {
		t.Fatal(err)
	}
	bank := NewBank(BankConfig{})
	fundBank(bank, tr, &cfg)
	var st counters
	f := newFeeder(tr, &cfg, feedA, ar.Bytes(), prod, prod.Capacity(), bank, NewAudit(), &st, newTruthTable(4096),
		time.Now().Add(-2*time.Second)) // votes come first: 2 s of them, then traffic
	once := func() {
		f.round()
		cons.Sync()
		for {
			m, ok := cons.TryRead()
			if !ok {
				break
			}
			tm, _ := bindings.DecodeTpuToPack(m)
			_ = packA.Free(tm.Transaction.Offset)
		}
		cons.Finalize()
	}
	for i := 0; i < 200; i++ {
		once()
	}
	if n := testing.AllocsPerRun(50, once); n != 0 {
		t.Fatalf("%v allocations per feeder round, want 0", n)
	}
	if s := st.snapshot(); s.Stale == 0 || s.Replayed == 0 {
		t.Fatalf("the rounds fed no stale or replayed transaction: %+v", s)
	}
}
