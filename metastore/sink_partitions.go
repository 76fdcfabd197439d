package metastore

import (
	"context"
	"fmt"
	"time"

	"github.com/solqos/qos/schema"
)

// ensureDays creates the partitions for the UTC days of the group's rows
// (and of its batch markers) that are not known to exist.
func (s *Sink) ensureDays(ctx context.Context, group []*batch) error {
	s.dayBuf = s.dayBuf[:0]
	last := int64(-1 << 62)
	for _, b := range group {
		for i := range b.n {
			d := floorDiv(b.rows[i].ObservedAt, nsPerDay)
			if d == last {
				continue
			}
			last = d
			if _, ok := s.days[d]; ok {
				continue
			}
			s.days[d] = struct{}{}
			s.dayBuf = append(s.dayBuf, time.Unix(0, d*nsPerDay).UTC())
		}
	}
	if len(s.dayBuf) == 0 {
		return nil
	}
	if err := schema.EnsurePartitions(ctx, s.conn, s.dayBuf...); err != nil {
		for _, t := range s.dayBuf {
			delete(s.days, floorDiv(t.UnixNano(), nsPerDay))
		}
		return err
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// housekeep creates today's and tomorrow's partitions ahead of time.
func (s *Sink) housekeep() {
	if s.conn == nil {
		return
	}
	if err := s.do(s.ensureAhead); err != nil {
		s.failed(fmt.Errorf("create partitions ahead: %w", err))
	}
}

// ensureAhead is housekeep's database part.
func (s *Sink) ensureAhead() error {
	today := floorDiv(s.cfg.Now().UnixNano(), nsPerDay)
	_, ok1 := s.days[today]
	_, ok2 := s.days[today+1]
	if ok1 && ok2 {
		return nil
	}
	ctx, cancel := s.opContext(s.cfg.WriteTimeout)
	defer cancel()
	days := []time.Time{time.Unix(0, today*nsPerDay).UTC(), time.Unix(0, (today+1)*nsPerDay).UTC()}
	if err := schema.EnsurePartitions(ctx, s.conn, days...); err != nil {
		return err
	}
	s.days[today] = struct{}{}
	s.days[today+1] = struct{}{}
	return nil
}
