package standin

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/channels/shaq"
	"github.com/solqos/qos/channels/shm"
)

// workerRig is a real allocator and real queues in this process: the
// stand-in's workers on slots 0..n-1 and a client ("pack") on slot n.
type workerRig struct {
	t      testing.TB
	abi    bindings.ABI
	mem    []byte
	client *rtsalloc.Allocator
	bank   *Bank
	audit  *Audit
	stats  *counters
	ws     []*worker
	toW    []*shaq.Producer
	fromW  []*shaq.Consumer
	stop   chan struct{}
	wg     sync.WaitGroup
	errs   chan error
}

func newWorkerRig(t *testing.T, abi bindings.ABI, workers int, nsPerCU uint64) *workerRig {
	t.Helper()
	return newRig(t, abi, workers, nsPerCU, true)
}

// newRig builds the rig; with run false the workers are not started and
// the caller drives them.
func newRig(t testing.TB, abi bindings.ABI, workers int, nsPerCU uint64, run bool) *workerRig {
	t.Helper()
	sf := map[bindings.ABI]shaq.Format{bindings.ABI40: shaq.V1_0_2, bindings.ABI41: shaq.V3, bindings.ABI44: shaq.V4}[abi]
	region := func(name string, size int) *shm.Region {
		r, err := shm.Create(name, size, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		return r
	}
	ar := region("allocator", 16<<20)
	if err := rtsalloc.Create(ar, rtsalloc.V4, workers+1, SlabSize); err != nil {
		t.Fatal(err)
	}
	rig := &workerRig{t: t, abi: abi, mem: ar.Bytes(), bank: newTestBank(t, BankConfig{}), audit: NewAudit(),
		stats: &counters{}, stop: make(chan struct{}), errs: make(chan error, workers)}
	var allocs []*rtsalloc.Allocator
	for i := 0; i <= workers; i++ {
		a, err := rtsalloc.Join(ar, rtsalloc.V4, -1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = a.Close() })
		allocs = append(allocs, a)
	}
	rig.client = allocs[workers]
	for i := 0; i < workers; i++ {
		in := region(fmt.Sprintf("ptw%d", i), shaq.MinimumFileSize(sf, bindings.PackToWorkerSize, 16))
		out := region(fmt.Sprintf("wtp%d", i), shaq.MinimumFileSize(sf, bindings.WorkerToPackSize, 16))
		for _, q := range []struct {
			r    *shm.Region
			elem int
		}{{in, bindings.PackToWorkerSize}, {out, bindings.WorkerToPackSize}} {
			if err := shaq.Create(q.r, sf, q.elem); err != nil {
				t.Fatal(err)
			}
		}
		c, err := shaq.NewConsumer(in, sf, bindings.PackToWorkerSize)
		if err != nil {
			t.Fatal(err)
		}
		o, err := shaq.NewProducer(out, sf, bindings.WorkerToPackSize)
		if err != nil {
			t.Fatal(err)
		}
		p, err := shaq.NewProducer(in, sf, bindings.PackToWorkerSize)
		if err != nil {
			t.Fatal(err)
		}
		r, err := shaq.NewConsumer(out, sf, bindings.WorkerToPackSize)
		if err != nil {
			t.Fatal(err)
		}
		rig.ws = append(rig.ws, newWorker(fmt.Sprintf("worker %d", i), i, abi, false, c, o, allocs[i], rig.mem,
			rig.bank, rig.audit, rig.stats, nsPerCU))
		rig.toW = append(rig.toW, p)
		rig.fromW = append(rig.fromW, r)
	}
	if run {
		rig.start()
	}
	t.Cleanup(rig.close)
	return rig
}

// start runs every worker's loop.
func (r *workerRig) start() {
	for _, w := range r.ws {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := w.run(r.stop); err != nil {
				r.errs <- err
			}
		}()
	}
}

func (r *workerRig) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

// batch copies txs into client blocks and returns the batch region.
func (r *workerRig) batch(txs ...[]byte) bindings.SharableTransactionBatchRegion {
	r.t.Helper()
	off, ok := r.client.Allocate(max(len(txs), 1) * bindings.RegionSize)
	if !ok {
		r.t.Fatal("allocate batch")
	}
	b := bindings.SharableTransactionBatchRegion{NumTransactions: uint8(len(txs)), TransactionsOffset: off}
	for i, tx := range txs {
		to, ok := r.client.Allocate(len(tx))
		if !ok {
			r.t.Fatal("allocate tx")
		}
		copy(r.mem[to:], tx)
		if err := b.Put(r.mem, i, bindings.SharableTransactionRegion{Offset: to, Length: uint32(len(tx))}); err != nil {
			r.t.Fatal(err)
		}
	}
	return b
}

// send publishes a message to worker i and waits for its answer.
func (r *workerRig) send(i int, m bindings.PackToWorker) bindings.WorkerToPack {
	r.t.Helper()
	s, ok := r.toW[i].Reserve()
	if !ok {
		r.t.Fatal("pack_to_worker full")
	}
	if err := m.Encode(s); err != nil {
		r.t.Fatal(err)
	}
	r.toW[i].Commit()
	return r.await(i)
}

func (r *workerRig) await(i int) bindings.WorkerToPack {
	r.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Microsecond) {
		select {
		case err := <-r.errs:
			r.t.Fatalf("worker: %v", err)
		default:
		}
		r.fromW[i].Sync()
		if b, ok := r.fromW[i].TryRead(); ok {
			m, err := bindings.DecodeWorkerToPack(r.abi, bindings.ExecutionResponseTag, b)
			r.fromW[i].Finalize()
			if err != nil {
				r.t.Fatal(err)
			}
			return m
		}
	}
	r.t.Fatal("no answer from the worker in 5s")
	return bindings.WorkerToPack{}
}

// executions reads and frees an execution response array.
func (r *workerRig) executions(m bindings.WorkerToPack) []bindings.ExecutionResponse {
	r.t.Helper()
	if m.ProcessedCode != bindings.Processed {
		r.t.Fatalf("answer %v, want PROCESSED", m.ProcessedCode)
	}
	out := make([]bindings.ExecutionResponse, m.Responses.NumTransactionResponses)
	for i := range out {
		var err error
		if out[i], err = m.Responses.ExecutionResponse(r.mem, i); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.client.Free(m.Responses.TransactionResponsesOffset); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// auditClean stops the workers (each drains its remote frees) and checks
// every block came back.
func (r *workerRig) auditClean() {
	r.t.Helper()
	r.close()
	if err := r.audit.Final(); err != nil {
		r.t.Fatal(err)
	}
}

func TestWorkerRejectsInvalidMessages(t *testing.T) {
	rig := newWorkerRig(t, bindings.ABI41, 1, 0)
	h := rig.bank.LatestBlockhash()
	one := rig.batch(testTx{id: 1, payer: keyOf(1), blockhash: h}.bytes())
	tests := []struct {
		name string
		m    bindings.PackToWorker
		want bindings.ProcessedCode
	}{
		{"no transactions", bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0),
			Batch: bindings.SharableTransactionBatchRegion{NumTransactions: 0, TransactionsOffset: one.TransactionsOffset}}, bindings.Invalid},
		{"65 transactions", bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0),
			Batch: bindings.SharableTransactionBatchRegion{NumTransactions: 65, TransactionsOffset: one.TransactionsOffset}}, bindings.Invalid},
		{"execute with a check flag bit", bindings.PackToWorker{Flags: bindings.PackExecute | 1<<5, MaxWorkingSlot: ^uint64(0), Batch: one}, bindings.Invalid},
		{"check without a check", bindings.PackToWorker{Flags: bindings.PackCheck, MaxWorkingSlot: ^uint64(0), Batch: one}, bindings.Invalid},
		{"check with an unknown bit", bindings.PackToWorker{Flags: bindings.PackStatusChecks | 1<<9, MaxWorkingSlot: ^uint64(0), Batch: one}, bindings.Invalid},
		{"past max working slot", bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: 9, Batch: one}, bindings.MaxWorkingSlotExceeded},
		{"check past max working slot", bindings.PackToWorker{Flags: bindings.PackStatusChecks, MaxWorkingSlot: 9, Batch: one}, bindings.MaxWorkingSlotExceeded},
	}
	for _, tc := range tests {
		ans := rig.send(0, tc.m)
		if ans.ProcessedCode != tc.want || ans.Responses != (bindings.TransactionResponseRegion{}) || ans.Batch != tc.m.Batch {
			t.Errorf("%s: answer %+v, want %v with no responses and the batch echoed", tc.name, ans, tc.want)
		}
	}
	s := rig.stats.snapshot()
	if s.Invalid != 5 || s.MaxSlotExceeded != 2 {
		t.Fatalf("invalid %d, past max slot %d", s.Invalid, s.MaxSlotExceeded)
	}
	rig.auditClean()
}

func TestWorkerNoLeaderBank(t *testing.T) {
	rig := newWorkerRig(t, bindings.ABI40, 1, 0)
	rig.bank.SetActive(false)
	h := rig.bank.LatestBlockhash()
	b := rig.batch(testTx{id: 1, payer: keyOf(1), blockhash: h}.bytes(), testTx{id: 2, payer: keyOf(2), blockhash: h}.bytes())
	start := time.Now()
	rs := rig.executions(rig.send(0, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: b}))
	if waited := time.Since(start); waited < bankWait {
		t.Fatalf("answered after %v, before the 50 ms bank wait", waited)
	}
	for i, r := range rs {
		if r.NotIncludedReason != bindings.ReasonBankNotAvailable || r.ExecutionSlot != 0 {
			t.Fatalf("response %d: %+v, want BANK_NOT_AVAILABLE in slot 0", i, r)
		}
	}
	// Two EXECUTEs queued while there is no bank: the first waits, the
	// second is answered at once (the worker drains executes).
	start = time.Now()
	for i := 0; i < 2; i++ {
		s, _ := rig.toW[0].Reserve()
		_ = bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: b}.Encode(s)
	}
	rig.toW[0].Commit()
	for i := 0; i < 2; i++ {
		for _, r := range rig.executions(rig.await(0)) {
			if r.NotIncludedReason != bindings.ReasonBankNotAvailable {
				t.Fatalf("queued execute %d: %v", i, r.NotIncludedReason)
			}
		}
	}
	if waited := time.Since(start); waited >= 2*bankWait {
		t.Fatalf("two queued executes took %v: the second waited for a bank too", waited)
	}
	// The bank becomes ready: the same batch executes.
	rig.bank.SetActive(true)
	rs = rig.executions(rig.send(0, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: 10, Batch: b}))
	for i, r := range rs {
		if r.NotIncludedReason != bindings.ReasonNone || r.ExecutionSlot != 10 || r.CostUnits == 0 || r.FeePayerBalance != funded-5000 {
			t.Fatalf("response %d: %+v", i, r)
		}
	}
	rig.auditClean()
}

// TestWorkerAccountInUseAcrossWorkers: while worker 0 holds a batch that
// writes an account (its execution time), worker 1's batch touching it
// gets ACCOUNT_IN_USE; once worker 0 is done the account is free.
func TestWorkerAccountInUseAcrossWorkers(t *testing.T) {
	rig := newWorkerRig(t, bindings.ABI41, 2, 1500) // 200 000 CUs → 300 ms under locks
	h := rig.bank.LatestBlockhash()
	hot := keyOf(0x40)
	a := rig.batch(testTx{id: 1, payer: keyOf(1), writable: []Key{hot}, blockhash: h, cuLimit: 200_000}.bytes())
	b := rig.batch(
		testTx{id: 2, payer: keyOf(2), readonly: []Key{hot}, blockhash: h, cuLimit: 1000}.bytes(),
		testTx{id: 3, payer: keyOf(3), blockhash: h, cuLimit: 1000}.bytes())
	s, _ := rig.toW[0].Reserve()
	_ = bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: a}.Encode(s)
	rig.toW[0].Commit()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		rig.bank.mu.Lock()
		n := len(rig.bank.locks)
		rig.bank.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("worker 0 never took its locks")
		}
	}
	rb := rig.executions(rig.send(1, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: b}))
	if rb[0].NotIncludedReason != bindings.ReasonAccountInUse || rb[1].NotIncludedReason != bindings.ReasonNone {
		t.Fatalf("worker 1 while worker 0 holds the account: %v, %v", rb[0].NotIncludedReason, rb[1].NotIncludedReason)
	}
	ra := rig.executions(rig.await(0))
	if ra[0].NotIncludedReason != bindings.ReasonNone {
		t.Fatalf("worker 0: %v", ra[0].NotIncludedReason)
	}
	rb = rig.executions(rig.send(1, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: b}))
	if rb[0].NotIncludedReason != bindings.ReasonNone || rb[1].NotIncludedReason != bindings.ReasonAlreadyProcessed {
		t.Fatalf("worker 1 afterwards: %v, %v", rb[0].NotIncludedReason, rb[1].NotIncludedReason)
	}
	s2 := rig.stats.snapshot()
	if s2.Executed != 3 || s2.NotIncluded["ACCOUNT_IN_USE"] != 1 || s2.NotIncluded["ALREADY_PROCESSED"] != 1 {
		t.Fatalf("stats %+v", s2)
	}
	rig.auditClean()
}

func TestWorkerCheck(t *testing.T) {
	for _, abi := range []bindings.ABI{bindings.ABI40, bindings.ABI41} {
		t.Run(abi.String(), func(t *testing.T) {
			rig := newWorkerRig(t, abi, 1, 0)
			h := rig.bank.LatestBlockhash()
			lut := keyOf(0xa0)
			done := testTx{id: 9, payer: keyOf(3), blockhash: h}
			rig.executions(rig.send(0, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: rig.batch(done.bytes())}))
			missing := keyOf(0xa7)
			b := rig.batch(
				testTx{id: 1, payer: keyOf(1), blockhash: h, lut: &lut, lutW: []byte{1}, lutR: []byte{2}}.bytes(),
				testTx{id: 2, payer: keyOf(2), blockhash: keyOf(0x33)}.bytes(),
				done.bytes(),
				[]byte{1, 2, 3},
				testTx{id: 4, payer: keyOf(4), blockhash: h, lut: &missing, lutW: []byte{0}}.bytes(),
			)
			flags, _ := bindings.CheckFlags(abi, bindings.Check{StatusChecks: true, LoadFeePayerBalance: true, LoadAddressLookupTables: true})
			ans := rig.send(0, bindings.PackToWorker{Flags: flags, MaxWorkingSlot: ^uint64(0), Batch: b})
			if ans.ProcessedCode != bindings.Processed || ans.Responses.Tag != bindings.CheckResponseTag || ans.Responses.NumTransactionResponses != 5 {
				t.Fatalf("answer %+v", ans)
			}
			var cr [5]bindings.CheckResponse
			for i := range cr {
				var err error
				if cr[i], err = ans.Responses.CheckResponse(abi, rig.mem, i); err != nil {
					t.Fatal(err)
				}
			}
			// 0: resolved lookups, funded, fresh.
			if cr[0].ResolveFlags != bindings.ResolveRequested|bindings.ResolvePerformed || cr[0].ResolvedPubkeys.NumPubkeys != 2 ||
				cr[0].MinAltDeactivationSlot != ^uint64(0) || cr[0].ResolutionSlot != 10 {
				t.Fatalf("tx 0 resolution: %+v", cr[0])
			}
			k0, _ := cr[0].ResolvedPubkeys.Pubkey(rig.mem, 0)
			k1, _ := cr[0].ResolvedPubkeys.Pubkey(rig.mem, 1)
			if Key(k0) != keyOf(0xb1) || Key(k1) != keyOf(0xb2) {
				t.Fatalf("resolved %x %x", k0[0], k1[0])
			}
			if err := rig.client.Free(cr[0].ResolvedPubkeys.Offset); err != nil {
				t.Fatal(err)
			}
			if cr[0].StatusCheckFlags != bindings.StatusRequested|bindings.StatusPerformed || cr[0].FeePayerBalance != funded ||
				cr[0].FeePayerBalanceFlags != bindings.FeePayerBalanceRequested|bindings.FeePayerBalancePerformed || cr[0].BalanceSlot != 10 {
				t.Fatalf("tx 0 status/balance: %+v", cr[0])
			}
			// 1: unknown blockhash.
			if cr[1].StatusCheckFlags&bindings.StatusTooOld == 0 || cr[1].ResolvedPubkeys.NumPubkeys != 0 {
				t.Fatalf("tx 1: %+v", cr[1])
			}
			// 2: already processed in slot 10, payer charged.
			if cr[2].StatusCheckFlags&bindings.StatusAlreadyProcessed == 0 || cr[2].IncludedSlot != 10 || cr[2].FeePayerBalance != funded-5000 {
				t.Fatalf("tx 2: %+v", cr[2])
			}
			// 3: not a transaction.
			if cr[3].ParsingAndSanitizationFlags != bindings.ParseFailed || cr[3].StatusCheckFlags != bindings.StatusRequested {
				t.Fatalf("tx 3: %+v", cr[3])
			}
			// 4: lookup table missing: resolution failed, no status check.
			if cr[4].ResolveFlags&bindings.ResolveFailed == 0 || cr[4].StatusCheckFlags&bindings.StatusPerformed != 0 {
				t.Fatalf("tx 4: %+v", cr[4])
			}
			if err := rig.client.Free(ans.Responses.TransactionResponsesOffset); err != nil {
				t.Fatal(err)
			}
			rig.auditClean()
		})
	}
}

// TestWorkerAuditSeesClientFrees: blocks a worker handed out come back
// through its remote-free list; one the client keeps is a leak.
func TestWorkerAuditSeesClientFrees(t *testing.T) {
	rig := newWorkerRig(t, bindings.ABI41, 1, 0)
	h := rig.bank.LatestBlockhash()
	b := rig.batch(testTx{id: 1, payer: keyOf(1), blockhash: h}.bytes())
	ans := rig.send(0, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: b})
	kept := ans.Responses.TransactionResponsesOffset
	ans2 := rig.send(0, bindings.PackToWorker{Flags: bindings.PackExecute, MaxWorkingSlot: ^uint64(0), Batch: b})
	rig.executions(ans2)
	rig.close()
	err := rig.audit.Final()
	if err == nil || !containsOffset(err, kept) {
		t.Fatalf("kept response array %#x not reported: %v", kept, err)
	}
}

func containsOffset(err error, off uint64) bool {
	return err != nil && strings.Contains(err.Error(), fmt.Sprintf("%#x", off))
}

// TestWorkerCheckABI44: a 4.4 check worker reads PackToCheckWorker
// messages (no max slot) and, when asked, fills the scheduling details:
// the fee, the prioritization fee and the estimated cost.
func TestWorkerCheckABI44(t *testing.T) {
	rig := newRig(t, bindings.ABI44, 1, 0, false)
	rig.ws[0].check = true // the 4.4 check message on this queue
	rig.start()
	h := rig.bank.LatestBlockhash()
	b := rig.batch(testTx{id: 1, payer: keyOf(1), blockhash: h, cuLimit: 100_000, cuPrice: 1000}.bytes(), []byte{9})
	flags, err := bindings.CheckFlags(bindings.ABI44, bindings.Check{StatusChecks: true, CalculateSchedulingDetails: true})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := rig.toW[0].Reserve()
	if err := (bindings.PackToCheckWorker{Flags: flags, Batch: b}).Encode(bindings.ABI44, s); err != nil {
		t.Fatal(err)
	}
	rig.toW[0].Commit()
	ans := rig.await(0)
	if ans.ProcessedCode != bindings.Processed || ans.Responses.NumTransactionResponses != 2 {
		t.Fatalf("answer %+v", ans)
	}
	ans.Responses.Tag = bindings.CheckResponseTag // ABI44 regions carry no tag: the queue says
	cr, err := ans.Responses.CheckResponse(bindings.ABI44, rig.mem, 0)
	if err != nil {
		t.Fatal(err)
	}
	const cost = 720 + 300 + 22/4 + 100_000 + 2048*8
	if cr.SchedulingDetailsFlags != bindings.SchedulingDetailsRequested|bindings.SchedulingDetailsPerformed ||
		cr.TransactionFee != 5100 || cr.PrioritizationFee != 100 || cr.EstimatedCostUnits != cost ||
		cr.StatusCheckFlags != bindings.StatusRequested|bindings.StatusPerformed {
		t.Fatalf("details: %+v", cr)
	}
	bad, _ := ans.Responses.CheckResponse(bindings.ABI44, rig.mem, 1)
	if bad.ParsingAndSanitizationFlags != bindings.ParseFailed || bad.SchedulingDetailsFlags != bindings.SchedulingDetailsRequested {
		t.Fatalf("unparsable: %+v", bad)
	}
	if err := rig.client.Free(ans.Responses.TransactionResponsesOffset); err != nil {
		t.Fatal(err)
	}
	// An execution flag is not a check flag.
	s, _ = rig.toW[0].Reserve()
	_ = bindings.PackToCheckWorker{Flags: 1 << 7, Batch: b}.Encode(bindings.ABI44, s)
	rig.toW[0].Commit()
	if ans := rig.await(0); ans.ProcessedCode != bindings.Invalid {
		t.Fatalf("unknown check flag: %v", ans.ProcessedCode)
	}
	rig.auditClean()
}
