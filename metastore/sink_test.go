package metastore

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/solqos/qos/schema"
	"github.com/solqos/qos/schema/schematest"
)

// testDB is a migrated schema of its own and a connection config for sinks
// whose application_name identifies their connections.
type testDB struct {
	*schematest.DB
	conn *pgx.Conn // for checks
	app  string
}

func newTestDB(t testing.TB, prefix string) *testDB {
	t.Helper()
	db := schematest.New(t, prefix)
	c := db.Connect(t)
	if _, err := schema.Migrate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return &testDB{DB: db, conn: c, app: "qos-sink-" + db.Schema}
}

func (d *testDB) sinkConfig(t testing.TB) *pgx.ConnConfig {
	cfg := d.Config(t)
	cfg.RuntimeParams["application_name"] = d.app
	return cfg
}

// rowAt is row i of a run starting at base (unix ns), 1 µs apart.
func rowAt(base int64, i uint64) Row {
	r := testRow(i)
	r.ObservedAt = base + int64(i)*1000
	return r
}

// logBuffer collects a sink's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// offerAll plays the loop: offers rows [from, to) of a run, retrying a row
// the hand-off had no room for (so the test can demand every row).
func offerAll(h *Handoff, base int64, from, to uint64, perSecond int) {
	start := time.Now()
	for i := from; i < to; i++ {
		r := rowAt(base, i)
		for !h.Offer(&r) {
			time.Sleep(time.Millisecond)
		}
		if perSecond > 0 && i%100 == 0 {
			due := start.Add(time.Duration(float64(i-from) / float64(perSecond) * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			h.Tick(r.ObservedAt)
		}
	}
}

// checkRows reads the table back in order and compares it with rows
// [0, n) of the run at base: each present exactly once, every field equal.
func checkRows(t *testing.T, d *testDB, base int64, n uint64) {
	t.Helper()
	ctx := context.Background()
	var total, distinct int64
	if err := d.conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT (observed_at, seq, seed)) FROM completed_tx`).Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != int64(n) || distinct != int64(n) {
		t.Fatalf("table has %d rows (%d distinct), want %d", total, distinct, n)
	}
	rd := NewReader(d.conn, time.Time{}, time.Time{}, 5000)
	var i uint64
	for {
		page, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, got := range page {
			if want := rowAt(base, i); got != want {
				t.Fatalf("row %d:\n got %+v\nwant %+v", i, got, want)
			}
			i++
		}
	}
	if i != n {
		t.Fatalf("reader returned %d rows, want %d", i, n)
	}
}

func TestSinkWritesEveryRow(t *testing.T) {
	d := newTestDB(t, "sink")
	var logs logBuffer
	h := NewHandoff(HandoffConfig{BatchRows: 1024, Batches: 128})
	s, err := NewSink(SinkConfig{Conn: d.sinkConfig(t), SpoolDir: t.TempDir(), Logger: logs.logger()}, h)
	if err != nil {
		t.Fatal(err)
	}
	// 100 000 rows 1 µs apart across a midnight: two partitions.
	base := time.Date(2024, 5, 1, 23, 59, 59, 950_000_000, time.UTC).UnixNano()
	const n = 100_000
	offerAll(h, base, 0, n, 40_000)
	// What the writer could not keep up with is written back from the
	// spool; under the race detector on a busy machine that takes a while.
	if err := s.Close(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	// Should the writer fall behind (race detector, busy machine), part of
	// the run goes through the spool; none may be lost.
	if st.Written != n || st.Dropped != 0 || st.Errors != 0 || st.SpoolRows != 0 {
		t.Fatalf("stats %+v, hand-off dropped %d", st, h.Dropped())
	}
	checkRows(t, d, base, n)
	daily, _, err := schema.Partitions(context.Background(), d.conn)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(daily))
	for i, p := range daily {
		names[i] = p.Name
	}
	for _, want := range []string{"completed_tx_p20240501", "completed_tx_p20240502", schema.PartitionName(schema.Table, time.Now().Add(24*time.Hour))} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Fatalf("partition %s missing from %v", want, names)
		}
	}
	t.Logf("offered %d rows, written %d, stats %+v", h.Offered(), st.Written, st)
}

// TestSinkOutage kills the sink's connections over and over for more than
// ten seconds in the middle of a run: every row must end up in the table
// exactly once, through the spool.
func TestSinkOutage(t *testing.T) {
	d := newTestDB(t, "outage")
	var logs logBuffer
	h := NewHandoff(HandoffConfig{BatchRows: 256, Batches: 256, FlushInterval: 50 * time.Millisecond})
	s, err := NewSink(SinkConfig{
		Conn: d.sinkConfig(t), SpoolDir: t.TempDir(), Logger: logs.logger(),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond,
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixNano() / 1000 * 1000
	const rate = 4_000
	killed := make(chan int, 1)
	go func() {
		// From second 2 terminate the sink's backends every 50–250 ms for
		// 12 s, and on until 10 were killed: on a busy machine the sink
		// takes longer to reconnect, and more rounds find no backend.
		kills := 0
		defer func() { killed <- kills }()
		time.Sleep(2 * time.Second)
		end, giveUp := time.Now().Add(12*time.Second), time.Now().Add(2*time.Minute)
		for i := 0; (time.Now().Before(end) || kills < 10) && time.Now().Before(giveUp); i++ {
			var k int
			err := d.conn.QueryRow(context.Background(),
				`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, d.app).Scan(&k)
			if err != nil {
				t.Errorf("terminate: %v", err)
				return
			}
			kills += k
			time.Sleep(time.Duration(50+i*37%200) * time.Millisecond)
		}
	}()
	// The loop offers rows at rate until the kills are over, then for one
	// second more.
	var n uint64
	kills := -1
	for kills < 0 {
		offerAll(h, base, n, n+rate/10, rate)
		n += rate / 10
		select {
		case kills = <-killed:
		default:
		}
	}
	offerAll(h, base, n, n+rate, rate)
	n += rate
	if err := s.Close(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("killed %d connections; stats %+v", kills, st)
	t.Logf("log:\n%s", logs.String())
	if kills < 10 || st.Reconnects == 0 || st.Spooled == 0 || st.Outages == 0 {
		t.Fatalf("the outage did not happen: %d kills, stats %+v", kills, st)
	}
	if st.Dropped != 0 || h.Dropped() != 0 || st.SpoolRows != 0 {
		t.Fatalf("rows lost: stats %+v, hand-off dropped %d", st, h.Dropped())
	}
	if st.Written+st.Duplicates < n || st.Written != n {
		t.Fatalf("written %d (+%d duplicates skipped), want %d", st.Written, st.Duplicates, n)
	}
	checkRows(t, d, base, n)
	// Twelve seconds of flapping are one outage: one warning, one notice.
	if st.Outages != 1 || strings.Count(logs.String(), "database unavailable") != 1 || strings.Count(logs.String(), "available again") != 1 {
		t.Fatalf("%d outages; want exactly one warning and one recovery notice", st.Outages)
	}
}

// TestSinkSlowDatabase holds an exclusive lock on the table while the
// writer's COPY waits on it, and offers three hand-offs' worth of rows
// meanwhile: the writer must keep taking batches and spool them, so the
// loop never finds the hand-off empty, and once the lock goes every row
// ends up in the table exactly once.
//
// The test counts events instead of racing a wall-clock rate: after each
// batch it waits (with a deadline) for the writer to take it, so a busy
// machine slows the test down but cannot fail it. A writer that blocked
// on the database would miss that deadline; one that held batches without
// spooling them would run the hand-off dry.
func TestSinkSlowDatabase(t *testing.T) {
	d := newTestDB(t, "slow")
	var logs logBuffer
	const batchRows, batches = 100, 20
	h := NewHandoff(HandoffConfig{BatchRows: batchRows, Batches: batches})
	s, err := NewSink(SinkConfig{Conn: d.sinkConfig(t), SpoolDir: t.TempDir(), Logger: logs.logger(), WriteTimeout: time.Minute}, h)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixNano() / 1000 * 1000
	refused := uint64(0)
	next := uint64(0)
	// offer hands over k full batches, each taken by the writer before the next.
	offer := func(k int) {
		t.Helper()
		for range k {
			for range batchRows {
				r := rowAt(base, next)
				next++
				if !h.Offer(&r) {
					refused++
				}
			}
			waitFor(t, "the writer to take a batch", func() bool { return len(h.full) == 0 })
		}
	}

	// Before: the sink writes straight to the table.
	offer(5)
	waitFor(t, "the first rows to be written", func() bool { return s.Stats().Written == next })
	ctx := context.Background()
	tx, err := d.conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, "LOCK TABLE completed_tx IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// During: one batch until the writer's transaction waits on the lock,
	// then three times what the hand-off holds.
	writtenBefore, lockedFrom := s.Stats().Written, next
	offer(1)
	waitFor(t, "the sink's write to wait on the lock", func() bool {
		var waiting int
		err := d.conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, d.app).Scan(&waiting)
		return err == nil && waiting > 0
	})
	offer(3 * batches)
	st := s.Stats()
	if st.Written != writtenBefore {
		t.Fatalf("rows written while the table was locked: %+v", st)
	}
	// Every row offered during the lock is in the spool or in one of the
	// hand-off's batches.
	if locked := next - lockedFrom; st.Spooled+batches*batchRows < locked {
		t.Fatalf("%d rows offered during the lock, %d spooled: more than the hand-off holds are missing; stats %+v", locked, st.Spooled, st)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// After: the spool is written back, newer rows behind it.
	offer(2 * batches)
	if err := s.Close(time.Minute); err != nil {
		t.Fatal(err)
	}
	st = s.Stats()
	t.Logf("stats %+v", st)
	if refused != 0 || h.Dropped() != 0 || st.Dropped != 0 {
		t.Fatalf("%d offers refused, sink dropped %d", refused, st.Dropped)
	}
	checkRows(t, d, base, next)
}

// waitFor polls cond until it holds, failing the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSinkRestartBackfillsSpool: a sink that never reaches Postgres leaves
// its rows in the spool; the next one, with the database up, writes them.
func TestSinkRestartBackfillsSpool(t *testing.T) {
	d := newTestDB(t, "restart")
	dir := t.TempDir()
	var logs logBuffer
	down := d.sinkConfig(t)
	down.Port = 1 // nothing listens there
	h := NewHandoff(HandoffConfig{BatchRows: 500, Batches: 16})
	s, err := NewSink(SinkConfig{Conn: down, SpoolDir: dir, Logger: logs.logger(), ConnectTimeout: time.Second}, h)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UnixNano() / 1000 * 1000
	const n = 20_000
	offerAll(h, base, 0, n, 0)
	err = s.Close(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "rows left in spool") {
		t.Fatalf("Close with the database down: %v", err)
	}
	if st := s.Stats(); st.Spooled != n || st.SpoolRows != n || st.Written != 0 {
		t.Fatalf("first run stats %+v", st)
	}
	if strings.Contains(logs.String(), "password") || !strings.Contains(logs.String(), "127.0.0.1:1/test") {
		t.Fatalf("log should name host/db only:\n%s", logs.String())
	}

	h2 := NewHandoff(HandoffConfig{BatchRows: 500, Batches: 16})
	s2, err := NewSink(SinkConfig{Conn: d.sinkConfig(t), SpoolDir: dir, Logger: logs.logger()}, h2)
	if err != nil {
		t.Fatal(err)
	}
	offerAll(h2, base, n, n+1000, 0) // new rows arrive behind the spooled ones
	if err := s2.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := s2.Stats()
	if st.Written != n+1000 || st.Backfilled < n || st.SpoolRows != 0 || st.SpoolBytes != 0 {
		t.Fatalf("second run stats %+v", st)
	}
	checkRows(t, d, base, n+1000)
}

// TestSinkLostAcknowledgement writes batches, then has a fresh sink write
// the same batches again from a spool, as after a COPY whose commit reached
// the server but whose acknowledgement did not reach us: nothing doubles.
// Rows present without their batch marker go through the staged path.
func TestSinkLostAcknowledgement(t *testing.T) {
	d := newTestDB(t, "lostack")
	base := time.Now().UnixNano() / 1000 * 1000
	dir := t.TempDir()
	sp, err := openSpool(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := sp.append(makeBatchAt(base, uint64(i*100), 100)); err != nil {
			t.Fatal(err)
		}
	}
	sp.close()
	// First the same ten batches through a sink.
	h := NewHandoff(HandoffConfig{BatchRows: 100, Batches: 16})
	s, err := NewSink(SinkConfig{Conn: d.sinkConfig(t)}, h)
	if err != nil {
		t.Fatal(err)
	}
	offerAll(h, base, 0, 1000, 0)
	if err := s.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != 1000 {
		t.Fatalf("first sink: %+v", st)
	}
	// A row of a later batch written by someone else, without a marker.
	if _, err := d.conn.Exec(context.Background(), `INSERT INTO completed_tx (`+columns+`)
		SELECT `+columns+` FROM completed_tx WHERE seq = 0`); err == nil {
		t.Fatal("duplicate key accepted: the table lacks its primary key")
	}
	if _, err := d.conn.Exec(context.Background(), `INSERT INTO completed_tx (`+columns+`)
		SELECT observed_at + interval '1 millisecond', 1000, seed, channel, ip, signer, fee, cus, cu_price, exec_ns, scheduled, value, score, packet_hash, kind,
			slot, reason, cost_units, fee_payer_balance
		FROM completed_tx WHERE seq = 0`); err != nil {
		t.Fatal(err)
	}
	// Then the spool of the same batches plus one overlapping the extra row.
	sp, err = openSpool(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	more := makeBatchAt(base, 1000, 100)
	if err := sp.append(more); err != nil {
		t.Fatal(err)
	}
	sp.close()
	h2 := NewHandoff(HandoffConfig{BatchRows: 100, Batches: 16})
	s2, err := NewSink(SinkConfig{Conn: d.sinkConfig(t), SpoolDir: dir}, h2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := s2.Stats()
	if st.Duplicates != 1000 || st.Written != 100 || st.Backfilled != 1100 {
		t.Fatalf("stats %+v: want 1000 duplicates skipped, 100 written", st)
	}
	var total int64
	d.conn.QueryRow(context.Background(), `SELECT count(*) FROM completed_tx`).Scan(&total)
	if total != 1100 {
		t.Fatalf("%d rows, want 1100", total)
	}
}

func makeBatchAt(base int64, first uint64, n int) *batch {
	b := &batch{rows: make([]Row, n), n: n}
	for i := range n {
		b.rows[i] = rowAt(base, first+uint64(i))
	}
	return b
}

func TestSinkWithoutDatabaseOrSpoolDrops(t *testing.T) {
	cfg, err := ParseConnConfig("postgres://nobody:secret@127.0.0.1:1/none?connect_timeout=1", "qos-test")
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	h := NewHandoff(HandoffConfig{BatchRows: 100, Batches: 4})
	s, err := NewSink(SinkConfig{Conn: cfg, Logger: logs.logger(), ConnectTimeout: 500 * time.Millisecond}, h)
	if err != nil {
		t.Fatal(err)
	}
	offerAll(h, 0, 0, 1000, 0)
	if err := s.Close(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Dropped != 1000 || st.Written != 0 {
		t.Fatalf("stats %+v", st)
	}
	if strings.Contains(logs.String(), "secret") || strings.Contains(logs.String(), "nobody") {
		t.Fatalf("credentials in the log:\n%s", logs.String())
	}
}

func TestParseConnConfigHidesURL(t *testing.T) {
	_, err := ParseConnConfig("postgres://u:hunter2@host:notaport/db", "")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("PGHOST", "pg.example")
	t.Setenv("PGDATABASE", "metadb")
	t.Setenv("PGPORT", "5433")
	cfg, err := ParseConnConfig("", "qos")
	if err != nil {
		t.Fatal(err)
	}
	if Describe(cfg) != "pg.example:5433/metadb" || cfg.RuntimeParams["application_name"] != "qos" {
		t.Fatalf("from PG* variables: %s %v", Describe(cfg), cfg.RuntimeParams)
	}
}
