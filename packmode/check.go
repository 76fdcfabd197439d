package packmode

import (
	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// The CHECK stage (Config.Check): admitted non-vote transactions wait in
// a FIFO lane and go to the validator's check workers in batches — on
// 4.0–4.2 as PackToWorker messages with check flags on the execution
// workers' queues, on 4.3/4.4 over pack_to_check_worker — asking for the
// status check (already processed, blockhash too old), the fee payer's
// balance and lookup-table resolution. A transaction that passes enters
// the priority queue with its resolved keys, which complete its lock set;
// one that fails ends there, judged as its execution would have been, and
// never takes an execution slot. Each resolved-pubkeys array is freed
// when its transaction ends.
//
// Without Config.Check the stage still runs, for the transactions that
// need it: those with address-table lookups go to CHECK with
// LOAD_ADDRESS_LOOKUP_TABLES alone, because their lock set is unknown
// until the lookups are resolved (pack.ErrUnresolvedLookups), and a batch
// holding accounts the scheduler cannot see would collide with another
// worker's in the validator's account locks (ACCOUNT_IN_USE). Such a
// transaction never executes unresolved: when its CHECK cannot be sent or
// is not processed, it waits in the lane for another (or until its TTL).

// checkFlight is one CHECK batch sent: its array, its transactions'
// slots and where it went (worker index, or −1 for the check queue).
type checkFlight struct {
	arr    uint64
	worker int
	n      int
	slots  [pack.MaxBatch]int32
	inUse  bool
}

// pushCheck appends slot to the check lane (a full lane evicts the new
// transaction: its place is not earned yet).
func (l *Loop) pushCheck(slot int32) {
	if l.cLen == len(l.checkLane) {
		l.end(slot, EndEvicted)
		return
	}
	l.checkLane[(l.cHead+l.cLen)%len(l.checkLane)] = slot
	l.cLen++
	l.txs[slot].state = txChecking
}

// checkStage sends the waiting transactions to CHECK, at most one batch
// per free flight.
func (l *Loop) checkStage() {
	for l.cLen > 0 {
		fi := -1
		for i := range l.checks {
			if !l.checks[i].inUse {
				fi = i
				break
			}
		}
		if fi < 0 {
			return
		}
		f := &l.checks[fi]
		f.n = 0
		for f.n < l.checkBatch && l.cLen > 0 {
			s := l.checkLane[l.cHead]
			l.cHead = (l.cHead + 1) % len(l.checkLane)
			l.cLen--
			if l.expired(&l.txs[s]) {
				l.end(s, EndExpired)
				continue
			}
			f.slots[f.n] = s
			f.n++
		}
		if f.n == 0 {
			return
		}
		if !l.sendCheck(f) {
			// Could not send: back to the lane's head is not possible in
			// a FIFO without a copy; queue them unchecked instead (those
			// whose lookups need resolving wait in the lane).
			for _, s := range f.slots[:f.n] {
				l.unchecked(s)
			}
			return
		}
	}
}

// sendCheck allocates f's array and sends it; false when it cannot.
func (l *Loop) sendCheck(f *checkFlight) bool {
	off, ok := l.alloc.Allocate(f.n * bindings.RegionSize)
	if !ok {
		l.st.AllocFailed++
		return false
	}
	batch := bindings.SharableTransactionBatchRegion{NumTransactions: uint8(f.n), TransactionsOffset: off}
	for i, s := range f.slots[:f.n] {
		t := &l.txs[s]
		if batch.Put(l.mem, i, bindings.SharableTransactionRegion{Offset: t.off, Length: t.length}) != nil {
			l.freeBlock(off)
			l.st.AllocFailed++
			return false
		}
	}
	if l.s.PackToCheck != nil {
		p := l.s.PackToCheck
		b, ok := p.Reserve()
		if !ok {
			l.freeBlock(off)
			l.st.SendFull++
			return false
		}
		if l.abi == bindings.ABI44 {
			_ = bindings.PackToCheckWorker{Flags: l.checkFlags, Batch: batch}.Encode(l.abi, b)
		} else {
			_ = bindings.PackToWorker{Flags: l.checkFlags, MaxWorkingSlot: checkMaxWorkingSlot, Batch: batch}.Encode(b)
		}
		p.Commit()
		f.worker = -1
	} else {
		// Round robin over the execution workers; a worker's ring holds
		// its CHECK batches too, in order with its EXECUTE ones.
		w := l.nextCheckWorker
		l.nextCheckWorker = (l.nextCheckWorker + 1) % len(l.rings)
		r := &l.rings[w]
		p := l.s.Workers[w].PackToWorker
		p.Sync()
		b, ok := p.Reserve()
		if !ok || r.size == len(r.f) {
			l.freeBlock(off)
			l.st.SendFull++
			return false
		}
		_ = bindings.PackToWorker{Flags: l.checkFlags, MaxWorkingSlot: checkMaxWorkingSlot, Batch: batch}.Encode(b)
		p.Commit()
		r.f[(r.head+r.size)%len(r.f)] = flight{arr: off, n: int32(f.n), sent: l.now, check: true}
		r.size++
		f.worker = w
	}
	f.arr = off
	f.inUse = true
	l.st.CheckBatches++
	return true
}

// drainCheckQueue reads the check queue's answers (4.3/4.4).
func (l *Loop) drainCheckQueue() int {
	c := l.s.CheckToPack
	if c == nil {
		return 0
	}
	c.Sync()
	n := 0
	for {
		b, ok := c.TryRead()
		if !ok {
			break
		}
		n++
		m, err := bindings.DecodeWorkerToPack(l.abi, bindings.CheckResponseTag, b)
		if err != nil {
			l.st.BadResponse++
			continue
		}
		l.checkAnswer(m)
	}
	if n > 0 {
		c.Finalize()
	}
	return n
}

// checkAnswer handles the answer to a CHECK batch.
func (l *Loop) checkAnswer(m bindings.WorkerToPack) {
	processed := m.ProcessedCode == bindings.Processed
	resp := m.Responses
	freeResp := processed && resp.NumTransactionResponses > 0
	fi := -1
	for i := range l.checks {
		if l.checks[i].inUse && l.checks[i].arr == m.Batch.TransactionsOffset {
			fi = i
			break
		}
	}
	if fi < 0 {
		l.st.UnknownBatch++
		if freeResp {
			l.freeBlock(resp.TransactionResponsesOffset)
		}
		return
	}
	f := &l.checks[fi]
	f.inUse = false
	ok := processed && int(resp.NumTransactionResponses) == f.n && resp.Tag == bindings.CheckResponseTag
	if !ok {
		if processed {
			l.st.BadResponse++
		}
		// Unchecked: it goes on to execution without the check (or
		// waits for another when its lookups need resolving).
		for _, s := range f.slots[:f.n] {
			l.unchecked(s)
		}
	}
	for i := 0; ok && i < f.n; i++ {
		s := f.slots[i]
		cr, err := resp.CheckResponse(l.abi, l.mem, i)
		if err != nil {
			l.st.BadResponse++
			l.unchecked(s)
			continue
		}
		l.checked(s, cr)
	}
	if freeResp {
		l.freeBlock(resp.TransactionResponsesOffset)
	}
	l.freeBlock(f.arr)
}

// checkMaxWorkingSlot is the max_working_slot of a CHECK sent as a
// PackToWorker (4.0–4.3): a check needs no leader bank, so no slot may
// exceed it. Agave's check_batch answers MAX_WORKING_SLOT_EXCEEDED when
// the working bank's slot is past the message's (consume_worker.rs
// external::ExternalWorker::check_batch, read at karmaol/4.0.3salsa
// 089be60e, an Agave 4.0 fork); 0 there would refuse every check.
const checkMaxWorkingSlot = ^uint64(0)

// needsResolve reports whether the transaction v parsed has address-table
// lookup indexes, so that its lock set is known only once CHECK resolved
// them.
func needsResolve(v *score.View) bool {
	nw, nr := v.NumLookupAccounts()
	return nw+nr > 0
}

// unchecked takes back a transaction whose CHECK was not sent or not
// answered: it goes on to execution without the check, unless its
// lookups are still unresolved, in which case it waits in the lane for
// another CHECK.
func (l *Loop) unchecked(s int32) {
	t := &l.txs[s]
	if t.lookups && t.resolved.NumPubkeys == 0 {
		l.st.CheckRetried++
		l.pushCheck(s)
		return
	}
	l.st.CheckSkipped++
	l.enqueue(s)
}

// checked applies one CheckResponse: the transaction ends (judged as its
// execution would have been) or enters the queue with its resolved keys.
func (l *Loop) checked(s int32, cr bindings.CheckResponse) {
	t := &l.txs[s]
	if cr.ResolvedPubkeys.NumPubkeys > 0 {
		if t.resolved.NumPubkeys > 0 { // resolved again: the old array is ours
			l.freeBlock(t.resolved.Offset)
		}
		t.resolved = cr.ResolvedPubkeys // ours now: freed when t ends
	}
	var reason bindings.NotIncludedReason
	switch {
	case cr.ParsingAndSanitizationFlags&bindings.ParseFailed != 0:
		reason = bindings.ReasonSanitizeFailure
	case cr.StatusCheckFlags&bindings.StatusAlreadyProcessed != 0:
		reason = bindings.ReasonAlreadyProcessed
	case cr.StatusCheckFlags&(bindings.StatusTooOld|bindings.StatusInvalidNonce) != 0:
		reason = bindings.ReasonBlockhashNotFound
	case cr.FeePayerBalanceFlags&bindings.FeePayerBalancePerformed != 0 && cr.FeePayerBalance < t.fee:
		reason = bindings.ReasonInsufficientFundsForFee
	case cr.ResolveFlags&bindings.ResolveFailed != 0:
		reason = bindings.ReasonAddressLookupTableNotFound
	}
	if reason == bindings.ReasonNone {
		t.checkedOK = true
		l.enqueue(s)
		return
	}
	l.st.CheckFailed++
	l.st.Reasons[reason]++
	var bal uint64
	if cr.FeePayerBalanceFlags&bindings.FeePayerBalancePerformed != 0 {
		bal = cr.FeePayerBalance
	}
	l.learn(t, pack.ExecResult{Reason: reason, FeePayerBalance: bal})
	l.end(s, EndNotIncluded)
}

// resolvedKeys returns t's resolved writable and readonly keys (empty
// without a check or lookups; both nil when the region is unusable).
func (l *Loop) resolvedKeys(t *txRec, data []byte) (w, r []byte) {
	if t.resolved.NumPubkeys == 0 {
		return nil, nil
	}
	all, err := t.resolved.Bytes(l.mem)
	if err != nil {
		return nil, nil
	}
	nw := 0
	it := l.view.Lookups()
	var lk score.Lookup
	for it.Next(data, &lk) {
		nw += len(lk.Writable(data))
	}
	if nw*bindings.PubkeySize > len(all) {
		return nil, nil
	}
	return all[:nw*bindings.PubkeySize], all[nw*bindings.PubkeySize:]
}
