package packmode

import (
	"errors"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// drainProgress reads every progress message; it reports how many.
func (l *Loop) drainProgress() int {
	c := l.s.Progress
	c.Sync()
	n := 0
	for {
		b, ok := c.TryRead()
		if !ok {
			break
		}
		n++
		m, err := bindings.DecodeProgress(l.abi, b)
		if err != nil {
			continue
		}
		l.progressSeen(m.CurrentSlot, m.LeaderState, m.RemainingCostUnits)
		before := l.sched.Leader().Progress().CurrentSlot
		l.sched.OnProgress(pack.Progress{
			LeaderState: m.LeaderState, CurrentSlotProgress: m.CurrentSlotProgress,
			TargetBankTimeMs: m.TargetBankTimeMs, Epoch: m.Epoch, CurrentSlot: m.CurrentSlot,
			NextLeaderSlot: m.NextLeaderSlot, LeaderRangeEnd: m.LeaderRangeEnd,
			RemainingCostUnits:                 m.RemainingCostUnits,
			RemainingAllocatedAccountsDataSize: m.RemainingAllocatedAccountsDataSize,
			LatestBlockhash:                    m.LatestBlockhash,
		})
		if m.CurrentSlot != before {
			l.st.Slots++
			l.epoch++
		}
	}
	if n > 0 {
		c.Finalize()
		l.st.Progress += uint64(n)
	}
	return n
}

// schedule offers votes, then the best queued transactions, to the
// scheduler while it is leader-ready, and sends the batches.
func (l *Loop) schedule() {
	if !l.sched.CanExecute() {
		return
	}
	// Batch for throughput: build batches when a worker is idle, when a
	// full batch is waiting, or when the last round is MaxWait old;
	// otherwise a loop faster than arrivals would send batches of one
	// and fill every worker's depth with them.
	waited := l.now-l.lastSched >= int64(l.cfg.MaxWait)
	if !l.idleWorker() && l.q.Len()+l.vLen < l.cfg.BatchSize && !waited {
		return
	}
	// Nothing changed since the last round (no answer, no progress, no
	// arrival): it would find the same transactions blocked.
	if l.epoch == l.lastEpoch && l.st.Received == l.lastReceived && !waited {
		return
	}
	if l.q.Len()+l.vLen == 0 || l.vLen == 0 && l.allBusy() {
		return
	}
	// A full block takes nothing until the next slot.
	votes := l.vLen
	if b := l.sched.Budget(); b.Available(false) == 0 && (votes == 0 || b.Available(true) == 0) {
		return
	}
	l.lastSched, l.lastEpoch, l.lastReceived = l.now, l.epoch, l.st.Received
	limit := len(l.rings) * l.cfg.Depth * l.cfg.BatchSize
	l.deferred = l.deferred[:0]
	misses := 0
	for k := 0; k < limit && misses < l.cfg.Lookahead; k++ {
		// Every waiting vote first, once each; then the queue by score.
		var slot int32
		if votes > 0 {
			slot, _ = l.popVote()
			votes--
		} else {
			nd, ok := l.q.popMax()
			if !ok {
				break
			}
			slot = nd.slot
		}
		t := &l.txs[slot]
		if l.expired(t) {
			l.end(slot, EndExpired)
			continue
		}
		if t.blocked == l.epoch+1 {
			// Blocked by locks or worker depth since nothing changed:
			// skip it without parsing it again.
			l.deferred = append(l.deferred, slot)
			misses++
			continue
		}
		data, err := bindings.SharableTransactionRegion{Offset: t.off, Length: t.length}.Bytes(l.mem)
		if err == nil && l.view.Parse(data) == score.OK {
			rw, rr := l.resolvedKeys(t, data)
			err = l.keys.FromView(&l.view, data, rw, rr)
		} else if err == nil {
			err = pack.ErrNoTransaction
		}
		if err != nil {
			if l.keys.Overflow() {
				l.st.Outcomes[pack.RefuseTooManyLocks]++
				l.end(slot, EndRefused)
				continue
			}
			if errors.Is(err, pack.ErrUnresolvedLookups) {
				// Its lock set is unknown (lookups not, or not fully,
				// resolved): resolve them before it may execute.
				if t.resolved.NumPubkeys > 0 {
					l.freeBlock(t.resolved.Offset)
					t.resolved = bindings.SharablePubkeys{}
				}
				t.lookups = true
				l.st.CheckRetried++
				l.pushCheck(slot)
				continue
			}
			l.st.BadRegion++ // the bytes changed under us since admission
			l.end(slot, EndRejected)
			continue
		}
		id := uint64(slot) | uint64(t.gen)<<32
		d := l.sched.Try(id, &l.keys, t.cost, t.flags&bindings.TpuIsSimpleVote != 0)
		l.st.Outcomes[d.Outcome]++
		switch {
		case d.Outcome == pack.Scheduled:
			t.state = txInFlight
			misses = 0
		case d.Outcome.Deferred():
			// Blocked (its accounts' worker is full, a conflict, the
			// budget): look further down, up to Lookahead misses in a
			// row, as a greedy scheduler skips blocked transactions (a
			// hot account's queue must not stall the rest).
			l.deferred = append(l.deferred, slot)
			if t.flags&bindings.TpuIsSimpleVote == 0 {
				misses++
			}
			if d.Outcome == pack.DeferBusy || d.Outcome == pack.DeferConflict {
				t.blocked = l.epoch + 1
			}
		default:
			l.end(slot, EndRefused)
		}
	}
	for _, slot := range l.deferred {
		l.requeue(slot, false)
		l.st.Requeued--
	}
	for _, ref := range l.sched.Flush() {
		l.send(ref)
	}
}

// idleWorker reports whether some worker has no batch in flight.
func (l *Loop) idleWorker() bool {
	for i := range l.rings {
		if l.rings[i].size == 0 {
			return true
		}
	}
	return false
}

// allBusy reports whether every worker has Depth batches in flight (only
// a vote could still go, in its lane's extra batch).
func (l *Loop) allBusy() bool {
	for i := range l.rings {
		if l.rings[i].size < l.cfg.Depth {
			return false
		}
	}
	return true
}

// send allocates ref's batch array, fills it and sends it to its worker;
// when it cannot, the batch is finished as unprocessed and requeued.
func (l *Loop) send(ref pack.BatchRef) {
	info, err := l.sched.Batch(ref)
	if err != nil {
		return
	}
	ids := l.sched.TxIDs(ref)
	w := info.Worker
	r := &l.rings[w]
	off, ok := l.alloc.Allocate(len(ids) * bindings.RegionSize)
	if !ok {
		l.st.AllocFailed++
		l.unsent(ref, ids)
		return
	}
	batch := bindings.SharableTransactionBatchRegion{NumTransactions: uint8(len(ids)), TransactionsOffset: off}
	for i, id := range ids {
		t := &l.txs[int32(uint32(id))]
		if batch.Put(l.mem, i, bindings.SharableTransactionRegion{Offset: t.off, Length: t.length}) != nil {
			l.st.AllocFailed++ // the allocator gave a block outside the mapping
			l.freeBlock(off)
			l.unsent(ref, ids)
			return
		}
	}
	p := l.s.Workers[w].PackToWorker
	p.Sync()
	slotBuf, ok := p.Reserve()
	if !ok || r.size == len(r.f) {
		l.st.SendFull++
		l.freeBlock(off)
		l.unsent(ref, ids)
		return
	}
	_ = bindings.PackToWorker{Flags: l.exec, MaxWorkingSlot: info.MaxWorkingSlot, Batch: batch}.Encode(slotBuf)
	p.Commit()
	r.f[(r.head+r.size)%len(r.f)] = flight{ref: ref, arr: off, n: int32(len(ids)), sent: l.now}
	r.size++
	l.st.Batches++
	l.st.BatchTxs += uint64(len(ids))
	l.st.WorkerBatches[w]++
	// Dispatch latency on a fresh reading of the clock (l.now is the
	// pass's start: arrivals of this pass would read 0).
	sent := int64(time.Since(l.start))
	for _, id := range ids {
		l.st.ToDispatch.add(sent - l.txs[int32(uint32(id))].arrived)
	}
}

// unsent takes back a batch that was never sent.
func (l *Loop) unsent(ref pack.BatchRef, ids []uint64) {
	l.deferred = l.deferred[:0]
	for _, id := range ids {
		l.deferred = append(l.deferred, int32(uint32(id)))
	}
	_ = l.sched.Finish(ref, nil)
	for _, s := range l.deferred {
		l.requeue(s, false)
	}
}

// drainWorkers reads every answer of every worker.
func (l *Loop) drainWorkers() int {
	n := 0
	for w := range l.s.Workers {
		c := l.s.Workers[w].WorkerToPack
		c.Sync()
		k := 0
		for {
			b, ok := c.TryRead()
			if !ok {
				break
			}
			k++
			m, err := bindings.DecodeWorkerToPack(l.abi, bindings.ExecutionResponseTag, b)
			if err != nil {
				l.st.BadResponse++
				continue
			}
			l.answer(w, m)
		}
		if k > 0 {
			c.Finalize()
			n += k
		}
	}
	return n
}

// answer handles one worker answer: results, learning, frees.
func (l *Loop) answer(w int, m bindings.WorkerToPack) {
	processed := m.ProcessedCode == bindings.Processed
	resp := m.Responses
	// The response array is ours once the batch was processed.
	freeResp := processed && resp.NumTransactionResponses > 0
	r := &l.rings[w]
	idx := -1
	for i := 0; i < r.size; i++ {
		if r.f[(r.head+i)%len(r.f)].arr == m.Batch.TransactionsOffset {
			idx = i
			break
		}
	}
	if idx < 0 {
		l.st.UnknownBatch++
		if freeResp {
			l.freeBlock(resp.TransactionResponsesOffset)
		}
		return
	}
	f := r.f[(r.head+idx)%len(r.f)]
	// Remove it, keeping the others in order (normally idx == 0).
	for i := idx; i > 0; i-- {
		r.f[(r.head+i)%len(r.f)] = r.f[(r.head+i-1)%len(r.f)]
	}
	r.head = (r.head + 1) % len(r.f)
	r.size--
	l.workerAnswered(w, f.sent)
	if f.check {
		l.checkAnswer(m)
		return
	}

	ids := l.sched.TxIDs(f.ref)
	n := len(ids)
	results := l.results[:0]
	if processed && int(resp.NumTransactionResponses) == n && resp.Tag == bindings.ExecutionResponseTag {
		for i := range n {
			er, err := resp.ExecutionResponse(l.mem, i)
			if err != nil {
				l.st.BadResponse++
				results = l.results[:0]
				break
			}
			results = append(results, pack.ExecResult{Slot: er.ExecutionSlot, Reason: er.NotIncludedReason,
				CostUnits: er.CostUnits, FeePayerBalance: er.FeePayerBalance})
		}
	} else if processed {
		l.st.BadResponse++
	}
	if !processed {
		l.st.Unprocessed++
	}
	// Copy the slots out before Finish recycles the batch.
	l.deferred = l.deferred[:0]
	for _, id := range ids {
		l.deferred = append(l.deferred, int32(uint32(id)))
	}
	_ = l.sched.Finish(f.ref, results)
	l.epoch++ // locks and depth were released
	if freeResp {
		l.freeBlock(resp.TransactionResponsesOffset)
	}
	l.freeBlock(f.arr)
	for i, slot := range l.deferred {
		t := &l.txs[slot]
		var v pack.Verdict
		if len(results) == n {
			l.st.Reasons[results[i].Reason]++
			v = l.learn(t, results[i])
		} else {
			v = pack.JudgeUnprocessed(m.ProcessedCode)
		}
		l.st.ToExecution.add(l.now - t.arrived)
		switch {
		case v.Blame == pack.Credit:
			if t.flags&bindings.TpuIsSimpleVote != 0 {
				l.st.VotesLanded++
			}
			l.end(slot, EndIncluded)
		case v.Retry:
			l.requeue(slot, true)
		default:
			l.end(slot, EndNotIncluded)
		}
	}
}
