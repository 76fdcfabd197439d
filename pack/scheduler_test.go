package pack

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/solqos/qos/agave/bindings"
)

// simTx is a transaction of the simulated workload.
type simTx struct {
	keys *Keys
	cost uint64
	vote bool
}

// flight is a batch the simulated validator has received.
type flight struct {
	ref     BatchRef
	ids     []uint64
	maxSlot uint64
}

// sim is a stand-in validator for the scheduler: it receives flushed
// batches, checks that no two batches on different workers conflict and
// that no batch conflicts inside, executes each worker's batches in order
// against a bank that enforces the block and per-account limits, and
// reports results back.
type sim struct {
	t        *testing.T
	rng      *rand.Rand
	s        *Scheduler
	slot     uint64
	limit    uint64
	bankUsed uint64
	acctUsed map[Pubkey]uint64
	queues   [][]flight
	txs      map[uint64]simTx
	pending  []uint64 // the priority queue, front first
	included int
	dropped  int
	maxUsed  uint64
	expired  int // batches answered MAX_WORKING_SLOT_EXCEEDED
}

func newSim(t *testing.T, p Params, seed uint64) *sim {
	t.Helper()
	s, err := NewScheduler(p)
	if err != nil {
		t.Fatal(err)
	}
	m := &sim{
		t: t, rng: rand.New(rand.NewPCG(seed, 99)), s: s, slot: 100, limit: p.Budget.BlockLimit,
		acctUsed: map[Pubkey]uint64{}, queues: make([][]flight, p.Workers), txs: map[uint64]simTx{},
	}
	m.progress()
	return m
}

func (m *sim) progress() {
	m.s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: m.slot, NextLeaderSlot: m.slot,
		LeaderRangeEnd: m.slot + 3, RemainingCostUnits: m.limit - m.bankUsed})
}

func (m *sim) nextSlot() {
	m.slot++
	m.bankUsed = 0
	clear(m.acctUsed)
	m.progress()
}

// randomTx makes a transaction touching 1–4 accounts drawn from a
// skewed distribution: accounts 0–7 are hot.
func (m *sim) randomTx(id uint64) simTx {
	ks := new(Keys)
	if m.rng.IntN(20) == 0 { // a vote: writes one of 300 vote accounts
		k := key(5_000_000 + uint64(m.rng.IntN(300)))
		ks.AddWritable(&k)
		return simTx{keys: ks, cost: 3428, vote: true}
	}
	payer := key(1_000_000 + id)
	ks.AddWritable(&payer)
	for range 1 + m.rng.IntN(4) {
		var n uint64
		if m.rng.IntN(3) == 0 {
			n = uint64(m.rng.IntN(8))
		} else {
			n = 8 + uint64(m.rng.IntN(5000))
		}
		k := key(n)
		if m.rng.IntN(2) == 0 {
			ks.AddWritable(&k)
		} else {
			ks.AddReadonly(&k)
		}
	}
	return simTx{keys: ks, cost: 1000 + uint64(m.rng.IntN(300_000))}
}

// round offers the first 400 pending transactions once (the rest wait
// in the queue; beyond 3000 the oldest expire), then flushes.
func (m *sim) round() {
	if n := len(m.pending); n > 3000 {
		for _, id := range m.pending[:n-3000] {
			delete(m.txs, id)
		}
		m.dropped += n - 3000
		m.pending = m.pending[n-3000:]
	}
	var keep []uint64
	offer := m.pending[:min(len(m.pending), 400)]
	rest := m.pending[len(offer):]
	midSlot := m.rng.IntN(20) == 0 // the slot moves on in the middle of a round
	for j, id := range offer {
		if midSlot && j == len(offer)/2 {
			m.nextSlot()
		}
		tx := m.txs[id]
		d := m.s.Try(id, tx.keys, tx.cost, tx.vote)
		switch {
		case d.Outcome == Scheduled:
		case d.Outcome.Deferred():
			keep = append(keep, id)
		default:
			m.dropped++
			delete(m.txs, id)
		}
	}
	m.pending = append(keep, rest...)
	for _, ref := range m.s.Flush() {
		info, err := m.s.Batch(ref)
		if err != nil {
			m.t.Fatal(err)
		}
		ids := append([]uint64(nil), m.s.TxIDs(ref)...)
		if len(ids) != info.Len || len(ids) == 0 || len(ids) > m.s.p.BatchSize {
			m.t.Fatalf("batch of %d ids, info %+v", len(ids), info)
		}
		m.queues[info.Worker] = append(m.queues[info.Worker], flight{ref, ids, info.MaxWorkingSlot})
	}
	m.checkConflicts()
}

// checkConflicts fails when an account written by one in-flight batch is
// used by a batch on another worker, or by another transaction of the
// same batch.
func (m *sim) checkConflicts() {
	writers := map[Pubkey]int{}
	readers := map[Pubkey]WorkerSet{}
	for w, q := range m.queues {
		for _, f := range q {
			inBatch := map[Pubkey]bool{} // written in this batch
			used := map[Pubkey]uint64{}  // any use in this batch, by tx id
			for _, id := range f.ids {
				ks := m.txs[id].keys
				for i := range ks.Len() {
					k := *ks.Key(i)
					if prev, ok := used[k]; ok && prev != id && (ks.Writable(i) || inBatch[k]) {
						m.t.Fatalf("batch on worker %d: transactions %d and %d conflict on %x", w, prev, id, k[:4])
					}
					used[k] = id
					if ks.Writable(i) {
						inBatch[k] = true
						if o, ok := writers[k]; ok && o != w {
							m.t.Fatalf("account %x written by workers %d and %d at once", k[:4], o, w)
						}
						writers[k] = w
					} else {
						readers[k] |= only(w)
					}
				}
			}
		}
	}
	for k, w := range writers {
		if r := readers[k] &^ only(w); r != 0 {
			m.t.Fatalf("account %x written on worker %d and read on workers %b at once", k[:4], w, r)
		}
	}
}

// execute runs the oldest batch of worker w, as Agave's worker would.
func (m *sim) execute(w int) {
	f := m.queues[w][0]
	m.queues[w] = m.queues[w][1:]
	if m.slot > f.maxSlot {
		m.expired++
		if err := m.s.Finish(f.ref, nil); err != nil {
			m.t.Fatal(err)
		}
		m.pending = append(m.pending, f.ids...)
		return
	}
	results := make([]ExecResult, len(f.ids))
	for i, id := range f.ids {
		tx := m.txs[id]
		r := ExecResult{Slot: m.slot}
		switch m.rng.IntN(10) {
		case 0:
			r.Reason = bindings.ReasonInsufficientFundsForFee
		default:
			r.CostUnits = tx.cost / 2 * uint64(1+m.rng.IntN(2)) // actual ≤ estimate
			if m.bankUsed+r.CostUnits > m.limit {
				m.t.Fatalf("slot %d: block would exceed its limit: %d + %d > %d", m.slot, m.bankUsed, r.CostUnits, m.limit)
			}
			m.bankUsed += r.CostUnits
			m.maxUsed = max(m.maxUsed, m.bankUsed)
			for j := range tx.keys.NumWritable() {
				k := *tx.keys.Key(j)
				m.acctUsed[k] += r.CostUnits
				if m.acctUsed[k] > m.s.p.Budget.AccountLimit {
					m.t.Fatalf("account %x over its limit: %d", k[:4], m.acctUsed[k])
				}
			}
		}
		results[i] = r
		if v := Judge(r, 5000, tx.cost); v.Retry {
			m.pending = append(m.pending, id)
		} else {
			if v.Blame == Credit {
				m.included++
			} else {
				m.dropped++
			}
			// delete after Finish: the checker still needs the keys
			defer delete(m.txs, id)
		}
	}
	if err := m.s.Finish(f.ref, results); err != nil {
		m.t.Fatal(err)
	}
}

// TestSchedulerRandomNoConflictsWithinBudget runs a randomized workload
// with hot accounts through the scheduler and the stand-in validator:
// no conflicting batches ever run at once, no batch conflicts inside, no
// block or account limit is exceeded, and everything is released at the
// end.
func TestSchedulerRandomNoConflictsWithinBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		workers int
		depth   int
		batch   int
		limit   uint64
		acct    uint64
	}{
		{"4 workers, depth 2, tight block", 4, 2, 64, 20_000_000, 4_000_000},
		{"1 worker, depth 3, small batches", 1, 3, 8, 8_000_000, 2_000_000},
		{"6 workers, depth 1", 6, 1, 16, 50_000_000, 24_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams(tc.workers)
			p.Depth, p.BatchSize = tc.depth, tc.batch
			p.Budget.BlockLimit, p.Budget.AccountLimit, p.Budget.VoteReserve = tc.limit, tc.acct, tc.limit/20
			m := newSim(t, p, uint64(tc.workers*100+tc.depth))
			next := uint64(0)
			for r := 0; r < 400; r++ {
				for range m.rng.IntN(120) {
					next++
					m.txs[next] = m.randomTx(next)
					m.pending = append(m.pending, next)
				}
				m.round()
				// Execute a random number of batches, each worker in order.
				for range m.rng.IntN(2 * tc.workers) {
					w := m.rng.IntN(tc.workers)
					if len(m.queues[w]) > 0 {
						m.execute(w)
					}
				}
				switch m.rng.IntN(8) {
				case 0:
					m.nextSlot()
				case 1, 2:
					m.progress()
				}
			}
			// Drain: stop offering, run every batch left.
			for w := range m.queues {
				for len(m.queues[w]) > 0 {
					m.execute(w)
				}
			}
			if n := m.s.Locks().Len(); n != 0 {
				t.Errorf("%d accounts still locked after every batch finished", n)
			}
			if f := m.s.Budget().InFlight(); f != 0 {
				t.Errorf("%d cost units still reserved after every batch finished", f)
			}
			st := m.s.Stats()
			if st.Batches != st.Finished {
				t.Errorf("%d batches flushed, %d finished", st.Batches, st.Finished)
			}
			if m.included == 0 || st.Outcomes[DeferConflict]+st.Outcomes[DeferBusy] == 0 || m.expired == 0 {
				t.Errorf("workload too easy: included %d, batches past their slot %d, stats %+v", m.included, m.expired, st)
			}
			t.Logf("included %d, dropped %d, left %d, batches past their slot %d, max block use %d of %d, stats %+v",
				m.included, m.dropped, len(m.pending), m.expired, m.maxUsed, m.limit, st)
		})
	}
}

// TestSchedulerBudgetNeverExceeded fills a block with reservations: the
// sum reserved never passes the remaining units, and an account's
// reservations never pass its limit.
func TestSchedulerBudgetNeverExceeded(t *testing.T) {
	p := DefaultParams(4)
	p.Depth = 16
	p.IntraBatchConflicts = true
	p.Budget.VoteReserve = 0
	s, err := NewScheduler(p)
	if err != nil {
		t.Fatal(err)
	}
	const remaining = 5_000_000
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 7, RemainingCostUnits: remaining})
	rng := rand.New(rand.NewPCG(1, 2))
	var reserved uint64
	perAcct := map[Pubkey]uint64{}
	hot := key(0)
	for id := uint64(0); id < 2000; id++ {
		ks := new(Keys)
		payer := key(10 + id)
		ks.AddWritable(&payer)
		if rng.IntN(2) == 0 {
			ks.AddWritable(&hot)
		}
		cost := uint64(10_000 + rng.IntN(90_000))
		d := s.Try(id, ks, cost, false)
		if d.Outcome == Scheduled {
			reserved += cost
			for i := range ks.NumWritable() {
				perAcct[*ks.Key(i)] += cost
			}
		}
		if reserved > remaining {
			t.Fatalf("reserved %d > remaining %d", reserved, remaining)
		}
		if perAcct[hot] > p.Budget.AccountLimit {
			t.Fatalf("hot account reserved %d > %d", perAcct[hot], p.Budget.AccountLimit)
		}
		if id%100 == 99 {
			s.Flush()
		}
	}
	if reserved < remaining-100_000 {
		t.Errorf("block left underfilled: %d of %d", reserved, remaining)
	}
	if got := s.Budget().Available(false); got != remaining-reserved {
		t.Errorf("Available = %d, want %d", got, remaining-reserved)
	}
	if s.Stats().Outcomes[DeferBlockCost] == 0 {
		t.Error("no transaction was deferred for block cost")
	}
}

// TestSchedulerAccountLimit: transactions writing one account stop at
// its per-block limit while others still go.
func TestSchedulerAccountLimit(t *testing.T) {
	p := DefaultParams(2)
	p.Depth = 16
	p.IntraBatchConflicts = true
	p.Budget.AccountLimit = 1_000_000
	p.Budget.VoteReserve = 0
	s, _ := NewScheduler(p)
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 50_000_000})
	hot := key(1)
	var scheduled int
	for id := uint64(0); id < 20; id++ {
		ks := keysW([]uint64{1000 + id}, nil)
		ks.AddWritable(&hot)
		if s.Try(id, ks, 100_000, false).Outcome == Scheduled {
			scheduled++
		}
	}
	if scheduled != 10 {
		t.Errorf("scheduled %d writers of the hot account at 100k each under a 1M limit, want 10", scheduled)
	}
	if got := s.Stats().Outcomes[DeferAccountCost]; got != 10 {
		t.Errorf("DeferAccountCost %d, want 10", got)
	}
	if s.Try(99, keysW([]uint64{5}, nil), 100_000, false).Outcome != Scheduled {
		t.Error("a transaction on another account was not scheduled")
	}
	if u := s.Budget().AccountUnits(&hot); u != 1_000_000 {
		t.Errorf("hot account charged %d, want 1000000", u)
	}
	// Settling with the actual (half) cost frees room on the account.
	refs := append([]BatchRef(nil), s.Flush()...)
	for _, ref := range refs {
		info, _ := s.Batch(ref)
		res := make([]ExecResult, info.Len)
		for i := range res {
			res[i] = ExecResult{CostUnits: 50_000}
		}
		if err := s.Finish(ref, res); err != nil {
			t.Fatal(err)
		}
	}
	if u := s.Budget().AccountUnits(&hot); u != 500_000 {
		t.Errorf("hot account after settling %d, want 500000", u)
	}
}

// TestSchedulerVoteReserve: non-votes that arrived first cannot take the
// block space reserved for votes; votes still land up to the reserve.
func TestSchedulerVoteReserve(t *testing.T) {
	p := DefaultParams(4)
	p.Depth = 16
	p.Budget.VoteReserve = 100 * 3428
	s, _ := NewScheduler(p)
	const remaining = 2_000_000
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: remaining})
	var nonVote uint64
	for id := uint64(0); id < 1000; id++ {
		if s.Try(id, keysW([]uint64{id}, nil), 10_000, false).Outcome == Scheduled {
			nonVote += 10_000
		}
	}
	if nonVote > remaining-p.Budget.VoteReserve {
		t.Fatalf("non-votes took %d, more than the %d left outside the reserve", nonVote, remaining-p.Budget.VoteReserve)
	}
	if s.Stats().Outcomes[DeferBlockCost] == 0 {
		t.Fatal("no non-vote was deferred: the block was not full")
	}
	votes := 0
	for id := uint64(5000); id < 5200; id++ {
		// Each vote writes its own vote account.
		if s.Try(id, keysW([]uint64{id, id + 10_000}, nil), 3428, true).Outcome == Scheduled {
			votes++
		}
	}
	if votes < 100 {
		t.Errorf("only %d votes landed; the reserve holds 100", votes)
	}
	// Votes are capped by the vote limit too.
	p.Budget.VoteLimit = 10 * 3428
	p.Budget.VoteReserve = 0
	s2, _ := NewScheduler(p)
	s2.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: remaining})
	votes = 0
	for id := uint64(0); id < 50; id++ {
		if s2.Try(id, keysW([]uint64{id}, nil), 3428, true).Outcome == Scheduled {
			votes++
		}
	}
	if votes != 10 || s2.Stats().Outcomes[DeferVoteCost] != 40 {
		t.Errorf("votes %d (want 10), DeferVoteCost %d (want 40)", votes, s2.Stats().Outcomes[DeferVoteCost])
	}
	// Through the slot the reserve shrinks: at 90 % only a tenth of it is
	// kept, and a new slot keeps all of it again.
	p.Budget.VoteLimit, p.Budget.VoteReserve = VoteCostLimit, 100*3428
	s3, _ := NewScheduler(p)
	s3.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: remaining})
	s3.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: remaining, CurrentSlotProgress: 90})
	if got, want := s3.Budget().Available(false), remaining-10*3428; got != uint64(want) {
		t.Errorf("available at 90 %%: %d, want %d", got, want)
	}
	s3.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 2, RemainingCostUnits: remaining})
	if got, want := s3.Budget().Available(false), remaining-100*3428; got != uint64(want) {
		t.Errorf("available in a new slot: %d, want %d", got, want)
	}
}

func TestSchedulerLeaderState(t *testing.T) {
	s, _ := NewScheduler(DefaultParams(2))
	ks := keysW([]uint64{1}, nil)
	if d := s.Try(1, ks, 1000, false); d.Outcome != DeferNotLeader {
		t.Errorf("before any progress: %v", d.Outcome)
	}
	s.OnProgress(Progress{LeaderState: bindings.LeaderStarting, CurrentSlot: 10, RemainingCostUnits: 1 << 30})
	if d := s.Try(1, ks, 1000, false); d.Outcome != DeferNotLeader {
		t.Errorf("leader starting: %v", d.Outcome)
	}
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 10, LeaderRangeEnd: 13, RemainingCostUnits: 1 << 30})
	if d := s.Try(1, ks, 1000, false); d.Outcome != Scheduled {
		t.Fatalf("leader ready: %v", d.Outcome)
	}
	// The slot moves on before Flush: the batch keeps slot 10.
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 11, LeaderRangeEnd: 13, RemainingCostUnits: 1 << 30})
	refs := s.Flush()
	if len(refs) != 1 {
		t.Fatalf("%d batches", len(refs))
	}
	info, _ := s.Batch(refs[0])
	if info.MaxWorkingSlot != 10 {
		t.Errorf("max working slot %d, want 10", info.MaxWorkingSlot)
	}
	if s.Stats().StaleSlotSealed != 1 {
		t.Errorf("StaleSlotSealed %d", s.Stats().StaleSlotSealed)
	}
	// The new slot's budget does not carry the old reservation.
	if f := s.Budget().InFlight(); f != 0 {
		t.Errorf("in flight in the new slot: %d", f)
	}
	if err := s.Finish(refs[0], nil); err != nil {
		t.Fatal(err)
	}
	// Slack and the window end bound max_working_slot.
	var l Leader
	l.Slack = 5
	l.Update(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 20, NextLeaderSlot: 20, LeaderRangeEnd: 23})
	if got := l.MaxWorkingSlot(); got != 23 {
		t.Errorf("MaxWorkingSlot with slack 5 in window ending 23: %d", got)
	}
	l.Slack = 1
	if got := l.MaxWorkingSlot(); got != 21 {
		t.Errorf("MaxWorkingSlot with slack 1: %d", got)
	}
	l.Update(Progress{LeaderState: bindings.NotLeader, CurrentSlot: 30, NextLeaderSlot: 40, LeaderRangeEnd: 43})
	if l.CanExecute() || l.SlotsUntilLeader() != 10 {
		t.Errorf("not leader: CanExecute %v, SlotsUntilLeader %d", l.CanExecute(), l.SlotsUntilLeader())
	}
	// EndCutoff stops EXECUTE late in the window's last slot only.
	for _, tc := range []struct {
		cutoff, progress uint8
		slot             uint64
		want             bool
	}{
		{0, 99, 43, true},   // no cutoff
		{97, 96, 43, true},  // last slot, before the cutoff
		{97, 97, 43, false}, // last slot, at it
		{97, 99, 42, true},  // not the last slot: the batch may run in the next
	} {
		l := Leader{EndCutoff: tc.cutoff}
		l.Update(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: tc.slot, CurrentSlotProgress: tc.progress, NextLeaderSlot: 40, LeaderRangeEnd: 43})
		if got := l.CanExecute(); got != tc.want {
			t.Errorf("cutoff %d, slot %d at %d %%: CanExecute %v, want %v", tc.cutoff, tc.slot, tc.progress, got, tc.want)
		}
	}
}

func TestSchedulerBatchesAndWorkers(t *testing.T) {
	t.Run("spread over workers", func(t *testing.T) {
		p := DefaultParams(4)
		s, _ := NewScheduler(p)
		s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 1 << 40})
		per := make([]int, 4)
		for id := uint64(0); id < 400; id++ {
			d := s.Try(id, keysW([]uint64{id}, []uint64{1_000_000}), 1000, false)
			if d.Outcome != Scheduled {
				t.Fatalf("tx %d: %v", id, d.Outcome)
			}
			per[d.Worker]++
		}
		for w, n := range per {
			if n != 100 {
				t.Errorf("worker %d got %d of 400", w, n)
			}
		}
		refs := s.Flush()
		if len(refs) != 8 { // 100 per worker: one full batch of 64 and one of 36
			t.Errorf("%d batches, want 8", len(refs))
		}
	})
	t.Run("conflict starts a new batch on the same worker", func(t *testing.T) {
		p := DefaultParams(2)
		s, _ := NewScheduler(p)
		s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 1 << 40})
		a := s.Try(1, keysW([]uint64{7}, nil), 1000, false)
		b := s.Try(2, keysW([]uint64{7}, nil), 1000, false)
		if a.Outcome != Scheduled || b.Outcome != Scheduled || a.Worker != b.Worker {
			t.Fatalf("decisions %+v %+v: want both on one worker", a, b)
		}
		if s.Stats().SealedConflict != 1 {
			t.Errorf("SealedConflict %d", s.Stats().SealedConflict)
		}
		c := s.Try(3, keysW([]uint64{7}, nil), 1000, false)
		if c.Outcome != DeferBusy {
			t.Errorf("third writer with depth 2 used up: %v", c.Outcome)
		}
		if d := s.Try(4, keysW([]uint64{8}, nil), 1000, false); d.Outcome != Scheduled || d.Worker == a.Worker {
			t.Errorf("independent tx: %+v", d)
		}
		// A vote may open one batch beyond the depth: the vote lane.
		if d := s.Try(5, keysW([]uint64{7}, nil), 3428, true); d.Outcome != Scheduled || d.Worker != a.Worker {
			t.Errorf("vote writing the busy account: %+v, want scheduled on worker %d", d, a.Worker)
		}
		if d := s.Try(6, keysW([]uint64{7}, nil), 3428, true); d.Outcome != DeferBusy {
			t.Errorf("second conflicting vote beyond depth+1: %v", d.Outcome)
		}
		if n := len(s.Flush()); n != 4 {
			t.Errorf("%d batches, want 4", n)
		}
	})
	t.Run("cross-worker conflict defers", func(t *testing.T) {
		p := DefaultParams(2)
		s, _ := NewScheduler(p)
		s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 1 << 40})
		a := s.Try(1, keysW([]uint64{1}, nil), 1000, false) // worker 0
		b := s.Try(2, keysW([]uint64{2}, nil), 1000, false) // worker 1
		if a.Worker == b.Worker {
			t.Fatalf("expected two workers: %+v %+v", a, b)
		}
		if d := s.Try(3, keysW([]uint64{1, 2}, nil), 1000, false); d.Outcome != DeferConflict {
			t.Errorf("tx writing both: %v", d.Outcome)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		s, _ := NewScheduler(DefaultParams(1))
		s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 1 << 40})
		if d := s.Try(1, keysW([]uint64{1}, nil), AccountCostLimit+1, false); d.Outcome != RefuseTooCostly {
			t.Errorf("over the account limit: %v", d.Outcome)
		}
		ks := new(Keys)
		for i := range MaxTxLocks + 1 {
			k := key(uint64(i))
			ks.AddReadonly(&k)
		}
		if d := s.Try(2, ks, 1000, false); d.Outcome != RefuseTooManyLocks {
			t.Errorf("129 keys: %v", d.Outcome)
		}
	})
}

func TestSchedulerFinishErrors(t *testing.T) {
	s, _ := NewScheduler(DefaultParams(1))
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 1 << 40})
	s.Try(1, keysW([]uint64{1}, []uint64{2}), 1000, false)
	s.Try(2, keysW([]uint64{3}, []uint64{2}), 1000, false)
	refs := append([]BatchRef(nil), s.Flush()...)
	if len(refs) != 1 {
		t.Fatalf("%d batches", len(refs))
	}
	if err := s.Finish(BatchRef{Index: 99}, nil); !errors.Is(err, ErrBadBatch) {
		t.Errorf("unknown batch: %v", err)
	}
	if err := s.Finish(BatchRef{Index: refs[0].Index, Serial: refs[0].Serial + 1}, nil); !errors.Is(err, ErrBadBatch) {
		t.Errorf("stale serial: %v", err)
	}
	if err := s.Finish(refs[0], make([]ExecResult, 3)); !errors.Is(err, ErrResultCount) {
		t.Errorf("3 results for 2: %v", err)
	}
	if s.Locks().Len() != 0 || s.Budget().InFlight() != 0 {
		t.Errorf("a bad result count leaked: %d locks, %d units", s.Locks().Len(), s.Budget().InFlight())
	}
	if err := s.Finish(refs[0], nil); !errors.Is(err, ErrBadBatch) {
		t.Errorf("second Finish: %v", err)
	}
	if s.TxIDs(refs[0]) != nil {
		t.Error("TxIDs of a finished batch")
	}
	if _, err := NewScheduler(Params{Workers: 65, Depth: 1, BatchSize: 1}); err == nil {
		t.Error("65 workers accepted")
	}
}

func TestSchedulerTryAll(t *testing.T) {
	s, _ := NewScheduler(DefaultParams(2))
	s.OnProgress(Progress{LeaderState: bindings.LeaderReady, CurrentSlot: 1, RemainingCostUnits: 1 << 30})
	keys := []Keys{*keysW([]uint64{1}, nil), *keysW([]uint64{2}, nil), *keysW([]uint64{1, 2}, nil)}
	cands := []Candidate{
		{ID: 10, Cost: 1000, Keys: 0},
		{ID: 11, Cost: 1000, Keys: 1},
		{ID: 12, Cost: 1000, Keys: 2}, // writes what 10 and 11 hold on two workers
		{ID: 13, Cost: 1000, Keys: 7}, // no such lock set
	}
	out := make([]Decision, len(cands))
	if n := s.TryAll(cands, keys, out); n != 2 {
		t.Errorf("scheduled %d, want 2", n)
	}
	want := []Outcome{Scheduled, Scheduled, DeferConflict, RefuseTooManyLocks}
	for i, d := range out {
		if d.Outcome != want[i] {
			t.Errorf("candidate %d: %v, want %v", i, d.Outcome, want[i])
		}
	}
	if out[0].Worker == out[1].Worker {
		t.Errorf("independent candidates on one worker: %+v", out)
	}
}
