package metastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/solqos/qos/schema"
)

// SinkConfig configures the Postgres writer.
type SinkConfig struct {
	// Conn is the connection config (ParseConnConfig). Required.
	Conn *pgx.ConnConfig
	// SpoolDir keeps batches Postgres cannot take; "" disables the spool
	// (such batches are dropped and counted).
	SpoolDir string
	// SpoolMaxBytes bounds the spool on disk (default 1 GiB).
	SpoolMaxBytes int64
	// MaxCopyRows bounds the rows written by one COPY transaction; batches
	// waiting together are coalesced up to it, and up to a quarter of the
	// hand-off's batches (default 65 536).
	MaxCopyRows int
	// ConnectTimeout bounds a connection attempt (default 5 s).
	ConnectTimeout time.Duration
	// WriteTimeout bounds one write transaction (default 10 s).
	WriteTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnection
	// attempts, doubling from min to max (defaults 100 ms and 10 s).
	BackoffMin, BackoffMax time.Duration
	// Logger receives one warning per outage and one notice on recovery
	// (default slog.Default()).
	Logger *slog.Logger
	// StableAfter is how long writes must succeed, with the spool empty,
	// before an outage counts as over; a flapping database is one outage
	// (default 5 s).
	StableAfter time.Duration
	// Now is the wall clock, used to pick partitions (default time.Now).
	Now func() time.Time
}

func (c *SinkConfig) defaults() {
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = 1 << 30
	}
	if c.MaxCopyRows <= 0 {
		c.MaxCopyRows = 1 << 16
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(10*time.Second, c.BackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.StableAfter <= 0 {
		c.StableAfter = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// SinkStats are the sink's counters, for metrics. Row counts unless named.
type SinkStats struct {
	Written      uint64 // rows committed to Postgres (including backfill)
	Backfilled   uint64 // of those, rows that came from the spool
	Duplicates   uint64 // rows skipped: their batch was already committed (lost acknowledgement)
	Spooled      uint64 // rows appended to the spool
	SpoolRows    uint64 // rows waiting in the spool now
	SpoolBytes   int64  // spool size on disk now
	Dropped      uint64 // rows lost: spool full, disabled or failing
	SpoolCorrupt uint64 // spool records skipped as corrupt or foreign
	Errors       uint64 // failed write or connection attempts
	Reconnects   uint64 // connections established after the first
	Outages      uint64 // periods of unavailability logged
	Connected    bool
}

// Sink drains a Handoff into Postgres on its own goroutine. Each COPY
// transaction also records one marker per batch (keyed by the batch's first
// row) and skips batches whose marker exists, so a retry after a lost
// acknowledgement writes nothing twice.
//
// Every database operation runs on a helper goroutine while the sink keeps
// taking batches from the hand-off; when the batches it holds reach half of
// the hand-off's, they go to the spool, in order. So while Postgres is slow
// or down the loop keeps finding free batches, rows wait on disk, and the
// spool is written back before any newer batch once Postgres keeps up
// again. Rows are dropped only when the spool is full (or disabled).
type Sink struct {
	// Set by NewSink, read-only afterwards.
	cfg  SinkConfig
	h    *Handoff
	log  *slog.Logger
	desc string

	// Close and the writer goroutine: closeCh carries the deadline, done
	// closes when the writer returns, after setting closeErr.
	closeOnce sync.Once
	closeCh   chan time.Time
	done      chan struct{}
	closeErr  error

	// mu guards the published counters: the writer updates them, Stats
	// reads them from any goroutine.
	mu struct {
		sync.Mutex
		stats SinkStats
	}

	// Writer goroutine only.
	conn            *pgx.Conn
	spool           *spool
	days            map[int64]struct{} // UTC days whose partitions exist
	dayBuf          []time.Time
	group           []*batch // the batches being written directly
	group2          []*batch // the batches of a group not written before
	pending         []*batch // batches taken from the hand-off during an operation
	inflight        []*batch // the group an operation is writing, while it does
	holdMax         int      // batches held before spooling
	groupMax        int      // batches written in one transaction (< holdMax)
	inflightSpooled bool
	scratch         []*batch // batches read back from the spool
	backoff         time.Duration
	nextConnect     time.Time
	deadline        time.Time // set while closing
	connected       bool      // ever connected
	outage          bool
	outageAt        time.Time
	lastErrAt       time.Time
	outageStats     SinkStats // counters when the outage began
	markAt          []time.Time
	markSeq         []int64
	markSeed        []int64
	markRows        []int32
}

// NewSink opens the spool (indexing what an earlier run left in it) and
// starts the writer goroutine. Postgres need not be up: rows are spooled
// until it is. REQUIRES: the schema is migrated (schema.Migrate).
func NewSink(cfg SinkConfig, h *Handoff) (*Sink, error) {
	if cfg.Conn == nil {
		return nil, errors.New("metastore: sink needs a connection config")
	}
	cfg.defaults()
	s := &Sink{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		desc:     Describe(cfg.Conn),
		closeCh:  make(chan time.Time, 1),
		done:     make(chan struct{}),
		days:     make(map[int64]struct{}),
		backoff:  cfg.BackoffMin,
		holdMax:  max(2, cap(h.full)/2),
		groupMax: max(1, cap(h.full)/4),
	}
	if cfg.SpoolDir != "" {
		sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes)
		if err != nil {
			return nil, fmt.Errorf("metastore: %w", err)
		}
		s.spool = sp
		s.mu.stats.SpoolRows, s.mu.stats.SpoolBytes, s.mu.stats.SpoolCorrupt = sp.Rows(), sp.Bytes(), sp.corruptRecs
		if sp.Rows() > 0 {
			s.log.Info("metastore: spool from an earlier run will be written first",
				"dir", cfg.SpoolDir, "rows", sp.Rows(), "bytes", sp.Bytes())
		}
	}
	go s.run()
	return s, nil
}

// Stats returns a snapshot of the counters.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.stats
}

// Close hands over the Handoff's partial batch, writes everything queued
// and spooled, and stops the writer, within timeout. Rows still spooled
// then stay on disk for the next start and are reported in the error.
// REQUIRES: the loop no longer calls Offer/Flush/Tick.
func (s *Sink) Close(timeout time.Duration) error {
	s.closeOnce.Do(func() {
		s.h.Flush()
		s.closeCh <- time.Now().Add(timeout)
		<-s.done
	})
	return s.closeErr
}

func (s *Sink) run() {
	defer close(s.done)
	tick := time.NewTicker(min(s.cfg.BackoffMin, 100*time.Millisecond))
	defer tick.Stop()
	s.maybeConnect()
	for {
		if s.conn != nil && s.spool != nil && !s.spool.Empty() {
			select {
			case d := <-s.closeCh:
				s.shutdown(d)
				return
			default:
			}
			s.backfillStep()
			continue
		}
		s.publish()
		if len(s.pending) > 0 {
			s.accept(nil /*b: nothing new*/)
			continue
		}
		select {
		case b := <-s.h.full:
			s.accept(b)
		case <-tick.C:
			s.maybeConnect()
			s.housekeep()
			s.checkRecovered(false /*force*/)
		case d := <-s.closeCh:
			s.shutdown(d)
			return
		}
	}
}

// do runs op (which may touch the connection, never the spool) on a
// goroutine of its own and, until it returns, keeps taking batches from the
// hand-off, so the loop never runs short of free batches however long
// Postgres takes.
func (s *Sink) do(op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	for {
		select {
		case err := <-done:
			return err
		case b := <-s.h.full:
			s.hold(b)
		}
	}
}

// hold keeps a batch that arrived during an operation. Once the batches
// held (the group being written included) reach half of the hand-off's,
// everything held goes to the spool in order: the group being written
// first (should its write succeed after all, its batch markers make the
// spooled copy a no-op), then the arrivals.
func (s *Sink) hold(b *batch) {
	s.pending = append(s.pending, b)
	if s.spool == nil || len(s.inflight)+len(s.pending) < s.holdMax {
		// Without a spool, holding more only moves the drops to the
		// hand-off, where the loop counts them.
		return
	}
	if len(s.inflight) > 0 && !s.inflightSpooled {
		for _, g := range s.inflight {
			s.spoolBatch(g) // released by its writer
		}
		s.inflightSpooled = true
	}
	for i, p := range s.pending {
		s.spoolBatch(p)
		s.h.release(p)
		s.pending[i] = nil
	}
	s.pending = s.pending[:0]
}

// accept writes the held batches, b (if not nil) and whatever else waits in
// the hand-off, up to MaxCopyRows, or spools them.
func (s *Sink) accept(b *batch) {
	s.group = s.group[:0]
	rows := 0
	taken := 0
	for _, p := range s.pending {
		if rows >= s.cfg.MaxCopyRows || len(s.group) >= s.groupMax {
			break
		}
		s.group = append(s.group, p)
		rows += p.n
		taken++
	}
	s.pending = append(s.pending[:0], s.pending[taken:]...)
	if b != nil {
		if len(s.pending) > 0 {
			s.pending = append(s.pending, b) // keep the order
		} else {
			s.group = append(s.group, b)
			rows += b.n
		}
	}
	for len(s.pending) == 0 && rows < s.cfg.MaxCopyRows && len(s.group) < s.groupMax {
		select {
		case nb := <-s.h.full:
			s.group = append(s.group, nb)
			rows += nb.n
			continue
		default:
		}
		break
	}
	if s.conn == nil || (s.spool != nil && !s.spool.Empty()) {
		s.spoolGroup()
		return
	}
	group := s.group
	s.inflight, s.inflightSpooled = group, false
	err := s.do(func() error { return s.write(group) })
	spooled := s.inflightSpooled
	s.inflight, s.inflightSpooled = nil, false
	if err == nil {
		s.backoff = s.cfg.BackoffMin
		s.releaseGroup()
		return
	}
	s.failed(err)
	if spooled {
		s.releaseGroup()
		return
	}
	s.spoolGroup()
}

func (s *Sink) releaseGroup() {
	for i, b := range s.group {
		s.h.release(b)
		s.group[i] = nil
	}
	s.group = s.group[:0]
}

// spoolGroup appends the group to the spool (or drops it) and releases it.
func (s *Sink) spoolGroup() {
	for _, b := range s.group {
		s.spoolBatch(b)
	}
	s.releaseGroup()
}

func (s *Sink) spoolBatch(b *batch) {
	if s.spool == nil {
		s.count(func(st *SinkStats) { st.Dropped += uint64(b.n) })
		return
	}
	err := s.spool.append(b)
	s.count(func(st *SinkStats) {
		if err != nil {
			st.Dropped += uint64(b.n)
		} else {
			st.Spooled += uint64(b.n)
		}
	})
	if err != nil && !errors.Is(err, errSpoolFull) {
		s.log.Error("metastore: spool append failed; rows dropped", "dir", s.cfg.SpoolDir, "rows", b.n, "err", err)
	}
}

// spoolWaiting moves the held batches, then every batch waiting in the
// hand-off, into the spool: while the spool is being written back, newer
// rows queue behind it.
func (s *Sink) spoolWaiting() {
	for i, b := range s.pending {
		s.spoolBatch(b)
		s.h.release(b)
		s.pending[i] = nil
	}
	s.pending = s.pending[:0]
	for {
		select {
		case b := <-s.h.full:
			s.spoolBatch(b)
			s.h.release(b)
		default:
			return
		}
	}
}

// backfillStep writes the oldest spooled records, up to MaxCopyRows, in one
// transaction.
func (s *Sink) backfillStep() {
	s.spoolWaiting()
	group := s.scratch[:0]
	rows := 0
	for rows < s.cfg.MaxCopyRows {
		if len(group) == len(s.scratch) {
			s.scratch = append(s.scratch, &batch{})
		}
		b := s.scratch[len(group)]
		ok, err := s.spool.read(b)
		if err != nil {
			s.spool.rewind()
			s.log.Error("metastore: spool read failed", "dir", s.cfg.SpoolDir, "err", err)
			s.failed(err)
			return
		}
		if !ok {
			break
		}
		group = append(group, b)
		rows += b.n
	}
	if len(group) > 0 {
		if err := s.do(func() error { return s.write(group) }); err != nil {
			s.spool.rewind()
			s.failed(err)
			return
		}
	}
	if err := s.spool.commit(); err != nil {
		s.log.Warn("metastore: spool cleanup", "err", err)
	}
	s.backoff = s.cfg.BackoffMin
	s.count(func(st *SinkStats) { st.Backfilled += uint64(rows) })
}

// opContext bounds one database operation by d and, while closing, by the
// close deadline.
func (s *Sink) opContext(d time.Duration) (context.Context, context.CancelFunc) {
	dl := time.Now().Add(d)
	if !s.deadline.IsZero() && s.deadline.Before(dl) {
		dl = s.deadline
	}
	return context.WithDeadline(context.Background(), dl)
}

// write commits the rows of group not written before, in one transaction.
func (s *Sink) write(group []*batch) error {
	ctx, cancel := s.opContext(s.cfg.WriteTimeout)
	defer cancel()
	if err := s.ensureDays(ctx, group); err != nil {
		return err
	}
	written, dups, err := s.copyGroup(ctx, group, false /*staged*/)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23514": // no partition for a row: one was dropped under us
			clear(s.days)
			if err := s.ensureDays(ctx, group); err != nil {
				return err
			}
			written, dups, err = s.copyGroup(ctx, group, false /*staged*/)
		case "23505": // rows already present without their marker
			written, dups, err = s.copyGroup(ctx, group, true /*staged*/)
		}
	}
	if err != nil {
		return err
	}
	s.count(func(st *SinkStats) {
		st.Written += uint64(written)
		st.Duplicates += uint64(dups)
	})
	return nil
}

const copySQL = `COPY ` + schema.Table + ` (` + columns + `) FROM STDIN (FORMAT binary)`

const markSQL = `WITH m AS (
	SELECT * FROM unnest($1::timestamptz[], $2::bigint[], $3::bigint[], $4::integer[])
		WITH ORDINALITY AS m(observed_at, seq, seed, rows, ord)
), ins AS (
	INSERT INTO ` + schema.BatchTable + ` (observed_at, seq, seed, rows)
	SELECT observed_at, seq, seed, rows FROM m
	ON CONFLICT DO NOTHING
	RETURNING observed_at, seq, seed
)
SELECT m.ord FROM m JOIN ins USING (observed_at, seq, seed) ORDER BY m.ord`

// copyGroup runs the marker insert and the COPY of the new batches in one
// transaction. With staged, rows go through a temporary table and
// INSERT … ON CONFLICT DO NOTHING, for rows present without a marker.
func (s *Sink) copyGroup(ctx context.Context, group []*batch, staged bool) (written, dups int, err error) {
	s.markAt, s.markSeq, s.markSeed, s.markRows = s.markAt[:0], s.markSeq[:0], s.markSeed[:0], s.markRows[:0]
	for _, b := range group {
		if b.n == 0 {
			continue
		}
		r := &b.rows[0]
		s.markAt = append(s.markAt, time.UnixMicro(pgMicros(r.ObservedAt)+pgEpochMicros).UTC())
		s.markSeq = append(s.markSeq, int64(r.Seq))
		s.markSeed = append(s.markSeed, int64(r.Seed))
		s.markRows = append(s.markRows, int32(b.n))
	}
	tx, err := s.conn.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit this is a no-op
	rows, err := tx.Query(ctx, markSQL, s.markAt, s.markSeq, s.markSeed, s.markRows)
	if err != nil {
		return 0, 0, fmt.Errorf("insert batch markers: %w", err)
	}
	// Keep only the batches whose marker is new; ord is 1-based over the
	// non-empty batches.
	fresh := s.group2[:0]
	ne := 0 // index among non-empty batches
	gi := 0
	for rows.Next() {
		var ord int64
		if err := rows.Scan(&ord); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("insert batch markers: %w", err)
		}
		for ; gi < len(group); gi++ {
			if group[gi].n == 0 {
				continue
			}
			ne++
			if int64(ne) == ord {
				fresh = append(fresh, group[gi])
				gi++
				break
			}
			dups += group[gi].n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("insert batch markers: %w", err)
	}
	for ; gi < len(group); gi++ {
		dups += group[gi].n
	}
	s.group2 = fresh
	for _, b := range fresh {
		written += b.n
	}
	if written > 0 {
		cr := newCopyReader(fresh)
		if staged {
			err = s.stagedCopy(ctx, tx, cr)
		} else {
			_, err = tx.Conn().PgConn().CopyFrom(ctx, cr, copySQL)
			if err != nil {
				err = fmt.Errorf("copy: %w", err)
			}
		}
		cr.detach()
		if err != nil {
			return 0, 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("commit: %w", err)
	}
	return written, dups, nil
}

func (s *Sink) stagedCopy(ctx context.Context, tx pgx.Tx, cr *copyReader) error {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS qos_staging (LIKE `+schema.Table+`) ON COMMIT DELETE ROWS`); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	if _, err := tx.Conn().PgConn().CopyFrom(ctx, cr, `COPY qos_staging (`+columns+`) FROM STDIN (FORMAT binary)`); err != nil {
		return fmt.Errorf("copy to staging: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+schema.Table+` (`+columns+`) SELECT `+columns+` FROM qos_staging ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("insert from staging: %w", err)
	}
	return nil
}

const nsPerDay = int64(24 * time.Hour)

// shutdown takes what is queued, writes the spool back until the deadline
// and stops.
func (s *Sink) shutdown(deadline time.Time) {
	s.deadline = deadline
	for {
		if len(s.pending) > 0 {
			s.accept(nil /*b: nothing new*/)
			continue
		}
		select {
		case b := <-s.h.full:
			s.accept(b)
			continue
		default:
		}
		break
	}
	for s.spool != nil && !s.spool.Empty() && time.Now().Before(deadline) {
		if s.conn == nil {
			wait := time.Until(s.nextConnect)
			if left := time.Until(deadline); wait > left {
				break
			}
			if wait > 0 {
				time.Sleep(wait)
			}
			s.maybeConnect()
			continue
		}
		s.backfillStep()
	}
	s.checkRecovered(true /*force*/)
	var errs []error
	if s.spool != nil {
		s.spool.rewind()
		if err := s.spool.close(); err != nil {
			errs = append(errs, err)
		}
		if n := s.spool.Rows(); n > 0 {
			errs = append(errs, fmt.Errorf("metastore: %d rows left in spool %s; the next start writes them", n, s.cfg.SpoolDir))
		}
	}
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.conn.Close(ctx)
		cancel()
		s.conn = nil
	}
	s.publish()
	s.count(func(st *SinkStats) { st.Connected = false })
	s.closeErr = errors.Join(errs...)
}

// publish copies the spool's gauges into the stats.
func (s *Sink) publish() {
	if s.spool == nil {
		return
	}
	rows, bytes, corrupt := s.spool.Rows(), s.spool.Bytes(), s.spool.corruptRecs
	s.count(func(st *SinkStats) {
		st.SpoolRows, st.SpoolBytes, st.SpoolCorrupt = rows, bytes, corrupt
	})
}

func (s *Sink) count(f func(*SinkStats)) {
	s.mu.Lock()
	f(&s.mu.stats)
	s.mu.Unlock()
}
