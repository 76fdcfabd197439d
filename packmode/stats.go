package packmode

import (
	"math/bits"
	"time"

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
// (bucket bounds within 19% of each other).
type Hist [256]uint64

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
	h[histBucket(uint64(ns))&255]++
}

// Count is the number of values.
func (h *Hist) Count() uint64 {
	var n uint64
	for _, v := range h {
		n += v
	}
	return n
}

// Quantile returns an upper bound of the q-quantile (the top of its
// bucket).
func (h *Hist) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	want := max(uint64(q*float64(n)+0.5), 1)
	var acc uint64
	for i, v := range h {
		acc += v
		if acc >= want {
			return time.Duration(histUpper(i))
		}
	}
	return time.Duration(1<<63 - 1)
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
	// CostUsed is the block cost reserved or charged in the current slot;
	// SlotLimit its limit.
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
	// execution result read.
	ToDispatch  Hist
	ToExecution Hist
}

// Finished sums the payloads that ended.
func (s *Stats) Finished() uint64 {
	var n uint64
	for _, v := range s.Ends {
		n += v
	}
	return n
}
