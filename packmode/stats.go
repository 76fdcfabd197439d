package packmode

import (
	"math/bits"
	"time"

	"github.com/solqos/qos/agave/bindings"
	"github.com/solqos/qos/model"
	"github.com/solqos/qos/pack"
	"github.com/solqos/qos/score"
)

// Where a transaction's payload ended: every payload received ends in
// exactly one of these (or is still held).
const (
	EndRejected    = iota // admission: did not parse, bad budget, bad region
	EndRejectedLow        // the full queue held nothing lower
	EndEvicted            // pushed out of the full queue by a better one
	EndExpired            // older than the TTL before it could execute
	EndRefused            // the scheduler can never schedule it (locks, cost)
	EndIncluded           // executed and included in a block
	EndNotIncluded        // executed, not included, not worth retrying
	EndShutdown           // still queued when the session ended
	NumEnds
)

var endNames = [NumEnds]string{"rejected", "rejected_low", "evicted", "expired", "refused",
	"included", "not_included", "shutdown"}

// EndName returns the end's metric label.
func EndName(e int) string { return endNames[e] }

// Hist is a latency histogram in ns with four buckets per power of two
// (bucket bounds within 19% of each other), and the sum of its values.
// A Stats' histograms count from the Runner's start; Since gives one
// interval's.
type Hist struct {
	n   [256]uint64
	sum uint64 // ns
}

// histBucket returns the bucket of v: 4×bits.Len64(v) plus the two bits
// after the leading one.
func histBucket(v uint64) int {
	n := bits.Len64(v)
	if n <= 2 {
		return int(v)
	}
	return 4*n + int(v>>(n-3))&3
}

// histUpper is the largest value of bucket b.
func histUpper(b int) uint64 {
	if b < 12 { // values 0..3 use buckets 0..3; 4..11 stay empty
		return uint64(min(b, 3))
	}
	n := b / 4
	sub := uint64(b % 4)
	return (4+sub+1)<<(n-3) - 1
}

func (h *Hist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.n[histBucket(uint64(ns))&255]++
	h.sum += uint64(ns)
}

// Count is the number of values.
func (h *Hist) Count() uint64 {
	var n uint64
	for _, v := range h.n {
		n += v
	}
	return n
}

// Sum is the sum of the values.
func (h *Hist) Sum() time.Duration { return time.Duration(h.sum) }

// Quantile returns an upper bound of the q-quantile (the top of its
// bucket); 0 when h is empty.
func (h *Hist) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	want := max(uint64(q*float64(n)+0.5), 1)
	var acc uint64
	for i, v := range h.n {
		acc += v
		if acc >= want {
			return time.Duration(histUpper(i))
		}
	}
	return time.Duration(1<<63 - 1)
}

// Since returns the values h gained after prev, an earlier copy of the
// same cumulative histogram: the histogram of that interval alone.
func (h *Hist) Since(prev *Hist) Hist {
	var d Hist
	for i := range h.n {
		d.n[i] = h.n[i] - prev.n[i]
	}
	d.sum = h.sum - prev.sum
	return d
}

// The bounds of the Prometheus histograms: one bucket per power of two
// from 2^promFirst ns (about 1 µs) to 2^promLast ns (about 34 s, past
// any queue TTL). Each bound is the top of a Hist bucket, so the counts
// are exact.
const (
	promFirst = 10
	promLast  = 35
)

// promBuckets returns h as a Prometheus histogram's cumulative buckets:
// upper bound in seconds (2^k − 1 ns: the largest whole ns below 2^k) →
// values at most that.
func (h *Hist) promBuckets() map[float64]uint64 {
	out := make(map[float64]uint64, promLast-promFirst+1)
	var acc uint64
	next := promFirst
	for i, v := range h.n {
		acc += v
		// Bucket 4k+3 is the last of those holding [2^(k-1), 2^k).
		if i%4 == 3 && i/4 == next {
			out[float64(uint64(1)<<next-1)/1e9] = acc
			if next++; next > promLast {
				break
			}
		}
	}
	return out
}

// Stats are the loop's counters, totals over every session of a Runner.
// A plain value: copying it allocates nothing.
type Stats struct {
	Sessions     uint64
	Received     uint64 // tpu_to_pack messages read
	Votes        uint64 // of which simple votes
	VotesLanded  uint64 // votes included in a block
	Admitted     uint64 // entered the queue (or the vote lane)
	Requeued     uint64 // deferred or retried back into the queue
	Ends         [NumEnds]uint64
	Rejects      [score.NumRejects]uint64
	BadRegion    uint64      // payload region outside the mapping
	Outcomes     [16]uint64  // pack.Outcome of every Try
	Reasons      [256]uint64 // not_included_reason of every execution result
	Batches      uint64      // sent to workers
	BatchTxs     uint64
	Unprocessed  uint64 // batches answered INVALID or MAX_WORKING_SLOT_EXCEEDED
	UnknownBatch uint64 // worker answers naming no batch in flight
	BadResponse  uint64 // response arrays outside the mapping or of the wrong length
	FreeErrors   uint64 // frees the allocator refused (bad or foreign offsets)
	AllocFailed  uint64 // batch arrays the allocator could not give
	SendFull     uint64 // batches not sent: pack_to_worker full
	Learned      uint64 // observations given to the model
	DoubleEnd    uint64 // a transaction ended twice (a bug: the second free is skipped)
	CheckBatches uint64 // CHECK batches sent
	CheckFailed  uint64 // transactions the CHECK stage ended (reason in Reasons)
	CheckSkipped uint64 // transactions queued unchecked (CHECK could not be sent or answered)
	CheckRetried uint64 // transactions with unresolved lookups sent to CHECK again (never executed unresolved)
	Penalized    uint64 // unparsable transactions charged to their IP
	Rows         uint64 // metastore rows handed over (Config.Rows)
	RowsDropped  uint64 // metastore rows dropped: no free batch in the hand-off
	Progress     uint64 // progress messages read
	Slots        uint64 // slot changes seen
	Held         int64  // payloads held now (queued, in the vote lane or in flight)
	LocksHeld    int    // accounts locked by in-flight batches now
	InFlight     int    // batches in flight now
	QueueLen     int
	VoteLen      int
	// CostUsed is the block cost reserved by batches in flight in the
	// current slot; SlotLimit the block limit: the scheduler's cap, or
	// the validator's (as progress reports it) when lower.
	CostUsed  uint64
	SlotLimit uint64
	// WorkerBatches counts batches sent per worker (utilisation).
	WorkerBatches [pack.MaxWorkers]uint64
	// LiveOwnBlocks is the number of blocks (batch and check arrays) our
	// allocator slot has handed out and not seen freed, as the allocator
	// counts them: at most InFlight while batches are out, 0 when idle;
	// anything above InFlight is a leak.
	LiveOwnBlocks int
	// ToDispatch is arrival → sent to a worker; ToExecution arrival →
	// execution result read. Cumulative since the Runner started (the
	// Prometheus histograms); Runner.Window has the last interval's.
	ToDispatch  Hist
	ToExecution Hist
	// WorkerBusy is, per worker, the time in ns it had at least one of
	// our batches out (sent, not yet answered: queued in pack_to_worker
	// or executing). Its growth over an interval divided by the
	// interval's length is the worker's utilisation as the scheduler
	// sees it.
	WorkerBusy [pack.MaxWorkers]int64
	// SlotCostUsed is the block cost of the current leader slot as the
	// validator's progress messages report it (0 outside leader slots):
	// its block limit minus the slot's lowest remaining_cost_units. The
	// validator's block limit is taken as the largest
	// remaining_cost_units seen while LEADER_READY (a leader slot's first
	// message comes before its bank has executed anything).
	SlotCostUsed uint64
	// LeaderSlots counts the leader slots that ended (a slot counts when
	// some progress message said LEADER_READY in it); LeaderSlotCost sums
	// their block cost as SlotCostUsed last read it. Their ratio over
	// SlotLimit is the mean block fill.
	LeaderSlots    uint64
	LeaderSlotCost uint64
	// HasModel says Model holds the model's figures (policy model): its
	// table sizes, evictions, newcomer factor and observation counts as
	// of the last publish.
	HasModel bool
	Model    model.Stats
}

// LeakedBlocks is the batch and check arrays the allocator counts as ours
// and live beyond the batches in flight: 0 unless an array was not freed
// (above 0) or was freed while its batch was still counted in flight
// (below 0).
func (s *Stats) LeakedBlocks() int { return s.LiveOwnBlocks - s.InFlight }

// meters is the loop's per-session bookkeeping behind WorkerBusy and the
// slot cost figures.
type meters struct {
	answered   [pack.MaxWorkers]int64 // loop clock of each worker's last answer
	limit      uint64                 // largest remaining_cost_units seen while LEADER_READY
	slot       uint64                 // the slot of the last progress message
	slotLeader bool                   // some progress message said LEADER_READY in it
	slotLow    uint64                 // its lowest remaining_cost_units then
}

// slotUsed is the current slot's block cost as reported (0 outside
// leader slots).
func (m *meters) slotUsed() uint64 {
	if !m.slotLeader || m.slotLow > m.limit {
		return 0
	}
	return m.limit - m.slotLow
}

// workerAnswered accounts a worker's batch sent at sent (loop clock) and
// answered in this pass. A worker answers its batches in order, so the
// time it was busy is the union of [sent, answer] over its batches: each
// answer adds the time since the later of its send and the previous
// answer.
func (l *Loop) workerAnswered(w int, sent int64) {
	if w < 0 || w >= len(l.meter.answered) {
		return
	}
	from := max(sent, l.meter.answered[w])
	if l.now > from {
		l.st.WorkerBusy[w] += l.now - from
	}
	l.meter.answered[w] = l.now
}

// progressSeen meters one progress message's slot and remaining cost
// units: the block cost of a leader slot is what the block limit lacks
// at its lowest remaining_cost_units (read while LEADER_READY).
func (l *Loop) progressSeen(slot uint64, state bindings.LeaderState, remaining uint64) {
	m := &l.meter
	if slot != m.slot {
		if m.slotLeader {
			l.st.LeaderSlots++
			l.st.LeaderSlotCost += m.slotUsed()
		}
		m.slot, m.slotLeader = slot, false
	}
	if state == bindings.LeaderReady {
		m.limit = max(m.limit, remaining)
		if !m.slotLeader || remaining < m.slotLow {
			m.slotLow = remaining
		}
		m.slotLeader = true
	}
}

// snapshotMeters refreshes the gauges of Stats the meters and the model
// give (part of snapshot).
func (l *Loop) snapshotMeters() {
	l.st.SlotCostUsed = l.meter.slotUsed()
	if l.meter.limit > 0 { // the validator's, when below the scheduler's cap
		l.st.SlotLimit = min(l.st.SlotLimit, l.meter.limit)
	}
	if l.cfg.Model != nil {
		l.st.HasModel = true
		l.st.Model = l.cfg.Model.Stats() // O(1): lengths, counters, one shrink
	}
}

// Finished sums the payloads that ended.
func (s *Stats) Finished() uint64 {
	var n uint64
	for _, v := range s.Ends {
		n += v
	}
	return n
}
