package standin

import (
	"errors"
	"fmt"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/channels/rtsalloc"
)

// inQueue is the consuming end of a shaq queue (SPSC or MPMC).
type inQueue interface {
	TryRead() ([]byte, bool)
	Finalize()
	Sync()
}

// outQueue is the producing end of a shaq queue (SPSC or MPMC).
type outQueue interface {
	Reserve() ([]byte, bool)
	Commit()
	Sync()
}

// blockAllocator is one stand-in thread's rts-alloc handle.
type blockAllocator interface {
	Allocate(size int) (uint64, bool)
	Free(off uint64) error
	CleanRemoteFrees(visit func(off uint64)) int
}

// Fatal session conditions: Agave's workers exit on them, and Agave then
// falls back to its own scheduler (banking_stage.rs cycle_threads_fallback).
var (
	// ErrQueueFull: an output queue stayed full, so the scheduler is not
	// draining it.
	ErrQueueFull = errors.New("queue full: the scheduler does not drain it (Agave would end the session and fall back to its own scheduler)")
	// ErrAllocatorExhausted: the allocator had no block for a response.
	ErrAllocatorExhausted = errors.New("allocator exhausted: the scheduler is not freeing blocks (Agave's worker would exit)")
)

// bankWait is how long an EXECUTE waits for a leader bank before answering
// BANK_NOT_AVAILABLE (consume_worker.rs active_leader_state_with_timeout:
// 50 ms; read in the search index's copy of anza-xyz/agave).
const bankWait = 50 * time.Millisecond

// worker is one of Agave's external consume workers (solECoWorker) or,
// with check set, a check worker of the 4.3/4.4 check queues: it reads
// pack's messages, checks or executes their batches against the bank and
// answers with response arrays it allocates from its own allocator slot.
type worker struct {
	name  string // queue name for errors, e.g. "worker_to_pack 2"
	slot  int    // allocator slot
	abi   bindings.ABI
	check bool // reads a check queue

	in    inQueue
	out   outQueue
	alloc blockAllocator
	mem   []byte // the whole allocator mapping

	bank    *Bank
	audit   *Audit
	stats   *counters
	nsPerCU uint64 // execution time held under account locks
	visit   func(off uint64)
	txs     [bindings.MaxTransactionsPerMessage]txn
	res     [bindings.MaxTransactionsPerMessage]result
	wc      workerCounts
	msgs    uint64
	// drain: an EXECUTE timed out waiting for a bank; until the input
	// queue is seen empty, later EXECUTEs get BANK_NOT_AVAILABLE at once
	// (consume_worker.rs should_drain_executes).
	drain bool
}

func newWorker(name string, slot int, abi bindings.ABI, check bool, in inQueue, out outQueue,
	alloc blockAllocator, mem []byte, bank *Bank, audit *Audit, stats *counters, nsPerCU uint64) *worker {
	w := &worker{name: name, slot: slot, abi: abi, check: check, in: in, out: out, alloc: alloc, mem: mem,
		bank: bank, audit: audit, stats: stats, nsPerCU: nsPerCU}
	w.visit = func(off uint64) { audit.Returned(slot, off) }
	return w
}

// run serves messages until stop is closed or a fatal condition. Its loop
// is Agave 4.0's ExternalWorker::run: clean remote frees, read one
// message, sync the output, answer, commit, finalize.
func (w *worker) run(stop <-chan struct{}) error {
	idle := time.Duration(0)
	for {
		select {
		case <-stop:
			w.alloc.CleanRemoteFrees(w.visit)
			return nil
		default:
		}
		w.alloc.CleanRemoteFrees(w.visit)
		msg, ok := w.in.TryRead()
		if !ok {
			w.drain = false
			w.in.Sync()
			msg, ok = w.in.TryRead()
		}
		if !ok {
			idle = min(max(2*idle, 20*time.Microsecond), time.Millisecond)
			time.Sleep(idle)
			continue
		}
		idle = 0
		w.out.Sync()
		if err := w.handle(msg); err != nil {
			return err
		}
		w.out.Commit()
		w.in.Finalize()
	}
}

// request is a pack message with its flags in one form for every ABI.
type request struct {
	execute      bool
	valid        bool
	hasMax       bool
	maxSlot      uint64
	allOrNothing bool
	status       bool
	feePayer     bool
	lookups      bool
	details      bool
	batch        bindings.SharableTransactionBatchRegion
}

// decode reads a message of the worker's queue and validates it as
// Agave's validate_message does: 1..64 transactions; EXECUTE with only
// execution flags; CHECK with at least one check flag and nothing else
// (consume_worker.rs, karmaol/4.0.3salsa 16a4dce8).
func (w *worker) decode(msg []byte) (request, error) {
	var r request
	if w.abi == bindings.ABI44 && w.check {
		m, err := bindings.DecodePackToCheckWorker(w.abi, msg)
		if err != nil {
			return r, err
		}
		const allowed = bindings.CheckStatusChecks | bindings.CheckLoadFeePayerBalance |
			bindings.CheckLoadAddressLookupTables | bindings.CheckCalculateSchedulingDetails
		r.batch = m.Batch
		r.valid = m.Flags != 0 && m.Flags&^allowed == 0
		r.status = m.Flags&bindings.CheckStatusChecks != 0
		r.feePayer = m.Flags&bindings.CheckLoadFeePayerBalance != 0
		r.lookups = m.Flags&bindings.CheckLoadAddressLookupTables != 0
		r.details = m.Flags&bindings.CheckCalculateSchedulingDetails != 0
	} else {
		m, err := bindings.DecodePackToWorker(msg)
		if err != nil {
			return r, err
		}
		r.batch, r.hasMax, r.maxSlot = m.Batch, true, m.MaxWorkingSlot
		switch {
		case w.abi == bindings.ABI44:
			const allowed = bindings.ExecDropOnFailure | bindings.ExecAllOrNothing
			r.execute = true
			r.valid = m.Flags&^allowed == 0
			r.allOrNothing = m.Flags&bindings.ExecAllOrNothing != 0
		case m.Flags&bindings.PackExecute != 0:
			const allowed = bindings.PackExecute | bindings.PackDropOnFailure | bindings.PackAllOrNothing
			r.execute = true
			r.valid = !w.check && m.Flags&^allowed == 0
			r.allOrNothing = m.Flags&bindings.PackAllOrNothing != 0
		default:
			const allowed = bindings.PackStatusChecks | bindings.PackLoadFeePayerBalance | bindings.PackLoadAddressLookupTables
			r.valid = m.Flags != bindings.PackCheck && m.Flags&^allowed == 0
			r.status = m.Flags&bindings.PackStatusChecks != 0
			r.feePayer = m.Flags&bindings.PackLoadFeePayerBalance != 0
			r.lookups = m.Flags&bindings.PackLoadAddressLookupTables != 0
		}
	}
	n := int(r.batch.NumTransactions)
	if n == 0 || n > bindings.MaxTransactionsPerMessage {
		r.valid = false
	}
	return r, nil
}

// handle answers one message. It returns an error only for a fatal
// condition (output queue full, allocator exhausted).
func (w *worker) handle(msg []byte) error {
	r, err := w.decode(msg)
	w.msgs++
	if err != nil || !r.valid {
		w.stats.add(func(s *Stats) { s.Messages++; s.Invalid++ })
		return w.reply(r.batch, bindings.Invalid, bindings.TransactionResponseRegion{})
	}
	if r.execute {
		w.stats.add(func(s *Stats) { s.Messages++; s.ExecuteMessages++ })
		return w.execute(&r)
	}
	w.stats.add(func(s *Stats) { s.Messages++; s.CheckMessages++ })
	return w.checkBatch(&r)
}

// reply publishes a WorkerToPack answer.
func (w *worker) reply(batch bindings.SharableTransactionBatchRegion, code bindings.ProcessedCode, resp bindings.TransactionResponseRegion) error {
	slot, ok := w.out.Reserve()
	if !ok {
		return fmt.Errorf("%s: %w", w.name, ErrQueueFull)
	}
	m := bindings.WorkerToPack{Batch: batch, ProcessedCode: code, Responses: resp}
	if err := m.Encode(w.abi, slot); err != nil {
		return fmt.Errorf("%s: encode answer: %w", w.name, err)
	}
	return nil
}

// load copies and parses the batch's transactions into w.txs. A region
// outside the allocator mapping counts as a bad region and its
// transaction as a sanitize failure (Agave would read whatever is there).
func (w *worker) load(batch bindings.SharableTransactionBatchRegion) int {
	n := int(batch.NumTransactions)
	bad := uint64(0)
	for i := 0; i < n; i++ {
		t := &w.txs[i]
		reg, err := batch.At(w.mem, i)
		var b []byte
		if err == nil {
			b, err = reg.Bytes(w.mem)
		}
		if err != nil {
			bad++
			t.load(nil, nil, w.bank.fp)
			continue
		}
		t.load(b, w.bank.tables, w.bank.fp)
	}
	if bad > 0 {
		w.stats.add(func(s *Stats) { s.BadRegions += bad })
	}
	return n
}

// execute serves an EXECUTE: it waits up to 50 ms for a leader bank
// (BANK_NOT_AVAILABLE for every transaction otherwise, and at once for the
// EXECUTEs already queued behind it), refuses a bank
// past max_working_slot, executes, holds the account locks for the
// execution time, and answers with an ExecutionResponse per transaction.
func (w *worker) execute(r *request) error {
	slot, active := w.bank.Working()
	for deadline := time.Now().Add(bankWait); !active && !w.drain && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		slot, active = w.bank.Working()
	}
	n := int(r.batch.NumTransactions)
	if w.drain || !active {
		w.drain = true
		for i := 0; i < n; i++ {
			w.res[i] = result{reason: ReasonBankNotAvailable}
		}
		return w.answerExecution(r.batch, 0, n)
	}
	if r.hasMax && slot > r.maxSlot {
		w.stats.add(func(s *Stats) { s.MaxSlotExceeded++ })
		return w.reply(r.batch, bindings.MaxWorkingSlotExceeded, bindings.TransactionResponseRegion{})
	}
	w.load(r.batch)
	txs := w.txs[:n]
	translationFailed := false
	for i := range txs {
		if txs[i].reason != ReasonNone {
			translationFailed = true
		}
	}
	if r.allOrNothing && translationFailed {
		// consume_worker.rs: all-or-nothing with a translation failure is
		// answered without executing.
		for i := range txs {
			w.res[i] = result{reason: txs[i].reason}
			if txs[i].reason == ReasonNone {
				w.res[i].reason = ReasonAllOrNothingBatchFailure
			}
		}
		return w.answerExecution(r.batch, slot, n)
	}
	execSlot := w.bank.execute(txs, r.allOrNothing, w.res[:n])
	if w.nsPerCU > 0 {
		var cus uint64
		for i := range txs {
			if w.res[i].reason == ReasonNone {
				cus += txs[i].cus
			}
		}
		time.Sleep(time.Duration(cus * w.nsPerCU))
	}
	w.bank.release(txs)
	return w.answerExecution(r.batch, execSlot, n)
}

// answerExecution allocates the response array from the worker's slot,
// fills it from w.res and publishes it.
func (w *worker) answerExecution(batch bindings.SharableTransactionBatchRegion, slot uint64, n int) error {
	off, ok := w.alloc.Allocate(n * bindings.ExecutionResponseSize)
	if !ok {
		return fmt.Errorf("%s: %d execution responses: %w", w.name, n, ErrAllocatorExhausted)
	}
	region := bindings.TransactionResponseRegion{Tag: bindings.ExecutionResponseTag,
		NumTransactionResponses: uint8(n), TransactionResponsesOffset: off}
	for i := 0; i < n; i++ {
		res := w.res[i]
		resp := bindings.ExecutionResponse{ExecutionSlot: slot, NotIncludedReason: res.reason}
		if res.reason == ReasonNone {
			resp.CostUnits, resp.FeePayerBalance = res.cost, res.balance
			w.wc.executed++
			w.wc.fees += w.txs[i].fee
			w.wc.cost += res.cost
		}
		w.wc.ni[res.reason]++
		w.wc.nonZero = true
		if err := region.PutExecutionResponse(w.mem, i, resp); err != nil {
			_ = w.alloc.Free(off)
			return fmt.Errorf("%s: write execution response %d at %#x: %w", w.name, i, off, err)
		}
	}
	w.stats.addWorker(&w.wc)
	w.audit.Give(off, BlockResponses, w.slot)
	if err := w.reply(batch, bindings.Processed, region); err != nil {
		w.audit.Take(off)
		_ = w.alloc.Free(off)
		return err
	}
	return nil
}

// checkBatch serves a CHECK against the working bank: parse and sanitize,
// fee-payer balance, lookup-table resolution (the resolved addresses in a
// block of the worker's slot that pack must free), status checks and, in
// ABI44, the scheduling details (fee, prioritization fee, estimated cost).
func (w *worker) checkBatch(r *request) error {
	slot, _ := w.bank.Working()
	if r.hasMax && slot > r.maxSlot {
		w.stats.add(func(s *Stats) { s.MaxSlotExceeded++ })
		return w.reply(r.batch, bindings.MaxWorkingSlotExceeded, bindings.TransactionResponseRegion{})
	}
	n := w.load(r.batch)
	size := bindings.CheckResponseSize(w.abi)
	if n*size > rtsalloc.MaxSize {
		// rts-alloc's largest block is 4096 bytes: Agave's allocation fails
		// and its worker exits the same way.
		return fmt.Errorf("%s: %d check responses of %d bytes exceed the allocator's %d-byte largest block (send at most %d transactions per check): %w",
			w.name, n, size, rtsalloc.MaxSize, rtsalloc.MaxSize/size, ErrAllocatorExhausted)
	}
	off, ok := w.alloc.Allocate(n * size)
	if !ok {
		return fmt.Errorf("%s: %d check responses of %d bytes: %w", w.name, n, size, ErrAllocatorExhausted)
	}
	region := bindings.TransactionResponseRegion{Tag: bindings.CheckResponseTag,
		NumTransactionResponses: uint8(n), TransactionResponsesOffset: off}
	var given [bindings.MaxTransactionsPerMessage]uint64
	ngiven := 0
	fail := func(err error) error {
		_ = w.alloc.Free(off)
		for _, g := range given[:ngiven] {
			w.audit.Take(g)
			_ = w.alloc.Free(g)
		}
		return err
	}
	for i := 0; i < n; i++ {
		t := &w.txs[i]
		var cr bindings.CheckResponse
		if r.status {
			cr.StatusCheckFlags = bindings.StatusRequested
		}
		if r.feePayer {
			cr.FeePayerBalanceFlags = bindings.FeePayerBalanceRequested
		}
		if r.lookups {
			cr.ResolveFlags = bindings.ResolveRequested
		}
		if r.details {
			cr.SchedulingDetailsFlags = bindings.SchedulingDetailsRequested
		}
		c := w.bank.check(t)
		if c.parseFailed {
			cr.ParsingAndSanitizationFlags = bindings.ParseFailed
		} else {
			if r.feePayer {
				cr.FeePayerBalanceFlags |= bindings.FeePayerBalancePerformed
				cr.FeePayerBalance, cr.BalanceSlot = c.balance, c.slot
			}
			if r.lookups {
				cr.ResolveFlags |= bindings.ResolvePerformed
				cr.MinAltDeactivationSlot = ^uint64(0)
				switch {
				case !t.resolved:
					cr.ResolveFlags |= bindings.ResolveFailed
				case t.nloaded > 0:
					keys := t.loadedKeys()
					po, ok := w.alloc.Allocate(len(keys) * 32)
					if !ok {
						return fail(fmt.Errorf("%s: %d resolved pubkeys: %w", w.name, len(keys), ErrAllocatorExhausted))
					}
					pk := bindings.SharablePubkeys{Offset: po, NumPubkeys: uint32(len(keys))}
					dst, err := pk.Bytes(w.mem)
					if err != nil {
						_ = w.alloc.Free(po)
						return fail(fmt.Errorf("%s: resolved pubkeys at %#x: %w", w.name, po, err))
					}
					for j, k := range keys {
						copy(dst[32*j:], k[:])
					}
					given[ngiven] = po
					ngiven++
					w.audit.Give(po, BlockPubkeys, w.slot)
					cr.ResolvedPubkeys = pk
					cr.ResolutionSlot = c.slot
					cr.MinAltDeactivationSlot = t.minDeact
				default:
					cr.ResolutionSlot = c.slot
				}
			}
			if r.status && t.reason == ReasonNone {
				cr.StatusCheckFlags |= bindings.StatusPerformed
				if c.tooOld {
					cr.StatusCheckFlags |= bindings.StatusTooOld
				}
				if c.processed {
					cr.StatusCheckFlags |= bindings.StatusAlreadyProcessed
					cr.IncludedSlot = c.includedSlot
				}
			}
			if r.details {
				if t.reason == ReasonNone {
					cr.SchedulingDetailsFlags |= bindings.SchedulingDetailsPerformed
					cr.TransactionFee, cr.PrioritizationFee, cr.EstimatedCostUnits = t.fee, t.prioFee, t.cost
				} else {
					cr.SchedulingDetailsFlags |= bindings.SchedulingDetailsPerformed | bindings.SchedulingDetailsFailed
				}
			}
		}
		if err := region.PutCheckResponse(w.abi, w.mem, i, cr); err != nil {
			return fail(fmt.Errorf("%s: write check response %d at %#x: %w", w.name, i, off, err))
		}
	}
	w.stats.add(func(s *Stats) { s.Checked += uint64(n) })
	w.audit.Give(off, BlockResponses, w.slot)
	if err := w.reply(r.batch, bindings.Processed, region); err != nil {
		w.audit.Take(off)
		return fail(err)
	}
	return nil
}
