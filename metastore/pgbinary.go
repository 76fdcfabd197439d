package metastore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// The rows travel in Postgres's binary format both ways: COPY ... FROM STDIN
// (BINARY) on the way in, binary result columns on the way out. Encoding
// them here, instead of through pgx's per-value codecs, keeps the writer at
// zero allocations per row and replay's decoding symmetrical.

// columns is the column list of completed_tx in the order rows are encoded.
// (slot, reason, cost_units and fee_payer_balance: migration 0003.)
const columns = "observed_at, seq, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash, kind, slot, reason, cost_units, fee_payer_balance"

const numColumns = 19

// pgEpochMicros is 2000-01-01T00:00:00Z in unix microseconds, the zero of
// Postgres timestamps.
const pgEpochMicros = 946_684_800_000_000

// Postgres's inet address families (PGSQL_AF_INET, PGSQL_AF_INET6).
const (
	pgAFInet  = 2
	pgAFInet6 = 3
)

// copyHeader starts a binary COPY stream: signature, flags, extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// copyTrailer ends it: a field count of -1.
var copyTrailer = []byte{0xff, 0xff}

// maxCopyRowSize bounds one encoded tuple: field count, 19 lengths, data.
const maxCopyRowSize = 2 + numColumns*4 + 8 + 8 + 8 + 2 + 20 + 32 + 8*4 + 1 + 8 + 8 + 8 + 2 + 8 + 2 + 8 + 8

// pgMicros converts unix ns to Postgres µs, rounding towards minus infinity.
func pgMicros(ns int64) int64 {
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	return us - pgEpochMicros
}

// unixNanos converts Postgres µs back to unix ns.
func unixNanos(pgus int64) int64 { return (pgus + pgEpochMicros) * 1000 }

// putCopyRow encodes r as one binary COPY tuple at b[0:] and returns its
// length. REQUIRES: len(b) ≥ maxCopyRowSize.
func putCopyRow(b []byte, r *Row) int {
	_ = b[maxCopyRowSize-1]
	be := binary.BigEndian
	be.PutUint16(b[0:], numColumns)
	n := 2
	n = putField64(b, n, uint64(pgMicros(r.ObservedAt)))
	n = putField64(b, n, r.Seq)
	n = putField64(b, n, r.Seed)
	be.PutUint32(b[n:], 2)
	be.PutUint16(b[n+4:], uint16(r.Channel))
	n += 6
	if isV4Mapped(&r.IP) {
		be.PutUint32(b[n:], 8)
		b[n+4], b[n+5], b[n+6], b[n+7] = pgAFInet, 32, 0, 4
		copy(b[n+8:n+12], r.IP[12:])
		n += 12
	} else {
		be.PutUint32(b[n:], 20)
		b[n+4], b[n+5], b[n+6], b[n+7] = pgAFInet6, 128, 0, 16
		copy(b[n+8:n+24], r.IP[:])
		n += 24
	}
	be.PutUint32(b[n:], 32)
	copy(b[n+4:n+36], r.Signer[:])
	n += 36
	n = putField64(b, n, r.Fee)
	n = putField64(b, n, r.CUs)
	n = putField64(b, n, r.CUPrice)
	n = putField64(b, n, r.ExecNanos)
	be.PutUint32(b[n:], 1)
	b[n+4] = 0
	if r.Scheduled {
		b[n+4] = 1
	}
	n += 5
	n = putField64(b, n, math.Float64bits(r.Value))
	n = putField64(b, n, math.Float64bits(r.Score))
	n = putField64(b, n, r.Hash)
	be.PutUint32(b[n:], 2)
	be.PutUint16(b[n+4:], uint16(r.Kind))
	n += 6
	n = putField64(b, n, r.Slot)
	be.PutUint32(b[n:], 2)
	be.PutUint16(b[n+4:], uint16(r.Reason))
	n += 6
	n = putField64(b, n, r.CostUnits)
	return putField64(b, n, r.FeePayerBalance)
}

// putField64 writes an 8-byte field (length, then v big-endian) at b[n:].
func putField64(b []byte, n int, v uint64) int {
	binary.BigEndian.PutUint32(b[n:], 8)
	binary.BigEndian.PutUint64(b[n+4:], v)
	return n + 12
}

func isV4Mapped(ip *[16]byte) bool {
	for _, c := range ip[:10] {
		if c != 0 {
			return false
		}
	}
	return ip[10] == 0xff && ip[11] == 0xff
}

var errColumns = errors.New("unexpected result columns")

// decodeRow decodes one result row whose columns are `columns` in binary
// format (as pgx's RawValues returns them) into r. It never panics: a wrong
// count, a NULL or a wrong length is an error naming the column.
func decodeRow(vals [][]byte, r *Row) error {
	if len(vals) != numColumns {
		return fmt.Errorf("%w: %d columns, want %d", errColumns, len(vals), numColumns)
	}
	d := decoder{col: -1}
	r.ObservedAt = unixNanos(int64(d.u64(vals, 0)))
	r.Seq = d.u64(vals, 1)
	r.Seed = d.u64(vals, 2)
	if v := vals[3]; len(v) == 2 {
		r.Channel = uint8(binary.BigEndian.Uint16(v))
	} else {
		d.fail(3, len(v))
	}
	switch v := vals[4]; {
	case len(v) == 8 && v[0] == pgAFInet && v[3] == 4:
		r.IP = [16]byte{10: 0xff, 11: 0xff}
		copy(r.IP[12:], v[4:8])
	case len(v) == 20 && v[0] == pgAFInet6 && v[3] == 16:
		copy(r.IP[:], v[4:20])
	default:
		d.fail(4, len(v))
	}
	if v := vals[5]; len(v) == 32 {
		copy(r.Signer[:], v)
	} else {
		d.fail(5, len(v))
	}
	r.Fee = d.u64(vals, 6)
	r.CUs = d.u64(vals, 7)
	r.CUPrice = d.u64(vals, 8)
	r.ExecNanos = d.u64(vals, 9)
	if v := vals[10]; len(v) == 1 {
		r.Scheduled = v[0] != 0
	} else {
		d.fail(10, len(v))
	}
	r.Value = math.Float64frombits(d.u64(vals, 11))
	r.Score = math.Float64frombits(d.u64(vals, 12))
	r.Hash = d.u64(vals, 13)
	if v := vals[14]; len(v) == 2 {
		k := binary.BigEndian.Uint16(v)
		if k >= uint16(numRowKinds) {
			return fmt.Errorf("%w: column kind holds %d, a row kind this binary does not know", errColumns, k)
		}
		r.Kind = RowKind(k)
	} else {
		d.fail(14, len(v))
	}
	r.Slot = d.u64(vals, 15)
	if v := vals[16]; len(v) == 2 {
		r.Reason = uint8(binary.BigEndian.Uint16(v))
	} else {
		d.fail(16, len(v))
	}
	r.CostUnits = d.u64(vals, 17)
	r.FeePayerBalance = d.u64(vals, 18)
	if d.col >= 0 {
		return fmt.Errorf("%w: column %s has %d bytes (or a wrong format)", errColumns, columnNames[d.col], d.got)
	}
	return nil
}

var columnNames = [numColumns]string{"observed_at", "seq", "seed", "channel", "ip", "signer", "fee", "cus", "cu_price", "exec_ns", "scheduled", "value", "score", "packet_hash", "kind", "slot", "reason", "cost_units", "fee_payer_balance"}

// decoder remembers the first malformed column (col -1: none yet).
type decoder struct{ col, got int }

func (d *decoder) fail(col, got int) {
	if d.col >= 0 {
		return
	}
	d.col, d.got = col, got
}

func (d *decoder) u64(vals [][]byte, col int) uint64 {
	v := vals[col]
	if len(v) != 8 {
		d.fail(col, len(v))
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// copyReader streams batches of rows as one binary COPY (an io.Reader for
// pgconn.CopyFrom).
//
// pgconn reads it from a goroutine of its own that, when the connection
// fails, may outlive the CopyFrom call. So each COPY gets a fresh reader,
// Read runs under a mutex, and detach (called once CopyFrom returns) cuts
// the reader off from the batches before they are reused.
type copyReader struct {
	mu      sync.Mutex
	batches []*batch
	bi, ri  int // next batch, next row in it
	state   uint8
}

const (
	copyStateHeader = iota
	copyStateRows
	copyStateDone
	copyStateDetached
)

var errCopyDetached = errors.New("copy source detached")

func newCopyReader(bs []*batch) *copyReader {
	return &copyReader{batches: bs}
}

// detach makes every later Read fail; on return no Read is running.
func (c *copyReader) detach() {
	c.mu.Lock()
	c.batches = nil
	c.state = copyStateDetached
	c.mu.Unlock()
}

// Read fills p with whole tuples. REQUIRES: len(p) ≥ maxCopyRowSize +
// len(copyHeader) (pgconn reads in 64 KiB chunks).
func (c *copyReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == copyStateDetached {
		return 0, errCopyDetached
	}
	n := 0
	if c.state == copyStateHeader {
		n += copy(p, copyHeader)
		c.state = copyStateRows
	}
	for c.state == copyStateRows {
		if c.bi == len(c.batches) {
			if len(p)-n < len(copyTrailer) {
				return n, nil
			}
			n += copy(p[n:], copyTrailer)
			c.state = copyStateDone
			break
		}
		b := c.batches[c.bi]
		if c.ri >= b.n {
			c.bi++
			c.ri = 0
			continue
		}
		if len(p)-n < maxCopyRowSize {
			return n, nil
		}
		n += putCopyRow(p[n:], &b.rows[c.ri])
		c.ri++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
