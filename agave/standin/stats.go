package standin

import (
	"sync"

	"github.com/solqos/qos/agave/bindings"
)

// Stats are the stand-in's counters over its lifetime (all sessions).
type Stats struct {
	Sessions uint64 `json:"sessions"` // successful logons

	// Traffic offered to tpu_to_pack.
	Generated       uint64 `json:"generated"`        // packets the simulator made
	SigverifyFailed uint64 `json:"sigverify_failed"` // dropped before tpu_to_pack, as Agave's sigverify would
	Unparsable      uint64 `json:"unparsable"`       // dropped by sigverify: not a transaction
	Deduplicated    uint64 `json:"deduplicated"`     // dropped by dedup
	Votes           uint64 `json:"votes"`            // simple votes fed
	Fed             uint64 `json:"fed"`              // messages published on tpu_to_pack
	Stale           uint64 `json:"stale"`            // fed naming a blockhash the bank no longer knows
	Replayed        uint64 `json:"replayed"`         // fed again after the dedup window (counted in Fed)
	DroppedAlloc    uint64 `json:"dropped_alloc"`    // allocator exhausted: rest of the batch dropped
	DroppedQueue    uint64 `json:"dropped_queue"`    // tpu_to_pack full: rest of the batch dropped

	// Worker messages.
	Messages        uint64 `json:"messages"`
	Invalid         uint64 `json:"invalid"`
	MaxSlotExceeded uint64 `json:"max_working_slot_exceeded"`
	ExecuteMessages uint64 `json:"execute_messages"`
	CheckMessages   uint64 `json:"check_messages"`
	BadRegions      uint64 `json:"bad_regions"` // a batch pointing outside the allocator

	// Transactions.
	Executed    uint64            `json:"executed"` // included
	NotIncluded map[string]uint64 `json:"not_included"`
	Checked     uint64            `json:"checked"`
	Fees        uint64            `json:"fees"`       // lamports paid by included transactions
	CostUnits   uint64            `json:"cost_units"` // of included transactions

	// Memory audit.
	BlocksGiven    uint64 `json:"blocks_given"`
	BlocksReturned uint64 `json:"blocks_returned"`
	Outstanding    int    `json:"outstanding"`
	Undelivered    int    `json:"undelivered"` // payloads still unread in tpu_to_pack at the end
	Leaks          int    `json:"leaks"`
	BadFrees       int    `json:"bad_frees"`
}

// counters is the live form of Stats.
type counters struct {
	mu sync.Mutex
	s  Stats
	ni [reasonSlots]uint64
}

// reasonSlots sizes the per-reason array (every u8 value).
const reasonSlots = 256

// workerCounts is a worker's tally of one message, added at once.
type workerCounts struct {
	executed, checked, fees, cost uint64
	ni                            [reasonSlots]uint32
	nonZero                       bool
}

func (c *counters) addWorker(w *workerCounts) {
	c.mu.Lock()
	c.s.Executed += w.executed
	c.s.Checked += w.checked
	c.s.Fees += w.fees
	c.s.CostUnits += w.cost
	if w.nonZero {
		for i, n := range w.ni {
			c.ni[i] += uint64(n)
		}
	}
	c.mu.Unlock()
	*w = workerCounts{}
}

func (c *counters) add(f func(s *Stats)) {
	c.mu.Lock()
	f(&c.s)
	c.mu.Unlock()
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.NotIncluded = make(map[string]uint64)
	for i, n := range c.ni {
		if n != 0 {
			s.NotIncluded[bindings.NotIncludedReason(i).String()] = n
		}
	}
	return s
}
