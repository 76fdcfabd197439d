package metastore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/solqos/qos/schema"
)

// maybeConnect connects when disconnected and the backoff has passed.
func (s *Sink) maybeConnect() {
	if s.conn != nil || time.Now().Before(s.nextConnect) {
		return
	}
	var conn *pgx.Conn
	err := s.do(func() error {
		ctx, cancel := s.opContext(s.cfg.ConnectTimeout)
		defer cancel()
		var err error
		conn, err = pgx.ConnectConfig(ctx, s.cfg.Conn)
		if err == nil {
			err = schema.CheckVersion(ctx, conn)
			if err != nil {
				conn.Close(ctx)
			}
		}
		return err
	})
	if err != nil {
		// pgx's ConnectError names the user; keep only what went wrong.
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) && ce.Unwrap() != nil {
			err = ce.Unwrap()
		}
		s.failed(fmt.Errorf("connect: %w", err))
		return
	}
	s.conn = conn
	if s.connected {
		s.count(func(st *SinkStats) { st.Reconnects++ })
	}
	s.connected = true
	s.count(func(st *SinkStats) { st.Connected = true })
	s.housekeep()
}

// failed closes the connection after an error, schedules a reconnection
// and logs the outage once.
func (s *Sink) failed(err error) {
	if s.conn != nil {
		conn := s.conn
		s.conn = nil
		_ = s.do(func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return conn.Close(ctx)
		})
	}
	s.lastErrAt = time.Now()
	s.nextConnect = s.lastErrAt.Add(s.backoff)
	s.backoff = min(2*s.backoff, s.cfg.BackoffMax)
	st := s.Stats()
	s.count(func(st *SinkStats) {
		st.Errors++
		st.Connected = false
	})
	if s.outage {
		s.log.Debug("metastore: still unavailable", "db", s.desc, "err", err)
		return
	}
	s.outage = true
	s.outageAt = s.lastErrAt
	s.outageStats = st
	s.count(func(st *SinkStats) { st.Outages++ })
	spool := "dropping rows (no spool)"
	if s.spool != nil {
		spool = "spooling rows to " + s.cfg.SpoolDir
	}
	s.log.Warn("metastore: database unavailable; "+spool, "db", s.desc, "err", err)
}

// checkRecovered ends an outage once connected with an empty spool and
// without errors for StableAfter (or now, with force), logging what
// happened during it.
func (s *Sink) checkRecovered(force bool) {
	if !s.outage || s.conn == nil || (s.spool != nil && !s.spool.Empty()) {
		return
	}
	if !force && time.Since(s.lastErrAt) < s.cfg.StableAfter {
		return
	}
	s.outage = false
	st := s.Stats()
	s.log.Info("metastore: database available again; spool written",
		"db", s.desc,
		"outage", time.Since(s.outageAt).Round(time.Millisecond),
		"spooled", st.Spooled-s.outageStats.Spooled,
		"backfilled", st.Backfilled-s.outageStats.Backfilled,
		"dropped", st.Dropped-s.outageStats.Dropped,
		"errors", st.Errors-s.outageStats.Errors,
		"reconnects", st.Reconnects-s.outageStats.Reconnects)
}
