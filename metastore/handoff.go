package metastore

import "time"

// batch is a preallocated run of rows travelling from the loop to the
// writer. The Handoff owns every batch; at any moment each one is either the
// loop's current batch, waiting in the full queue, held by the writer, or
// on the free list.
type batch struct {
	rows []Row
	n    int
}

// HandoffConfig sizes the hand-off. Memory is BatchRows × Batches × ~150 B.
type HandoffConfig struct {
	// BatchRows is the number of rows in a batch (default 4096).
	BatchRows int
	// Batches is the number of preallocated batches (default 64). The writer
	// may be busy for up to its write or connect timeout; Batches × BatchRows
	// must cover the rows completed meanwhile or they are dropped.
	Batches int
	// FlushInterval is the age after which Tick hands over a partial batch
	// (default 1 s).
	FlushInterval time.Duration
	// CompletedOnly asks the loop for completed transactions only, without
	// the penalty rows that make the rows a complete record of
	// the model's inputs. Replay is then exact only for runs without
	// penalties.
	CompletedOnly bool
}

func (c *HandoffConfig) defaults() {
	if c.BatchRows <= 0 {
		c.BatchRows = 4096
	}
	if c.Batches < 2 {
		c.Batches = 64
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
}

// Handoff moves rows from the hot loop to the writer goroutine without ever
// blocking or allocating: Offer copies a row into the current batch; a full
// batch goes to the writer over a buffered channel (a non-blocking send that
// cannot fail, as the channel holds every batch); the writer returns empties
// over a free-list channel. With no empty batch available the row is counted
// as dropped.
//
// Offer, Flush, Tick and the counters belong to the loop goroutine.
type Handoff struct {
	// Set by NewHandoff, read-only afterwards.
	flushNs   int64
	batchRows int
	penalties bool

	// Between goroutines: the loop sends full batches, the writer returns
	// empty ones.
	full chan *batch
	free chan *batch

	// Loop goroutine only.
	cur      *batch
	curStart int64 // ObservedAt of the current batch's first row
	offered  uint64
	dropped  uint64
}

// NewHandoff preallocates the batches of c.
func NewHandoff(c HandoffConfig) *Handoff {
	c.defaults()
	h := &Handoff{
		full:      make(chan *batch, c.Batches),
		free:      make(chan *batch, c.Batches),
		flushNs:   int64(c.FlushInterval),
		batchRows: c.BatchRows,
		penalties: !c.CompletedOnly,
	}
	for range c.Batches {
		h.free <- &batch{rows: make([]Row, c.BatchRows)}
	}
	return h
}

// Penalties reports whether the hand-off takes penalty rows as well as
// completed transactions (not CompletedOnly).
func (h *Handoff) Penalties() bool { return h.penalties }

// BatchRows returns the number of rows per batch.
func (h *Handoff) BatchRows() int { return h.batchRows }

// Offer copies r into the current batch and hands the batch over when it is
// full. It returns false, counting a drop, when no batch is free.
func (h *Handoff) Offer(r *Row) bool {
	h.offered++
	b := h.cur
	if b == nil {
		select {
		case b = <-h.free:
			b.n = 0
			h.cur = b
		default:
			h.dropped++
			return false
		}
	}
	if b.n == 0 {
		h.curStart = r.ObservedAt
	}
	b.rows[b.n] = *r
	b.n++
	if b.n == len(b.rows) {
		h.handOver()
	}
	return true
}

// Flush hands the current batch over if it holds any row (the loop calls it
// on a timer, and before the sink closes).
func (h *Handoff) Flush() {
	if h.cur != nil && h.cur.n > 0 {
		h.handOver()
	}
}

// Tick flushes the current batch if its first row is older than the flush
// interval; now is on the rows' ObservedAt clock (unix ns).
func (h *Handoff) Tick(now int64) {
	if h.cur != nil && h.cur.n > 0 && now-h.curStart >= h.flushNs {
		h.handOver()
	}
}

// Offered returns how many rows Offer was called with.
func (h *Handoff) Offered() uint64 { return h.offered }

// Dropped returns how many rows were dropped for want of a free batch.
func (h *Handoff) Dropped() uint64 { return h.dropped }

func (h *Handoff) handOver() {
	b := h.cur
	h.cur = nil
	select {
	case h.full <- b:
	default:
		// Unreachable: full has room for every batch. Keep the rows' loss
		// visible rather than blocking.
		h.dropped += uint64(b.n)
		b.n = 0
		h.cur = b
		return
	}
	select {
	case b = <-h.free:
		b.n = 0
		h.cur = b
	default:
	}
}

// Collect takes the full batches waiting, appends their rows to dst in
// order and returns the batches to the loop. It is the writer side, for a
// consumer other than Sink (tests, tools); never use both on one hand-off.
func (h *Handoff) Collect(dst []Row) []Row {
	for {
		select {
		case b := <-h.full:
			dst = append(dst, b.rows[:b.n]...)
			h.release(b)
		default:
			return dst
		}
	}
}

// release returns an emptied batch to the loop (writer side).
func (h *Handoff) release(b *batch) {
	b.n = 0
	select {
	case h.free <- b:
	default:
		// Unreachable: free has room for every batch.
	}
}
