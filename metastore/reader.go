package metastore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/solqos/qos/schema"
)

// Reader streams rows (completed transactions and feedback) back in
// (observed_at, seq, seed) order, the order the daemon applied them in, one keyset page at a time:
// memory does not grow with the number of rows, and each page is an index
// range scan whatever the table's size.
type Reader struct {
	conn     *pgx.Conn
	from, to time.Time
	page     int
	rows     []Row
	started  bool
	done     bool
	// Key of the last row returned.
	lastAt         time.Time
	lastSeq, lastS int64
	raw            int64 // rows returned so far
}

// Time bounds used for an open range.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// NewReader reads the rows with from ≤ observed_at < to (a zero time leaves
// that side open) in pages of pageRows (default 8192).
func NewReader(conn *pgx.Conn, from, to time.Time, pageRows int) *Reader {
	if pageRows <= 0 {
		pageRows = 8192
	}
	if from.IsZero() {
		from = minTime
	}
	if to.IsZero() {
		to = maxTime
	}
	return &Reader{conn: conn, from: from, to: to, page: pageRows, rows: make([]Row, pageRows)}
}

const selectSQL = `SELECT ` + columns + ` FROM ` + schema.Table + `
	WHERE observed_at >= $1 AND observed_at < $2`

const orderSQL = ` ORDER BY observed_at, seq, seed LIMIT `

// Next returns the next page of rows; the slice is reused by the following
// call. An empty page means the range is exhausted.
func (r *Reader) Next(ctx context.Context) ([]Row, error) {
	if r.done {
		return r.rows[:0], nil
	}
	var (
		rows pgx.Rows
		err  error
	)
	limit := fmt.Sprint(r.page)
	if !r.started {
		rows, err = r.conn.Query(ctx, selectSQL+orderSQL+limit,
			pgx.QueryResultFormats{pgx.BinaryFormatCode}, r.from, r.to)
	} else {
		rows, err = r.conn.Query(ctx, selectSQL+` AND (observed_at, seq, seed) > ($3, $4, $5)`+orderSQL+limit,
			pgx.QueryResultFormats{pgx.BinaryFormatCode}, r.from, r.to, r.lastAt, r.lastSeq, r.lastS)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", schema.Table, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if n == len(r.rows) {
			break
		}
		if err := decodeRow(rows.RawValues(), &r.rows[n]); err != nil {
			return nil, fmt.Errorf("read %s: row %d: %w", schema.Table, r.raw+int64(n), err)
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", schema.Table, err)
	}
	r.started = true
	if n < r.page {
		r.done = true
	}
	if n > 0 {
		last := &r.rows[n-1]
		r.lastAt = time.UnixMicro(pgMicros(last.ObservedAt) + pgEpochMicros).UTC()
		r.lastSeq, r.lastS = int64(last.Seq), int64(last.Seed)
	}
	r.raw += int64(n)
	return r.rows[:n], nil
}

// Read returns how many rows were returned so far.
func (r *Reader) Read() int64 { return r.raw }

// Span returns the number of rows with from ≤ observed_at < to (zero times
// open) and the first and last observed_at among them.
func Span(ctx context.Context, conn *pgx.Conn, from, to time.Time) (n int64, first, last time.Time, err error) {
	if from.IsZero() {
		from = minTime
	}
	if to.IsZero() {
		to = maxTime
	}
	var f, l *time.Time
	err = conn.QueryRow(ctx, `SELECT count(*), min(observed_at), max(observed_at) FROM `+schema.Table+`
		WHERE observed_at >= $1 AND observed_at < $2`, from, to).Scan(&n, &f, &l)
	if err != nil {
		return 0, time.Time{}, time.Time{}, fmt.Errorf("measure %s: %w", schema.Table, err)
	}
	if f != nil {
		first, last = *f, *l
	}
	return n, first, last, nil
}

// Count returns the number of rows with from ≤ observed_at < to (zero times
// open), of every kind, and the transactions among them (completed ones
// and pack-mode results: every kind but the penalties).
func Count(ctx context.Context, conn *pgx.Conn, from, to time.Time) (all, completed int64, err error) {
	if from.IsZero() {
		from = minTime
	}
	if to.IsZero() {
		to = maxTime
	}
	err = conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE kind IN (0, 3)) FROM `+schema.Table+`
		WHERE observed_at >= $1 AND observed_at < $2`, from, to).Scan(&all, &completed)
	if err != nil {
		return 0, 0, fmt.Errorf("count %s: %w", schema.Table, err)
	}
	return all, completed, nil
}
