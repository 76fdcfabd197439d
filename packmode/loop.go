package packmode

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/agave/session"
	"github.com/solqos/qos/channels/rtsalloc"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// transaction states
const (
	txFree uint8 = iota
	txQueued
	txVoteLane
	txInFlight
	txChecking
)

// txRec is one held transaction: where its payload is and what admission
// learnt of it. Pointer-free.
type txRec struct {
	off     uint64 // payload offset in the allocator mapping
	length  uint32
	gen     uint32 // bumped on every reuse of the slot (scheduler ids)
	state   uint8
	flags   bindings.TpuFlags
	ip      [16]byte
	payer   [32]byte
	fee     uint64
	cost    uint64
	cuPrice uint64
	seq     uint64 // arrival order
	blocked uint32 // Loop.epoch+1 when the scheduler last found it blocked
	score   float64
	arrived int64 // loop clock, ns
	// resolved is the CHECK stage's resolved lookup keys (ours: freed
	// when the transaction ends); checkedOK that it passed the check.
	resolved  bindings.SharablePubkeys
	checkedOK bool
	// lookups: it has address-table lookup indexes (its lock set needs
	// resolved keys before it may execute).
	lookups bool
}

// flight is one batch sent to a worker.
type flight struct {
	ref   pack.BatchRef
	arr   uint64 // the batch array's offset
	n     int32
	sent  int64
	check bool // a CHECK batch (its transactions are in Loop.checks)
}

// workerRing is the FIFO of one worker's batches in flight (a worker
// answers its batches in order).
type workerRing struct {
	f          []flight
	head, size int
}

// maxBlock is rts-alloc's largest block (its biggest size class).
const maxBlock = 4096

// errSessionLost wraps every reason a session ends other than shutdown.
var errSessionLost = errors.New("agave session lost")

// Loop drives one session. Build it with newLoop; not safe for
// concurrent use: one goroutine runs it.
type Loop struct {
	cfg   Config
	s     *session.Session
	abi   bindings.ABI
	mem   []byte
	alloc *rtsalloc.Allocator
	sched *pack.Scheduler
	exec  uint16 // EXECUTE flags word

	txs   []txRec
	free  []int32 // free txs slots, a stack
	q     txQueue
	votes []int32 // vote lane ring
	vHead int
	vLen  int
	seq   uint64

	tpuBuf   []bindings.TpuToPack // one drain's messages
	view     score.View           // lock sets and lookups of dispatched transactions
	eval     score.Evaluator      // admission: the sidecar's per-packet inspection
	keys     pack.Keys
	results  [pack.MaxBatch]pack.ExecResult
	deferred []int32
	rings    []workerRing

	// The CHECK stage (check.go); checks is empty without it.
	checkLane       []int32
	cHead, cLen     int
	checks          []checkFlight
	checkFlags      uint16
	checkBatch      int // transactions per CHECK batch
	nextCheckWorker int

	st        *Stats
	start     time.Time // the loop clock's origin
	now       int64     // loop clock at the start of this pass, ns
	lastSched int64     // loop clock of the last scheduling round
	// epoch counts what can unblock a transaction (a batch answered, a
	// new slot); lastEpoch and lastReceived are the epoch and arrivals
	// at the last scheduling round.
	epoch        uint32
	lastEpoch    uint32
	lastReceived uint64
	// wall0 is the unix ns of start: a row's ObservedAt is wall0 + now.
	wall0 int64
	meter meters // worker busy time and slot cost (stats.go)
}

// newLoop sizes every table for s.
func newLoop(cfg Config, s *session.Session, st *Stats) (*Loop, error) {
	if len(s.Allocators) == 0 {
		return nil, fmt.Errorf("pack mode on %s: the session has no allocator handle (log on with allocator_handles ≥ 1)", s.Socket)
	}
	nw := len(s.Workers)
	if nw == 0 || nw > pack.MaxWorkers {
		return nil, fmt.Errorf("pack mode on %s: %d workers (want 1..%d)", s.Socket, nw, pack.MaxWorkers)
	}
	pp := pack.Params{Workers: nw, Depth: cfg.Depth, BatchSize: cfg.BatchSize, Budget: cfg.Budget,
		IntraBatchConflicts: !cfg.StrictBatchLocks, EndCutoff: uint8(min(cfg.EndCutoff, 101))}
	if !cfg.KeepBatchesInSlot {
		pp.Slack = 1
	}
	sched, err := pack.NewScheduler(pp)
	if err != nil {
		return nil, fmt.Errorf("pack mode on %s: %w", s.Socket, err)
	}
	exec, err := bindings.ExecuteFlags(s.Profile.ABI, false, false)
	if err != nil {
		return nil, fmt.Errorf("pack mode on %s: execute flags of %s: %w", s.Socket, s.Profile.Name, err)
	}
	inflight := nw * (cfg.Depth + 1) * cfg.BatchSize
	n := cfg.QueueCapacity + cfg.VoteCapacity + inflight
	// Without Config.Check the CHECK stage still resolves the lookups of
	// the transactions that have some (check.go: their lock set).
	c := bindings.Check{LoadAddressLookupTables: true}
	if cfg.Check {
		c.StatusChecks, c.LoadFeePayerBalance = true, true
	}
	checkFlags, err := bindings.CheckFlags(s.Profile.ABI, c)
	if err != nil {
		return nil, fmt.Errorf("pack mode on %s: check flags of %s: %w", s.Socket, s.Profile.Name, err)
	}
	nchecks := nw * cfg.Depth
	n += cfg.QueueCapacity + nchecks*pack.MaxBatch
	l := &Loop{
		cfg: cfg, s: s, abi: s.Profile.ABI, mem: s.Memory(), alloc: s.Allocators[0], sched: sched, exec: exec,
		txs:      make([]txRec, n),
		free:     make([]int32, n),
		q:        newTxQueue(cfg.QueueCapacity),
		votes:    make([]int32, cfg.VoteCapacity),
		deferred: make([]int32, 0, inflight+cfg.BatchSize),
		tpuBuf:   make([]bindings.TpuToPack, cfg.DrainBatch),
		rings:    make([]workerRing, nw),
		st:       st,
		eval:     score.Evaluator{Seed: cfg.Seed, Fees: cfg.Fees, Limits: cfg.Limits},

		checks:     make([]checkFlight, nchecks),
		checkFlags: checkFlags,
		// A worker allocates the batch's response array as one block,
		// and rts-alloc's largest block is 4 KiB: 64 responses of 64 B
		// fit (4.0–4.3), of 96 B only 42 (4.4) (the stand-in enforces
		// Agave's allocation; agave v4.4 scheduler-bindings CheckResponse).
		checkBatch: min(cfg.BatchSize, maxBlock/max(bindings.CheckResponseSize(s.Profile.ABI), 1)),
	}
	l.checkLane = make([]int32, cfg.QueueCapacity)
	for i := range l.free {
		l.free[i] = int32(n - 1 - i)
	}
	for w := range l.rings {
		// Depth EXECUTE batches, one more for votes, and the CHECK
		// batches a worker may carry on 4.0–4.2.
		l.rings[w].f = make([]flight, cfg.Depth+2+nchecks)
	}
	return l, nil
}

// --- payload ownership ---

// freeBlock frees a block of the validator's allocator (a payload, a
// response or resolved-keys array, or one of our batch arrays); a refused
// offset is counted, never followed.
func (l *Loop) freeBlock(off uint64) {
	if err := l.alloc.Free(off); err != nil {
		l.st.FreeErrors++
	}
}

// end frees slot's payload and the slot, counting where it ended.
func (l *Loop) end(slot int32, why int) {
	t := &l.txs[slot]
	if t.state == txFree { // a stale reference: never free twice
		l.st.DoubleEnd++
		return
	}
	l.freeBlock(t.off)
	if t.resolved.NumPubkeys > 0 {
		l.freeBlock(t.resolved.Offset)
		t.resolved = bindings.SharablePubkeys{}
	}
	t.state = txFree
	t.gen++
	l.free = append(l.free, slot)
	l.st.Ends[why]++
	l.st.Held--
}

// --- admission ---

// drainTPU takes at most DrainBatch messages from tpu_to_pack. The
// messages are copied out and the read index published before any of
// their payloads is freed: a payload is ours once its message is read,
// and the validator may only see it come back after that.
func (l *Loop) drainTPU() int {
	c := l.s.TpuToPack
	c.Sync()
	n := 0
	for n < len(l.tpuBuf) {
		b, ok := c.TryRead()
		if !ok {
			break
		}
		m, err := bindings.DecodeTpuToPack(b)
		if err != nil { // the consumer's elements are 40 bytes: not reached
			continue
		}
		l.tpuBuf[n] = m
		n++
	}
	if n == 0 {
		return 0
	}
	c.Finalize()
	for i := range n {
		l.admit(l.tpuBuf[i])
	}
	return n
}

// admit decides one TPU message; its payload is ours from here.
func (l *Loop) admit(m bindings.TpuToPack) {
	l.st.Received++
	l.st.Held++
	if len(l.free) == 0 { // not reached: the table holds queue + lane + in flight
		l.st.Held--
		l.freeBlock(m.Transaction.Offset)
		l.st.Ends[EndRejectedLow]++
		return
	}
	slot := l.free[len(l.free)-1]
	l.free = l.free[:len(l.free)-1]
	t := &l.txs[slot]
	*t = txRec{off: m.Transaction.Offset, length: m.Transaction.Length, gen: t.gen, state: txQueued,
		flags: m.Flags, ip: m.SrcAddr, seq: l.seq, arrived: l.now}
	l.seq++
	data, err := m.Transaction.Bytes(l.mem)
	if err != nil {
		l.st.BadRegion++
		l.end(slot, EndRejected)
		return
	}
	vote := m.Flags&bindings.TpuIsSimpleVote != 0
	// The same inspection as the sidecar's and qos-cli explain's: parse,
	// sanitize, Agave's pre-execution limits, compute budget and fee.
	// The source address is IPv4-mapped in TpuToPack; the record form
	// (4 bytes for IPv4) is what the sidecar hands it.
	info, r := l.eval.InspectTx(data, netip.AddrFrom16(m.SrcAddr).Unmap(), 0)
	if r != score.OK {
		l.st.Rejects[r]++
		if r.Parse() {
			if l.cfg.Policy == PolicyModel {
				l.cfg.Model.Penalize(model.IPv6(m.SrcAddr), 0) // unparsable: what it claimed is unknown
				l.st.Penalized++
			}
			if l.cfg.Rows != nil && l.cfg.Rows.Penalties() {
				row := metastore.PenaltyRow(metastore.RowUnparsable, l.st.Rows+l.st.RowsDropped,
					l.wall0+l.now, metastore.PackChannel, m.SrcAddr, l.cfg.Seed)
				l.offer(&row)
			}
		}
		l.end(slot, EndRejected)
		return
	}
	b := info.Budget
	cost, err := pack.EstimateCost(l.eval.View(), data, b, vote, l.cfg.Cost)
	if err != nil {
		l.st.Rejects[score.RejectInstructions]++ // not reached: the view parsed data
		l.end(slot, EndRejected)
		return
	}
	t.fee, t.cost, t.cuPrice, t.payer = b.Fee, cost.Sum(), b.CUPrice, info.Payer
	if vote {
		l.st.Votes++
		l.st.Admitted++
		l.pushVote(slot)
		return
	}
	l.st.Admitted++
	t.lookups = needsResolve(l.eval.View())
	if l.cfg.Check || t.lookups {
		l.pushCheck(slot)
		return
	}
	if !l.enqueue(slot) {
		l.st.Admitted--
		l.st.Ends[EndEvicted]--
		l.st.Ends[EndRejectedLow]++
	}
}

// enqueue scores slot and pushes it into the priority queue; a full
// queue evicts its lowest entry, or the newcomer when it is not above it
// (false: slot has ended as evicted).
func (l *Loop) enqueue(slot int32) bool {
	t := &l.txs[slot]
	t.state = txQueued
	t.score = l.score(t)
	ok, out := l.q.push(node{key: orderKey(t.score), ord: ^t.seq, enq: t.arrived, slot: slot})
	if !ok {
		l.end(slot, EndEvicted)
		return false
	}
	if out >= 0 {
		l.end(out, EndEvicted)
	}
	return true
}

// pushVote appends slot to the vote lane, dropping the oldest vote when
// the lane is full.
func (l *Loop) pushVote(slot int32) {
	if l.vLen == len(l.votes) {
		old := l.votes[l.vHead]
		l.vHead = (l.vHead + 1) % len(l.votes)
		l.vLen--
		l.end(old, EndEvicted)
	}
	l.votes[(l.vHead+l.vLen)%len(l.votes)] = slot
	l.vLen++
	l.txs[slot].state = txVoteLane
}

func (l *Loop) popVote() (int32, bool) {
	if l.vLen == 0 {
		return 0, false
	}
	s := l.votes[l.vHead]
	l.vHead = (l.vHead + 1) % len(l.votes)
	l.vLen--
	return s, true
}

// score ranks t under the policy: model(IP, fee payer) × fee / cost,
// fee / cost, or 0 (FIFO: arrival order).
func (l *Loop) score(t *txRec) float64 {
	switch l.cfg.Policy {
	case PolicyModel:
		return score.Score(l.cfg.Model.Forward(model.IPv6(t.ip), model.Signer(t.payer)), t.fee, t.cost)
	case PolicyFeeOnly:
		return score.Score(1, t.fee, t.cost)
	}
	return 0
}

// requeue puts a deferred or retried transaction back, keeping its
// arrival order and time; rescore (after an execution result) ranks it
// again, as the model may have learnt since.
func (l *Loop) requeue(slot int32, rescore bool) {
	t := &l.txs[slot]
	if l.expired(t) {
		l.end(slot, EndExpired)
		return
	}
	l.st.Requeued++
	if t.flags&bindings.TpuIsSimpleVote != 0 {
		l.pushVote(slot)
		return
	}
	t.state = txQueued
	if rescore {
		t.score = l.score(t)
	}
	ok, out := l.q.push(node{key: orderKey(t.score), ord: ^t.seq, enq: t.arrived, slot: slot})
	if !ok {
		l.end(slot, EndEvicted)
		return
	}
	if out >= 0 {
		l.end(out, EndEvicted)
	}
}

func (l *Loop) expired(t *txRec) bool { return l.now-t.arrived > int64(l.cfg.QueueTTL) }

// expire frees up to limit of the lowest queued entries that are too old
// and the oldest votes that are.
func (l *Loop) expire(limit int) {
	for k := 0; k < limit; k++ {
		m, ok := l.q.min()
		if !ok || l.now-m.enq <= int64(l.cfg.QueueTTL) {
			break
		}
		l.q.popMin()
		l.end(m.slot, EndExpired)
	}
	for k := 0; k < limit && l.vLen > 0; k++ {
		s := l.votes[l.vHead]
		if !l.expired(&l.txs[s]) {
			break
		}
		l.popVote()
		l.end(s, EndExpired)
	}
}
