package metastore

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSinkCopy measures the sink's throughput into Postgres: rows are
// offered as fast as the hand-off takes them and the clock stops when Close
// has committed the last one. Report: rows/s.
func BenchmarkSinkCopy(b *testing.B) {
	d := newTestDB(b, "sinkbench")
	base := time.Now().UnixNano() / 1000 * 1000
	const rows = 400_000
	b.ReportAllocs()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		if _, err := d.conn.Exec(context.Background(), `TRUNCATE completed_tx, completed_tx_batches`); err != nil {
			b.Fatal(err)
		}
		h := NewHandoff(HandoffConfig{BatchRows: 4096, Batches: 128})
		s, err := NewSink(SinkConfig{Conn: d.sinkConfig(b)}, h)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		offerAll(h, base+int64(i)*int64(time.Hour), 0, rows, 0)
		if err := s.Close(time.Minute); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if st := s.Stats(); st.Written != rows {
			b.Fatalf("written %d of %d", st.Written, rows)
		}
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
}

// BenchmarkSinkBackfill measures writing back a spool of 400 000 rows left
// by an earlier run. Report: rows/s.
func BenchmarkSinkBackfill(b *testing.B) {
	d := newTestDB(b, "backfillbench")
	base := time.Now().UnixNano() / 1000 * 1000
	const rows, per = 400_000, 4096
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if _, err := d.conn.Exec(context.Background(), `TRUNCATE completed_tx, completed_tx_batches`); err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		sp, err := openSpool(dir, 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		at := base + int64(i)*int64(time.Hour)
		for first := 0; first < rows; first += per {
			if err := sp.append(makeBatchAt(at, uint64(first), min(per, rows-first))); err != nil {
				b.Fatal(err)
			}
		}
		sp.close()
		b.StartTimer()
		start := time.Now()
		s, err := NewSink(SinkConfig{Conn: d.sinkConfig(b), SpoolDir: dir}, NewHandoff(HandoffConfig{Batches: 4}))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(time.Minute); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		if st := s.Stats(); st.Written != rows {
			b.Fatalf("written %d of %d", st.Written, rows)
		}
	}
	b.ReportMetric(float64(rows*b.N)/total.Seconds(), "rows/s")
}
