package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/solqos/qos/cmd/internal/cliflags"
	"github.com/solqos/qos/metastore"
	"github.com/solqos/qos/schema"
)

// dbFlags are the database flags; see daemonFlags.
type dbFlags struct {
	dbUrl           *cli.StringFlag
	db              *cli.BoolFlag
	spoolDir        *cli.StringFlag
	spoolMaxBytes   *cli.Int64Flag
	dbBatchRows     *cli.IntFlag
	dbBatches       *cli.IntFlag
	dbFlushInterval *cli.DurationFlag
	dbFeedback      *cli.BoolFlag
	dbCloseTimeout  *cli.DurationFlag
}

func newDBFlags() dbFlags {
	cat := cliflags.CatDatabase
	return dbFlags{
		dbUrl: &cli.StringFlag{Name: "db-url", Category: cat,
			Usage: "write a row per completed transaction (and per penalty, see --db-feedback) to this Postgres (postgres:// URL or key=value; PG* variables fill the gaps); off when empty"},
		db: &cli.BoolFlag{Name: "db", Category: cat,
			Usage: "write rows to the Postgres named by the PG* environment variables alone (no --db-url)"},
		spoolDir: &cli.StringFlag{Name: "spool-dir", Category: cat,
			Usage: "keep rows here while Postgres is slow or down, and write them back in order when it returns (off when empty: such rows are dropped)"},
		spoolMaxBytes: &cli.Int64Flag{Name: "spool-max-bytes", Category: cat, Value: 1 << 30,
			Usage: "size bound of the spool; past it rows are dropped and counted"},
		dbBatchRows: &cli.IntFlag{Name: "db-batch-rows", Category: cat, Value: 4096,
			Usage: "rows per batch handed from the loop to the writer"},
		dbBatches: &cli.IntFlag{Name: "db-batches", Category: cat, Value: 64,
			Usage: "preallocated batches between loop and writer; when all are in use rows are dropped and counted"},
		dbFlushInterval: &cli.DurationFlag{Name: "db-flush-interval", Category: cat, Value: time.Second,
			Usage: "hand a partly filled batch to the writer at least this often"},
		dbFeedback: &cli.BoolFlag{Name: "db-feedback", Category: cat, Value: true,
			Usage: "also write a row per penalty (failed sigverify, unparsable packet), so that qos-cli replay rebuilds the model exactly; --db-feedback=false writes completed transactions only (less volume under spam, but replay is then exact only for runs without penalties)"},
		dbCloseTimeout: &cli.DurationFlag{Name: "db-close-timeout", Category: cat, Value: 10 * time.Second,
			Usage: "at shutdown, how long to keep writing queued and spooled rows"},
	}
}

func (f *dbFlags) list() []cli.Flag {
	return []cli.Flag{f.dbUrl, f.db, f.spoolDir, f.spoolMaxBytes, f.dbBatchRows, f.dbBatches, f.dbFlushInterval, f.dbFeedback, f.dbCloseTimeout}
}

// database is the daemon's optional Postgres output: the loop's hand-off
// and the writer goroutine behind it. A nil *database means no database.
type database struct {
	h       *metastore.Handoff
	sink    *metastore.Sink
	timeout time.Duration
}

// startDatabase migrates the schema (a database that cannot be reached is
// no reason not to start: rows are spooled until it can be) and starts the
// writer. It returns nil when no database is configured.
func startDatabase(ctx context.Context, c *cli.Context, f *dbFlags, log *slog.Logger) (*database, error) {
	url := f.dbUrl.Get(c)
	if url == "" && !f.db.Get(c) {
		return nil, nil
	}
	conn, err := metastore.ParseConnConfig(url, "qos")
	if err != nil {
		return nil, err
	}
	desc := metastore.Describe(conn)
	if err := migrate(ctx, conn, log); err != nil {
		if errors.Is(err, schema.ErrSchemaTooNew) {
			return nil, err
		}
		log.Warn("database not migrated at start; rows are spooled until it can be reached and migrated",
			"db", desc, "err", err)
	}
	if f.spoolDir.Get(c) == "" {
		log.Warn("no --spool-dir: rows completed while Postgres is unavailable will be dropped")
	}
	h := metastore.NewHandoff(metastore.HandoffConfig{
		BatchRows:     f.dbBatchRows.Get(c),
		Batches:       f.dbBatches.Get(c),
		FlushInterval: f.dbFlushInterval.Get(c),
		CompletedOnly: !f.dbFeedback.Get(c),
	})
	sink, err := metastore.NewSink(metastore.SinkConfig{
		Conn:          conn,
		SpoolDir:      f.spoolDir.Get(c),
		SpoolMaxBytes: f.spoolMaxBytes.Get(c),
		Logger:        log,
	}, h)
	if err != nil {
		return nil, err
	}
	if f.dbFeedback.Get(c) {
		log.Info("writing completed transactions and penalties to Postgres", "db", desc, "spool", f.spoolDir.Get(c))
	} else {
		log.Info("writing completed transactions to Postgres (no penalties: --db-feedback=false; replay is exact only for runs without penalties)",
			"db", desc, "spool", f.spoolDir.Get(c))
	}
	return &database{h: h, sink: sink, timeout: f.dbCloseTimeout.Get(c)}, nil
}

func migrate(ctx context.Context, conn *pgx.ConnConfig, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pc, err := pgx.ConnectConfig(ctx, conn)
	if err != nil {
		return err
	}
	defer pc.Close(context.Background())
	res, err := schema.Migrate(ctx, pc)
	if err != nil {
		return err
	}
	if len(res.Applied) > 0 {
		log.Info("database schema migrated", "schema", res.Schema, "from", res.From, "to", res.To)
	}
	return nil
}

func (d *database) handoff() *metastore.Handoff {
	if d == nil {
		return nil
	}
	return d.h
}

// close writes what is queued and spooled, within --db-close-timeout.
// REQUIRES: the loop has stopped.
func (d *database) close(log *slog.Logger) {
	if d == nil {
		return
	}
	if err := d.sink.Close(d.timeout); err != nil {
		log.Error("metastore did not drain before the timeout; spooled rows are kept for the next start", "err", err)
	}
	st := d.sink.Stats()
	log.Info("metastore closed", "written", st.Written, "spooled_now", st.SpoolRows, "dropped", st.Dropped)
}

// register exports the sink's counters.
func (d *database) register(reg *prometheus.Registry) {
	if d == nil {
		return
	}
	reg.MustRegister(sinkCollector{d})
}

type sinkCollector struct{ d *database }

var (
	descSinkRows = prometheus.NewDesc("qos_db_rows_total", "Metastore rows by outcome.", []string{"outcome"}, nil)
	descSpool    = prometheus.NewDesc("qos_db_spool_bytes", "Bytes waiting in the spool.", nil, nil)
	descSpoolRow = prometheus.NewDesc("qos_db_spool_rows", "Rows waiting in the spool.", nil, nil)
	descConn     = prometheus.NewDesc("qos_db_connected", "1 while the writer holds a database connection.", nil, nil)
	descDBErrs   = prometheus.NewDesc("qos_db_errors_total", "Failed write or connection attempts.", nil, nil)
)

func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSinkRows, descSpool, descSpoolRow, descConn, descDBErrs} {
		ch <- d
	}
}

func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.d.sink.Stats()
	for _, o := range []struct {
		name string
		v    uint64
	}{
		{"written", st.Written}, {"backfilled", st.Backfilled}, {"duplicate", st.Duplicates},
		{"spooled", st.Spooled}, {"dropped", st.Dropped}, {"spool_corrupt", st.SpoolCorrupt},
	} {
		ch <- prometheus.MustNewConstMetric(descSinkRows, prometheus.CounterValue, float64(o.v), o.name)
	}
	ch <- prometheus.MustNewConstMetric(descSpool, prometheus.GaugeValue, float64(st.SpoolBytes))
	ch <- prometheus.MustNewConstMetric(descSpoolRow, prometheus.GaugeValue, float64(st.SpoolRows))
	ch <- prometheus.MustNewConstMetric(descConn, prometheus.GaugeValue, b2f(st.Connected))
	ch <- prometheus.MustNewConstMetric(descDBErrs, prometheus.CounterValue, float64(st.Errors))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
